//! What the driver asks the embedder to send, one action per request
//! (docs/protocol.md section 5.5).

use serde::{Deserialize, Serialize};
use tq_types::{BaseboardId, CommitRequest, Epoch, PrepareAndCommitRequest, SignedReconfigure};

/// Something the embedder should send now, on behalf of the control plane.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// Ask `to` to coordinate the new configuration; sent once per epoch.
    /// Report the answer with
    /// [`ControlPlane::on_reconfigure_result`](super::ControlPlane::on_reconfigure_result).
    Reconfigure {
        /// The chosen coordinator.
        to: BaseboardId,
        /// The request, signed by the authority.
        msg: SignedReconfigure,
    },
    /// Ask the coordinator for its status. Report the answer with
    /// [`ControlPlane::on_coordinator_status`](super::ControlPlane::on_coordinator_status),
    /// a failure to reach it with
    /// [`ControlPlane::on_unreachable`](super::ControlPlane::on_unreachable).
    PollCoordinator {
        /// The coordinator.
        to: BaseboardId,
        /// The epoch it coordinates.
        epoch: Epoch,
    },
    /// Through the proxy `via`, ask the prepared `member` to commit. Report
    /// the answer with
    /// [`ControlPlane::on_commit_result`](super::ControlPlane::on_commit_result).
    Commit {
        /// The member to commit.
        member: BaseboardId,
        /// The member in service relaying the request.
        via: BaseboardId,
        /// The request.
        req: CommitRequest,
    },
    /// Through the proxy `via`, give `member`, which never acknowledged the
    /// prepare (or lost it), the committed configuration. Report the answer
    /// with [`ControlPlane::on_commit_result`](super::ControlPlane::on_commit_result).
    PrepareAndCommit {
        /// The member to commit.
        member: BaseboardId,
        /// The member in service relaying the request.
        via: BaseboardId,
        /// The request, with the configuration rebuilt from the ledger.
        req: PrepareAndCommitRequest,
    },
    /// Put the newly joined `member` in service (idempotent). Report success
    /// with [`ControlPlane::on_activated`](super::ControlPlane::on_activated).
    Activate {
        /// The member to start.
        member: BaseboardId,
    },
}
