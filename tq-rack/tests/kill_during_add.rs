//! A member SIGKILLed in the middle of an add: the add still commits (or
//! its automatic retry does), and the restarted member ends committed too,
//! in its durable files and in its status.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stderr,
    reason = "tests"
)]

mod rack_support;

use std::time::{Duration, Instant};

use rack_support::TestRack;
use tq_rack::client::Operator;
use tq_rack::layout::Rack;
use tq_types::Epoch;

const LIMIT: Duration = Duration::from_secs(180);

/// Kills one member of the rack right after an add was posted, restarts
/// it after `pause`, and checks that the rack ends committed everywhere.
fn kill_member_during_add(coordinator: bool, pause: Duration) {
    let rack = TestRack::new();
    rack.ok("up", &["--sleds", "4", "--spares", "2"], LIMIT);
    let add = rack.ok("add", &["--count", "1"], LIMIT);
    let epoch: u64 = add.last_line().strip_prefix("epoch=").unwrap().parse().unwrap();
    assert_eq!(epoch, 2);

    let layout = Rack::load(rack.path()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let operator = Operator::new(&layout).unwrap();
    let view = runtime.block_on(operator.config(Epoch(epoch))).unwrap().unwrap();
    let coordinator_index = layout.index_of(&view.coordinator).unwrap();
    // A member of the last committed epoch (sleds 0..4): the coordinator,
    // or another one.
    let victim = if coordinator { coordinator_index } else { (coordinator_index + 1) % 4 };
    let victim_arg = victim.to_string();
    let killed = rack.ok("kill", &["--sled", &victim_arg], LIMIT);
    assert_eq!(killed.last_line(), format!("killed sled-{victim}"));
    let at_kill = runtime.block_on(operator.config(Epoch(epoch))).unwrap().unwrap();
    eprintln!("epoch {epoch} was {} when sled-{victim} was killed", at_kill.state);
    std::thread::sleep(pause);
    rack.ok("restart", &["--sled", &victim_arg], LIMIT);

    // The add commits: at epoch 2, or at a retry with the same members.
    let start = Instant::now();
    let committed = loop {
        let status = rack.status();
        if status["state"] == "committed"
            && status["members"].as_array().unwrap().len() == 5
            && status["unacknowledged_members"].as_array().unwrap().is_empty()
        {
            break status;
        }
        assert!(start.elapsed() < LIMIT, "the add never committed: {status}\n{}", rack.logs());
        std::thread::sleep(Duration::from_millis(200));
    };
    let committed_epoch = Epoch(committed["epoch"].as_u64().unwrap());
    if !coordinator {
        assert_eq!(committed_epoch, Epoch(2), "{committed}");
    }

    // The restarted member holds the commit in its durable files and
    // reports it.
    let state = tq_rack::check::read_state(&layout, victim).unwrap();
    assert_eq!(state.latest_committed_epoch(), Some(committed_epoch));
    let control = tq_rack::client::control_client(&layout, victim).unwrap();
    let status = runtime.block_on(tq_rack::client::sled_status(&control)).unwrap();
    assert_eq!(status.latest_committed, Some(committed_epoch));
    assert!(status.alarms.is_empty(), "{:?}", status.alarms);
    for member in 0..5 {
        tq_rack::check::durable(&layout, member, committed_epoch).unwrap();
    }
    rack.down();
}

#[test]
fn member_killed_during_add() {
    kill_member_during_add(false, Duration::from_millis(500));
}

#[test]
fn coordinator_killed_during_add() {
    kill_member_during_add(true, Duration::from_millis(300));
}
