//! The control plane's driver: reconfigure once, poll, K+Z, commit through
//! proxies, fallbacks, partial commit, activation retry, dead coordinators,
//! the fixture story's shapes and replicas racing on one ledger.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod control_support;

/// Named so that `cargo test control` selects these tests.
mod control {

    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    use crate::control_support::*;
    use tq_types::{
        BaseboardId, CommitError, CommitStatus, ConfigState, Epoch, MemberState, NodeRefusal,
        PrepareAndCommitError, RackMembershipState, ReconfigurationError,
    };
    use trust_quorum::control::{
        AbortReason, ActivationError, AddSledsError, ChangeRefused, CommitResultError,
        ControlAction, ControlPlane, ControlPlaneConfig, CoordinatorStatusError, Ledger,
    };
    use trust_quorum::harness::Controller;

    fn commits(actions: &[ControlAction]) -> BTreeMap<BaseboardId, (&'static str, BaseboardId)> {
        actions
            .iter()
            .filter_map(|a| match a {
                ControlAction::Commit { member, via, .. } => {
                    Some((member.clone(), ("commit", via.clone())))
                }
                ControlAction::PrepareAndCommit { member, via, .. } => {
                    Some((member.clone(), ("prepare_and_commit", via.clone())))
                }
                _ => None,
            })
            .collect()
    }

