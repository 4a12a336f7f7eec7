//! Every peer message to a node against bad input: wrong rack, stale and
//! future epochs, non-members, duplicates, corrupt or short shares,
//! conflicting configurations, and expunged notices. Each case checks the
//! silence or the answer, the persistent state (byte-identical unless the
//! spec says otherwise) and the alarms. Forgeries of the authority's
//! signatures are in `node_hostile_peers.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

mod support;

use std::collections::BTreeSet;

use support::{
    Cluster, assert_no_effect, assert_no_effect_req, commit_request, committed_config, disk,
    epoch1_committed, epoch2_prepares_queued, id, ids, msg, other_rack, pending_prepare,
    prepare_and_commit_request, signed_request,
};
use tq_types::{
    Alarm, CommitError, Configuration, Envelope, Epoch, LoadRackSecretError, NodeRefusal, PeerMsg,
    PeerMsgKind, PrepareAndCommitError, ReconfigurationError, Share, Threshold,
};

// ---- prepare ----

#[test]
fn bad_prepares_are_ignored_without_reply() {
    let mut c = epoch2_prepares_queued();
    let good = pending_prepare(&mut c, 3);
    let PeerMsgKind::Prepare { config, share } = good.msg.kind.clone() else { unreachable!() };
    let from = good.from.clone();
    let prepare = |config: Configuration, share: Share| msg(PeerMsgKind::Prepare { config, share });

    // Wrong rack id on the envelope.
    let m = PeerMsg { rack_id: other_rack(), ..good.msg.clone() };
    assert_no_effect(&mut c, 3, |n, ctx| n.handle(ctx, from.clone(), m));
    // Not from the configuration's coordinator.
    let m = good.msg.clone();
    assert_no_effect(&mut c, 3, |n, ctx| n.handle(ctx, id(4), m));
    // A share whose digest does not match, and a short share.
    let mut flipped = share.as_bytes().to_vec();
    flipped[5] ^= 1;
    let m = prepare(config.clone(), Share::new(flipped));
    assert_no_effect(&mut c, 3, |n, ctx| n.handle(ctx, from.clone(), m));
    let m = prepare(config.clone(), Share::new(share.as_bytes()[..20].to_vec()));
    assert_no_effect(&mut c, 3, |n, ctx| n.handle(ctx, from.clone(), m));
    // The receiver is not a member (sled 3 gets a config without it).
    let mut without = config.clone();
    without.members.remove(&id(3));
    let m = prepare(without, share.clone());
    assert_no_effect(&mut c, 3, |n, ctx| n.handle(ctx, from.clone(), m));
    // An invalid configuration (threshold too high).
    let m = prepare(Configuration { threshold: Threshold(7), ..config.clone() }, share.clone());
    assert_no_effect(&mut c, 3, |n, ctx| n.handle(ctx, from.clone(), m));

    // The real one is stored and acknowledged; a duplicate is acknowledged
    // again without any change.
    c.call(&id(3), |n, ctx| n.handle(ctx, from.clone(), good.msg.clone()));
    assert!(c.state(&id(3)).is_prepared(Epoch(2)));
    let before = disk(&c, 3);
    let sent = c.sent().len();
    c.call(&id(3), |n, ctx| n.handle(ctx, from.clone(), good.msg.clone()));
    assert_eq!(disk(&c, 3), before);
    assert!(matches!(
        c.sent()[sent..],
        [Envelope { msg: PeerMsg { kind: PeerMsgKind::PrepareAck(Epoch(2)), .. }, .. }]
    ));

    // A conflicting configuration for the stored epoch raises an alarm and
    // changes nothing.
    let mut conflicting = config.clone();
    conflicting.members.values_mut().last().unwrap().0[0] ^= 1;
    conflicting.members.insert(id(3), config.members[&id(3)]);
    let before = disk(&c, 3);
    let sent = c.sent().len();
    c.call(&id(3), |n, ctx| n.handle(ctx, from.clone(), prepare(conflicting, share.clone())));
    assert_eq!(disk(&c, 3), before);
    assert_eq!(c.sent().len(), sent);
    assert_eq!(
        c.ctx(&id(3)).alarms(),
        &[Alarm::MismatchedConfigurations { epoch: Epoch(2), from: Some(from.clone()) }]
    );
}

#[test]
fn stale_prepare_after_a_later_commit_is_ignored() {
    let mut c = epoch2_prepares_queued();
    let stale = pending_prepare(&mut c, 4);
    // Epoch 2 is abandoned; epoch 3 commits everywhere.
    c.net().clear();
    c.crash(&id(1));
    c.restart(&id(1));
    c.reconfigure_and_commit(&id(2), 3, Some(1), &ids(0..5));
    assert_eq!(c.state(&id(4)).latest_committed_epoch(), Some(Epoch(3)));
    assert_no_effect(&mut c, 4, |n, ctx| n.handle(ctx, stale.from.clone(), stale.msg.clone()));
}

// ---- prepare ack ----

