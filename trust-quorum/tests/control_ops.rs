//! Operator operations on the control plane: initialize, add, remove,
//! abort, views (every refusal leaving the ledger byte-identical is in
//! `control_rejections.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod control_support;

/// Named so that `cargo test control` selects these tests.
mod control {

    use std::collections::BTreeSet;

    use crate::control_support::*;
    use tq_types::{ConfigState, Epoch, MemberState, RackId, RackMembershipState, Threshold};
    use trust_quorum::control::{
        AbortError, AbortReason, AddSledsError, ChangeRefused, ControlAction, ControlPlaneConfig,
        CrashTolerance, InitializeError, Ledger, LedgerError, Policy, RemoveSledsError,
        ThresholdRule,
    };
    use trust_quorum::harness::Controller;

    #[test]
    fn initialize_proposes_epoch_one_with_policy() {
        let mut r = rng(1);
        let mut cp = default_cp();
        assert_eq!(cp.latest(), None);
        let e = cp.initialize(rack(), ids(0..4), t(0), &mut r).unwrap();
        assert_eq!(e, Epoch(1));
        let v = cp.config(e).unwrap();
        assert_eq!(v.state, ConfigState::Preparing);
        assert_eq!(v.threshold, Threshold(3));
        assert_eq!(v.commit_crash_tolerance, 0, "the default table: N = 4 gives Z = 0");
        assert_eq!(v.last_committed_epoch, None);
        assert!(v.members.contains_key(&v.coordinator));
        assert!(v.members.values().all(|m| m.state == MemberState::Unacked));
        assert_eq!(cp.status(e).unwrap().state, RackMembershipState::InProgress);
        assert_eq!(cp.ledger().generation(), 1);
        assert!(cp.membership().is_empty(), "a preparing configuration is not the membership");

        // Same request again: same epoch, no change.
        let before = ledger_json(&cp);
        assert_eq!(cp.initialize(rack(), ids(0..4), t(1), &mut r), Ok(e));
        assert_eq!(ledger_json(&cp), before);
        // A different one: refused.
        assert_eq!(
            cp.initialize(rack(), ids(0..5), t(1), &mut r),
            Err(InitializeError::InProgress { epoch: e })
        );
        let other = RackId(uuid::Uuid::nil());
        assert_eq!(
            cp.initialize(other, ids(0..4), t(1), &mut r),
            Err(InitializeError::RackIdMismatch { ledger: rack(), requested: other })
        );
        assert_eq!(ledger_json(&cp), before);
    }

    #[test]
    fn initialize_size_limits_and_already_initialized() {
        let mut r = rng(2);
        let mut cp = default_cp();
        assert_eq!(
            cp.initialize(rack(), ids(0..2), t(0), &mut r),
            Err(InitializeError::MembershipSize { members: 2, min: 3, max: 32 })
        );
        assert_eq!(
            cp.initialize(rack(), ids(0..33), t(0), &mut r),
            Err(InitializeError::MembershipSize { members: 33, min: 3, max: 32 })
        );
        assert_eq!(
            ledger_json(&cp),
            ledger_json(&default_cp()),
            "a refusal leaves an empty ledger"
        );
        let mut cp = committed_rack(&ids(0..3), &mut r);
        assert_eq!(
            cp.initialize(rack(), ids(0..3), t(0), &mut r),
            Err(InitializeError::AlreadyInitialized {
                rack_id: rack(),
                epoch: Epoch(1),
                state: ConfigState::Committed
            })
        );
    }

    #[test]
    fn aborted_first_attempt_can_be_initialized_again() {
        let mut r = rng(3);
        let mut cp = Controller::new(
            ControlPlaneConfig { auto_retry: false, ..Default::default() },
            authority(),
        );
        cp.initialize(rack(), ids(0..3), t(0), &mut r).unwrap();
        let first = coordinator(&cp, Epoch(1));
        cp.abort_latest("wrong sleds", t(1)).unwrap();
        assert_eq!(
            cp.add_sleds(ids(5..6), t(2), &mut r),
            Err(AddSledsError::Refused(ChangeRefused::NotInitialized)),
            "nothing committed yet"
        );
        let e = cp.initialize(rack(), ids(0..3), t(2), &mut r).unwrap();
        assert_eq!(e, Epoch(2));
        assert_eq!(cp.config(e).unwrap().last_committed_epoch, None);
        assert_ne!(coordinator(&cp, e), first, "prefers another coordinator after an abort");
        drive_to_committed(&mut cp, t(3), &mut r);
        assert_eq!(cp.membership(), ids(0..3));
    }

