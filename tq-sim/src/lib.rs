//! A deterministic simulator of a whole trust-quorum rack.
//!
//! It drives the real [`trust_quorum::Node`]s and
//! [`trust_quorum::control::ControlPlane`] exactly as an embedder would (call,
//! persist if changed, then send) over a simulated network, with faults drawn
//! from one seed, checks every safety invariant after every event, and ends
//! every run with a liveness phase. The same seed and options always give the
//! same events and the same final state digest, on any machine.
#![forbid(unsafe_code)]

pub mod adversary;
pub mod control;
pub mod coverage;
pub mod demo;
pub mod event;
pub mod explore;
pub mod faults;
pub mod fuzzing;
pub mod invariants;
mod ledger_rules;
pub mod liveness;
pub mod network;
mod observation;
mod options;
pub mod policy;
mod rack;
mod random;
pub mod replay;
pub mod simulation;
pub mod view;
mod violation;
pub mod world;

use serde::{Deserialize, Serialize};

pub use coverage::Coverage;
pub use event::{Event, LogEntry, LogHeader};
pub use faults::{FaultPlan, FaultPreset};
pub use invariants::Violation;
pub use options::{PlantedBug, SimOptions};
pub use policy::SimPolicy;
pub use simulation::Simulation;
pub use world::World;

/// The first violation of a run, with where it happened.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Failure {
    /// The broken invariant.
    pub violation: Violation,
    /// The index of the event after which it was seen.
    pub step: u64,
}

/// What one run found.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The options of the run.
    pub options: SimOptions,
    /// Events applied, liveness phase included.
    pub events: u64,
    /// The first safety violation, if any.
    pub failure: Option<Failure>,
    /// Why the liveness phase failed, if it did.
    pub liveness: Result<(), String>,
    /// The digest of the state after the last event.
    pub digest: String,
    /// The event log, when it was kept.
    pub log: Vec<LogEntry>,
    /// What the run exercised.
    pub coverage: Coverage,
    /// How many exemptions the checks used ([`invariants::Checker::exemptions_used`]).
    pub exemptions_used: u64,
}

impl RunOutcome {
    /// Whether the run found no violation and passed liveness.
    pub fn ok(&self) -> bool {
        self.failure.is_none() && self.liveness.is_ok()
    }

    /// The log header of this run.
    pub fn header(&self) -> LogHeader {
        LogHeader { version: env!("CARGO_PKG_VERSION").to_owned(), options: self.options.clone() }
    }
}

/// Runs one seed: the fault phase of `options.steps` events, then the
/// liveness phase. With `keep_log`, every event is logged with the digest
/// after it.
pub fn run(options: &SimOptions, keep_log: bool) -> RunOutcome {
    let mut sim = Simulation::new(options.clone());
    let mut log = Vec::new();
    let mut step = 0u64;
    let mut failure = None;
    let mut tally = coverage::Tally::default();
    let mut record = |sim: &mut Simulation, event: Event, step: &mut u64| {
        tally.before(&event, sim.world());
        sim.apply(&event);
        tally.after(sim.world());
        if keep_log {
            log.push(LogEntry { step: *step, event, digest: sim.world().digest() });
        }
        *step = step.saturating_add(1);
    };
    while step < options.steps {
        let event = sim.next_event();
        record(&mut sim, event, &mut step);
        if let Some(v) = sim.violations().first() {
            failure = Some(Failure { violation: v.clone(), step: step.saturating_sub(1) });
            break;
        }
    }
    let liveness = if failure.is_none() {
        let result = liveness::heal_and_drain(&mut sim, &mut |s, e| record(s, e, &mut step));
        if let Some(v) = sim.violations().first() {
            failure = Some(Failure { violation: v.clone(), step: step.saturating_sub(1) });
        }
        result
    } else {
        Err("safety_violation: not run after a safety violation".to_owned())
    };
    RunOutcome {
        options: options.clone(),
        events: step,
        failure,
        liveness,
        digest: sim.world().digest(),
        log,
        coverage: tally.finish(&sim),
        exemptions_used: sim.checker().exemptions_used(),
    }
}

/// The name of every safety invariant a run can report: the checker's
/// rules and the ledger rules (each has a firing test).
pub fn invariant_names() -> Vec<&'static str> {
    invariants::Checker::invariants()
        .iter()
        .copied()
        .chain(ledger_rules::LedgerRules::names())
        .collect()
}
