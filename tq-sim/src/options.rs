//! The options of one run; with the seed they determine the run exactly.

use serde::{Deserialize, Serialize};
#[cfg(feature = "planted-bugs")]
pub use trust_quorum::PlantedBug;

use crate::faults::FaultPreset;

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
        }
    }
}

/// Without the `planted-bugs` feature no bug exists: this type has no
/// values, so `planted_bug` is always `None`.
#[cfg(not(feature = "planted-bugs"))]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum PlantedBug {}
