//! The lifecycle of `lifecycle.rs` with the ledger in PostgreSQL (a
//! throwaway server, see `pg_support`) and two replicas sharing it. Like
//! tq-ctl's PostgreSQL tests, it fails when PostgreSQL is not installed
//! unless `TQ_SKIP_POSTGRES=1`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[path = "../../tq-ctl/tests/pg_support/mod.rs"]
mod pg_support;
mod rack_support;

use std::time::Duration;

use rack_support::{TestRack, alive};

const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn up_add_status_down_on_postgres() {
    let Some(server) = pg_support::PgServer::start() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = runtime.block_on(server.create_database("tq_rack"));
    let rack = TestRack::new();
    let up =
        rack.ok("up", &["--sleds", "4", "--spares", "2", "--replicas", "2", "--db", &url], LIMIT);
    assert_eq!(up.last_line(), "rack up: epoch=1 members=4");
    let add = rack.ok("add", &["--count", "1", "--wait"], LIMIT);
    assert_eq!(add.last_line(), "epoch=2");
    // The second replica answers from the same ledger.
    rack.ok("kill", &["--ctl", "0"], LIMIT);
    let status = rack.status();
    assert_eq!(status["epoch"], 2, "{status}");
    assert_eq!(status["state"], "committed", "{status}");
    assert_eq!(status["members"].as_array().unwrap().len(), 5, "{status}");
    let layout = tq_rack::layout::Rack::load(rack.path()).unwrap();
    let cp = runtime.block_on(tq_rack::check::load_ledger(&layout)).unwrap();
    assert_eq!(cp.latest_epoch(), Some(tq_types::Epoch(2)));
    let recorded = rack.recorded_pids();
    rack.down();
    for (name, pid) in recorded {
        assert!(!alive(pid), "{name} (pid {pid}) survived down");
    }
}
