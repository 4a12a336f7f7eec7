//! Control-plane replicas over a real ledger database, driving real sled
//! agents (in this process, over TLS on 127.0.0.1) through their control
//! APIs; the operator talks to the replicas' operator APIs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs, dead_code)]

#[path = "../../tq-node/tests/agents_support/mod.rs"]
mod agents_support;

use std::time::Duration;

use agents_support::{LocalRack, sled, sleds};
use tq_ctl::config::{CtlConfig, SledEntry, TlsPaths};
use tq_types::{RackId, RackMembershipStatus};

const RACK: &str = "3df0b7cd-50ed-498e-afa4-41f178d393f9";

fn ctl_config(rack: &LocalRack, db: &str, name: &str) -> CtlConfig {
    CtlConfig {
        rack_id: RackId(RACK.parse().unwrap()),
        listen: "127.0.0.1:0".parse().unwrap(),
        db: db.to_owned(),
        replica: name.to_owned(),
        tick_ms: 20,
        prepare_timeout_ms: 60_000,
        not_coordinating_grace_ms: 10_000,
        authority: rack.dir.path().join("keys/authority.key"),
        tls: TlsPaths {
            ca: rack.dir.path().join("keys/ca.pem"),
            cert: rack.dir.path().join("keys/control/cert.pem"),
            key: rack.dir.path().join("keys/control/key.pem"),
        },
        sleds: rack
            .configs
            .values()
            .map(|c| SledEntry { id: c.id.clone(), control: c.control_listen })
            .collect(),
    }
}

fn body(ids: impl IntoIterator<Item = usize>) -> serde_json::Value {
    let ids: Vec<serde_json::Value> = ids
        .into_iter()
        .map(|i| {
            let id = sled(i);
            serde_json::json!({ "part": id.part_number(), "serial": id.serial_number() })
        })
        .collect();
    serde_json::json!({ "sled_ids": ids })
}

fn url(addr: std::net::SocketAddr, rest: &str) -> String {
    format!("http://{addr}/v1/system/hardware/racks/{RACK}/membership{rest}")
}

/// Waits (bounded) until the epoch's status is committed.
async fn until_committed(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    epoch: u64,
) -> RackMembershipStatus {
    let mut pace = tokio::time::interval(Duration::from_millis(25));
    for _ in 0..800 {
        pace.tick().await;
        let r = http.get(url(addr, &format!("?version={epoch}"))).send().await.unwrap();
        if r.status().is_success() {
            let status: RackMembershipStatus = r.json().await.unwrap();
            if status.state == tq_types::RackMembershipState::Committed {
                return status;
            }
        }
    }
    panic!("epoch {epoch} never committed");
}

/// The whole story against one ledger database, with two replicas that
/// race on it: initialize through one, add through the other.
async fn two_replicas_commit_an_add(db: &str) {
    let mut rack = LocalRack::new(4);
    rack.start_all().await;
    let a = tq_ctl::service::start(&ctl_config(&rack, db, "ctl-a")).await.unwrap();
    let b = tq_ctl::service::start(&ctl_config(&rack, db, "ctl-b")).await.unwrap();
    let http = reqwest::Client::new();

    let r = http.post(url(a.addr(), "/initialize")).json(&body(0..3)).send().await.unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let status: RackMembershipStatus = r.json().await.unwrap();
    assert_eq!(status.epoch.0, 1);
    until_committed(&http, b.addr(), 1).await;

    let r = http.post(url(b.addr(), "/add")).json(&body([3])).send().await.unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let status: RackMembershipStatus = r.json().await.unwrap();
    assert_eq!(status.epoch.0, 2);
    let done = until_committed(&http, a.addr(), 2).await;
    assert_eq!(done.members, sleds(0..4));
    // Every member derives the same key from epoch 2's secret.
    let mut keys = Vec::new();
    for i in 0..4 {
        keys.push(rack.key(&sled(i), tq_types::Epoch(2), "disk").await.unwrap());
    }
    assert!(keys.windows(2).all(|w| w[0] == w[1]));

    // A bad request changes nothing: an unknown sled, a second add of a
    // member, another rack.
    let r = http.post(url(a.addr(), "/add")).json(&body([42])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = http.post(url(a.addr(), "/add")).json(&body([1])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let other = format!(
        "http://{}/v1/system/hardware/racks/00000000-0000-0000-0000-000000000001/membership",
        a.addr()
    );
    assert_eq!(http.get(other).send().await.unwrap().status().as_u16(), 404);
    let latest: RackMembershipStatus =
        http.get(url(a.addr(), "")).send().await.unwrap().json().await.unwrap();
    assert_eq!(latest.epoch.0, 2);

    a.shutdown().await;
    b.shutdown().await;
    rack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_sqlite_commit_an_add() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("ledger.db").display());
    two_replicas_commit_an_add(&db).await;
}

#[path = "pg_support/mod.rs"]
mod pg_support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgresql_commit_an_add() {
    let Some(server) = pg_support::PgServer::start() else { return };
    let db = server.create_database("tq_service").await;
    two_replicas_commit_an_add(&db).await;
}
