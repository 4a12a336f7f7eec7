//! Every node handler against bad input: wrong rack, stale and future
//! epochs, non-members, duplicates, corrupt or short shares, conflicting
//! configurations and an expunged node. Each case checks the typed error
//! or the silence, the persistent state (byte-identical unless the spec says
//! otherwise) and the alarms.
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

use support::{Cluster, id, ids, rack};
use tq_types::errors::InvalidConfiguration;
use tq_types::{
    Alarm, CommitError, CommitRequest, CommitStatus, Configuration, Envelope, Epoch,
    LoadRackSecretError, NodeRefusal, PeerMsg, PeerMsgKind, PrepareAndCommitError,
    PrepareAndCommitRequest, RackId, RackIdMismatch, ReconfigurationError, ReconfigureMsg, Share,
    Threshold,
};
use trust_quorum::node::Reply;

fn other_rack() -> RackId {
    RackId(uuid::Uuid::from_u128(0xbad))
}

/// Epoch 1 committed on sleds 0..5 of 6 (sled 5 is a spare).
fn committed() -> Cluster {
    let mut c = Cluster::new(6, 3);
    c.reconfigure_and_commit(&id(0), 1, None, &ids(0..5));
    c
}

fn disk(c: &Cluster, who: usize) -> Vec<u8> {
    c.state(&id(who)).encode().unwrap()
}

/// Runs `f` on sled `who` and checks it changed nothing durable, sent
/// nothing and raised no alarm.
fn assert_no_effect<T>(
    c: &mut Cluster,
    who: usize,
    f: impl FnOnce(&mut trust_quorum::Node, &mut trust_quorum::NodeCtx) -> T,
) -> T {
    let before = disk(c, who);
    let sent = c.sent().len();
    let out = c.call(&id(who), f);
    assert_eq!(disk(c, who), before, "persistent state changed");
    assert_eq!(c.sent().len(), sent, "something was sent: {:?}", &c.sent()[sent..]);
    assert!(c.alarms().is_empty(), "alarms: {:?}", c.alarms());
    out
}

/// [`assert_no_effect`] for a control-plane request: its answer, released.
fn assert_no_effect_req<T>(
    c: &mut Cluster,
    who: usize,
    f: impl FnOnce(&mut trust_quorum::Node, &mut trust_quorum::NodeCtx) -> Reply<T>,
) -> T {
    let before = disk(c, who);
    let sent = c.sent().len();
    let out = c.request(&id(who), f);
    assert_eq!(disk(c, who), before, "persistent state changed");
    assert_eq!(c.sent().len(), sent, "something was sent: {:?}", &c.sent()[sent..]);
    assert!(c.alarms().is_empty(), "alarms: {:?}", c.alarms());
    out
}

fn msg(kind: PeerMsgKind) -> PeerMsg {
    PeerMsg { rack_id: rack(), kind }
}

fn reconfigure(
    epoch: u64,
    last: Option<u64>,
    members: BTreeSet<tq_types::BaseboardId>,
    k: u8,
) -> ReconfigureMsg {
    ReconfigureMsg {
        rack_id: rack(),
        epoch: Epoch(epoch),
        last_committed_epoch: last.map(Epoch),
        members,
        threshold: Threshold(k),
    }
}

/// The Prepare envelope for `to` queued by a coordinator of epoch 2.
fn pending_prepare(c: &mut Cluster, to: usize) -> Envelope {
    let i = c
        .net()
        .iter()
        .position(|e| e.to == id(to) && matches!(e.msg.kind, PeerMsgKind::Prepare { .. }))
        .expect("a queued prepare");
    c.net().remove(i)
}

/// Starts epoch 2 ({0..5}) at sled 1 and delivers until the prepares are
/// queued (old shares collected), leaving them undelivered.
fn epoch2_prepares_queued() -> Cluster {
    let mut c = committed();
    c.reconfigure(&id(1), 2, Some(1), &ids(0..6));
    while !c.net().iter().any(|e| matches!(e.msg.kind, PeerMsgKind::Prepare { .. })) {
        c.deliver_at(0);
    }
    c
}

