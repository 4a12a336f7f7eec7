//! The control plane's driver: reconfigure once, poll, K+Z, commit through
//! proxies, fallbacks, partial commit, activation retry and the fixture
//! story's shapes (dead coordinators and racing replicas are in
//! `control_failures.rs`).
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
        PrepareAndCommitError, RackMembershipState,
    };
    use trust_quorum::control::{
        ActivationError, AddSledsError, ChangeRefused, CommitResultError, ControlAction,
        ControlPlane, ControlPlaneConfig, CoordinatorStatusError, Policy,
    };
    use trust_quorum::crypto::authority::{verify_certificate, verify_reconfigure};
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
                assert_eq!(msg.msg.epoch, e);
                assert_eq!(msg.msg.last_committed_epoch, Some(Epoch(1)));
                assert_eq!(msg.msg.members, ids(0..4));
                assert_eq!(msg.msg.threshold.0, 3);
                assert_eq!(msg.msg.rack_id, rack());
                assert_eq!(msg.msg.coordinator, coord, "the request names its coordinator");
                verify_reconfigure(&authority().public_key(), msg).unwrap();
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
        let mut restarted = Controller::from_ledger(
            ControlPlaneConfig::default(),
            authority(),
            cp.ledger().clone(),
        )
        .unwrap();
        assert_eq!(
            restarted.tick(t(6), &mut r),
            vec![ControlAction::PollCoordinator { to: coord, epoch: e }]
        );
    }

    /// The fixtures' epoch 1 (sleds 0, 1 and 3, committed) under the
    /// add-sleds-release table they were captured with.
    fn fixture_rack(r: &mut rand_chacha::ChaCha20Rng) -> Controller {
        let config =
            ControlPlaneConfig { policy: Policy::add_sleds_release(), ..Default::default() };
        committed_rack_with(config, &ids([0, 1, 3]), r)
    }

    #[test]
    fn k_plus_z_prepare_acks_move_to_committing() {
        let mut r = rng(2);
        let mut cp = fixture_rack(&mut r);
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
        // K+Z = 4 for N = 4 in the fixtures' table: three acks are not
        // enough.
        let three: BTreeSet<_> = [coord.clone()]
            .into_iter()
            .chain(ids(0..4).into_iter().filter(|m| *m != coord))
            .take(3)
            .collect();
        assert_eq!(three.len(), 3);
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
        // Every request carries the authority's certificate for exactly it.
        let key = authority().public_key();
        for action in &a {
            let certificate = match action {
                ControlAction::Commit { req, .. } => req.certificate,
                ControlAction::PrepareAndCommit { req, .. } => req.certificate,
                _ => continue,
            };
            verify_certificate(&key, &certificate, &fake_config(&cp, e)).unwrap();
        }
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
        let mut other = Controller::from_ledger(
            ControlPlaneConfig::default(),
            authority(),
            cp.ledger().clone(),
        )
        .unwrap();
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

    /// The fixture story with fabricated coordinator statuses: three sleds at
    /// epoch 1, add the fourth; every view has the fixtures' shape.
    #[test]
    fn fixture_story_views_have_the_fixture_shapes() {
        let mut r = rng(12);
        let mut cp = fixture_rack(&mut r);
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