#[test]
fn bad_prepare_acks_are_not_counted() {
    let mut c = epoch2_prepares_queued();
    c.deliver_all();
    let acked = c.acks(&id(1), 2);
    assert_eq!(acked.len(), 6);
    // A fresh coordination with nothing acknowledged yet.
    c.reconfigure(&id(1), 3, Some(1), &ids(0..5));
    while !c.net().iter().any(|e| matches!(e.msg.kind, PeerMsgKind::Prepare { .. })) {
        c.deliver_at(0);
    }
    c.net().clear();
    assert_eq!(c.acks(&id(1), 3), BTreeSet::from([id(1)]));
    for (from, epoch) in [(id(5), 3), (id(9), 3), (id(2), 2), (id(2), 4)] {
        let m = msg(PeerMsgKind::PrepareAck(Epoch(epoch)));
        c.call(&id(1), |n, ctx| n.handle(ctx, from.clone(), m));
        assert_eq!(c.acks(&id(1), 3), BTreeSet::from([id(1)]), "ack from {from} for {epoch}");
    }
    // A real ack counts once.
    for _ in 0..2 {
        c.call(&id(1), |n, ctx| n.handle(ctx, id(2), msg(PeerMsgKind::PrepareAck(Epoch(3)))));
    }
    assert_eq!(c.acks(&id(1), 3), BTreeSet::from([id(1), id(2)]));
    // Not coordinating: ignored.
    assert_no_effect(&mut c, 0, |n, ctx| {
        n.handle(ctx, id(2), msg(PeerMsgKind::PrepareAck(Epoch(3))))
    });
}

// ---- get share ----

#[test]
fn get_share_answers() {
    let mut c = epoch1_committed();
    c.reconfigure_and_commit(&id(0), 2, Some(1), &ids(0..4));
    let answer = |c: &mut Cluster, from: usize, to: usize, epoch: u64| -> Vec<PeerMsgKind> {
        let sent = c.sent().len();
        c.call(&id(to), |n, ctx| n.handle(ctx, id(from), msg(PeerMsgKind::GetShare(Epoch(epoch)))));
        c.sent()[sent..].iter().map(|e| e.msg.kind.clone()).collect()
    };
    // Asking for an older epoch: a member gets the newer config...
    let config2 = c.config(2).clone();
    // (with the certificate it was committed with)...
    let committed2 = committed_config(&config2);
    assert_eq!(c.state(&id(0)).latest_committed(), Some(committed2.clone()));
    assert_eq!(answer(&mut c, 1, 0, 1), vec![PeerMsgKind::CommitAdvance(committed2.clone())]);
    // ...a removed sled is told it is expunged, with the proof.
    assert_eq!(answer(&mut c, 4, 0, 1), vec![PeerMsgKind::Expunged(committed2.clone())]);
    // Asking for the current epoch while not a member of it.
    assert_eq!(answer(&mut c, 5, 0, 2), vec![PeerMsgKind::Expunged(committed2)]);
    // A member asking for the current epoch gets the share.
    let share = c.state(&id(0)).share(Epoch(2)).unwrap().clone();
    assert_eq!(answer(&mut c, 1, 0, 2), vec![PeerMsgKind::Share { epoch: Epoch(2), share }]);
    // Nothing known for a future epoch: no reply, no change.
    assert_no_effect(&mut c, 0, |n, ctx| {
        n.handle(ctx, id(1), msg(PeerMsgKind::GetShare(Epoch(9))))
    });
}

// ---- share ----

#[test]
fn bad_shares_are_not_counted() {
    let mut c = epoch1_committed();
    let good1 = c.state(&id(1)).share(Epoch(1)).unwrap().clone();
    let good2 = c.state(&id(2)).share(Epoch(1)).unwrap().clone();
    c.net().clear();
    // Sled 0 starts loading; drop the requests so only our shares arrive.
    assert_eq!(c.call(&id(0), |n, ctx| n.load_rack_secret(ctx, Epoch(1))), Ok(None));
    c.net().clear();
    let share_msg =
        |epoch: u64, share: Share| msg(PeerMsgKind::Share { epoch: Epoch(epoch), share });
    let mut flipped = good1.as_bytes().to_vec();
    flipped[9] ^= 0x80;
    let bad = [
        (id(1), share_msg(1, Share::new(flipped))), // digest mismatch
        (id(1), share_msg(1, Share::new(good1.as_bytes()[..32].to_vec()))), // short
        (id(5), share_msg(1, good1.clone())),       // non-member
        (id(2), share_msg(1, good1.clone())),       // another's share
        (id(1), share_msg(2, good1.clone())),       // wrong epoch
    ];
    for (from, m) in bad {
        assert_no_effect(&mut c, 0, |n, ctx| n.handle(ctx, from.clone(), m));
        assert_eq!(c.call(&id(0), |n, ctx| n.load_rack_secret(ctx, Epoch(1))), Ok(None));
        c.net().clear();
    }
    // A duplicate of a good share counts once: with K = 3, own + sled 1
    // twice is still pending; sled 2's share completes it.
    for _ in 0..2 {
        c.call(&id(0), |n, ctx| n.handle(ctx, id(1), share_msg(1, good1.clone())));
    }
    assert_eq!(c.call(&id(0), |n, ctx| n.load_rack_secret(ctx, Epoch(1))), Ok(None));
    c.net().clear();
    c.call(&id(0), |n, ctx| n.handle(ctx, id(2), share_msg(1, good2)));
    let secret = c.call(&id(0), |n, ctx| n.load_rack_secret(ctx, Epoch(1))).unwrap();
    assert!(secret.is_some());
    assert!(c.alarms().is_empty());
}