// ---- reconfigure ----

#[test]
fn reconfigure_rejections_are_typed_and_change_nothing() {
    let mut c = committed();
    let cases: Vec<(ReconfigureMsg, ReconfigurationError)> = vec![
        (
            reconfigure(2, Some(1), ids(1..5), 3),
            ReconfigurationError::CoordinatorNotMember { node: id(0) },
        ),
        (
            reconfigure(2, Some(1), ids(0..5), 5),
            ReconfigurationError::Invalid(InvalidConfiguration::ThresholdNotBelowMembers {
                threshold: Threshold(5),
                members: 5,
            }),
        ),
        (
            reconfigure(2, Some(1), ids(0..2), 1),
            ReconfigurationError::Invalid(InvalidConfiguration::MembershipSize { members: 2 }),
        ),
        (
            reconfigure(2, Some(1), ids(0..5), 1),
            ReconfigurationError::Invalid(InvalidConfiguration::Threshold {
                threshold: Threshold(1),
            }),
        ),
        (
            ReconfigureMsg { rack_id: other_rack(), ..reconfigure(2, Some(1), ids(0..5), 3) },
            ReconfigurationError::Refused(NodeRefusal::RackIdMismatch(RackIdMismatch {
                expected: rack(),
                got: other_rack(),
            })),
        ),
        (
            reconfigure(2, None, ids(0..5), 3),
            ReconfigurationError::LastCommittedEpochMismatch {
                requested: None,
                actual: Some(Epoch(1)),
            },
        ),
        (
            reconfigure(1, Some(1), ids(0..5), 3),
            ReconfigurationError::StaleEpoch { requested: Epoch(1), latest: Epoch(1) },
        ),
    ];
    for (m, err) in cases {
        let out = assert_no_effect_req(&mut c, 0, |n, ctx| n.coordinate_reconfiguration(ctx, m));
        assert_eq!(out, Err(err));
        assert!(c.coordinator_status(&id(0)).is_none());
    }
    // 33 members is over the limit too.
    let big: BTreeSet<_> = (0..33).map(id).collect();
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| {
        n.coordinate_reconfiguration(ctx, reconfigure(2, Some(1), big, 17))
    });
    assert_eq!(
        out,
        Err(ReconfigurationError::Invalid(InvalidConfiguration::MembershipSize { members: 33 }))
    );
    // A blank node refuses epoch 0.
    let out = assert_no_effect_req(&mut c, 5, |n, ctx| {
        n.coordinate_reconfiguration(ctx, reconfigure(0, None, ids(3..6), 2))
    });
    assert_eq!(
        out,
        Err(ReconfigurationError::StaleEpoch { requested: Epoch(0), latest: Epoch(0) })
    );
}

#[test]
fn reconfigure_while_coordinating() {
    let mut c = committed();
    let req = reconfigure(3, Some(1), ids(0..5), 3);
    c.request(&id(0), |n, ctx| n.coordinate_reconfiguration(ctx, req.clone())).unwrap();
    // Identical repeat: accepted, nothing new sent.
    let out =
        assert_no_effect_req(&mut c, 0, |n, ctx| n.coordinate_reconfiguration(ctx, req.clone()));
    assert_eq!(out, Ok(()));
    // Lower epoch, and the same epoch with other content: refused.
    let lower = reconfigure(2, Some(1), ids(0..5), 3);
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| n.coordinate_reconfiguration(ctx, lower));
    assert_eq!(
        out,
        Err(ReconfigurationError::AlreadyCoordinating {
            coordinating: Epoch(3),
            requested: Epoch(2)
        })
    );
    let other = reconfigure(3, Some(1), ids(0..4), 3);
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| n.coordinate_reconfiguration(ctx, other));
    assert_eq!(
        out,
        Err(ReconfigurationError::AlreadyCoordinating {
            coordinating: Epoch(3),
            requested: Epoch(3)
        })
    );
    assert_eq!(c.coordinator_status(&id(0)).unwrap().config.epoch, Epoch(3));
}

// ---- commit ----

