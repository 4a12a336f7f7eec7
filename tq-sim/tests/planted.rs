//! The simulator catches deliberately wrong behaviours: each planted bug is
//! found by exploring at most 200 seeds. Needs the `planted-bugs` feature.
#![cfg(feature = "planted-bugs")]
#![allow(clippy::unwrap_used, missing_docs)]

use tq_sim::PlantedBug;
use tq_sim::{FaultPreset, SimOptions, run};

/// The first seed below 200 whose run with `bug` fails, and the invariant.
fn first_catch(bug: PlantedBug) -> Option<(u64, String)> {
    (0..200).find_map(|seed| {
        let o = SimOptions {
            planted_bug: Some(bug),
            faults: FaultPreset::Swarm,
            ..SimOptions::new(seed)
        };
        let outcome = run(&o, false);
        let what = match (&outcome.failure, &outcome.liveness) {
            (Some(f), _) => f.violation.invariant.clone(),
            (None, Err(e)) => format!("liveness: {e}"),
            (None, Ok(())) => return None,
        };
        Some((seed, what))
    })
}

#[test]
fn commit_at_threshold_is_caught() {
    let (seed, what) = first_catch(PlantedBug::CommitAtThreshold).expect("never caught");
    println!("{:?} caught at seed {seed}: {what}", PlantedBug::CommitAtThreshold);
    assert!(what.contains("ledger") || what.contains("commit_safety"), "seed {seed}: {what}");
}

#[test]
fn skipping_the_share_digest_check_is_caught() {
    let (seed, what) = first_catch(PlantedBug::SkipShareDigestCheck).expect("never caught");
    println!("{:?} caught at seed {seed}: {what}", PlantedBug::SkipShareDigestCheck);
    assert!(!what.is_empty(), "seed {seed}");
}

#[test]
fn acking_a_stale_prepare_is_caught() {
    let (seed, what) = first_catch(PlantedBug::AckStalePrepare).expect("never caught");
    println!("{:?} caught at seed {seed}: {what}", PlantedBug::AckStalePrepare);
    assert!(!what.is_empty(), "seed {seed}: {what}");
}