    #[test]
    fn add_sleds_builds_on_the_committed_membership() {
        let mut r = rng(4);
        let mut cp = committed_rack(&ids([0, 1, 3]), &mut r);
        let e = cp.add_sleds(ids([2]), t(0), &mut r).unwrap();
        assert_eq!(e, Epoch(2));
        let v = cp.config(e).unwrap();
        assert_eq!(v.members.keys().cloned().collect::<BTreeSet<_>>(), ids(0..4));
        assert_eq!(v.last_committed_epoch, Some(Epoch(1)));
        assert_ne!(v.coordinator, id(2), "the new sled never committed epoch 1");
        assert_eq!((v.threshold, v.commit_crash_tolerance), (Threshold(3), 0), "default table");
        assert_eq!(cp.membership(), ids([0, 1, 3]), "still preparing");
        assert_eq!(cp.last_committed_epoch(), Some(Epoch(1)));

        // Repeating the same add returns the same epoch and changes nothing.
        let before = ledger_json(&cp);
        assert_eq!(cp.add_sleds(ids([2]), t(1), &mut r), Ok(e));
        assert_eq!(ledger_json(&cp), before);
        // Another change while preparing: abort first.
        assert_eq!(
            cp.add_sleds(ids([4]), t(1), &mut r),
            Err(AddSledsError::Refused(ChangeRefused::InProgress { epoch: e }))
        );
        assert_eq!(
            cp.add_sleds(ids([2, 4]), t(1), &mut r),
            Err(AddSledsError::Refused(ChangeRefused::InProgress { epoch: e }))
        );
        assert_eq!(
            cp.remove_sleds(ids([0]), t(1), &mut r),
            Err(RemoveSledsError::Refused(ChangeRefused::InProgress { epoch: e }))
        );
        assert_eq!(ledger_json(&cp), before);

        drive_to_committed(&mut cp, t(2), &mut r);
        assert_eq!(cp.membership(), ids(0..4));
        let status = cp.status(e).unwrap();
        assert_eq!(status.state, RackMembershipState::Committed);
        assert!(status.unacknowledged_members.is_empty());
        assert_eq!(status.time_created, t(0));
        assert_eq!(status.time_committed, Some(t(2)));
    }

    #[test]
    fn add_many_sleds_at_once() {
        let mut r = rng(5);
        let mut cp = committed_rack(&ids(0..3), &mut r);
        let e = cp.add_sleds(ids(3..20), t(0), &mut r).unwrap();
        let v = cp.config(e).unwrap();
        assert_eq!(v.members.len(), 20);
        assert_eq!((v.threshold, v.commit_crash_tolerance), (Threshold(11), 3));
        assert!(ids(0..3).contains(&v.coordinator));
        assert_eq!(
            cp.status(e).unwrap().unacknowledged_members,
            ids(0..20),
            "nobody acknowledged yet"
        );
    }

    #[test]
    fn remove_sleds() {
        let mut r = rng(6);
        let mut cp = committed_rack(&ids(0..5), &mut r);
        assert_eq!(
            cp.remove_sleds(ids([1, 7, 9]), t(0), &mut r),
            Err(RemoveSledsError::NotMembers { sleds: ids([7, 9]) })
        );
        assert_eq!(
            cp.remove_sleds(ids([0, 1, 2]), t(0), &mut r),
            Err(RemoveSledsError::Refused(ChangeRefused::MembershipSize {
                members: 2,
                min: 3,
                max: 32
            }))
        );
        assert_eq!(cp.remove_sleds(ids([]), t(0), &mut r), Err(RemoveSledsError::NoSleds));
        let e = cp.remove_sleds(ids([4]), t(0), &mut r).unwrap();
        assert_eq!(cp.remove_sleds(ids([4]), t(1), &mut r), Ok(e), "idempotent");
        assert_ne!(coordinator(&cp, e), id(4));
        drive_to_committed(&mut cp, t(2), &mut r);
        assert_eq!(cp.membership(), ids(0..4));
        assert_eq!(
            cp.remove_sleds(ids([4]), t(3), &mut r),
            Err(RemoveSledsError::NotMembers { sleds: ids([4]) })
        );
    }

    #[test]
    fn add_sleds_refusals_name_sleds_and_change_nothing() {
        let mut r = rng(7);
        let mut empty = default_cp();
        assert_eq!(
            empty.add_sleds(ids([1]), t(0), &mut r),
            Err(AddSledsError::Refused(ChangeRefused::NotInitialized))
        );
        assert_eq!(
            empty.remove_sleds(ids([1]), t(0), &mut r),
            Err(RemoveSledsError::Refused(ChangeRefused::NotInitialized))
        );
        let mut cp = committed_rack(&ids(0..3), &mut r);
        let before = ledger_json(&cp);
        assert_eq!(cp.add_sleds(ids([]), t(0), &mut r), Err(AddSledsError::NoSleds));
        assert_eq!(
            cp.add_sleds(ids([1, 2, 5]), t(0), &mut r),
            Err(AddSledsError::AlreadyMembers { sleds: ids([1, 2]) })
        );
        assert_eq!(
            cp.add_sleds(ids(3..33), t(0), &mut r),
            Err(AddSledsError::Refused(ChangeRefused::MembershipSize {
                members: 33,
                min: 3,
                max: 32
            }))
        );
        let msg = cp.add_sleds(ids([0, 9]), t(0), &mut r).unwrap_err().to_string();
        assert!(msg.contains("PPP-PPPPPPP:00000000000"), "{msg}");
        assert_eq!(ledger_json(&cp), before);
    }

