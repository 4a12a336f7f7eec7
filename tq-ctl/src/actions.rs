//! Carrying out the driver's actions against the sled agents' control APIs
//! (HTTP/JSON over mutual TLS, [`tq_node::api::client`]), and turning each
//! answer into the report the control plane takes back.

use std::collections::BTreeMap;
use std::time::Duration;

use tq_node::api::client::{CallError, ControlClient};
use tq_node::tls::Identity;
use tq_types::{BaseboardId, CommitStatus, CoordinatorStatus, Epoch, ReconfigurationError};
use trust_quorum::control::{ControlAction, MemberCommitError};

use crate::config::CtlConfig;

/// How long one call to an agent may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What came back from one action.
#[derive(Debug)]
pub(crate) enum Outcome {
    Reconfigure { epoch: Epoch, from: BaseboardId, result: Result<(), ReconfigurationError> },
    Status { epoch: Epoch, from: BaseboardId, status: Option<CoordinatorStatus> },
    Commit { epoch: Epoch, member: BaseboardId, result: Result<CommitStatus, MemberCommitError> },
    Activated { member: BaseboardId },
    Unreachable { node: BaseboardId },
}

/// One control-API client per sled of the inventory.
pub(crate) struct Agents(BTreeMap<BaseboardId, ControlClient>);

impl Agents {
    /// Clients for every sled in `config`'s inventory, presenting
    /// `identity`.
    pub(crate) fn new(config: &CtlConfig, identity: &Identity) -> Result<Agents, CallError> {
        let clients = config
            .sleds
            .iter()
            .map(|s| {
                ControlClient::new(identity, s.id.clone(), s.control, CALL_TIMEOUT)
                    .map(|c| (s.id.clone(), c))
            })
            .collect::<Result<_, _>>()?;
        Ok(Agents(clients))
    }

    /// Carries out `action`. Requests go straight to the member; the
    /// reference's relays through another member are not needed on one
    /// network.
    pub(crate) async fn perform(&self, action: ControlAction) -> Outcome {
        let target = match &action {
            ControlAction::Reconfigure { to, .. } | ControlAction::PollCoordinator { to, .. } => to,
            ControlAction::Commit { member, .. }
            | ControlAction::PrepareAndCommit { member, .. }
            | ControlAction::Activate { member } => member,
        }
        .clone();
        let Some(client) = self.0.get(&target) else {
            tracing::warn!(sled = %target, "sled not in the inventory");
            return Outcome::Unreachable { node: target };
        };
        let unreachable = |error: CallError| {
            match &error {
                CallError::WrongSled { .. } => {
                    tracing::warn!(sled = %target, %error, "refused answer")
                }
                _ => tracing::debug!(sled = %target, %error, "no answer"),
            }
            Outcome::Unreachable { node: target.clone() }
        };
        match action {
            ControlAction::Reconfigure { to, msg } => match client.reconfigure(&msg).await {
                Ok(result) => Outcome::Reconfigure { epoch: msg.msg.epoch, from: to, result },
                Err(e) => unreachable(e),
            },
            ControlAction::PollCoordinator { to, epoch } => match client.coordinator().await {
                Ok(status) => Outcome::Status { epoch, from: to, status },
                Err(e) => unreachable(e),
            },
            ControlAction::Commit { member, req, .. } => match client.commit(&req).await {
                Ok(r) => Outcome::Commit {
                    epoch: req.epoch,
                    member,
                    result: r.map_err(MemberCommitError::Commit),
                },
                Err(e) => unreachable(e),
            },
            ControlAction::PrepareAndCommit { member, req, .. } => {
                match client.prepare_and_commit(&req).await {
                    Ok(r) => Outcome::Commit {
                        epoch: req.config.epoch,
                        member,
                        result: r.map_err(MemberCommitError::PrepareAndCommit),
                    },
                    Err(e) => unreachable(e),
                }
            }
            // In service: its agent answers. (A real rack starts services
            // here.)
            ControlAction::Activate { member } => match client.status().await {
                Ok(_) => Outcome::Activated { member },
                Err(e) => unreachable(e),
            },
        }
    }
}
