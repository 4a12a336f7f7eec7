//! The control plane's store step: what must be stored, with which
//! compare-and-set generation, what a lost race does, and when to tick.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod control_support;

/// Named so that `cargo test control` selects these tests.
mod control {
    use std::time::Duration;

    use crate::control_support::*;
    use tq_types::Epoch;
    use trust_quorum::control::{
        ControlAction, ControlPlane, ControlPlaneConfig, Ledger, LedgerWrite, Stored,
    };

    /// A database row holding one ledger, with compare-and-set.
    #[derive(Default)]
    struct Store {
        row: Option<Ledger>,
    }

    impl Store {
        fn generation(&self) -> u64 {
            self.row.as_ref().map_or(0, Ledger::generation)
        }

        /// Stores what `cp` changed if the row still holds the generation
        /// it expects; `None` when another replica wrote first.
        fn store<'a>(&mut self, cp: &'a mut ControlPlane) -> Option<Stored<'a>> {
            match cp.take_write() {
                LedgerWrite::Nothing(stored) => Some(stored),
                LedgerWrite::Pending(write) => {
                    if write.expected_generation() != self.generation() {
                        return None;
                    }
                    self.row = Some(write.ledger().clone());
                    Some(write.written())
                }
            }
        }
    }

    #[test]
    fn every_change_is_stored_with_the_generation_it_expects() {
        let mut r = rng(1);
        let mut store = Store::default();
        let mut cp = ControlPlane::new(ControlPlaneConfig::default(), authority());
        let held = cp.initialize(rack(), ids(0..3), t(0), &mut r);
        match cp.take_write() {
            LedgerWrite::Pending(write) => {
                assert_eq!((write.expected_generation(), write.ledger().generation()), (0, 1));
                // Not written: dropped, so the change stays pending.
            }
            LedgerWrite::Nothing(_) => panic!("initialize changed the ledger"),
        }
        let stored = store.store(&mut cp).expect("the first write wins");
        let epoch = held.release(&stored).unwrap();
        assert_eq!(epoch, Epoch(1));
        assert!(matches!(cp.take_write(), LedgerWrite::Nothing(_)), "nothing new to store");

        // A pass records that the request was sent: stored before it goes out.
        let held = cp.tick(t(1), &mut r);
        let LedgerWrite::Pending(write) = cp.take_write() else { panic!("the pass wrote") };
        assert_eq!(write.expected_generation(), 1);
        let stored = write.written();
        let actions = held.release(&stored);
        assert!(matches!(&actions[..], [ControlAction::Reconfigure { .. }]));
        // Two changes before one write: one write, expecting the older one.
        let coord = coordinator(&cp, Epoch(1));
        cp.on_reconfigure_result(Epoch(1), &coord, Ok(()), t(2)).unwrap();
        let status = fake_status(&cp, Epoch(1), &ids(0..3));
        cp.on_coordinator_status(Epoch(1), &coord, Some(status), t(3)).unwrap();
        let LedgerWrite::Pending(write) = cp.take_write() else { panic!("acks were recorded") };
        assert_eq!(write.expected_generation(), 2);
        assert!(write.ledger().generation() > 2);
    }

    #[test]
    fn a_replica_that_loses_the_race_releases_nothing_and_reloads() {
        let mut r = rng(2);
        let committed = committed_rack(&ids(0..4), &mut r);
        let mut store = Store { row: Some(committed.stored().clone()) };
        let config = ControlPlaneConfig::default();
        let mut a =
            ControlPlane::from_ledger(config.clone(), authority(), store.row.clone().unwrap())
                .unwrap();
        let mut b =
            ControlPlane::from_ledger(config.clone(), authority(), store.row.clone().unwrap())
                .unwrap();
        // Both replicas take the same operator request; a stores first.
        let held_a = a.add_sleds(ids([4]), t(1), &mut rng(3));
        let held_b = b.add_sleds(ids([4]), t(1), &mut rng(4));
        let stored_a = store.store(&mut a).expect("a wins");
        let epoch = held_a.release(&stored_a).unwrap();
        assert!(store.store(&mut b).is_none(), "b expected the old generation");
        drop(held_b); // never released: the operator gets a's answer only
        // b reloads and sees the change a made; the same request is now a
        // repeat of the change in progress, with nothing to store.
        let mut b =
            ControlPlane::from_ledger(config, authority(), store.row.clone().unwrap()).unwrap();
        let again = b.add_sleds(ids([4]), t(2), &mut r);
        let LedgerWrite::Nothing(stored) = b.take_write() else {
            panic!("a repeat writes nothing")
        };
        assert_eq!(again.release(&stored), Ok(epoch));
    }

    #[test]
    fn next_deadline_says_when_to_tick() {
        let mut r = rng(5);
        let config =
            ControlPlaneConfig { tick_interval: Duration::from_secs(2), ..Default::default() };
        let mut cp = ControlPlane::new(config.clone(), authority());
        assert_eq!(cp.next_deadline(), None, "no rack, nothing to drive");
        let held = cp.initialize(rack(), ids(0..3), t(10), &mut r);
        let LedgerWrite::Pending(write) = cp.take_write() else { panic!("initialized") };
        held.release(&write.written()).unwrap();
        assert!(cp.next_deadline().unwrap() <= t(10), "a new change is driven at once");
        let held = cp.tick(t(11), &mut r);
        let LedgerWrite::Pending(write) = cp.take_write() else { panic!("sent") };
        let _sent = held.release(&write.written());
        assert_eq!(cp.next_deadline(), Some(t(13)), "the next pass, tick_interval later");
        // An answer that changes the ledger asks for a pass at once.
        let coord = coordinator(&cp, Epoch(1));
        cp.on_reconfigure_result(Epoch(1), &coord, Ok(()), t(12)).unwrap();
        let status = fake_status(&cp, Epoch(1), &ids(0..3));
        cp.on_coordinator_status(Epoch(1), &coord, Some(status), t(12)).unwrap();
        assert_eq!(cp.next_deadline(), Some(t(12)));
        // Committed everywhere and every member in service: idle again.
        let mut cp = trust_quorum::harness::Controller::from_ledger(
            config,
            authority(),
            cp.ledger().clone(),
        )
        .unwrap();
        commit_pass(&mut cp, &Default::default(), t(14), &mut r);
        assert_eq!(cp.next_deadline(), None, "{:?}", cp.latest());
    }

    #[test]
    fn a_silent_coordinator_is_ticked_at_its_timeout_if_sooner() {
        let mut r = rng(6);
        let config = ControlPlaneConfig {
            tick_interval: Duration::from_secs(600),
            prepare_timeout: Duration::from_secs(60),
            ..Default::default()
        };
        let mut cp = committed_rack_with(config, &ids(0..3), &mut r);
        cp.add_sleds(ids([3]), t(0), &mut r).unwrap();
        let _sent = cp.tick(t(1), &mut r);
        assert_eq!(cp.next_deadline(), Some(t(61)), "the timeout comes before the next pass");
        // Once committing, the prepare timeout no longer matters: the next
        // deadline is the next pass, however long ago the coordinator spoke.
        let e = cp.latest_epoch().unwrap();
        let coord = coordinator(&cp, e);
        cp.on_reconfigure_result(e, &coord, Ok(()), t(2)).unwrap();
        let status = fake_status(&cp, e, &ids(0..4));
        cp.on_coordinator_status(e, &coord, Some(status), t(2)).unwrap();
        let _sent = cp.tick(t(100), &mut r);
        assert_eq!(state(&cp, e), tq_types::ConfigState::Committing);
        assert_eq!(cp.next_deadline(), Some(t(700)));
    }
}
