//! The fixture story on a simulated 4-sled rack: epoch 1 with three sleds,
//! then "add sleds" for the fourth, printed in the shapes of the fixtures.

use serde::Serialize;
use tq_types::Epoch;
use tq_types::membership::{ConfigState, MemberState, RackMembershipStatus, TrustQuorumConfig};

use crate::event::Event;
use crate::faults::FaultPreset;
use crate::liveness;
use crate::options::SimOptions;
use crate::policy::SimPolicy;
use crate::simulation::Simulation;
use crate::world::{World, sled_id};

/// What the demo shows.
#[derive(Clone, Debug, Serialize)]
pub struct Demo {
    /// The detailed view of epoch 2: right after the request, after the
    /// coordinator reported prepare acknowledgements, and after commit.
    pub stages: Vec<TrustQuorumConfig>,
    /// The operator's status of epoch 2.
    pub status: RackMembershipStatus,
    /// The driver's text report of its last commit pass.
    pub report: String,
}

impl Demo {
    /// The demo as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "stages": self.stages, "status": self.status, "report": self.report })
    }

    /// The demo as text for a terminal.
    pub fn to_text(&self) -> String {
        let titles = [
            "epoch 2 right after the add-sleds request (all members unacked)",
            "epoch 2 after the coordinator reported prepare acknowledgements",
            "epoch 2 after commit",
        ];
        let mut out = String::new();
        for (title, stage) in titles.iter().zip(&self.stages) {
            out.push_str(&format!("== {title}\n"));
            out.push_str(&serde_json::to_string_pretty(stage).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("== membership status of epoch 2\n");
        out.push_str(&serde_json::to_string_pretty(&self.status).unwrap_or_default());
        out.push_str("\n== driver report\n");
        out.push_str(&self.report);
        if !self.report.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

/// Why the demo could not be told.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The rack did not reach a state the story needs.
    #[error("the simulated rack did not reach: {0}")]
    Stuck(&'static str),
    /// An invariant broke.
    #[error("invariant {0} violated")]
    Violation(String),
}

/// Steps `sim` with fault-free events until `done` holds.
fn drive(
    sim: &mut Simulation,
    what: &'static str,
    mut done: impl FnMut(&World) -> bool,
) -> Result<(), DemoError> {
    for _ in 0..liveness::MAX_LIVENESS_EVENTS {
        if let Some(v) = sim.violations().first() {
            return Err(DemoError::Violation(v.invariant.clone()));
        }
        if done(sim.world()) {
            return Ok(());
        }
        let e = sim.next_event();
        sim.apply(&e);
    }
    Err(DemoError::Stuck(what))
}

fn view(world: &World, epoch: Epoch) -> Option<TrustQuorumConfig> {
    world.control.views().remove(&epoch)
}

/// Tells the story.
pub fn run_demo() -> Result<Demo, DemoError> {
    let options = SimOptions {
        replicas: 1,
        nodes: 4,
        steps: 0,
        faults: FaultPreset::None,
        // The fixtures were captured with the add-sleds release's Z table
        // (N = 4 gives Z = 1), not the default.
        policy: Some(SimPolicy::FIXTURES),
        ..SimOptions::new(2026)
    };
    let mut sim = Simulation::new(options);
    sim.apply(&Event::BeginLiveness);
    let committed = |w: &World, e: u64| {
        view(w, Epoch(e)).is_some_and(|v| v.state == ConfigState::Committed)
            && w.control.pending_activations().is_empty()
            && w.control.is_idle()
            && w.rack.net.in_flight() == 0
    };
    drive(&mut sim, "epoch 1 committed", |w| committed(w, 1))?;

    sim.apply(&Event::AddSleds { replica: 0, sleds: vec![sled_id(3)] });
    let mut stages = Vec::new();
    stages.push(view(sim.world(), Epoch(2)).ok_or(DemoError::Stuck("epoch 2 proposed"))?);
    drive(&mut sim, "prepare acks recorded", |w| {
        view(w, Epoch(2))
            .is_some_and(|v| v.members.values().any(|m| m.state != MemberState::Unacked))
    })?;
    stages.push(view(sim.world(), Epoch(2)).ok_or(DemoError::Stuck("epoch 2 prepared"))?);
    drive(&mut sim, "epoch 2 committed", |w| committed(w, 2))?;
    stages.push(view(sim.world(), Epoch(2)).ok_or(DemoError::Stuck("epoch 2 committed"))?);
    let control = &sim.world().control;
    let status = control.observer().status(Epoch(2)).ok_or(DemoError::Stuck("epoch 2 status"))?;
    let report = control.last_report().ok_or(DemoError::Stuck("a commit pass"))?;
    Ok(Demo { stages, status, report })
}