// ---- commit advance ----

#[test]
fn bad_commit_advances_are_ignored() {
    let mut c = epoch1_committed();
    let config = c.config(1).clone();
    let future = Configuration { epoch: Epoch(4), threshold: Threshold(5), ..config.clone() };
    // (Each is certified by the authority: only the checked property is
    // wrong.)
    assert_no_effect(&mut c, 0, |n, ctx| {
        n.handle(ctx, id(1), msg(PeerMsgKind::CommitAdvance(committed_config(&future))))
    });
    let mut other = config.clone();
    other.epoch = Epoch(4);
    other.rack_id = other_rack();
    assert_no_effect(&mut c, 0, |n, ctx| {
        n.handle(ctx, id(1), msg(PeerMsgKind::CommitAdvance(committed_config(&other))))
    });
    // The already committed epoch: nothing to do.
    assert_no_effect(&mut c, 0, |n, ctx| {
        n.handle(ctx, id(1), msg(PeerMsgKind::CommitAdvance(committed_config(&config))))
    });
}

// ---- expunged ----

#[test]
fn expunged_notices() {
    // A notice is only taken with the certificate of a committed
    // configuration that leaves the receiver out (docs/protocol.md section
    // 8.4); each notice below has one, so only the checked property varies.
    let mut c = epoch1_committed();
    let config = |c: &Cluster, epoch: u64| c.config(epoch).clone();
    let expunged = |config: Configuration| msg(PeerMsgKind::Expunged(committed_config(&config)));
    // A blank node ignores it (assumed already wiped).
    let config1 = config(&c, 1);
    assert_no_effect(&mut c, 5, |n, ctx| n.handle(ctx, id(0), expunged(config1)));
    // Epoch 2 removes sled 3 and commits; epoch 3 adds it back and is
    // prepared (never committed), so sled 3's latest configuration is 3.
    c.reconfigure_and_commit(&id(0), 2, Some(1), &ids([0, 1, 2, 4]));
    c.reconfigure(&id(1), 3, Some(2), &ids(0..5));
    c.deliver_all();
    assert!(c.state(&id(3)).is_prepared(Epoch(3)));
    // A notice older than the latest known configuration is stale.
    let config2 = config(&c, 2);
    assert_no_effect(&mut c, 3, |n, ctx| n.handle(ctx, id(0), expunged(config2)));
    // Epoch 4 removes sled 3 again and commits: its notice is current, is
    // persisted, and then everything is refused.
    c.reconfigure_and_commit(&id(0), 4, Some(2), &ids([0, 1, 2, 4]));
    let config4 = config(&c, 4);
    c.call(&id(3), |n, ctx| n.handle(ctx, id(0), expunged(config4)));
    let ex = c.state(&id(3)).expunged().cloned().unwrap();
    assert_eq!((ex.epoch, ex.from.clone()), (Epoch(4), id(0)));
    let refusal = NodeRefusal::Expunged { epoch: Epoch(4), from: id(0) };
    let out = assert_no_effect_req(&mut c, 3, |n, ctx| {
        n.coordinate_reconfiguration(ctx, signed_request(3, 5, Some(1), ids(0..5), 3))
    });
    assert_eq!(out, Err(ReconfigurationError::Refused(refusal.clone())));
    let config3 = c.config(3).clone();
    let req = commit_request(&config3);
    let out = assert_no_effect_req(&mut c, 3, |n, ctx| n.commit_configuration(ctx, req));
    assert_eq!(out, Err(CommitError::Refused(refusal.clone())));
    let req = prepare_and_commit_request(&config3);
    let out = assert_no_effect_req(&mut c, 3, |n, ctx| n.prepare_and_commit(ctx, req));
    assert_eq!(out, Err(PrepareAndCommitError::Refused(refusal)));
    let out = assert_no_effect(&mut c, 3, |n, ctx| n.load_rack_secret(ctx, Epoch(1)));
    assert_eq!(out.err(), Some(LoadRackSecretError::Expunged { epoch: Epoch(4) }));
    // Peer traffic is dropped, and a later notice does not overwrite it.
    c.reconfigure_and_commit(&id(0), 5, Some(4), &ids([0, 1, 2, 4]));
    let config5 = config(&c, 5);
    for m in [msg(PeerMsgKind::GetShare(Epoch(1))), expunged(config5)] {
        assert_no_effect(&mut c, 3, |n, ctx| n.handle(ctx, id(1), m));
    }
}

#[test]
fn messages_from_self_are_dropped() {
    let mut c = epoch1_committed();
    assert_no_effect(&mut c, 0, |n, ctx| {
        n.handle(ctx, id(0), msg(PeerMsgKind::GetShare(Epoch(1))))
    });
}
