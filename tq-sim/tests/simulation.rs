//! The simulator's own behaviour: fixed-seed regressions per preset,
//! determinism, replay, and the CI-sized exploration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use tq_sim::event::{read_log, write_log};
use tq_sim::view::Reveal;
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

/// Runs that once found a defect (in the simulator or the protocol) stay
/// here for good: (seed, preset, sleds, steps).
const REGRESSIONS: &[(u64, FaultPreset, usize, u64)] = &[
    // A stale prepare-and-commit reached a sled reset for re-adding.
    (261, FaultPreset::Swarm, 8, 2000),
    // A repeated add used to reset sleds that had already prepared.
    (229, FaultPreset::Swarm, 8, 2000),
    (436, FaultPreset::Swarm, 8, 2000),
    // A lost message without a broken connection stalled a prepare.
    (10, FaultPreset::Swarm, 8, 2000),
    // Adds rejected before initialization used to wipe prepared sleds.
    (195, FaultPreset::Swarm, 8, 2000),
    (67, FaultPreset::Swarm, 8, 2000),
    (121, FaultPreset::Swarm, 8, 2000),
    (134, FaultPreset::Swarm, 8, 2000),
    // Re-adding an expunged sled without a reset could never commit.
    (1, FaultPreset::Heavy, 8, 2000),
    // An operator abort of the first configuration needs initialize again.
    (1, FaultPreset::None, 8, 2000),
    (1, FaultPreset::Light, 8, 2000),
    // A disk loss that left fewer than K holders (N = 3, Z = 0).
    (7, FaultPreset::Swarm, 4, 1000),
    // Disk loss after a committed member's ack was already in flight.
    (146, FaultPreset::Heavy, 3, 1000),
    (66, FaultPreset::Swarm, 3, 1000),
    (238, FaultPreset::Swarm, 3, 1000),
];

#[test]
fn regression_seeds_pass() {
    for (seed, faults, nodes, steps) in REGRESSIONS {
        assert_ok(&SimOptions { nodes: *nodes, steps: *steps, ..options(*seed, *faults) });
    }
}

/// Soak seed 15941 (8 sleds, 2 control-plane replicas): sled 06, removed and
/// wiped, is added back; a stale prepare-and-commit for an older epoch
/// reaches it first and a member answers that it was expunged. The later
/// configuration re-admits it (docs/protocol.md section 4.8) and the rack
/// settles. The test also checks that the run still tells that story.
#[test]
fn readded_sled_expunged_by_a_stale_request_is_readmitted() {
    let o = SimOptions { nodes: 8, replicas: 2, ..options(15941, FaultPreset::Swarm) };
    let outcome = run(&o, true);
    assert!(outcome.ok(), "{:?} / liveness {:?}", outcome.failure, outcome.liveness);
    let mut world = tq_sim::world::World::new(o);
    let sled = "node:PPP-PPPPPPP:00000000006";
    let mut expunged_at = None;
    for entry in &outcome.log {
        world.apply(&entry.event);
        let view = tq_sim::view::show(&world, sled, Reveal::Digests).unwrap();
        if let Some(epoch) = view["durable"]["expunged"]["epoch"].as_u64() {
            expunged_at.get_or_insert((entry.step, epoch));
        }
    }
    let (step, epoch) = expunged_at.expect("sled 06 is told it was expunged");
    assert_eq!(epoch, 15, "expunged at epoch 15 (step {step})");
    let end = tq_sim::view::show(&world, sled, Reveal::Digests).unwrap();
    assert!(end["durable"]["expunged"].is_null(), "re-admitted: {end}");
    let commits = end["durable"]["commits"].as_array().unwrap();
    assert_eq!(commits.last().and_then(|c| c.as_u64()), Some(16), "{end}");
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

/// CI's exploration: 200 swarm seeds of 2,000 events each.
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
}
