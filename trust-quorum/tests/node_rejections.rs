//! Every control-plane request to a node against bad input: wrong rack,
//! stale and future epochs, non-members, bad certificates' neighbours
//! (thresholds, coordinators), conflicting configurations; secret loading
//! and reconnecting. Each case checks the typed error or the silence, the
//! persistent state (byte-identical unless the spec says otherwise) and the
//! alarms. Peer messages are in `node_peer_rejections.rs`, attacks on the
//! authority's signatures in `node_hostile_peers.rs`.
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
    Cluster, assert_no_effect, assert_no_effect_req, certify, commit_request, disk,
    epoch1_committed, epoch2_prepares_queued, id, ids, other_rack, pending_prepare,
    prepare_and_commit_request, rack, request, rogue_authority, sign, signed_request,
};
use tq_types::errors::InvalidConfiguration;
use tq_types::{
    Alarm, CommitError, CommitRequest, CommitStatus, Configuration, Envelope, Epoch,
    LoadRackSecretError, NodeRefusal, PeerMsgKind, PrepareAndCommitError, RackId, RackIdMismatch,
    ReconfigurationError, ReconfigureMsg, Threshold,
};

// ---- reconfigure ----

#[test]
fn reconfigure_rejections_are_typed_and_change_nothing() {
    let mut c = epoch1_committed();
    let cases: Vec<(ReconfigureMsg, ReconfigurationError)> = vec![
        (
            request(0, 2, Some(1), ids(1..5), 3),
            ReconfigurationError::CoordinatorNotMember { node: id(0) },
        ),
        (
            request(0, 2, Some(1), ids(0..5), 5),
            ReconfigurationError::Invalid(InvalidConfiguration::ThresholdNotBelowMembers {
                threshold: Threshold(5),
                members: 5,
            }),
        ),
        (
            request(0, 2, Some(1), ids(0..2), 1),
            ReconfigurationError::Invalid(InvalidConfiguration::MembershipSize { members: 2 }),
        ),
        (
            request(0, 2, Some(1), ids(0..5), 1),
            ReconfigurationError::Invalid(InvalidConfiguration::Threshold {
                threshold: Threshold(1),
            }),
        ),
        (
            ReconfigureMsg { rack_id: other_rack(), ..request(0, 2, Some(1), ids(0..5), 3) },
            ReconfigurationError::Refused(NodeRefusal::RackIdMismatch(RackIdMismatch {
                expected: rack(),
                got: other_rack(),
            })),
        ),
        (
            request(0, 2, None, ids(0..5), 3),
            ReconfigurationError::LastCommittedEpochMismatch {
                requested: None,
                actual: Some(Epoch(1)),
            },
        ),
        (
            request(0, 1, Some(1), ids(0..5), 3),
            ReconfigurationError::StaleEpoch { requested: Epoch(1), latest: Epoch(1) },
        ),
    ];
    for (m, err) in cases {
        let out =
            assert_no_effect_req(&mut c, 0, |n, ctx| n.coordinate_reconfiguration(ctx, sign(m)));
        assert_eq!(out, Err(err));
        assert!(c.coordinator_status(&id(0)).is_none());
    }
    // 33 members is over the limit too.
    let big: BTreeSet<_> = (0..33).map(id).collect();
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| {
        n.coordinate_reconfiguration(ctx, signed_request(0, 2, Some(1), big, 17))
    });
    assert_eq!(
        out,
        Err(ReconfigurationError::Invalid(InvalidConfiguration::MembershipSize { members: 33 }))
    );
    // A blank node refuses epoch 0.
    let out = assert_no_effect_req(&mut c, 5, |n, ctx| {
        n.coordinate_reconfiguration(ctx, signed_request(5, 0, None, ids(3..6), 2))
    });
    assert_eq!(
        out,
        Err(ReconfigurationError::StaleEpoch { requested: Epoch(0), latest: Epoch(0) })
    );
}

