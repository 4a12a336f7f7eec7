//! Carrying out the driver's actions against the sled agents' control APIs
//! (HTTP/JSON), and turning each answer into the report the control plane
//! takes back.

use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use tq_types::{
    BaseboardId, CommitError, CommitStatus, CoordinatorStatus, Epoch, PrepareAndCommitError,
    ReconfigurationError,
};
use trust_quorum::control::{ControlAction, MemberCommitError};

use crate::config::CtlConfig;

/// What came back from one action.
#[derive(Debug)]
pub(crate) enum Outcome {
    Reconfigure { epoch: Epoch, from: BaseboardId, result: Result<(), ReconfigurationError> },
    Status { epoch: Epoch, from: BaseboardId, status: Option<CoordinatorStatus> },
    Commit { epoch: Epoch, member: BaseboardId, result: Result<CommitStatus, MemberCommitError> },
    Activated { member: BaseboardId },
    Unreachable { node: BaseboardId },
}

/// An answer: the body on success, the typed error body on a refusal,
/// `None` when the sled could not be reached or answered nonsense.
async fn call<T: DeserializeOwned, E: DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Option<Result<T, E>> {
    let response = request.send().await.ok()?;
    if response.status().is_success() {
        return response.json().await.ok().map(Ok);
    }
    let body: serde_json::Value = response.json().await.ok()?;
    serde_json::from_value(body.get("error")?.clone()).ok().map(Err)
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// Carries out `action`. Requests go straight to the member; the
/// reference's relays through another member are not needed on one
/// network.
pub(crate) async fn perform(
    http: &reqwest::Client,
    config: &CtlConfig,
    action: ControlAction,
) -> Outcome {
    let target = match &action {
        ControlAction::Reconfigure { to, .. } | ControlAction::PollCoordinator { to, .. } => to,
        ControlAction::Commit { member, .. }
        | ControlAction::PrepareAndCommit { member, .. }
        | ControlAction::Activate { member } => member,
    }
    .clone();
    let Some(addr) = config.control_of(&target) else {
        tracing::warn!(sled = %target, "sled not in the inventory");
        return Outcome::Unreachable { node: target };
    };
    let unreachable = || Outcome::Unreachable { node: target.clone() };
    match action {
        ControlAction::Reconfigure { to, msg } => {
            let epoch = msg.epoch;
            let answer: Option<Result<serde_json::Value, ReconfigurationError>> =
                call(http.post(url(addr, "/v1/reconfigure")).json(&msg)).await;
            match answer {
                Some(result) => {
                    Outcome::Reconfigure { epoch, from: to, result: result.map(|_| ()) }
                }
                None => unreachable(),
            }
        }
        ControlAction::PollCoordinator { to, epoch } => {
            let answer: Option<Result<Option<CoordinatorStatus>, serde_json::Value>> =
                call(http.get(url(addr, "/v1/coordinator"))).await;
            match answer {
                Some(Ok(status)) => Outcome::Status { epoch, from: to, status },
                _ => unreachable(),
            }
        }
        ControlAction::Commit { member, req, .. } => {
            let epoch = req.epoch;
            let answer: Option<Result<CommitStatus, CommitError>> =
                call(http.post(url(addr, "/v1/commit")).json(&req)).await;
            match answer {
                Some(r) => {
                    Outcome::Commit { epoch, member, result: r.map_err(MemberCommitError::Commit) }
                }
                None => unreachable(),
            }
        }
        ControlAction::PrepareAndCommit { member, req, .. } => {
            let epoch = req.config.epoch;
            let answer: Option<Result<CommitStatus, PrepareAndCommitError>> =
                call(http.post(url(addr, "/v1/prepare-and-commit")).json(&req)).await;
            match answer {
                Some(r) => Outcome::Commit {
                    epoch,
                    member,
                    result: r.map_err(MemberCommitError::PrepareAndCommit),
                },
                None => unreachable(),
            }
        }
        ControlAction::Activate { member } => {
            // In service: its agent answers. (A real rack starts services
            // here.)
            match http.get(url(addr, "/v1/status")).send().await {
                Ok(r) if r.status().is_success() => Outcome::Activated { member },
                _ => unreachable(),
            }
        }
    }
}
