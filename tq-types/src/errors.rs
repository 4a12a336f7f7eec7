//! Typed errors a node returns to the control plane. Each variant names what
//! an operator or embedder needs in order to act, and none carries secret
//! material.

use serde::{Deserialize, Serialize};

use crate::ids::{BaseboardId, Epoch, RackId, Threshold};

/// Why a configuration (in a request or a message) is malformed.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidConfiguration {
    /// The membership is outside 3..=32.
    #[error("membership of {members} is outside 3..=32")]
    MembershipSize {
        /// The proposed number of members.
        members: usize,
    },
    /// The threshold is outside 2..=31.
    #[error("threshold {threshold} is outside 2..=31")]
    Threshold {
        /// The proposed threshold.
        threshold: Threshold,
    },
    /// The threshold is not below the membership size.
    #[error("threshold {threshold} must be below the membership size {members}")]
    ThresholdNotBelowMembers {
        /// The proposed threshold.
        threshold: Threshold,
        /// The proposed number of members.
        members: usize,
    },
    /// The coordinator is not a member.
    #[error("coordinator {coordinator} is not a member")]
    CoordinatorNotMember {
        /// The named coordinator.
        coordinator: BaseboardId,
    },
    /// A member's part or serial number is longer than a node stores.
    #[error("an id field of {len} bytes is longer than {max}")]
    IdTooLong {
        /// The length of the longest field.
        len: usize,
        /// The most a node stores.
        max: usize,
    },
    /// The sealed prior secrets are longer than a node stores.
    #[error("sealed secrets of {len} bytes are longer than {max}")]
    SealedDataTooLong {
        /// Their length.
        len: usize,
        /// The most a node stores.
        max: usize,
    },
}

/// A request was for a different rack than the node's.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error, Serialize, Deserialize)]
#[error("request for rack {got} but this node belongs to rack {expected}")]
pub struct RackIdMismatch {
    /// The node's rack.
    pub expected: RackId,
    /// The request's rack.
    pub got: RackId,
}

/// Why a node refuses a control-plane request whatever it asks: the refusal
/// that coordinate, commit and prepare-and-commit requests share.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRefusal {
    /// The request is for another rack.
    #[error(transparent)]
    RackIdMismatch(RackIdMismatch),
    /// The node was removed from the rack at `epoch`, and the request is not
    /// about a later configuration that lists it (docs/protocol.md section
    /// 4.8).
    #[error("node was expunged at epoch {epoch} (told by {from})")]
    Expunged {
        /// The epoch it was removed at.
        epoch: Epoch,
        /// The peer that told it.
        from: BaseboardId,
    },
    /// The request does not carry a valid decision of the control plane's
    /// authority (docs/protocol.md section 8.4).
    #[error("not authorized: {0}")]
    Unauthorized(AuthorityError),
}

/// Why a decision attributed to the control plane's authority was refused
/// (docs/protocol.md section 8.4). No variant carries key material.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorityError {
    /// The node's authority key is not a valid ed25519 public key.
    #[error("the authority key is not a valid ed25519 public key")]
    BadKey,
    /// The signature does not verify under the authority key.
    #[error("bad authority signature")]
    BadSignature,
    /// The signed request and the configuration disagree.
    #[error("the configuration's {0} differs from the signed request")]
    ConfigMismatch(SignedField),
    /// The commit certificate names another rack, epoch or configuration.
    #[error("the commit certificate names another {0}")]
    CertificateMismatch(SignedField),
    /// The signed request names another coordinator than this node.
    #[error("the signed request names another coordinator")]
    NotTheCoordinator,
    /// A value could not be encoded for signing.
    #[error("cannot encode the signed value")]
    Encoding,
}

/// A field of a signed decision that must agree with what it is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedField {
    /// The rack id.
    Rack,
    /// The epoch.
    Epoch,
    /// The coordinator.
    Coordinator,
    /// The threshold.
    Threshold,
    /// The membership.
    Members,
    /// Whether the configuration builds on a committed epoch.
    LastCommittedEpoch,
    /// The configuration (by digest).
    Configuration,
}

