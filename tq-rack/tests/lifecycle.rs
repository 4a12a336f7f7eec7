//! Bringing a rack up, adding a sled, reading the status and bringing it
//! down, with real processes of the `tq-rack` binary.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod rack_support;

use std::time::Duration;

use rack_support::{TestRack, alive};

const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn up_add_status_down() {
    let rack = TestRack::new();
    let up = rack.ok("up", &["--sleds", "4", "--spares", "4"], LIMIT);
    assert_eq!(up.last_line(), "rack up: epoch=1 members=4");
    let pids = rack.recorded_pids();
    assert_eq!(pids.len(), 5, "4 agents and 1 replica: {pids:?}");
    assert!(pids.iter().all(|(_, pid)| alive(*pid)));

    let add = rack.ok("add", &["--count", "1", "--wait"], LIMIT);
    assert_eq!(add.last_line(), "epoch=2");

    let status = rack.status();
    assert_eq!(status["epoch"], 2, "{status}");
    assert_eq!(status["state"], "committed", "{status}");
    assert_eq!(status["members"].as_array().unwrap().len(), 5, "{status}");
    assert_eq!(status["unacknowledged_members"].as_array().unwrap().len(), 0, "{status}");
    let summary = rack.ok("status", &[], LIMIT);
    assert_eq!(summary.last_line(), "epoch=2 state=committed members=5 unacknowledged=0");

    let recorded = rack.recorded_pids();
    assert_eq!(recorded.len(), 6);
    rack.down();
    for (name, pid) in recorded {
        assert!(!alive(pid), "{name} (pid {pid}) survived down");
    }
    // A second down finds nothing to stop.
    assert_eq!(rack.ok("down", &[], LIMIT).last_line(), "rack down: stopped=0");
}

#[test]
fn bad_usage_exits_2() {
    let rack = TestRack::new();
    assert_eq!(rack.run("status", &[], LIMIT).code, 2, "no rack yet");
    assert_eq!(rack.run("up", &["--sleds", "2"], LIMIT).code, 2, "too few sleds");
    assert_eq!(rack_support::tq_rack(&["frobnicate"], LIMIT).code, 2);
    assert_eq!(rack.run("kill", &[], LIMIT).code, 2, "kill needs a target");
}