    #[test]
    fn abort_rules() {
        let mut r = rng(8);
        let mut cp = default_cp();
        assert_eq!(cp.abort_latest("x", t(0)), Err(AbortError::NoConfiguration));
        let mut cp2 = committed_rack(&ids(0..3), &mut r);
        let before = ledger_json(&cp2);
        assert_eq!(
            cp2.abort_latest("x", t(0)),
            Err(AbortError::NotPreparing { epoch: Epoch(1), state: ConfigState::Committed })
        );
        assert_eq!(ledger_json(&cp2), before);

        cp = committed_rack(&ids(0..3), &mut r);
        let e = cp.add_sleds(ids([3]), t(0), &mut r).unwrap();
        assert_eq!(cp.abort_latest("changed my mind", t(5)), Ok(e));
        let v = cp.config(e).unwrap();
        assert_eq!(v.state, ConfigState::Aborted);
        assert_eq!(v.time_aborted, Some(t(5)));
        assert_eq!(v.abort_reason.as_deref(), Some("aborted by operator: changed my mind"));
        assert_eq!(cp.status(e).unwrap().state, RackMembershipState::Aborted);
        // Aborting an aborted latest configuration succeeds without change.
        let before = ledger_json(&cp);
        assert_eq!(cp.abort_latest("again", t(6)), Ok(e));
        assert_eq!(ledger_json(&cp), before);
        // An operator's abort is never retried automatically.
        let actions = cp.tick(t(7), &mut r);
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(cp.latest_epoch(), Some(e));

        // Committing is irreversible.
        let e3 = cp.add_sleds(ids([3]), t(8), &mut r).unwrap();
        prepare(&mut cp, &ids(0..4), t(9), &mut r);
        assert_eq!(state(&cp, e3), ConfigState::Committing);
        let before = ledger_json(&cp);
        assert_eq!(
            cp.abort_latest("too late", t(10)),
            Err(AbortError::NotPreparing { epoch: e3, state: ConfigState::Committing })
        );
        assert_eq!(ledger_json(&cp), before);
    }

    /// omicron #11050: the coordinator chosen for an add was down; the epoch
    /// stayed preparing. Re-issuing the add must not say "already a member":
    /// while preparing it returns the same epoch, and once aborted it is
    /// accepted at the next epoch with another coordinator.
    #[test]
    fn issue_11050_readd_after_dead_coordinator() {
        let mut r = rng(11050);
        let config = ControlPlaneConfig { auto_retry: false, ..Default::default() };
        let mut cp = committed_rack_with(config, &ids([0, 1, 3]), &mut r);
        let e2 = cp.add_sleds(ids([2]), t(0), &mut r).unwrap();
        let dead = coordinator(&cp, e2);
        let actions = cp.tick(t(0), &mut r);
        assert!(matches!(&actions[..], [ControlAction::Reconfigure { to, .. }] if *to == dead));
        // The coordinator never answers. The operator retries the same add:
        assert_eq!(cp.add_sleds(ids([2]), t(10), &mut r), Ok(e2));
        assert!(!cp.membership().contains(&id(2)));
        // The operator aborts it and retries.
        cp.abort_latest("coordinator down", t(20)).unwrap();
        let e3 = cp.add_sleds(ids([2]), t(21), &mut r).unwrap();
        assert_eq!(e3, Epoch(3));
        assert_ne!(coordinator(&cp, e3), dead, "another coordinator after the abort");
        assert_eq!(cp.config(e3).unwrap().last_committed_epoch, Some(Epoch(1)));
        drive_to_committed(&mut cp, t(22), &mut r);
        assert_eq!(cp.membership(), ids(0..4));
        assert_eq!(cp.status(e2).unwrap().state, RackMembershipState::Aborted);
        assert_eq!(cp.status(e3).unwrap().state, RackMembershipState::Committed);
    }

    #[test]
    fn coordinator_is_a_committed_member_of_the_base() {
        for seed in 0..40 {
            let mut r = rng(seed);
            let mut cp = committed_rack(&ids(0..3), &mut r);
            let e = cp.add_sleds(ids(3..9), t(0), &mut r).unwrap();
            assert!(ids(0..3).contains(&coordinator(&cp, e)), "seed {seed}");
        }
    }

