//! The choice of a new configuration's coordinator (docs/protocol.md
//! section 5.4, step 6): among the sleds the failed-coordinator rule
//! allows, those in service and reachable first, then those in service,
//! then those reachable, then any.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod control_support;

/// Named so that `cargo test control` selects these tests.
mod control {
    use std::collections::BTreeSet;

    use crate::control_support::*;
    use tq_types::BaseboardId;

    /// The coordinators `add_sleds([new])` picks over `seeds`, each on a
    /// fresh copy of the rack built by `setup`.
    fn coordinators(
        seeds: std::ops::Range<u64>,
        setup: impl Fn(u64) -> trust_quorum::harness::Controller,
        new: u32,
        at: i64,
    ) -> BTreeSet<BaseboardId> {
        seeds
            .map(|seed| {
                let mut cp = setup(seed);
                let e = cp.add_sleds(ids([new]), t(at), &mut rng(seed + 1_000)).unwrap();
                coordinator(&cp, e)
            })
            .collect()
    }

    #[test]
    fn reachable_sleds_are_preferred_until_the_marks_expire() {
        let setup = |seed| {
            let mut cp = committed_rack(&ids(0..5), &mut rng(seed));
            for n in [0, 1, 3, 4] {
                cp.on_unreachable(&id(n), t(0));
            }
            cp
        };
        assert_eq!(coordinators(0..20, setup, 5, 1), ids([2]));
        // The marks last `unreachable_backoff` (30 s); then all are equal.
        assert_eq!(coordinators(0..40, setup, 5, 30), ids(0..5));
    }

    #[test]
    fn every_sled_unreachable_falls_back_to_every_allowed_one() {
        let all_marked = |seed| {
            let mut cp = committed_rack(&ids(0..4), &mut rng(seed));
            for n in 0..4 {
                cp.on_unreachable(&id(n), t(0));
            }
            cp
        };
        assert_eq!(coordinators(0..40, all_marked, 4, 1), ids(0..4));
    }

    #[test]
    fn sleds_in_service_are_preferred_even_over_reachability() {
        // Sled 3 joins at epoch 2 and commits, but is never reported in
        // service.
        let setup = |seed| {
            let mut r = rng(seed);
            let mut cp = committed_rack(&ids(0..3), &mut r);
            cp.add_sleds(ids([3]), t(0), &mut r).unwrap();
            drive_to_committed(&mut cp, t(1), &mut r);
            assert_eq!(cp.pending_activations(), ids([3]));
            cp
        };
        assert_eq!(coordinators(0..30, setup, 4, 2), ids(0..3));
        // The sleds in service all unreachable: still one of them.
        let marked = |seed| {
            let mut cp = setup(seed);
            for n in 0..3 {
                cp.on_unreachable(&id(n), t(2));
            }
            cp
        };
        assert_eq!(coordinators(0..30, marked, 4, 3), ids(0..3));
        // Once in service, sled 3 may coordinate too.
        let activated = |seed| {
            let mut cp = setup(seed);
            cp.on_activated(&id(3), t(2)).unwrap();
            cp
        };
        assert_eq!(coordinators(0..40, activated, 4, 3), ids(0..4));
    }
}