#[test]
fn commit_rejections() {
    let mut c = committed();
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| {
        n.commit_configuration(ctx, CommitRequest { rack_id: other_rack(), epoch: Epoch(2) })
    });
    assert_eq!(
        out,
        Err(CommitError::Refused(NodeRefusal::RackIdMismatch(RackIdMismatch {
            expected: rack(),
            got: other_rack()
        })))
    );
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| {
        n.commit_configuration(ctx, CommitRequest { rack_id: rack(), epoch: Epoch(7) })
    });
    assert_eq!(out, Err(CommitError::NotPrepared(Epoch(7))));
    // Already committed: success without change.
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| {
        n.commit_configuration(ctx, CommitRequest { rack_id: rack(), epoch: Epoch(1) })
    });
    assert_eq!(out, Ok(CommitStatus::Committed));
    // A blank node has nothing prepared.
    let out = assert_no_effect_req(&mut c, 5, |n, ctx| {
        n.commit_configuration(ctx, CommitRequest { rack_id: rack(), epoch: Epoch(1) })
    });
    assert_eq!(out, Err(CommitError::NotPrepared(Epoch(1))));
}

#[test]
fn commit_of_an_older_uncommitted_epoch_is_pending() {
    // Epoch 2 prepares everywhere but is never committed; epoch 3 commits.
    let mut c = committed();
    c.reconfigure(&id(1), 2, Some(1), &ids(0..5));
    c.deliver_all();
    c.reconfigure_and_commit(&id(2), 3, Some(1), &ids(0..5));
    assert!(c.state(&id(0)).is_prepared(Epoch(2)));
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| {
        n.commit_configuration(ctx, CommitRequest { rack_id: rack(), epoch: Epoch(2) })
    });
    assert_eq!(out, Ok(CommitStatus::Pending));
}

// ---- prepare and commit ----

#[test]
fn prepare_and_commit_rejections() {
    let mut c = committed();
    let config = c.state(&id(0)).config(Epoch(1)).unwrap().clone();
    let pac = |config: Configuration| PrepareAndCommitRequest { config };

    let wrong_rack = Configuration { rack_id: other_rack(), ..config.clone() };
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| n.prepare_and_commit(ctx, pac(wrong_rack)));
    assert_eq!(
        out,
        Err(PrepareAndCommitError::Refused(NodeRefusal::RackIdMismatch(RackIdMismatch {
            expected: rack(),
            got: other_rack()
        })))
    );
    let bad_k = Configuration { threshold: Threshold(9), epoch: Epoch(2), ..config.clone() };
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| n.prepare_and_commit(ctx, pac(bad_k)));
    assert!(matches!(out, Err(PrepareAndCommitError::Invalid(_))), "{out:?}");
    let bad_coordinator = Configuration { coordinator: id(9), epoch: Epoch(2), ..config.clone() };
    let out =
        assert_no_effect_req(&mut c, 0, |n, ctx| n.prepare_and_commit(ctx, pac(bad_coordinator)));
    assert_eq!(
        out,
        Err(PrepareAndCommitError::Invalid(InvalidConfiguration::CoordinatorNotMember {
            coordinator: id(9)
        }))
    );
    // Sled 5 is not a member of epoch 1.
    let out =
        assert_no_effect_req(&mut c, 5, |n, ctx| n.prepare_and_commit(ctx, pac(config.clone())));
    assert_eq!(out, Err(PrepareAndCommitError::NotAMember(Epoch(1))));
    // Already committed: no change.
    let out =
        assert_no_effect_req(&mut c, 0, |n, ctx| n.prepare_and_commit(ctx, pac(config.clone())));
    assert_eq!(out, Ok(CommitStatus::Committed));
}

