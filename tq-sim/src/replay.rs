//! Re-executing a saved event log.

use serde::Serialize;

use crate::event::{LogEntry, LogHeader};
use crate::invariants::Violation;
use crate::simulation::Simulation;
use crate::world::World;

/// Where a replay diverged from the log.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Divergence {
    /// The step whose digest differs.
    pub step: u64,
    /// The digest recorded in the log.
    pub logged: String,
    /// The digest the replay produced.
    pub replayed: String,
}

/// The result of a replay.
pub struct Replay {
    /// The world after the last replayed step.
    pub world: World,
    /// Steps replayed.
    pub steps: u64,
    /// The first step whose digest differs, if any.
    pub divergence: Option<Divergence>,
    /// The safety violations found while replaying, in the order found.
    pub violations: Vec<Violation>,
}

/// Re-applies the events of a log to a world built from its header, checking
/// every step's digest and every safety invariant, and stops after step
/// `until` (inclusive) if given or at the first divergence.
pub fn replay(header: &LogHeader, entries: &[LogEntry], until: Option<u64>) -> Replay {
    let mut sim = Simulation::new(header.options.clone());
    let mut steps = 0u64;
    let mut divergence = None;
    for entry in entries {
        if until.is_some_and(|u| entry.step > u) {
            break;
        }
        sim.apply(&entry.event);
        steps = steps.saturating_add(1);
        let replayed = sim.world().digest();
        if replayed != entry.digest {
            divergence =
                Some(Divergence { step: entry.step, logged: entry.digest.clone(), replayed });
            break;
        }
    }
    let violations = sim.violations().to_vec();
    Replay { world: sim.into_world(), steps, divergence, violations }
}
