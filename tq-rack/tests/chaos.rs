//! A short chaos run on a rack with two control-plane replicas finds no
//! violation, and leaves every member committed at the same epoch.
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

use rack_support::TestRack;

#[test]
fn short_chaos_run_finds_no_violation() {
    let rack = TestRack::new();
    rack.ok("up", &["--sleds", "4", "--replicas", "2"], Duration::from_secs(180));
    let run = rack.run(
        "chaos",
        &["--seconds", "15", "--seed", "7", "--settle-timeout", "150"],
        Duration::from_secs(400),
    );
    let last = run.last_line().to_owned();
    assert_eq!(run.code, 0, "chaos failed:\n{}\n{}\n{}", run.stdout, run.stderr, rack.logs());
    assert!(last.starts_with("chaos: seconds=15 operations="), "{last}");
    assert!(last.contains(" violations=0 "), "{last}");
    let field = |name: &str| -> u64 {
        let prefix = format!("{name}=");
        last.split(' ').find_map(|f| f.strip_prefix(prefix.as_str())).unwrap().parse().unwrap()
    };
    assert!(field("operations") > 0, "{last}");
    assert!(field("epochs") >= 1, "{last}");
    let status = rack.status();
    assert!(status["state"] == "committed" || status["state"] == "aborted", "{status}");
    rack.down();
}
