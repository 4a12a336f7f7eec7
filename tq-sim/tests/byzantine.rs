//! The byzantine preset: a compromised member that replays, forges and
//! floods, and damaged disks. Runs pass, are deterministic and replay from
//! their logs, and the attacks and corruptions really happen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use tq_sim::event::{read_log, write_log};
use tq_sim::{Event, FaultPreset, SimOptions, World, run};

fn options(seed: u64) -> SimOptions {
    SimOptions { faults: FaultPreset::Byzantine, ..SimOptions::new(seed) }
}

#[test]
fn a_compromised_member_is_chosen_from_the_seed_among_the_first_members() {
    let a = World::new(options(3));
    let b = World::new(options(3));
    let attacker = a.compromised().cloned().expect("byzantine runs have an attacker");
    assert_eq!(b.compromised(), Some(&attacker));
    let first = (8 / 2) + 1;
    assert!((0..first).any(|i| tq_sim::world::sled_id(i) == attacker));
    // Other presets have no attacker.
    let light = World::new(SimOptions { faults: FaultPreset::Light, ..SimOptions::new(3) });
    assert_eq!(light.compromised(), None);
}

#[test]
fn byzantine_seeds_pass_and_replay_with_every_digest() {
    for seed in 0..4 {
        let outcome = run(&options(seed), true);
        assert!(outcome.ok(), "seed {seed}: {:?} {:?}", outcome.failure, outcome.liveness);
        let attacks =
            outcome.log.iter().filter(|e| matches!(e.event, Event::Attack { .. })).count();
        assert!(attacks > 0, "seed {seed} attacked nobody");
        let again = run(&options(seed), true);
        assert_eq!(again.log, outcome.log, "seed {seed}: same events and digests");
        let mut bytes = Vec::new();
        write_log(&mut bytes, &outcome.header(), &outcome.log).unwrap();
        let (header, entries) = read_log(bytes.as_slice()).unwrap();
        let r = tq_sim::replay::replay(&header, &entries, None);
        assert_eq!(r.divergence, None, "seed {seed}");
        assert_eq!(r.world.digest(), outcome.digest);
        assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
    }
}

/// Every kind of injection and the disk fault happen over 50 seeds, and
/// every damaged disk read back was refused (detected), never decoded.
#[test]
fn every_attack_and_disk_corruption_happens() {
    let ex = tq_sim::explore::explore(&options(0), 0..50, 2);
    assert!(ex.failures.is_empty(), "{:?}", ex.failures.first().map(|f| &f.failure));
    let c = ex.coverage;
    println!("coverage: {c}");
    let b = c.byzantine;
    for (what, n) in [
        ("replays", b.replays),
        ("forged_prepares", b.forged_prepares),
        ("forged_commit_advances", b.forged_commit_advances),
        ("forged_expunged", b.forged_expunged),
        ("get_shares", b.get_shares),
        ("mutated_shares", b.mutated_shares),
        ("flooded", b.flooded),
        ("corrupted_disks", c.corrupted_disks),
    ] {
        assert!(n > 0, "{what} never happened ({c})");
    }
    assert_eq!(c.corruptions_detected, c.corrupted_disks, "every damaged disk refused");
}