    #[test]
    fn coordinator_choice_depends_only_on_ledger_and_rng() {
        let mut r = rng(9);
        let cp = committed_rack(&ids(0..7), &mut r);
        let mut seen = BTreeSet::new();
        for seed in 0..30 {
            let mut a = cp.clone();
            let mut b = Controller::from_ledger(
                ControlPlaneConfig::default(),
                authority(),
                cp.ledger().clone(),
            )
            .unwrap();
            let ea = a.add_sleds(ids([9]), t(0), &mut rng(seed)).unwrap();
            let eb = b.add_sleds(ids([9]), t(0), &mut rng(seed)).unwrap();
            assert_eq!(ledger_json(&a), ledger_json(&b));
            seen.insert(coordinator(&a, ea));
            assert_eq!(ea, eb);
        }
        assert!(seen.len() > 3, "the rng spreads the choice: {seen:?}");
    }

    #[test]
    fn ledger_round_trips_and_validates() {
        let mut r = rng(10);
        let mut cp = committed_rack(&ids(0..4), &mut r);
        cp.add_sleds(ids([4]), t(0), &mut r).unwrap();
        let json = ledger_json(&cp);
        let ledger: Ledger = serde_json::from_str(&json).unwrap();
        let back =
            Controller::from_ledger(ControlPlaneConfig::default(), authority(), ledger).unwrap();
        assert_eq!(ledger_json(&back), json);
        assert_eq!(back.ledger().generation(), cp.ledger().generation());
        // The binary codec round-trips it too, abort reasons included.
        let mut aborted = cp.clone();
        aborted.abort_latest("for the codec", t(1)).unwrap();
        let bytes = tq_types::codec::encode(aborted.ledger()).unwrap();
        let decoded: Ledger = tq_types::codec::decode(&bytes, usize::MAX).unwrap();
        assert_eq!(&decoded, aborted.ledger());

        // A tampered ledger is refused: committing configuration erased.
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["configs"].as_object_mut().unwrap().remove("1");
        let bad: Ledger = serde_json::from_value(v).unwrap();
        assert!(matches!(
            Controller::from_ledger(ControlPlaneConfig::default(), authority(), bad),
            Err(LedgerError::EpochGap { .. })
        ));
        // A member marked committed in a preparing configuration.
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["configs"]["2"]["members"]["PPP-PPPPPPP:00000000000"]["state"] = "committed".into();
        let bad: Ledger = serde_json::from_value(v).unwrap();
        assert!(Controller::from_ledger(ControlPlaneConfig::default(), authority(), bad).is_err());
    }

    #[test]
    fn policy_is_overridable() {
        let mut r = rng(12);
        let config =
            ControlPlaneConfig { policy: Policy::add_sleds_release(), ..Default::default() };
        let mut cp = Controller::new(config, authority());
        let e = cp.initialize(rack(), ids(0..4), t(0), &mut r).unwrap();
        assert_eq!(
            cp.config(e).unwrap().commit_crash_tolerance,
            1,
            "N=4 gives Z=1 in the add-sleds release's table"
        );
        let policy = Policy::default().with_threshold(ThresholdRule::MajorityPlus(1));
        let mut cp =
            Controller::new(ControlPlaneConfig { policy, ..Default::default() }, authority());
        let e = cp.initialize(rack(), ids(0..5), t(0), &mut r).unwrap();
        let v = cp.config(e).unwrap();
        assert_eq!((v.threshold, v.commit_crash_tolerance), (Threshold(4), 1), "K = 3 + 1");
        let config = ControlPlaneConfig {
            policy: Policy::new(CrashTolerance::Fixed(2)).with_size_limits(3, 5),
            ..Default::default()
        };
        let mut cp = Controller::new(config, authority());
        assert_eq!(
            cp.initialize(rack(), ids(0..6), t(0), &mut r),
            Err(InitializeError::MembershipSize { members: 6, min: 3, max: 5 })
        );
        let e = cp.initialize(rack(), ids(0..5), t(0), &mut r).unwrap();
        assert_eq!(cp.config(e).unwrap().commit_crash_tolerance, 2);
    }

    #[test]
    fn abort_reason_is_typed() {
        let mut r = rng(14);
        let mut cp = committed_rack(&ids(0..3), &mut r);
        let e = cp.add_sleds(ids([3]), t(0), &mut r).unwrap();
        cp.abort_latest("because", t(1)).unwrap();
        assert_eq!(cp.abort_reason(e), Some(AbortReason::Operator { reason: "because".into() }));
        assert_eq!(cp.abort_reason(Epoch(1)), None);
    }
}