#[test]
fn prepare_and_commit_with_a_conflicting_configuration_raises_an_alarm() {
    let mut c = epoch2_prepares_queued();
    let prepare = pending_prepare(&mut c, 3);
    let to = prepare.to.clone();
    c.call(&to, |n, ctx| n.handle(ctx, prepare.from.clone(), prepare.msg));
    let mut conflicting = c.state(&id(3)).config(Epoch(2)).unwrap().clone();
    conflicting.members.values_mut().next().unwrap().0[0] ^= 1;
    let before = disk(&c, 3);
    let out = c.request(&id(3), |n, ctx| {
        n.prepare_and_commit(ctx, PrepareAndCommitRequest { config: conflicting })
    });
    assert_eq!(out, Err(PrepareAndCommitError::ConflictingConfiguration(Epoch(2))));
    assert_eq!(disk(&c, 3), before);
    assert_eq!(
        c.ctx(&id(3)).alarms(),
        &[Alarm::MismatchedConfigurations { epoch: Epoch(2), from: None }]
    );
}

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
    let mut c = committed();
    c.reconfigure_and_commit(&id(0), 2, Some(1), &ids(0..4));
    let answer = |c: &mut Cluster, from: usize, to: usize, epoch: u64| -> Vec<PeerMsgKind> {
        let sent = c.sent().len();
        c.call(&id(to), |n, ctx| n.handle(ctx, id(from), msg(PeerMsgKind::GetShare(Epoch(epoch)))));
        c.sent()[sent..].iter().map(|e| e.msg.kind.clone()).collect()
    };
    // Asking for an older epoch: a member gets the newer config...
    let config2 = c.state(&id(0)).config(Epoch(2)).unwrap().clone();
    assert_eq!(answer(&mut c, 1, 0, 1), vec![PeerMsgKind::CommitAdvance(config2)]);
    // ...a removed sled is told it is expunged.
    assert_eq!(answer(&mut c, 4, 0, 1), vec![PeerMsgKind::Expunged(Epoch(2))]);
    // Asking for the current epoch while not a member of it.
    assert_eq!(answer(&mut c, 5, 0, 2), vec![PeerMsgKind::Expunged(Epoch(2))]);
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
    let mut c = committed();
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
    let mut c = committed();
    let config = c.state(&id(0)).config(Epoch(1)).unwrap().clone();
    let future = Configuration { epoch: Epoch(4), threshold: Threshold(5), ..config.clone() };
    assert_no_effect(&mut c, 0, |n, ctx| {
        n.handle(ctx, id(1), msg(PeerMsgKind::CommitAdvance(future)))
    });
    let mut other = config.clone();
    other.epoch = Epoch(4);
    other.rack_id = other_rack();
    assert_no_effect(&mut c, 0, |n, ctx| {
        n.handle(ctx, id(1), msg(PeerMsgKind::CommitAdvance(other)))
    });
    // The already committed epoch: nothing to do.
    assert_no_effect(&mut c, 0, |n, ctx| {
        n.handle(ctx, id(1), msg(PeerMsgKind::CommitAdvance(config)))
    });
}

// ---- expunged ----

#[test]
fn expunged_notices() {
    let mut c = committed();
    // A blank node ignores it (assumed already wiped).
    assert_no_effect(&mut c, 5, |n, ctx| {
        n.handle(ctx, id(0), msg(PeerMsgKind::Expunged(Epoch(3))))
    });
    // A notice older than the latest known configuration is stale.
    c.reconfigure(&id(1), 2, Some(1), &ids(0..5));
    c.deliver_all();
    assert_no_effect(&mut c, 3, |n, ctx| {
        n.handle(ctx, id(0), msg(PeerMsgKind::Expunged(Epoch(1))))
    });
    // A current one is persisted, and then everything is refused.
    c.call(&id(3), |n, ctx| n.handle(ctx, id(0), msg(PeerMsgKind::Expunged(Epoch(2)))));
    let ex = c.state(&id(3)).expunged().cloned().unwrap();
    assert_eq!((ex.epoch, ex.from.clone()), (Epoch(2), id(0)));
    let out = assert_no_effect_req(&mut c, 3, |n, ctx| {
        n.coordinate_reconfiguration(ctx, reconfigure(5, Some(1), ids(0..5), 3))
    });
    assert_eq!(
        out,
        Err(ReconfigurationError::Refused(NodeRefusal::Expunged { epoch: Epoch(2), from: id(0) }))
    );
    let out = assert_no_effect_req(&mut c, 3, |n, ctx| {
        n.commit_configuration(ctx, CommitRequest { rack_id: rack(), epoch: Epoch(2) })
    });
    assert_eq!(
        out,
        Err(CommitError::Refused(NodeRefusal::Expunged { epoch: Epoch(2), from: id(0) }))
    );
    let config = c.state(&id(3)).config(Epoch(2)).unwrap().clone();
    let out = assert_no_effect_req(&mut c, 3, |n, ctx| {
        n.prepare_and_commit(ctx, PrepareAndCommitRequest { config })
    });
    assert_eq!(
        out,
        Err(PrepareAndCommitError::Refused(NodeRefusal::Expunged { epoch: Epoch(2), from: id(0) }))
    );
    let out = assert_no_effect(&mut c, 3, |n, ctx| n.load_rack_secret(ctx, Epoch(1)));
    assert_eq!(out.err(), Some(LoadRackSecretError::Expunged { epoch: Epoch(2) }));
    // Peer traffic is dropped, and a later notice does not overwrite it.
    for kind in [PeerMsgKind::GetShare(Epoch(1)), PeerMsgKind::Expunged(Epoch(3))] {
        assert_no_effect(&mut c, 3, |n, ctx| n.handle(ctx, id(1), msg(kind)));
    }
}

