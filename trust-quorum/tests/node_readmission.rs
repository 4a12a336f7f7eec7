//! A removed sled whose disk is wiped and which the operator adds back
//! (docs/protocol.md section 4.8), replayed without the simulator: the
//! story of simulator seed 15941.
//!
//! Sled 5 is a member of epoch 2 but never acknowledges it; epoch 3 removes
//! it; its disk is wiped; epoch 4 adds it back. When it comes up blank, a
//! stale prepare-and-commit for epoch 2 (still in flight from the control
//! plane) reaches it first. It stores config 2, asks the members for their
//! shares of 2, and they, having committed 3, truthfully answer `Expunged`
//! with configuration 3 and its commit certificate, which leaves it out. The
//! rule: an expungement is a fact about an epoch, and a later configuration
//! that lists the sled re-admits it. So epoch 4 still commits on sled 5, and
//! the rack settles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use support::{Cluster, committed_config, id, ids, prepare_and_commit_request, rack};
use tq_types::{CommitStatus, Epoch, NodeRefusal, PeerMsg, PeerMsgKind, PrepareAndCommitError};

/// Epochs 1 to 3 committed, sled 5 removed by 3 and wiped; it stays down.
fn removed_and_wiped() -> Cluster {
    let mut c = Cluster::new(6, 15941);
    c.reconfigure_and_commit(&id(0), 1, None, &ids(0..6));
    // Epoch 2 keeps everyone, but sled 5 is down and never acknowledges it.
    c.crash(&id(5));
    c.reconfigure(&id(0), 2, Some(1), &ids(0..6));
    c.deliver_all();
    c.commit(&id(0), 2);
    // Epoch 3 removes sled 5.
    c.reconfigure_and_commit(&id(0), 3, Some(2), &ids(0..5));
    // Its disk is lost.
    c.wipe(&id(5));
    c
}

/// Sled 5 comes up blank and a stale request for epoch 2 lands on it first;
/// the members, whose latest committed epoch is `latest`, tell it that it
/// was expunged at `latest`.
fn stale_request_expunges(c: &mut Cluster, latest: u64) {
    let config2 = c.config(2).clone();
    c.restart(&id(5));
    assert!(c.state(&id(5)).configs().is_empty(), "the sled starts blank");
    // A prepare the coordinator of a pending epoch re-sent on connect is lost
    // with its connection: the expunged answer gets there first.
    c.net().retain(|e| !matches!(e.msg.kind, PeerMsgKind::Prepare { .. }));
    let req = prepare_and_commit_request(&config2);
    let out = c.request(&id(5), |n, ctx| n.prepare_and_commit(ctx, req));
    assert_eq!(out, Ok(CommitStatus::Pending), "a blank sled takes the stale epoch");
    c.deliver_all();
    let ex = c.state(&id(5)).expunged().cloned().expect("expunged by a member");
    assert_eq!(ex.epoch, Epoch(latest));
    // The stale epoch itself stays refused.
    let req = prepare_and_commit_request(&config2);
    let out = c.request(&id(5), |n, ctx| n.prepare_and_commit(ctx, req));
    assert_eq!(
        out,
        Err(PrepareAndCommitError::Refused(NodeRefusal::Expunged {
            epoch: Epoch(latest),
            from: ex.from
        }))
    );
}

/// Sled 5 committed epoch 4, holds the right share, is no longer expunged
/// (durably), and reconstructs the same secrets as the others.
fn settled(c: &mut Cluster) {
    let disk = c.state(&id(5));
    assert_eq!(disk.expunged(), None, "re-admission is durable");
    assert_eq!(disk.latest_committed_epoch(), Some(Epoch(4)));
    assert!(disk.is_prepared(Epoch(4)));
    for epoch in [4, 3] {
        let theirs = c.load_secret(&id(0), epoch);
        assert_eq!(c.load_secret(&id(5), epoch), theirs, "secret of epoch {epoch}");
    }
    assert!(c.alarms().is_empty(), "{:?}", c.alarms());
}

#[test]
fn re_added_sled_is_readmitted_by_prepare_and_commit() {
    let mut c = removed_and_wiped();
    // Epoch 4 adds sled 5 back while it is still down: the others prepare.
    c.reconfigure(&id(0), 4, Some(3), &ids(0..6));
    c.deliver_all();
    assert_eq!(c.acks(&id(0), 4), ids(0..5));
    stale_request_expunges(&mut c, 3);
    // The control plane commits 4: prepare-and-commit to the unacked sled 5
    // re-admits it, and it computes its share from the others.
    c.commit(&id(0), 4);
    settled(&mut c);
}