#[test]
fn reconfigure_while_coordinating() {
    let mut c = epoch1_committed();
    let req = signed_request(0, 3, Some(1), ids(0..5), 3);
    c.request(&id(0), |n, ctx| n.coordinate_reconfiguration(ctx, req.clone())).unwrap();
    // Identical repeat: accepted, nothing new sent.
    let out =
        assert_no_effect_req(&mut c, 0, |n, ctx| n.coordinate_reconfiguration(ctx, req.clone()));
    assert_eq!(out, Ok(()));
    // Lower epoch, and the same epoch with other content: refused.
    let lower = signed_request(0, 2, Some(1), ids(0..5), 3);
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| n.coordinate_reconfiguration(ctx, lower));
    assert_eq!(
        out,
        Err(ReconfigurationError::AlreadyCoordinating {
            coordinating: Epoch(3),
            requested: Epoch(2)
        })
    );
    let other = signed_request(0, 3, Some(1), ids(0..4), 3);
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
    let mut c = epoch1_committed();
    let config1 = c.config(1).clone();
    let certificate = certify(&config1);
    let req =
        |rack_id: RackId, epoch: u64| CommitRequest { rack_id, epoch: Epoch(epoch), certificate };
    let out =
        assert_no_effect_req(&mut c, 0, |n, ctx| n.commit_configuration(ctx, req(other_rack(), 2)));
    assert_eq!(
        out,
        Err(CommitError::Refused(NodeRefusal::RackIdMismatch(RackIdMismatch {
            expected: rack(),
            got: other_rack()
        })))
    );
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| n.commit_configuration(ctx, req(rack(), 7)));
    assert_eq!(out, Err(CommitError::NotPrepared(Epoch(7))));
    // Already committed: success without change.
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| n.commit_configuration(ctx, req(rack(), 1)));
    assert_eq!(out, Ok(CommitStatus::Committed));
    // A blank node has nothing prepared.
    let out = assert_no_effect_req(&mut c, 5, |n, ctx| n.commit_configuration(ctx, req(rack(), 1)));
    assert_eq!(out, Err(CommitError::NotPrepared(Epoch(1))));
}

#[test]
fn an_attempt_superseded_by_a_newer_epoch_is_dropped_and_answered_by_certificate() {
    // Epoch 2 prepares everywhere but is never committed.
    let mut c = epoch1_committed();
    c.reconfigure(&id(1), 2, Some(1), &ids(0..5));
    c.deliver_all();
    assert!(c.state(&id(0)).is_prepared(Epoch(2)));
    // Epoch 3, built on 1, supersedes it: preparing 3 drops 2
    // (docs/protocol.md section 2.4).
    c.reconfigure(&id(2), 3, Some(1), &ids(0..5));
    c.deliver_all();
    let kept = |c: &Cluster| c.state(&id(0)).configs().keys().copied().collect::<Vec<_>>();
    assert_eq!(kept(&c), [Epoch(1), Epoch(3)]);
    c.commit(&id(2), 3);
    assert_eq!(kept(&c), [Epoch(3)]);
    // Below the newest commit, a node answers by the certificate alone:
    // one the authority signed counts as committed...
    let req = commit_request(c.config(2));
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| n.commit_configuration(ctx, req));
    assert_eq!(out, Ok(CommitStatus::Committed));
    // ...and one it did not sign is refused.
    let mut forged = commit_request(c.config(2));
    forged.certificate = rogue_authority().certify(c.config(2)).unwrap();
    let out = assert_no_effect_req(&mut c, 0, |n, ctx| n.commit_configuration(ctx, forged));
    assert!(matches!(out, Err(CommitError::Refused(NodeRefusal::Unauthorized(_)))), "{out:?}");
}

// ---- prepare and commit ----

#[test]
fn prepare_and_commit_rejections() {
    let mut c = epoch1_committed();
    let config = c.config(1).clone();
    // Each request carries a valid certificate for the configuration it
    // sends: only the checked property is wrong.
    let pac = |config: Configuration| prepare_and_commit_request(&config);

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
    let mut conflicting = c.config(2).clone();
    conflicting.members.values_mut().next().unwrap().0[0] ^= 1;
    let before = disk(&c, 3);
    // Even with the authority's certificate for it (a coordinator that
    // reported another configuration than it prepared).
    let req = prepare_and_commit_request(&conflicting);
    let out = c.request(&id(3), |n, ctx| n.prepare_and_commit(ctx, req));
    assert_eq!(out, Err(PrepareAndCommitError::ConflictingConfiguration(Epoch(2))));
    assert_eq!(disk(&c, 3), before);
    assert_eq!(
        c.ctx(&id(3)).alarms(),
        &[Alarm::MismatchedConfigurations { epoch: Epoch(2), from: None }]
    );
}

// ---- load rack secret ----

#[test]
fn load_rack_secret_errors() {
    let mut c = epoch1_committed();
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