// ---- load rack secret ----

#[test]
fn load_rack_secret_errors() {
    let mut c = committed();
    let out = assert_no_effect(&mut c, 5, |n, ctx| n.load_rack_secret(ctx, Epoch(1)));
    assert_eq!(out.err(), Some(LoadRackSecretError::NoCommittedConfigurations));
    let out = assert_no_effect(&mut c, 0, |n, ctx| n.load_rack_secret(ctx, Epoch(2)));
    assert_eq!(out.err(), Some(LoadRackSecretError::NotCommitted(Epoch(2))));
    // Epoch 2 aborted (prepared, never committed); epoch 3 commits.
    c.reconfigure(&id(1), 2, Some(1), &ids(0..5));
    c.deliver_all();
    c.reconfigure_and_commit(&id(2), 3, Some(1), &ids(0..5));
    c.load_secret(&id(0), 3);
    let out = assert_no_effect(&mut c, 0, |n, ctx| n.load_rack_secret(ctx, Epoch(2)));
    assert_eq!(out.err(), Some(LoadRackSecretError::NotAvailable(Epoch(2))));
    // Epoch 1 is an ancestor: served from the cache.
    assert!(c.call(&id(0), |n, ctx| n.load_rack_secret(ctx, Epoch(1))).unwrap().is_some());
    // After clearing, a load is pending again.
    c.call(&id(0), |n, _| n.clear_secrets());
    assert_eq!(c.call(&id(0), |n, ctx| n.load_rack_secret(ctx, Epoch(3))), Ok(None));
}

// ---- connections ----

#[test]
fn reconnecting_resends_what_is_still_needed() {
    let mut c = epoch2_prepares_queued();
    // The prepare to sled 5 is lost with its connection.
    let _ = pending_prepare(&mut c, 5);
    c.call(&id(1), |n, ctx| n.on_disconnect(ctx, &id(5)));
    let sent = c.sent().len();
    c.call(&id(1), |n, ctx| n.on_connect(ctx, id(5)));
    let resent: Vec<&Envelope> = c.sent()[sent..].iter().collect();
    assert!(
        matches!(resent.as_slice(), [e] if e.to == id(5) && matches!(e.msg.kind, PeerMsgKind::Prepare { .. })),
        "{resent:?}"
    );
    // A peer that already acked gets nothing on reconnect.
    c.deliver_all();
    let sent = c.sent().len();
    c.call(&id(1), |n, ctx| n.on_connect(ctx, id(3)));
    assert_eq!(c.sent().len(), sent);
    // Connecting to oneself is ignored.
    assert_no_effect(&mut c, 1, |n, ctx| n.on_connect(ctx, id(1)));
}

#[test]
fn messages_from_self_are_dropped() {
    let mut c = committed();
    assert_no_effect(&mut c, 0, |n, ctx| {
        n.handle(ctx, id(0), msg(PeerMsgKind::GetShare(Epoch(1))))
    });
}
