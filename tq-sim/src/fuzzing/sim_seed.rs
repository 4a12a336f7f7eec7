//! `sim_seed`: one short simulator run from arbitrary options.

use arbitrary::{Arbitrary, Unstructured};

use crate::faults::FaultPreset;
use crate::options::SimOptions;
use crate::run;

/// The options `sim_seed` derives from its input.
#[derive(Debug, Arbitrary)]
struct SimInput {
    seed: u64,
    steps: u16,
    nodes: u8,
    preset: u8,
    replicas: u8,
}

/// `sim_seed`: an arbitrary seed and options into one short simulator run:
/// no violation, and liveness holds.
pub fn sim_seed(data: &[u8]) {
    let Ok(input) = Unstructured::new(data).arbitrary::<SimInput>() else { return };
    let faults = match input.preset % 4 {
        0 => FaultPreset::None,
        1 => FaultPreset::Light,
        2 => FaultPreset::Swarm,
        _ => FaultPreset::Heavy,
    };
    let options = SimOptions {
        seed: input.seed,
        steps: u64::from(input.steps % 600),
        nodes: usize::from(3 + input.nodes % 8),
        faults,
        replicas: usize::from(1 + input.replicas % 3),
        planted_bug: None,
        policy: None,
    };
    let outcome = run(&options, false);
    if let Some(f) = &outcome.failure {
        panic!(
            "{options:?}: invariant {} violated at event {}: {}",
            f.violation.invariant, f.step, f.violation.detail
        );
    }
    if let Err(e) = &outcome.liveness {
        panic!("{options:?}: liveness failed: {e}");
    }
}
