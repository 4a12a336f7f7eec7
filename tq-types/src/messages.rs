//! Peer messages between nodes and requests from the control plane to a node.

use serde::{Deserialize, Serialize};

use crate::authority::CommitCertificate;
use crate::config::{CommittedConfig, Configuration, Share};
use crate::ids::{BaseboardId, Epoch, RackId};

/// A peer message with its addressing, as queued by a node for sending over
/// an authenticated link.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The destination node.
    pub to: BaseboardId,
    /// The sending node.
    pub from: BaseboardId,
    /// The message.
    pub msg: PeerMsg,
}

/// A message from one node to another.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PeerMsg {
    /// The sender's rack; receivers drop messages for another rack.
    pub rack_id: RackId,
    /// What the message says.
    pub kind: PeerMsgKind,
}

/// The kinds of peer message (docs/protocol.md section 3.2).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerMsgKind {
    /// Coordinator to member: store this configuration and your share of it.
    Prepare {
        /// The new configuration.
        config: Configuration,
        /// The receiver's share of the new rack secret.
        share: Share,
    },
    /// Member to coordinator: the configuration and share for this epoch are
    /// durably stored.
    PrepareAck(Epoch),
    /// Ask for the receiver's share of this epoch.
    GetShare(Epoch),
    /// The sender's share of `epoch`.
    Share {
        /// The epoch the share belongs to.
        epoch: Epoch,
        /// The sender's share.
        share: Share,
    },
    /// The asker is behind: this newer configuration has been committed
    /// (with the authority's certificate).
    CommitAdvance(CommittedConfig),
    /// The receiver was removed from the rack: this committed configuration
    /// (with the authority's certificate) leaves it out.
    Expunged(CommittedConfig),
}

impl PeerMsgKind {
    /// A short name for logs, without any payload.
    pub fn name(&self) -> &'static str {
        match self {
            PeerMsgKind::Prepare { .. } => "prepare",
            PeerMsgKind::PrepareAck(_) => "prepare_ack",
            PeerMsgKind::GetShare(_) => "get_share",
            PeerMsgKind::Share { .. } => "share",
            PeerMsgKind::CommitAdvance(_) => "commit_advance",
            PeerMsgKind::Expunged(_) => "expunged",
        }
    }
}

/// Control plane to a prepared member: commit this epoch.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CommitRequest {
    /// The rack.
    pub rack_id: RackId,
    /// The epoch to commit.
    pub epoch: Epoch,
    /// The authority's certificate that the configuration of `epoch` the
    /// member prepared is committed.
    pub certificate: CommitCertificate,
}

/// Control plane to a member that never acknowledged the prepare: this
/// configuration is committed; fetch shares and compute your own.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PrepareAndCommitRequest {
    /// The committed configuration, rebuilt from the control plane's ledger.
    pub config: Configuration,
    /// The authority's certificate that `config` is committed.
    pub certificate: CommitCertificate,
}
