//! Status views a node reports to its embedder and the control plane.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::authority::CommitCertificate;
use crate::config::Configuration;
use crate::ids::{BaseboardId, Epoch, RackId};

/// The answer of a node to a commit or prepare-and-commit request.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitStatus {
    /// The epoch is committed on this node. Only this answer counts as an
    /// acknowledgement.
    Committed,
    /// The node has not committed yet (for example, it is still collecting
    /// shares to compute its own); ask again later.
    Pending,
}

/// What a coordinator reports when the control plane polls it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CoordinatorStatus {
    /// The configuration being prepared. While the coordinator still collects
    /// old shares it carries digests but no sealed secrets.
    pub config: Configuration,
    /// Members that acknowledged the prepare, the coordinator included; empty
    /// while old shares are still being collected.
    pub acked_prepares: BTreeSet<BaseboardId>,
}

/// Where and from whom a node learned it was removed from the rack, with
/// the authority's proof.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ExpungedMetadata {
    /// The epoch at which the node was found removed.
    pub epoch: Epoch,
    /// The peer that said so.
    pub from: BaseboardId,
    /// The authority's certificate that the configuration of `epoch`, which
    /// leaves the node out, is committed: a stored marker checks itself
    /// against it when read back.
    pub certificate: CommitCertificate,
}

/// A state that should be impossible, recorded by a node for operators. The
/// node keeps running; alarms live in memory only.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "alarm")]
pub enum Alarm {
    /// Two different configurations were seen for one epoch.
    MismatchedConfigurations {
        /// The epoch with two configurations.
        epoch: Epoch,
        /// Who sent the conflicting configuration (`None` for the control
        /// plane).
        from: Option<BaseboardId>,
    },
    /// Computing this node's share from its peers' shares failed.
    ShareComputationFailed {
        /// The epoch whose share could not be computed.
        epoch: Epoch,
        /// What went wrong.
        reason: ShareComputationFailure,
    },
    /// A secret load found a collector for a newer committed epoch than the
    /// node's latest committed one: committed state was lost.
    CommittedConfigurationLost {
        /// The node's latest committed epoch.
        latest_committed_epoch: Epoch,
        /// The epoch the collector was gathering shares for.
        collecting_epoch: Epoch,
    },
    /// The prior rack secrets sealed in a configuration failed to decrypt.
    RackSecretDecryptionFailed {
        /// The configuration carrying the sealed secrets.
        epoch: Epoch,
    },
    /// Rebuilding a rack secret from validated shares failed.
    RackSecretReconstructionFailed {
        /// The epoch whose secret could not be rebuilt.
        epoch: Epoch,
    },
    /// This node's own durable state turned out corrupt at `epoch` when it
    /// was about to be used; the corrupt share or configuration was not used.
    CorruptState {
        /// The epoch concerned.
        epoch: Epoch,
        /// What is wrong.
        reason: StateCorruption,
    },
}

/// What [`Alarm::CorruptState`] found wrong in a node's own durable state.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateCorruption {
    /// The node's own share does not match its digest in the stored
    /// configuration (or that configuration is missing or does not list the
    /// node).
    ShareDigestMismatch,
    /// The epoch is recorded as committed but its configuration is missing.
    CommittedConfigurationMissing,
}

/// Why computing a missed share failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareComputationFailure {
    /// Interpolation over the collected shares failed.
    Interpolation,
    /// The computed share does not match this node's digest in the
    /// configuration.
    DigestMismatch,
}

/// A node's status for its embedder and operators.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node.
    pub id: BaseboardId,
    /// The rack of its newest stored configuration, if any.
    pub rack_id: Option<RackId>,
    /// Its newest stored configuration's epoch.
    pub latest_config: Option<Epoch>,
    /// Its newest committed epoch.
    pub latest_committed: Option<Epoch>,
    /// Set once the node learned it was removed.
    pub expunged: Option<ExpungedMetadata>,
    /// The epoch it coordinates, if any.
    pub coordinating: Option<Epoch>,
    /// The epoch whose share it is computing, if any.
    pub computing_share: Option<Epoch>,
    /// Connected peers.
    pub connected: BTreeSet<BaseboardId>,
    /// Alarms raised since the node started.
    pub alarms: Vec<Alarm>,
}
