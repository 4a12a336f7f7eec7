//! End-to-end node behaviour through the embedder loop: initial
//! configurations, reconfigurations, missed prepares, expungement, secret
//! loading and determinism.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    missing_docs
)]

mod support;

use support::{Cluster, id, ids, rack};
use tq_types::{Epoch, PeerMsgKind};
use trust_quorum::crypto;

fn initial(n: usize, seed: u64) -> Cluster {
    let mut c = Cluster::new(n, seed);
    c.reconfigure_and_commit(&id(0), 1, None, &ids(0..n));
    c
}

#[test]
fn initial_configuration_commits_everywhere_for_3_8_32() {
    for n in [3, 8, 32] {
        let mut c = initial(n, n as u64);
        let config = c.config(1).clone();
        assert_eq!(config.members.len(), n);
        assert_eq!(config.threshold.0 as usize, n / 2 + 1);
        assert!(config.encrypted_rack_secrets.is_none());
        for m in ids(0..n) {
            let s = c.state(&m);
            assert_eq!(s.latest_committed_epoch(), Some(Epoch(1)), "{m}");
            assert_eq!(s.config(Epoch(1)), Some(&config), "configs are identical");
            let share = s.share(Epoch(1)).unwrap();
            assert!(crypto::share_matches(share, &config.members[&m]));
        }
        let secret = c.load_secret(&id(0), 1);
        for m in ids(1..n) {
            assert_eq!(c.load_secret(&m, 1), secret, "every member loads the same secret");
        }
        assert!(c.alarms().is_empty());
        assert!(c.coordinator_status(&id(0)).is_none(), "commit stops coordinating");
    }
}

#[test]
fn reconfiguration_adds_two_and_removes_one() {
    // Epoch 1: sleds 0..5. Epoch 2: remove 4, add 5 and 6.
    let mut c = Cluster::new(7, 11);
    c.reconfigure_and_commit(&id(0), 1, None, &ids(0..5));
    let old_secret = c.load_secret(&id(1), 1);
    let new_members = ids([0, 1, 2, 3, 5, 6]);
    c.reconfigure_and_commit(&id(2), 2, Some(1), &new_members);

    let config = c.config(2).clone();
    assert_eq!(
        config.members.keys().cloned().collect::<std::collections::BTreeSet<_>>(),
        new_members
    );
    assert_eq!(config.encrypted_rack_secrets.as_ref().unwrap().data.len(), 56);
    for m in &new_members {
        assert_eq!(c.state(m).latest_committed_epoch(), Some(Epoch(2)), "{m}");
    }
    // The removed sled holds no epoch 2 state.
    assert!(c.state(&id(4)).config(Epoch(2)).is_none());
    assert!(c.state(&id(4)).share(Epoch(2)).is_none());

    // Every member of epoch 2 loads the identical secret, and the prior
    // secret chain opens to the old secret.
    let new_secret = c.load_secret(&id(5), 2);
    for m in &new_members {
        assert_eq!(c.load_secret(m, 2), new_secret);
    }
    let prior = crypto::open(
        config.encrypted_rack_secrets.as_ref().unwrap(),
        rack(),
        Epoch(2),
        &new_secret,
    )
    .unwrap();
    assert_eq!(prior.len(), 1);
    assert_eq!(prior[&Epoch(1)], old_secret);
    // The old secret is also served from the cache after loading epoch 2.
    assert_eq!(c.load_secret(&id(6), 1), old_secret, "new member recovers old secret");
    assert!(c.alarms().is_empty());

    // A third epoch carries the whole chain.
    c.reconfigure_and_commit(&id(5), 3, Some(2), &ids([0, 1, 2, 5, 6]));
    let s3 = c.load_secret(&id(0), 3);
    let sealed = c.state(&id(0)).config(Epoch(3)).unwrap().encrypted_rack_secrets.clone().unwrap();
    assert_eq!(sealed.data.len(), 2 * 40 + 16);
    let chain = crypto::open(&sealed, rack(), Epoch(3), &s3).unwrap();
    assert_eq!(chain[&Epoch(1)], old_secret);
    assert_eq!(chain[&Epoch(2)], new_secret);
}

