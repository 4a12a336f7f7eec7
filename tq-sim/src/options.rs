//! The options of one run; with the seed they determine the run exactly.

use serde::{Deserialize, Serialize};
#[cfg(feature = "planted-bugs")]
pub use trust_quorum::PlantedBug;

use crate::faults::FaultPreset;
use crate::policy::SimPolicy;

/// The options of one run; with the seed they determine the run exactly.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SimOptions {
    /// The seed every random choice is drawn from.
    pub seed: u64,
    /// How many events the fault phase runs.
    pub steps: u64,
    /// How many sleds the rack's universe has (members and spares).
    pub nodes: usize,
    /// Which faults are injected.
    pub faults: FaultPreset,
    /// How many control-plane replicas share the ledger.
    pub replicas: usize,
    /// A deliberately wrong behaviour to plant in every node and replica
    /// (self-test; needs the `planted-bugs` feature: without it no bug can
    /// be named, and a log that names one does not load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planted_bug: Option<PlantedBug>,
    /// The control-plane policy; `None` (the default, and what a log
    /// header without one means) draws it from the seed
    /// ([`SimPolicy::draw`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<SimPolicy>,
}

impl SimOptions {
    /// Options with defaults for everything but the seed.
    pub fn new(seed: u64) -> Self {
        SimOptions {
            seed,
            steps: 2000,
            nodes: 8,
            faults: FaultPreset::Swarm,
            replicas: 2,
            planted_bug: None,
            policy: None,
        }
    }

    /// The policy the run uses: the one named, or the one drawn from the
    /// seed for a rack of `max(3, nodes)` sleds.
    pub fn policy_in_force(&self) -> SimPolicy {
        self.policy.unwrap_or_else(|| SimPolicy::draw(self.seed, self.nodes.max(3)))
    }
}

/// Without the `planted-bugs` feature no bug exists: this type has no
/// values, so `planted_bug` is always `None`.
#[cfg(not(feature = "planted-bugs"))]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum PlantedBug {}