#[test]
fn re_added_sled_is_readmitted_by_a_prepare() {
    let mut c = removed_and_wiped();
    stale_request_expunges(&mut c, 3);
    // Epoch 4 is proposed after the expungement: its prepare reaches sled 5,
    // which re-admits it and acknowledges, as the K+Z rule may need.
    c.reconfigure(&id(0), 4, Some(3), &ids(0..6));
    c.deliver_all();
    assert_eq!(c.acks(&id(0), 4), ids(0..6));
    assert_eq!(c.state(&id(5)).expunged(), None);
    c.commit(&id(0), 4);
    settled(&mut c);
}

#[test]
fn only_a_later_configuration_listing_the_sled_readmits_it() {
    let mut c = removed_and_wiped();
    c.reconfigure_and_commit(&id(0), 4, Some(3), &ids(0..5));
    stale_request_expunges(&mut c, 4);
    let expunged = c.state(&id(5)).expunged().cloned();
    // Epoch 5, without sled 5 either.
    c.reconfigure_and_commit(&id(0), 5, Some(4), &ids(0..5));
    let config4 = c.config(4).clone();
    let config5 = c.config(5).clone();
    let msg = |kind| PeerMsg { rack_id: rack(), kind };
    // Epoch 4 is not later than the expungement, and epoch 5 does not list
    // the sled. Neither changes anything, and nothing is sent.
    for (from, kind) in [
        (0, PeerMsgKind::CommitAdvance(committed_config(&config4))),
        (0, PeerMsgKind::CommitAdvance(committed_config(&config5))),
        (1, PeerMsgKind::GetShare(Epoch(2))),
    ] {
        let disk = c.state(&id(5)).clone();
        c.call(&id(5), |n, ctx| n.handle(ctx, id(from), msg(kind)));
        assert_eq!(*c.state(&id(5)), disk);
        assert!(c.net().is_empty());
    }
    let req = prepare_and_commit_request(&config4);
    let out = c.request(&id(5), |n, ctx| n.prepare_and_commit(ctx, req));
    assert!(matches!(
        out,
        Err(PrepareAndCommitError::Refused(NodeRefusal::Expunged { epoch: Epoch(4), .. }))
    ));
    let req = prepare_and_commit_request(&config5);
    let out = c.request(&id(5), |n, ctx| n.prepare_and_commit(ctx, req));
    assert_eq!(out, Err(PrepareAndCommitError::NotAMember(Epoch(5))));
    assert_eq!(c.state(&id(5)).expunged().cloned(), expunged);
}

/// Simulator seed 347 (byzantine): sled 5, wiped and being added back by
/// epoch 4 (prepared, not yet committed), is sent a genuine but old commit
/// advance of epoch 2 (a replay by a compromised peer). It once started
/// computing its share of 2, which the members, having committed 3, never
/// give. Since a sled keeps only its newest epochs (docs/protocol.md
/// section 2.4), epoch 2, older than its configuration 4 and not what 4
/// builds on, is not taken at all: nothing changes and nothing starts.
#[test]
fn a_replayed_old_commit_advance_does_not_move_a_re_added_sled() {
    let mut c = removed_and_wiped();
    c.restart(&id(5));
    c.reconfigure(&id(0), 4, Some(3), &ids(0..6));
    c.deliver_all();
    assert_eq!(c.acks(&id(0), 4), ids(0..6));
    let kind = PeerMsgKind::CommitAdvance(committed_config(c.config(2)));
    let disk = c.state(&id(5)).clone();
    c.call(&id(5), |n, ctx| n.handle(ctx, id(0), PeerMsg { rack_id: rack(), kind }));
    let computing = |c: &Cluster| c.node(&id(5)).status(c.ctx(&id(5))).computing_share;
    assert_eq!(computing(&c), None, "a superseded epoch starts no computation");
    assert_eq!(*c.state(&id(5)), disk);
    c.deliver_all();
    assert_eq!(c.state(&id(5)).expunged(), None, "still a member of 4");
    assert!(c.alarms().is_empty(), "{:?}", c.alarms());
    // Epoch 4 then commits on it as on everyone.
    c.commit(&id(0), 4);
    assert_eq!(c.state(&id(5)).latest_committed_epoch(), Some(Epoch(4)));
}