#[test]
fn node_that_missed_prepare_learns_by_commit_advance_and_computes_its_share() {
    let mut c = Cluster::new(5, 21);
    c.reconfigure_and_commit(&id(0), 1, None, &ids(0..5));
    // Sled 4 is down for the whole of epoch 2.
    c.crash(&id(4));
    c.reconfigure_and_commit(&id(1), 2, Some(1), &ids(0..5));
    assert_eq!(c.state(&id(4)).latest_committed_epoch(), Some(Epoch(1)));

    // Back up, it tries to unlock with epoch 1; peers answer CommitAdvance.
    c.restart(&id(4));
    let sent_before = c.sent().len();
    assert_eq!(c.call(&id(4), |n, ctx| n.load_rack_secret(ctx, Epoch(1))), Ok(None));
    c.deliver_all();
    let advances = c.sent()[sent_before..]
        .iter()
        .filter(|e| e.to == id(4) && matches!(e.msg.kind, PeerMsgKind::CommitAdvance(_)))
        .count();
    assert!(advances > 0, "peers answer GetShare(1) with CommitAdvance(2)");
    let state = c.state(&id(4));
    assert_eq!(state.latest_committed_epoch(), Some(Epoch(2)), "computed share and committed");
    let config = state.config(Epoch(2)).unwrap();
    assert!(crypto::share_matches(state.share(Epoch(2)).unwrap(), &config.members[&id(4)]));
    let secret = c.load_secret(&id(4), 2);
    assert_eq!(secret, c.load_secret(&id(0), 2));
    assert!(c.alarms().is_empty());
}

#[test]
fn prepare_and_commit_computes_the_missed_share() {
    let mut c = Cluster::new(5, 31);
    c.reconfigure_and_commit(&id(0), 1, None, &ids(0..5));
    c.crash(&id(3));
    c.reconfigure(&id(2), 2, Some(1), &ids(0..5));
    c.deliver_all();
    assert_eq!(c.acks(&id(2), 2).len(), 4);
    c.restart(&id(3));
    // The control plane commits acked members and prepare-and-commits sled 3.
    c.commit(&id(2), 2);
    for m in ids(0..5) {
        assert_eq!(c.state(&m).latest_committed_epoch(), Some(Epoch(2)), "{m}");
    }
    assert_eq!(c.load_secret(&id(3), 2), c.load_secret(&id(0), 2));
}

#[test]
fn removed_node_is_told_it_is_expunged() {
    let mut c = Cluster::new(5, 41);
    c.reconfigure_and_commit(&id(0), 1, None, &ids(0..5));
    c.crash(&id(4));
    c.reconfigure_and_commit(&id(0), 2, Some(1), &ids(0..4));
    c.restart(&id(4));
    assert_eq!(c.call(&id(4), |n, ctx| n.load_rack_secret(ctx, Epoch(1))), Ok(None));
    c.deliver_all();
    let ex = c.state(&id(4)).expunged().cloned().expect("expunged");
    assert_eq!(ex.epoch, Epoch(2));
    // Thereafter it refuses secret loading and drops peer traffic.
    assert!(matches!(
        c.call(&id(4), |n, ctx| n.load_rack_secret(ctx, Epoch(1))),
        Err(tq_types::LoadRackSecretError::Expunged { .. })
    ));
    let before = c.sent().len();
    c.call(&id(0), |n, ctx| n.on_connect(ctx, id(4)));
    let m = tq_types::PeerMsg { rack_id: rack(), kind: PeerMsgKind::GetShare(Epoch(1)) };
    c.call(&id(4), |n, ctx| n.handle(ctx, id(0), m));
    assert!(c.sent()[before..].iter().all(|e| e.from != id(4)), "expunged node stays silent");
}

#[test]
fn same_seed_gives_identical_bytes() {
    fn run(seed: u64) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut c = Cluster::new(6, seed);
        c.reconfigure_and_commit(&id(0), 1, None, &ids(0..5));
        c.reconfigure_and_commit(&id(1), 2, Some(1), &ids(1..6));
        let disks = c.rack.sleds().values().map(|s| s.disk().encode().unwrap()).collect();
        let sent = c.sent().iter().map(|e| tq_types::codec::encode(e).unwrap()).collect();
        (disks, sent)
    }
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a.0, run(8).0, "different seeds give different shares");
}