    fn activations(actions: &[ControlAction]) -> BTreeSet<BaseboardId> {
        actions
            .iter()
            .filter_map(|a| match a {
                ControlAction::Activate { member } => Some(member.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn reconfigure_is_sent_once_then_the_coordinator_is_polled() {
        let mut r = rng(1);
        let mut cp = committed_rack(&ids([0, 1, 3]), &mut r);
        let e = cp.add_sleds(ids([2]), t(0), &mut r).unwrap();
        let coord = coordinator(&cp, e);
        let gen_before = cp.ledger().generation();
        let a = cp.tick(t(1), &mut r);
        match &a[..] {
            [ControlAction::Reconfigure { to, msg }] => {
                assert_eq!(*to, coord);
                assert_eq!(msg.epoch, e);
                assert_eq!(msg.last_committed_epoch, Some(Epoch(1)));
                assert_eq!(msg.members, ids(0..4));
                assert_eq!(msg.threshold.0, 3);
                assert_eq!(msg.rack_id, rack());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cp.ledger().generation(), gen_before + 1, "sending is recorded durably");
        // Not polled before the coordinator answered the request.
        assert!(cp.tick(t(2), &mut r).is_empty());
        cp.on_reconfigure_result(e, &coord, Ok(()), t(2)).unwrap();
        for s in 3..6 {
            let a = cp.tick(t(s), &mut r);
            assert_eq!(a, vec![ControlAction::PollCoordinator { to: coord.clone(), epoch: e }]);
        }
        // A fresh replica (restart) does not resend the request, and polls.
        let mut restarted =
            Controller::from_ledger(ControlPlaneConfig::default(), cp.ledger().clone()).unwrap();
        assert_eq!(
            restarted.tick(t(6), &mut r),
            vec![ControlAction::PollCoordinator { to: coord, epoch: e }]
        );
    }

    #[test]
    fn k_plus_z_prepare_acks_move_to_committing() {
        let mut r = rng(2);
        let mut cp = committed_rack(&ids([0, 1, 3]), &mut r);
        let e = cp.add_sleds(ids([2]), t(0), &mut r).unwrap();
        let coord = coordinator(&cp, e);
        let _ = cp.tick(t(1), &mut r);
        cp.on_reconfigure_result(e, &coord, Ok(()), t(1)).unwrap();
        // Collecting shares: digests, no acks.
        let mut s = fake_status(&cp, e, &BTreeSet::new());
        s.config.encrypted_rack_secrets = None;
        cp.on_coordinator_status(e, &coord, Some(s), t(2)).unwrap();
        let v = cp.config(e).unwrap();
        assert!(
            v.members.values().all(|m| m.share_digest.is_some() && m.state == MemberState::Unacked)
        );
        assert_eq!(v.encrypted_rack_secrets, None);
        // K+Z = 4 for N = 4: three acks are not enough.
        let three: BTreeSet<_> = [coord.clone()].into_iter().chain(ids(0..4)).take(3).collect();
        let status = fake_status(&cp, e, &three);
        cp.on_coordinator_status(e, &coord, Some(status), t(3)).unwrap();
        assert_eq!(state(&cp, e), ConfigState::Preparing);
        assert!(cp.config(e).unwrap().encrypted_rack_secrets.is_some());
        let status = fake_status(&cp, e, &ids(0..4));
        cp.on_coordinator_status(e, &coord, Some(status), t(4)).unwrap();
        let v = cp.config(e).unwrap();
        assert_eq!(v.state, ConfigState::Committing);
        assert_eq!(v.time_committing, Some(t(4)));
        assert!(v.members.values().all(|m| m.state == MemberState::Prepared));
        assert_eq!(cp.status(e).unwrap().state, RackMembershipState::InProgress);
        // Further statuses are stale: committing never goes back.
        assert!(matches!(
            cp.on_coordinator_status(e, &coord, None, t(5)),
            Err(CoordinatorStatusError::NotPreparing { .. })
        ));
        assert_eq!(state(&cp, e), ConfigState::Committing);
    }

    #[test]
    fn commit_pass_goes_through_at_most_five_active_proxies() {
        let mut r = rng(3);
        let mut cp = committed_rack(&ids(0..8), &mut r);
        let e = cp.add_sleds(ids(8..20), t(0), &mut r).unwrap();
        // 20 members: K = 11, Z = 3: 14 prepared suffice.
        let prepared: BTreeSet<_> = ids(0..14);
        prepare(&mut cp, &prepared, t(1), &mut r);
        assert_eq!(state(&cp, e), ConfigState::Committing);
        let a = cp.tick(t(2), &mut r);
        let c = commits(&a);
        assert_eq!(c.len(), 20);
        let vias: BTreeSet<_> = c.values().map(|(_, via)| via.clone()).collect();
        assert_eq!(vias.len(), 5, "{vias:?}");
        assert!(vias.is_subset(&ids(0..8)), "only members in service relay: {vias:?}");
        for (m, (kind, _)) in &c {
            let expected = if prepared.contains(m) { "commit" } else { "prepare_and_commit" };
            assert_eq!(*kind, expected, "{m}");
        }
        // The rebuilt configuration carries every digest and the sealed secrets.
        let rebuilt = a.iter().find_map(|a| match a {
            ControlAction::PrepareAndCommit { req, .. } => Some(req.config.clone()),
            _ => None,
        });
        assert_eq!(rebuilt.unwrap(), fake_config(&cp, e));
        // Commit acks from everyone commit it.
        for m in c.keys() {
            cp.on_commit_result(e, m, Ok(CommitStatus::Committed), t(3)).unwrap();
        }
        assert_eq!(state(&cp, e), ConfigState::Committed);
        assert_eq!(cp.config(e).unwrap().time_committed, Some(t(3)));
        // Late duplicates after completion are accepted as no-ops.
        let before = ledger_json(&cp);
        cp.on_commit_result(e, &id(0), Ok(CommitStatus::Committed), t(4)).unwrap();
        assert_eq!(ledger_json(&cp), before);
    }

    #[test]
    fn unreachable_proxies_are_avoided() {
        let mut r = rng(4);
        let mut cp = committed_rack(&ids(0..3), &mut r);
        let e = cp.add_sleds(ids([3]), t(0), &mut r).unwrap();
        prepare(&mut cp, &ids(0..4), t(1), &mut r);
        cp.on_unreachable(&id(0), t(1));
        cp.on_unreachable(&id(1), t(1));
        for s in 2..6 {
            let vias: BTreeSet<_> =
                commits(&cp.tick(t(s), &mut r)).into_values().map(|(_, v)| v).collect();
            assert_eq!(vias, ids([2]), "only the reachable member in service relays");
        }
        // The backoff expires.
        let later = t(1 + 31);
        let vias: BTreeSet<_> =
            commits(&cp.tick(later, &mut r)).into_values().map(|(_, v)| v).collect();
        assert!(vias.len() > 1, "{vias:?}");
        let _ = e;
    }

    #[test]
    fn not_prepared_falls_back_to_prepare_and_commit() {
        let mut r = rng(5);
        let mut cp = committed_rack(&ids(0..3), &mut r);
        let e = cp.add_sleds(ids([3]), t(0), &mut r).unwrap();
        prepare(&mut cp, &ids(0..4), t(1), &mut r);
        let c = commits(&cp.tick(t(2), &mut r));
        assert_eq!(c[&id(1)].0, "commit");
        // Member 1 lost its disk.
        cp.on_commit_result(e, &id(1), Err(CommitError::NotPrepared(e).into()), t(2)).unwrap();
        let report = cp.last_pass().unwrap().to_string();
        assert!(
            report
                .contains("errors: PPP-PPPPPPP:00000000001 (epoch 2 is not prepared on this node)"),
            "{report}"
        );
        let c = commits(&cp.tick(t(3), &mut r));
        assert_eq!(c[&id(1)].0, "prepare_and_commit");
        assert_eq!(c[&id(0)].0, "commit");
        // Still prepared in the ledger: states never move back.
        assert_eq!(members_by_state(&cp, e)[&id(1)], MemberState::Prepared);
        cp.on_commit_result(e, &id(1), Ok(CommitStatus::Pending), t(3)).unwrap();
        assert_eq!(commits(&cp.tick(t(4), &mut r))[&id(1)].0, "prepare_and_commit");
        cp.on_commit_result(e, &id(1), Ok(CommitStatus::Committed), t(4)).unwrap();
        assert_eq!(members_by_state(&cp, e)[&id(1)], MemberState::Committed);
        assert!(!commits(&cp.tick(t(5), &mut r)).contains_key(&id(1)));
        // Other errors are reported and retried as they were.
        cp.on_commit_result(
            e,
            &id(2),
            Err(PrepareAndCommitError::ConflictingConfiguration(e).into()),
            t(5),
        )
        .unwrap();
        assert_eq!(commits(&cp.tick(t(6), &mut r))[&id(2)].0, "commit");
    }

    #[test]
    fn partial_commit_needs_k_plus_z_commit_acks() {
        let mut r = rng(6);
        let mut cp = committed_rack(&ids(0..4), &mut r);
        // N = 5: K = 3, Z = 1, K+Z = 4.
        let e2 = cp.add_sleds(ids([4]), t(0), &mut r).unwrap();
        prepare(&mut cp, &ids(0..4), t(1), &mut r);
        assert_eq!(state(&cp, e2), ConfigState::Committing);
        commit_pass(&mut cp, &ids([3, 4]), t(2), &mut r);
        assert_eq!(cp.status(e2).unwrap().unacknowledged_members, ids([3, 4]));
        // The committing configuration is the membership already.
        assert_eq!(cp.membership(), ids(0..5));
        let before = ledger_json(&cp);
        assert_eq!(
            cp.add_sleds(ids([5]), t(3), &mut r),
            Err(AddSledsError::Refused(ChangeRefused::PreviousNotCommitted {
                epoch: e2,
                committed: 3,
                needed: 4
            }))
        );
        assert_eq!(ledger_json(&cp), before);
        cp.on_commit_result(e2, &id(3), Ok(CommitStatus::Committed), t(4)).unwrap();
        let e3 = cp.add_sleds(ids([5]), t(5), &mut r).unwrap();
        let v2 = cp.config(e2).unwrap();
        assert_eq!(v2.state, ConfigState::CommittedPartially);
        assert_eq!(v2.time_committed, Some(t(5)));
        assert_eq!(cp.status(e2).unwrap().state, RackMembershipState::Committed);
        assert_eq!(cp.status(e2).unwrap().unacknowledged_members, ids([4]));
        assert_eq!(cp.config(e3).unwrap().last_committed_epoch, Some(e2));
        assert_ne!(coordinator(&cp, e3), id(4), "4 never committed epoch 2");
        // A late ack for the superseded epoch is stale.
        assert_eq!(
            cp.on_commit_result(e2, &id(4), Ok(CommitStatus::Committed), t(6)),
            Err(CommitResultError::StaleEpoch { epoch: e2, latest: e3 })
        );
        // Sled 4 never committed epoch 2 and is not in service: it is committed
        // through epoch 3 by prepare-and-commit, then activated.
        drive_to_committed(&mut cp, t(7), &mut r);
        assert_eq!(cp.pending_activations(), ids([4, 5]));
    }

    #[test]
    fn activation_is_retried_every_pass_until_reported() {
        let mut r = rng(7);
        let mut cp = committed_rack(&ids(0..3), &mut r);
        let e = cp.add_sleds(ids([3, 4]), t(0), &mut r).unwrap();
        prepare(&mut cp, &ids(0..5), t(1), &mut r);
        // Only 3 commits in the first pass: it is activated while committing.
        commit_pass(&mut cp, &ids([0, 4]), t(2), &mut r);
        assert_eq!(state(&cp, e), ConfigState::Committing);
        let a = cp.tick(t(3), &mut r);
        assert_eq!(activations(&a), ids([3]));
        // New members do not relay until in service.
        assert!(commits(&a).values().all(|(_, via)| ids(0..3).contains(via)));
        for m in commits(&a).keys() {
            cp.on_commit_result(e, m, Ok(CommitStatus::Committed), t(3)).unwrap();
        }
        assert_eq!(state(&cp, e), ConfigState::Committed);
        // Retried on every pass, with the configuration committed.
        for s in 4..8 {
            assert_eq!(activations(&cp.tick(t(s), &mut r)), ids([3, 4]));
        }
        let before = cp.ledger().generation();
        cp.on_activated(&id(3), t(8)).unwrap();
        assert_eq!(cp.ledger().generation(), before + 1);
        cp.on_activated(&id(3), t(9)).unwrap();
        assert_eq!(cp.ledger().generation(), before + 1, "repeat is a no-op");
        assert_eq!(activations(&cp.tick(t(10), &mut r)), ids([4]));
        // A fresh replica keeps asking: the status is durable.
        let mut other =
            Controller::from_ledger(ControlPlaneConfig::default(), cp.ledger().clone()).unwrap();
        assert_eq!(activations(&other.tick(t(11), &mut r)), ids([4]));
        cp.on_activated(&id(4), t(12)).unwrap();
        assert!(cp.tick(t(13), &mut r).is_empty());
        assert_eq!(cp.on_activated(&id(0), t(14)), Err(ActivationError::NotJoined { sled: id(0) }));
        // Activated sleds relay commit requests of the next change.
        cp.add_sleds(ids([5]), t(15), &mut r).unwrap();
        prepare(&mut cp, &ids(0..6), t(16), &mut r);
        let vias: BTreeSet<_> = (0..20)
            .flat_map(|s| commits(&cp.tick(t(17 + s), &mut r)).into_values().map(|(_, v)| v))
            .collect();
        assert!(vias.contains(&id(3)) || vias.contains(&id(4)), "{vias:?}");
    }

    /// A member of the committing epoch that answers `Expunged` (it believes
    /// it was removed at or after that epoch, which an honest member cannot)
    /// refuses for good: it stays unacknowledged, every pass reports the
    /// error and asks again, and the operator's remedy is to remove it
    /// (docs/protocol.md section 4.8). Nothing is ever sent for the
    /// superseded epoch afterwards.
    #[test]
    fn member_refusing_as_expunged_is_reported_until_removed() {
        let mut r = rng(15941);
        let mut cp = committed_rack(&ids(0..4), &mut r);
        let e2 = cp.add_sleds(ids([4]), t(0), &mut r).unwrap();
        prepare(&mut cp, &ids(0..4), t(1), &mut r);
        assert_eq!(state(&cp, e2), ConfigState::Committing, "4 of 5 prepared is K+Z");
        let refusal =
            PrepareAndCommitError::Refused(NodeRefusal::Expunged { epoch: e2, from: id(0) });
        for s in 2..5 {
            let actions = commit_pass(&mut cp, &ids([4]), t(s), &mut r);
            assert_eq!(commits(&actions)[&id(4)].0, "prepare_and_commit", "asked again");
            cp.on_commit_result(e2, &id(4), Err(refusal.clone().into()), t(s)).unwrap();
            assert_eq!(state(&cp, e2), ConfigState::Committing);
            let status = cp.status(e2).unwrap();
            assert_eq!(status.unacknowledged_members, ids([4]));
            let report = cp.last_pass().unwrap();
            let errors: Vec<_> = report.clients().iter().flat_map(|c| c.errors().keys()).collect();
            assert_eq!(errors, vec![&id(4)], "{report}");
            assert!(report.to_string().contains(&refusal.to_string()), "{report}");
        }
        // The operator removes it: the refusing epoch ends partially
        // committed, and the new epoch commits without it.
        let e3 = cp.remove_sleds(ids([4]), t(10), &mut r).unwrap();
        assert_eq!(state(&cp, e2), ConfigState::CommittedPartially);
        for s in 11..14 {
            let stale: Vec<_> = cp
                .tick(t(s), &mut r)
                .into_iter()
                .filter(|a| match a {
                    ControlAction::Commit { req, .. } => req.epoch == e2,
                    ControlAction::PrepareAndCommit { req, .. } => req.config.epoch == e2,
                    _ => false,
                })
                .collect();
            assert!(stale.is_empty(), "{stale:?}");
        }
        assert_eq!(drive_to_committed(&mut cp, t(20), &mut r), e3);
        assert_eq!(
            cp.config(e3).unwrap().members.keys().cloned().collect::<BTreeSet<_>>(),
            ids(0..4)
        );
    }

    #[test]
    fn dead_coordinator_is_aborted_and_retried_with_another() {
        let mut r = rng(8);
        let mut cp = committed_rack(&ids([0, 1, 3]), &mut r);
        let e2 = cp.add_sleds(ids([2]), t(0), &mut r).unwrap();
        let dead = coordinator(&cp, e2);
        let _ = cp.tick(t(0), &mut r); // reconfigure, never answered
        assert!(cp.tick(t(59), &mut r).is_empty());
        assert_eq!(state(&cp, e2), ConfigState::Preparing);
        let a = cp.tick(t(60), &mut r);
        assert_eq!(state(&cp, e2), ConfigState::Aborted);
        let reason = cp.config(e2).unwrap().abort_reason.unwrap();
        assert!(
            reason.contains("did not answer") && reason.contains(&dead.to_string()),
            "{reason}"
        );
        assert!(matches!(
            cp.abort_reason(e2),
            Some(AbortReason::CoordinatorTimeout { silent_ms: 60_000, .. })
        ));
        // Retried at once, same membership, another coordinator.
        let e3 = cp.latest_epoch().unwrap();
        assert_eq!(e3, Epoch(3));
        let v3 = cp.config(e3).unwrap();
        assert_ne!(v3.coordinator, dead);
        assert_eq!(v3.members.keys().cloned().collect::<BTreeSet<_>>(), ids(0..4));
        assert_eq!(v3.last_committed_epoch, Some(Epoch(1)));
        assert!(
            matches!(&a[..], [ControlAction::Reconfigure { to, msg }] if *to == v3.coordinator && msg.epoch == e3)
        );
        // The operator's repeated add returns the retry's epoch.
        assert_eq!(cp.add_sleds(ids([2]), t(61), &mut r), Ok(e3));
        drive_to_committed(&mut cp, t(62), &mut r);
        assert_eq!(cp.membership(), ids(0..4));
    }

    #[test]
    fn auto_retry_stops_after_max_attempts_and_can_be_disabled() {
        let mut r = rng(9);
        let mut cp = committed_rack(&ids(0..5), &mut r);
        let e2 = cp.add_sleds(ids([5]), t(0), &mut r).unwrap();
        let mut coordinators = vec![coordinator(&cp, e2)];
        let mut now = 0;
        for _ in 0..5 {
            let _ = cp.tick(t(now), &mut r);
            now += 61;
            let _ = cp.tick(t(now), &mut r);
            let latest = cp.latest_epoch().unwrap();
            coordinators.push(coordinator(&cp, latest));
        }
        // Attempts at epochs 2, 3, 4 (max_attempts = 3), then it stays aborted.
        assert_eq!(cp.latest_epoch(), Some(Epoch(4)));
        assert_eq!(state(&cp, Epoch(4)), ConfigState::Aborted);
        let distinct: BTreeSet<_> = coordinators[..3].iter().cloned().collect();
        assert_eq!(
            distinct.len(),
            3,
            "each retry avoids earlier failed coordinators: {coordinators:?}"
        );
        // The operator can still re-add.
        assert!(cp.add_sleds(ids([5]), t(now + 1), &mut r).is_ok());

        let config = ControlPlaneConfig { auto_retry: false, ..Default::default() };
        let mut cp = committed_rack_with(config, &ids(0..3), &mut r);
        let e = cp.add_sleds(ids([3]), t(0), &mut r).unwrap();
        let _ = cp.tick(t(0), &mut r);
        let _ = cp.tick(t(100), &mut r);
        assert_eq!(state(&cp, e), ConfigState::Aborted);
        assert_eq!(cp.latest_epoch(), Some(e), "no retry");
    }

    #[test]
    fn answering_coordinator_is_not_timed_out() {
        let mut r = rng(10);
        let mut cp = committed_rack(&ids(0..3), &mut r);
        let e = cp.add_sleds(ids([3]), t(0), &mut r).unwrap();
        let coord = coordinator(&cp, e);
        let _ = cp.tick(t(0), &mut r);
        cp.on_reconfigure_result(e, &coord, Ok(()), t(1)).unwrap();
        for s in (10..300).step_by(10) {
            let _ = cp.tick(t(s), &mut r);
            let st = fake_status(&cp, e, &ids([0]));
            cp.on_coordinator_status(e, &coord, Some(st), t(s)).unwrap();
        }
        assert_eq!(state(&cp, e), ConfigState::Preparing);
        // Silent from t(290): aborted at t(350).
        cp.on_unreachable(&coord, t(300));
        let _ = cp.tick(t(349), &mut r);
        assert_eq!(state(&cp, e), ConfigState::Preparing);
        let _ = cp.tick(t(350), &mut r);
        assert_eq!(state(&cp, e), ConfigState::Aborted);
    }

    #[test]
    fn coordinator_not_coordinating_or_refusing_aborts() {
        let mut r = rng(11);
        let mut cp = committed_rack(&ids(0..4), &mut r);
        let e2 = cp.add_sleds(ids([4]), t(0), &mut r).unwrap();
        let c2 = coordinator(&cp, e2);
        let _ = cp.tick(t(0), &mut r);
        cp.on_reconfigure_result(e2, &c2, Ok(()), t(1)).unwrap();
        // It restarted and lost its coordination.
        cp.on_coordinator_status(e2, &c2, None, t(2)).unwrap();
        assert_eq!(state(&cp, e2), ConfigState::Aborted);
        assert!(cp.config(e2).unwrap().abort_reason.unwrap().contains("not coordinating"));
        // Retried on the next pass.
        let a = cp.tick(t(3), &mut r);
        let e3 = cp.latest_epoch().unwrap();
        assert_eq!(e3, Epoch(3));
        let c3 = coordinator(&cp, e3);
        assert_ne!(c3, c2);
        assert!(matches!(&a[..], [ControlAction::Reconfigure { .. }]));
        // "Already coordinating this epoch" counts as accepted.
        cp.on_reconfigure_result(
            e3,
            &c3,
            Err(ReconfigurationError::AlreadyCoordinating { coordinating: e3, requested: e3 }),
            t(4),
        )
        .unwrap();
        assert_eq!(state(&cp, e3), ConfigState::Preparing);
        assert_eq!(
            cp.tick(t(5), &mut r),
            vec![ControlAction::PollCoordinator { to: c3.clone(), epoch: e3 }]
        );
        // A real refusal aborts.
        cp.on_reconfigure_result(
            e3,
            &c3,
            Err(ReconfigurationError::LastCommittedEpochMismatch {
                requested: Some(Epoch(1)),
                actual: None,
            }),
            t(6),
        )
        .unwrap();
        assert_eq!(state(&cp, e3), ConfigState::Aborted);
        assert!(matches!(cp.abort_reason(e3), Some(AbortReason::CoordinatorRefused { .. })));
        let _ = cp.tick(t(7), &mut r);
        let e4 = cp.latest_epoch().unwrap();
        assert_eq!(e4, Epoch(4));
        assert!(coordinator(&cp, e4) != c3 && coordinator(&cp, e4) != c2);
    }

    /// The fixture story with fabricated coordinator statuses: three sleds at
    /// epoch 1, add the fourth; every view has the fixtures' shape.
    #[test]
    fn fixture_story_views_have_the_fixture_shapes() {
        let mut r = rng(12);
        let mut cp = committed_rack(&ids([0, 1, 3]), &mut r);
        let e = cp.add_sleds(ids([2]), t(0), &mut r).unwrap();
        let view = |cp: &ControlPlane| serde_json::to_value(cp.config(e).unwrap()).unwrap();
        let fixture_value =
            |name: &str| -> serde_json::Value { serde_json::from_str(&fixture(name)).unwrap() };

        let unacked = view(&cp);
        assert_eq!(shape(&unacked), shape(&fixture_value("config-epoch2-preparing-unacked.json")));

        let coord = coordinator(&cp, e);
        let _ = cp.tick(t(1), &mut r);
        cp.on_reconfigure_result(e, &coord, Ok(()), t(1)).unwrap();
        // The fixture's "prepared" stage has all four acks but no ciphertext
        // yet: the control plane recorded digests and acks, state preparing.
        // Reproduce it with three acks first, then show the same shape as the
        // fixture (members prepared, digests known).
        let mut st = fake_status(&cp, e, &ids([0, 1, 3]));
        st.config.encrypted_rack_secrets = Some(sealed(e));
        cp.on_coordinator_status(e, &coord, Some(st), t(2)).unwrap();
        let mut prepared = view(&cp);
        // Our ledger already holds the ciphertext the coordinator reported;
        // the fixture's snapshot was taken before it arrived.
        prepared["encrypted_rack_secrets"] = serde_json::Value::Null;
        let mut fixture_prepared = fixture_value("config-epoch2-preparing-prepared.json");
        fixture_prepared["members"]["PPP-PPPPPPP:00000000002"]["state"] = "unacked".into();
        fixture_prepared["members"]["PPP-PPPPPPP:00000000002"]["time_prepared"] =
            serde_json::Value::Null;
        assert_eq!(shape(&prepared), shape(&fixture_prepared));

        let status = fake_status(&cp, e, &ids(0..4));

        cp.on_coordinator_status(e, &coord, Some(status), t(3)).unwrap();
        let actions = commit_pass(&mut cp, &BTreeSet::new(), t(4), &mut r);
        let committed = view(&cp);
        assert_eq!(shape(&committed), shape(&fixture_value("config-epoch2-committed.json")));
        assert_eq!(committed["state"], "committed");
        assert_eq!(committed["threshold"], 3);
        assert_eq!(committed["commit_crash_tolerance"], 1);
        assert_eq!(committed["time_created"], "2026-01-14T21:32:18.780136Z");

        let status = serde_json::to_value(cp.status(e).unwrap()).unwrap();
        assert_eq!(
            shape(&status),
            shape(&fixture_value("membership-status-epoch2-committed.json"))
        );
        assert_eq!(status["state"], "committed");

        // The text report: header, then per proxy client three lines, laid out
        // as the fixture.
        let report = cp.last_pass().unwrap().to_string();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[0], format!("Trust Quorum status for rack_id: {}, epoch: 2:", RACK));
        let fixture_text = fixture("manager-status-epoch2.txt");
        let layout = |text: &str| -> Vec<String> {
            text.lines()
                .map(|l| {
                    let indent = l.len() - l.trim_start().len();
                    let label = l.trim_start().split(':').next().unwrap().to_string();
                    format!("{indent}:{label}")
                })
                .collect()
        };
        let clients: BTreeSet<_> = commits(&actions).into_values().map(|(_, v)| v).collect();
        assert_eq!(clients.len(), 3, "three members in service relay four requests");
        assert_eq!(layout(&report), layout(&fixture_text));
        let acked: usize = cp.last_pass().unwrap().clients().iter().map(|c| c.acked().len()).sum();
        assert_eq!(acked, 4);
        assert!(report.ends_with("errors:\n"));
    }

    /// Two replicas read one ledger snapshot and race; the store accepts a new
    /// ledger only if its generation is still the snapshot's.
    #[test]
    fn replicas_with_compare_and_set_never_fork_an_epoch() {
        struct Store {
            ledger: Ledger,
        }
        impl Store {
            fn cas(&mut self, expected: u64, new: &Ledger) -> bool {
                if self.ledger.generation() != expected {
                    return false;
                }
                self.ledger = new.clone();
                true
            }
        }
        for seed in 0..20 {
            let mut r = rng(seed);
            let base = committed_rack(&ids(0..4), &mut r);
            let mut store = Store { ledger: base.ledger().clone() };
            let load = |s: &Store| {
                Controller::from_ledger(ControlPlaneConfig::default(), s.ledger.clone()).unwrap()
            };

            // Conflicting changes from one snapshot.
            let snapshot = store.ledger.generation();
            let mut a = load(&store);
            let mut b = load(&store);
            let ea = a.add_sleds(ids([4]), t(0), &mut rng(seed + 100)).unwrap();
            let eb = b.remove_sleds(ids([0]), t(0), &mut rng(seed + 200)).unwrap();
            assert_eq!(ea, eb, "both picked the next epoch");
            assert!(store.cas(snapshot, a.ledger()));
            assert!(!store.cas(snapshot, b.ledger()), "the loser's write is refused");
            assert_eq!(store.ledger.generation(), snapshot + 1);
            // The loser retries on fresh state: a different change is in progress.
            let mut b = load(&store);
            let snap = store.ledger.generation();
            assert_eq!(
                b.remove_sleds(ids([0]), t(1), &mut rng(seed)),
                Err(trust_quorum::control::RemoveSledsError::Refused(
                    trust_quorum::control::ChangeRefused::InProgress { epoch: ea }
                ))
            );
            // The same change as the winner's is answered with the winner's epoch.
            assert_eq!(b.add_sleds(ids([4]), t(1), &mut rng(seed + 300)), Ok(ea));
            assert_eq!(b.ledger().generation(), snap, "nothing to store");
            let stored = load(&store);
            assert_eq!(stored.config(ea).unwrap().members.len(), 5);

            // Both tick the same preparing epoch: one Reconfigure is stored.
            let snap = store.ledger.generation();
            let mut a = load(&store);
            let mut b = load(&store);
            let aa = a.tick(t(2), &mut rng(1));
            let ab = b.tick(t(2), &mut rng(2));
            assert_eq!(aa, ab, "same ledger, same decision");
            assert!(store.cas(snap, a.ledger()));
            assert!(!store.cas(snap, b.ledger()));
            let mut b = load(&store);
            assert!(
                !b.tick(t(3), &mut rng(3))
                    .iter()
                    .any(|x| matches!(x, ControlAction::Reconfigure { .. })),
                "the loser does not send the request again"
            );

            // Racing timeouts: both abort and retry; only one epoch 3 exists.
            let snap = store.ledger.generation();
            let mut a = load(&store);
            let mut b = load(&store);
            // A freshly loaded replica gives the coordinator a full timeout
            // from its first pass.
            let _ = a.tick(t(3), &mut rng(seed + 5));
            let _ = b.tick(t(3), &mut rng(seed + 6));
            assert_eq!(a.ledger().generation(), snap, "polling changes nothing");
            let _ = a.tick(t(100), &mut rng(seed + 7));
            let _ = b.tick(t(100), &mut rng(seed + 8));
            assert_eq!(a.latest_epoch(), Some(Epoch(3)));
            assert_eq!(b.latest_epoch(), Some(Epoch(3)));
            let won_a = store.cas(snap, a.ledger());
            let won_b = store.cas(snap, b.ledger());
            assert!(won_a && !won_b);
            let winner = load(&store);
            assert_eq!(winner.latest_epoch(), Some(Epoch(3)));
            assert_eq!(coordinator(&winner, Epoch(3)), coordinator(&a, Epoch(3)));
            let mut b = load(&store);
            assert_eq!(b.add_sleds(ids([4]), t(101), &mut rng(0)), Ok(Epoch(3)));
        }
    }

    #[test]
    fn stale_and_unknown_results_are_typed() {
        let mut r = rng(13);
        let mut cp = committed_rack(&ids(0..3), &mut r);
        let e = cp.add_sleds(ids([3]), t(0), &mut r).unwrap();
        let coord = coordinator(&cp, e);
        assert!(matches!(
            cp.on_reconfigure_result(Epoch(9), &coord, Ok(()), t(1)),
            Err(trust_quorum::control::ReconfigureResultError::UnknownEpoch(Epoch(9)))
        ));
        assert!(matches!(
            cp.on_reconfigure_result(Epoch(1), &coord, Ok(()), t(1)),
            Err(trust_quorum::control::ReconfigureResultError::StaleEpoch { .. })
        ));
        let other = ids(0..3).into_iter().find(|m| *m != coord).unwrap();
        assert!(matches!(
            cp.on_reconfigure_result(e, &other, Ok(()), t(1)),
            Err(trust_quorum::control::ReconfigureResultError::NotCoordinator { .. })
        ));
        assert!(matches!(
            cp.on_coordinator_status(Epoch(9), &coord, None, t(1)),
            Err(CoordinatorStatusError::UnknownEpoch(Epoch(9)))
        ));
        assert_eq!(
            cp.on_commit_result(e, &id(0), Ok(CommitStatus::Committed), t(1)),
            Err(CommitResultError::NotCommitting { epoch: e, state: ConfigState::Preparing })
        );
        let _ = Duration::ZERO;
    }
}
