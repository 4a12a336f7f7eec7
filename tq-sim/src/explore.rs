//! Many seeds, in parallel, with what they exercised summed.

use std::sync::Mutex;
use std::thread;

use crate::{Coverage, RunOutcome, SimOptions, run};

/// The combined result of exploring a range of seeds.
#[derive(Debug)]
pub struct Exploration {
    /// Seeds run.
    pub seeds: u64,
    /// Events applied over all seeds.
    pub events: u64,
    /// Runs that failed, in seed order.
    pub failures: Vec<RunOutcome>,
    /// A digest over every run's digest, in seed order.
    pub digest: String,
    /// What the runs exercised, summed.
    pub coverage: Coverage,
    /// Exemptions the checks used, summed over the runs.
    pub exemptions_used: u64,
    /// The most exemptions one run used.
    pub max_exemptions: u64,
}

/// Runs every seed of `seeds` with `template`'s other options on `jobs`
/// threads. Results are combined in seed order, so the outcome does not
/// depend on `jobs`.
pub fn explore(template: &SimOptions, seeds: std::ops::Range<u64>, jobs: usize) -> Exploration {
    let total = seeds.end.saturating_sub(seeds.start);
    let next = Mutex::new(seeds.start);
    let results: Mutex<Vec<(u64, RunOutcome)>> = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let seed = {
                        let Ok(mut n) = next.lock() else { return };
                        if *n >= seeds.end {
                            return;
                        }
                        let seed = *n;
                        *n = n.saturating_add(1);
                        seed
                    };
                    let options = SimOptions { seed, ..template.clone() };
                    let outcome = run(&options, false);
                    if let Ok(mut r) = results.lock() {
                        r.push((seed, outcome));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(seed, _)| *seed);
    let mut h = blake3::Hasher::new();
    let mut events = 0u64;
    let mut failures = Vec::new();
    let mut coverage = Coverage::default();
    let (mut exemptions_used, mut max_exemptions) = (0u64, 0u64);
    for (_, outcome) in results {
        h.update(outcome.digest.as_bytes());
        events = events.saturating_add(outcome.events);
        coverage.add(&outcome.coverage);
        exemptions_used = exemptions_used.saturating_add(outcome.exemptions_used);
        max_exemptions = max_exemptions.max(outcome.exemptions_used);
        if !outcome.ok() {
            failures.push(outcome);
        }
    }
    let digest = hex::encode(h.finalize().as_bytes().get(..8).unwrap_or_default());
    Exploration {
        seeds: total,
        events,
        failures,
        digest,
        coverage,
        exemptions_used,
        max_exemptions,
    }
}
