//! The simulator's own behaviour: fixed-seed regressions per preset,
//! determinism, replay, and the CI-sized exploration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use tq_sim::event::{read_log, write_log};
use tq_sim::{FaultPreset, SimOptions, run};

fn options(seed: u64, faults: FaultPreset) -> SimOptions {
    SimOptions { faults, ..SimOptions::new(seed) }
}

fn assert_ok(o: &SimOptions) {
    let outcome = run(o, false);
    assert!(
        outcome.ok(),
        "seed {} ({}) failed: {:?} / liveness {:?}",
        o.seed,
        o.faults,
        outcome.failure,
        outcome.liveness
    );
}

/// Seeds that once found a defect but whose triggering event the fix made
/// invisible from outside, so no scenario could be kept for them (see
/// `tests/regressions.rs` for the runs kept with their scenario; the other
/// old regression seeds were the same runs as `explore_200_swarm_seeds` or
/// `fixed_seeds_pass_for_every_preset`): (seed, preset, sleds, steps).
const SEEDS_WITHOUT_SCENARIO: &[(u64, FaultPreset, usize, u64)] = &[
    // A stale prepare-and-commit reached a sled reset for re-adding (the
    // reset now drops the requests in flight to it).
    (261, FaultPreset::Swarm, 8, 2000),
    // Disk loss after a committed member's ack was already in flight (kept
    // with its scenario as seed 146, heavy, 3 sleds).
    (66, FaultPreset::Swarm, 3, 1000),
    (238, FaultPreset::Swarm, 3, 1000),
];

#[test]
fn seeds_without_scenario_pass() {
    for (seed, faults, nodes, steps) in SEEDS_WITHOUT_SCENARIO {
        assert_ok(&SimOptions { nodes: *nodes, steps: *steps, ..options(*seed, *faults) });
    }
}

#[test]
fn fixed_seeds_pass_for_every_preset() {
    for faults in [FaultPreset::None, FaultPreset::Light, FaultPreset::Swarm, FaultPreset::Heavy] {
        for seed in 0..10 {
            assert_ok(&options(seed, faults));
        }
    }
    for nodes in [3, 4, 16, 32] {
        assert_ok(&SimOptions { nodes, steps: 1000, ..SimOptions::new(7) });
    }
}

#[test]
fn same_seed_same_digest_different_seed_different_digest() {
    let a = run(&options(42, FaultPreset::Swarm), true);
    let b = run(&options(42, FaultPreset::Swarm), true);
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.log, b.log, "every step's event and digest match");
    let c = run(&options(43, FaultPreset::Swarm), false);
    assert_ne!(a.digest, c.digest);
}

#[test]
fn replay_reproduces_every_digest_and_finds_a_divergence() {
    let outcome = run(&options(5, FaultPreset::Heavy), true);
    assert!(outcome.ok());
    let mut bytes = Vec::new();
    write_log(&mut bytes, &outcome.header(), &outcome.log).unwrap();
    let (header, mut entries) = read_log(bytes.as_slice()).unwrap();
    assert_eq!(header.options, outcome.options);
    let r = tq_sim::replay::replay(&header, &entries, None);
    assert_eq!(r.divergence, None);
    assert_eq!(r.steps, outcome.events);
    assert_eq!(r.world.digest(), outcome.digest);

    // A replay stopped early ends where asked.
    let r = tq_sim::replay::replay(&header, &entries, Some(99));
    assert_eq!(r.steps, 100);

    // A tampered digest is reported at its step.
    entries[300].digest = "0000000000000000".to_owned();
    let r = tq_sim::replay::replay(&header, &entries, None);
    assert_eq!(r.divergence.map(|d| d.step), Some(300));
}

/// CI's exploration: 200 swarm seeds of 2,000 events each, and what they
/// exercised. The floors are about half of what the tree counted when they
/// were set (`explore --seeds 0..200 --steps 2000 --faults swarm`, with the
/// control-plane policy drawn per seed, the "not coordinating" grace period
/// and the coordinator preferring sleds in service): wipes 15, aborts 1081,
/// expunges 246, corrupted shares 1973, replica races lost 290, runs
/// reaching a committed epoch of 3 or more 167, loads answered
/// `NotAvailable` 621 (and 1845 exemptions used, at most 51 in one run).
/// Before those changes the counts were wipes 23, aborts 1627, expunges
/// 265, corrupted shares 2695, races lost 319, epoch-3 runs 182,
/// `NotAvailable` 818 (fewer aborts presumably because early "not
/// coordinating" answers no longer abort, fewer wipes because a higher K or
/// Z leaves fewer of them survivable). A change that makes a fault rare or
/// impossible fails here.
#[test]
fn explore_200_swarm_seeds() {
    let template = SimOptions::new(0);
    let ex = tq_sim::explore::explore(&template, 0..200, 2);
    let failed: Vec<String> = ex
        .failures
        .iter()
        .map(|f| format!("seed {}: {:?} {:?}", f.options.seed, f.failure, f.liveness))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(ex.seeds, 200);
    assert!(ex.events >= 200 * 2000);
    let c = ex.coverage;
    println!("coverage: {c}");
    let floors = [
        ("wipes", c.wipes, 8),
        ("aborts", c.aborts, 540),
        ("expunges", c.expunges, 120),
        ("corrupted_shares", c.corrupted_shares, 980),
        ("races_lost", c.races_lost, 145),
        ("epoch3_runs", c.epoch3_runs, 83),
        ("not_available", c.not_available, 310),
    ];
    for (what, count, floor) in floors {
        assert!(count >= floor, "{what}: {count} below the floor {floor} ({c})");
    }
}
