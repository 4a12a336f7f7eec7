//! The grace period for a coordinator's "not coordinating" answer
//! (docs/protocol.md section 5.5): measured from the ledger's
//! `time_reconfigure_sent`, it keeps an early answer from aborting the
//! attempt, whichever replica polled: the one that sent the request, one
//! that did not, or one that restarted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod control_support;

/// Named so that `cargo test control` selects these tests.
mod control {
    use std::time::Duration;

    use crate::control_support::*;
    use test_strategy::{Arbitrary, proptest};
    use tq_types::{ConfigState, Timestamp};
    use trust_quorum::control::{AbortReason, ControlAction, ControlPlaneConfig};
    use trust_quorum::harness::Controller;

    /// Who answers the coordinator's "not coordinating".
    #[derive(Arbitrary, Clone, Copy, Debug)]
    enum Replica {
        /// The replica that sent the request, after its answer.
        Sender,
        /// A second replica over the same stored ledger, which never sent
        /// it.
        Other,
        /// The sender, restarted from the stored ledger.
        Restarted,
    }

    fn after(start: Timestamp, ms: u64) -> Timestamp {
        Timestamp::from_unix_micros(start.unix_micros() + i64::try_from(ms).unwrap() * 1_000)
            .unwrap()
    }

    /// A two-epoch rack whose epoch 2's request went out at `t(0)`, as seen
    /// by `who`.
    fn sent_request(
        config: &ControlPlaneConfig,
        who: Replica,
        seed: u64,
    ) -> (Controller, tq_types::Epoch, tq_types::BaseboardId) {
        let mut r = rng(seed);
        let mut cp = committed_rack_with(config.clone(), &ids(0..4), &mut r);
        let e2 = cp.add_sleds(ids([4]), t(0), &mut r).unwrap();
        let c2 = coordinator(&cp, e2);
        let actions = cp.tick(t(0), &mut r);
        assert!(matches!(&actions[..], [ControlAction::Reconfigure { .. }]));
        let cp = match who {
            Replica::Sender => {
                cp.on_reconfigure_result(e2, &c2, Ok(()), t(0)).unwrap();
                cp
            }
            Replica::Other | Replica::Restarted => {
                Controller::from_ledger(config.clone(), authority(), cp.stored().clone()).unwrap()
            }
        };
        (cp, e2, c2)
    }

    #[test]
    fn early_not_coordinating_is_ignored_and_a_late_one_aborts() {
        let config = ControlPlaneConfig::default();
        assert_eq!(config.not_coordinating_grace, Duration::from_secs(10));
        for who in [Replica::Sender, Replica::Other, Replica::Restarted] {
            let (mut cp, e2, c2) = sent_request(&config, who, 21);
            let generation = cp.stored().generation();
            cp.on_coordinator_status(e2, &c2, None, after(t(0), 9_999)).unwrap();
            assert_eq!(state(&cp, e2), ConfigState::Preparing, "{who:?}");
            assert_eq!(cp.stored().generation(), generation, "{who:?}: nothing stored");
            cp.on_coordinator_status(e2, &c2, None, t(10)).unwrap();
            assert_eq!(state(&cp, e2), ConfigState::Aborted, "{who:?}");
            assert_eq!(
                cp.abort_reason(e2),
                Some(AbortReason::CoordinatorNotCoordinating { coordinator: c2.clone() }),
                "{who:?}"
            );
        }
    }

    #[test]
    fn the_next_pass_polls_again_after_an_early_answer() {
        let config = ControlPlaneConfig::default();
        let (mut cp, e2, c2) = sent_request(&config, Replica::Other, 22);
        let mut r = rng(23);
        assert_eq!(
            cp.tick(t(1), &mut r),
            vec![ControlAction::PollCoordinator { to: c2.clone(), epoch: e2 }]
        );
        cp.on_coordinator_status(e2, &c2, None, t(1)).unwrap();
        assert_eq!(
            cp.tick(t(3), &mut r),
            vec![ControlAction::PollCoordinator { to: c2.clone(), epoch: e2 }]
        );
        cp.on_coordinator_status(e2, &c2, None, t(11)).unwrap();
        assert_eq!(state(&cp, e2), ConfigState::Aborted);
    }

    /// Any grace, any replica, any answer time: the answer aborts exactly
    /// when the grace period since `time_reconfigure_sent` has passed.
    #[proptest(cases = 200)]
    fn not_coordinating_aborts_exactly_after_the_grace_period(
        #[strategy(0u64..120_000)] grace_ms: u64,
        #[strategy(0u64..240_000)] answer_ms: u64,
        who: Replica,
        #[strategy(0u64..1_000)] seed: u64,
    ) {
        let config = ControlPlaneConfig {
            not_coordinating_grace: Duration::from_millis(grace_ms),
            ..ControlPlaneConfig::default()
        };
        let (mut cp, e2, c2) = sent_request(&config, who, seed);
        cp.on_coordinator_status(e2, &c2, None, after(t(0), answer_ms)).unwrap();
        let expected =
            if answer_ms >= grace_ms { ConfigState::Aborted } else { ConfigState::Preparing };
        assert_eq!(state(&cp, e2), expected);
    }
}
