//! The control plane's driver when things fail: dead, silent and refusing
//! coordinators, automatic retries, and replicas racing on one ledger.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod control_support;

/// Named so that `cargo test control` selects these tests.
mod control {
    use std::collections::BTreeSet;

    use crate::control_support::*;
    use tq_types::{ConfigState, Epoch, ReconfigurationError};
    use trust_quorum::control::{AbortReason, ControlAction, ControlPlaneConfig, Ledger};
    use trust_quorum::harness::Controller;

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
            matches!(&a[..], [ControlAction::Reconfigure { to, msg }] if *to == v3.coordinator && msg.msg.epoch == e3)
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
        // It restarted and lost its coordination; within the grace period
        // the answer is taken as early and ignored.
        cp.on_coordinator_status(e2, &c2, None, t(2)).unwrap();
        assert_eq!(state(&cp, e2), ConfigState::Preparing);
        cp.on_coordinator_status(e2, &c2, None, t(10)).unwrap();
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
                Controller::from_ledger(
                    ControlPlaneConfig::default(),
                    authority(),
                    s.ledger.clone(),
                )
                .unwrap()
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
}