impl core::fmt::Display for SignedField {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SignedField::Rack => "rack",
            SignedField::Epoch => "epoch",
            SignedField::Coordinator => "coordinator",
            SignedField::Threshold => "threshold",
            SignedField::Members => "members",
            SignedField::LastCommittedEpoch => "last committed epoch",
            SignedField::Configuration => "configuration",
        })
    }
}

/// Why a node refused to coordinate a reconfiguration.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconfigurationError {
    /// The node asked to coordinate is not in the new membership.
    #[error("coordinator {node} is not in the proposed membership")]
    CoordinatorNotMember {
        /// The node asked to coordinate.
        node: BaseboardId,
    },
    /// Membership size or threshold is out of bounds.
    #[error("invalid configuration: {0}")]
    Invalid(InvalidConfiguration),
    /// The node refuses every request of the control plane (another rack,
    /// or expunged).
    #[error(transparent)]
    Refused(#[from] NodeRefusal),
    /// The request builds on a different committed epoch than the node's.
    #[error(
        "request builds on committed epoch {requested:?} but the node's latest committed epoch is {actual:?}"
    )]
    LastCommittedEpochMismatch {
        /// The request's last committed epoch.
        requested: Option<Epoch>,
        /// The node's latest committed epoch.
        actual: Option<Epoch>,
    },
    /// The node already knows a configuration at this epoch or later.
    #[error("epoch {requested} is not newer than the node's latest known configuration {latest}")]
    StaleEpoch {
        /// The request's epoch.
        requested: Epoch,
        /// The node's latest configuration epoch.
        latest: Epoch,
    },
    /// The node could not start coordinating because its own state is
    /// inconsistent; an alarm describes why.
    #[error("coordination of epoch {epoch} failed; see the node's alarms")]
    CoordinationFailed {
        /// The request's epoch.
        epoch: Epoch,
    },
    /// The node already coordinates an equal or newer epoch with different
    /// content.
    #[error(
        "node already coordinates epoch {coordinating}; request for epoch {requested} conflicts"
    )]
    AlreadyCoordinating {
        /// The epoch being coordinated.
        coordinating: Epoch,
        /// The request's epoch.
        requested: Epoch,
    },
}

/// Why a node refused a commit request.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitError {
    /// The node refuses every request of the control plane (another rack,
    /// or expunged).
    #[error(transparent)]
    Refused(#[from] NodeRefusal),
    /// The node holds no configuration and share for the epoch (it never
    /// prepared it, or lost its disk). Send a prepare-and-commit instead.
    #[error("epoch {0} is not prepared on this node")]
    NotPrepared(Epoch),
}

/// Why a node refused a prepare-and-commit request.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrepareAndCommitError {
    /// The node refuses every request of the control plane (another rack,
    /// or expunged).
    #[error(transparent)]
    Refused(#[from] NodeRefusal),
    /// The node is not a member of the configuration.
    #[error("node is not a member of the configuration at epoch {0}")]
    NotAMember(Epoch),
    /// The configuration is malformed.
    #[error("invalid configuration: {0}")]
    Invalid(InvalidConfiguration),
    /// The node stores a different configuration for this epoch; an alarm
    /// was raised.
    #[error("a different configuration is stored for epoch {0}")]
    ConflictingConfiguration(Epoch),
}

/// Why a rack secret cannot be returned.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadRackSecretError {
    /// The node has committed nothing yet.
    #[error("no configuration has been committed on this node")]
    NoCommittedConfigurations,
    /// The requested epoch is above the latest committed one.
    #[error("epoch {0} is not committed on this node")]
    NotCommitted(Epoch),
    /// The epoch was aborted or is not an ancestor of the latest committed
    /// configuration; its secret is not carried forward.
    #[error("the secret of epoch {0} is not available")]
    NotAvailable(Epoch),
    /// An alarm was raised; see the node's status.
    #[error("an alarm was raised while loading the secret of epoch {0}")]
    Alarm(Epoch),
    /// The node was removed from the rack.
    #[error("node was expunged at epoch {epoch}")]
    Expunged {
        /// The epoch it was removed at.
        epoch: Epoch,
    },
}
