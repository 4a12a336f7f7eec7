//! The request/reply channel from the control plane to sleds: requests are
//! delivered to a sled directly or through a proxy member, and answers
//! travel back to the replica that asked.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tq_types::{BaseboardId, CommitStatus, CoordinatorStatus, Epoch, ReconfigurationError};
use trust_quorum::control::{ControlAction, MemberCommitError};

use crate::control::decisions::Decisions;
use crate::control::store::{Answer, Replicas};
use crate::faults::chance;
use crate::rack::Rack;

/// A request in flight from a replica to a sled.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct InFlightRequest {
    /// The replica that sent it.
    pub replica: usize,
    /// What it asks.
    pub action: ControlAction,
}

impl InFlightRequest {
    /// The sled the request is for.
    fn target(&self) -> &BaseboardId {
        match &self.action {
            ControlAction::Reconfigure { to, .. } | ControlAction::PollCoordinator { to, .. } => to,
            ControlAction::Commit { member, .. }
            | ControlAction::PrepareAndCommit { member, .. }
            | ControlAction::Activate { member } => member,
        }
    }
}

/// A sled's answer, in flight back to a replica.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// Answer to a reconfigure request.
    Reconfigure {
        /// The epoch.
        epoch: Epoch,
        /// The coordinator.
        from: BaseboardId,
        /// Its answer.
        result: Result<(), ReconfigurationError>,
    },
    /// Answer to a poll.
    Status {
        /// The polled epoch.
        epoch: Epoch,
        /// The coordinator.
        from: BaseboardId,
        /// Its status.
        status: Option<CoordinatorStatus>,
    },
    /// Answer to a commit or prepare-and-commit.
    Commit {
        /// The epoch.
        epoch: Epoch,
        /// The member.
        member: BaseboardId,
        /// Its answer.
        result: Result<CommitStatus, MemberCommitError>,
    },
    /// The member is in service.
    Activated {
        /// The member.
        member: BaseboardId,
    },
    /// The sled (or its proxy) could not be reached.
    Unreachable {
        /// The sled that did not answer.
        node: BaseboardId,
    },
}

/// A reply in flight.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct InFlightReply {
    /// The replica waiting for it.
    pub replica: usize,
    /// The answer.
    pub kind: ReplyKind,
}

/// What is in flight between the replicas and the sleds.
#[derive(Default)]
pub(crate) struct Channel {
    requests: Vec<InFlightRequest>,
    replies: Vec<InFlightReply>,
    /// Every signed decision that was ever sent.
    decisions: Decisions,
}

impl Channel {
    /// The requests in flight, oldest first.
    pub(crate) fn requests(&self) -> &[InFlightRequest] {
        &self.requests
    }

    /// The replies in flight, oldest first.
    pub(crate) fn replies(&self) -> &[InFlightReply] {
        &self.replies
    }

    /// Whether nothing is in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.requests.is_empty() && self.replies.is_empty()
    }

    /// Sends `actions` from `replica`.
    pub(crate) fn send(
        &mut self,
        replica: usize,
        actions: impl IntoIterator<Item = ControlAction>,
    ) {
        for action in actions {
            self.decisions.record(&action);
            self.requests.push(InFlightRequest { replica, action });
        }
    }

    /// Every signed decision sent so far.
    pub(crate) fn decisions(&self) -> &Decisions {
        &self.decisions
    }

    /// Takes the `index`-th request out of the channel.
    pub(crate) fn take_request(&mut self, index: usize) -> Option<InFlightRequest> {
        (index < self.requests.len()).then(|| self.requests.remove(index))
    }

    /// Takes the `index`-th reply out of the channel.
    pub(crate) fn take_reply(&mut self, index: usize) -> Option<InFlightReply> {
        (index < self.replies.len()).then(|| self.replies.remove(index))
    }

    /// Sends an answer back.
    pub(crate) fn reply(&mut self, reply: InFlightReply) {
        self.replies.push(reply);
    }

    /// Drops the requests addressed to `sled`.
    pub(crate) fn forget_requests_to(&mut self, sled: &BaseboardId) {
        self.requests.retain(|r| r.target() != sled);
    }

    /// Adds the requests and replies in flight to a digest.
    pub(crate) fn digest_into(&self, h: &mut blake3::Hasher) {
        h.update(&tq_types::codec::encode(&self.requests).unwrap_or_default());
        h.update(&tq_types::codec::encode(&self.replies).unwrap_or_default());
    }
}

/// Whether `via` can relay to `member`: both up and connected (or the same).
fn relay_ok(rack: &Rack, via: &BaseboardId, member: &BaseboardId) -> Result<(), BaseboardId> {
    if !rack.is_up(via) {
        return Err(via.clone());
    }
    if !rack.is_up(member) || (via != member && !rack.net.is_connected(via, member)) {
        return Err(member.clone());
    }
    Ok(())
}

/// Delivers `req` to its sled at simulated time `now_ms` and returns the
/// answer to send back. With `stays_down` (the per-mille chance, while
/// faults are on), the chosen coordinator may die and stay down for long.
pub(crate) fn deliver_request(
    req: InFlightRequest,
    rack: &mut Rack,
    replicas: &mut Replicas,
    activated: &mut BTreeSet<BaseboardId>,
    now_ms: u64,
    stays_down: Option<u16>,
) -> InFlightReply {
    let replica = req.replica;
    let kind = match req.action {
        ControlAction::Reconfigure { to, msg } => {
            if stays_down.is_some_and(|p| chance(replicas.rng(), p)) {
                // The chosen coordinator dies now and stays down for ten
                // simulated minutes: the driver must time out and retry.
                rack.crash(&to);
                if let Some(s) = rack.sleds.get_mut(&to) {
                    s.down_until_ms = Some(now_ms.saturating_add(600_000));
                }
            }
            let epoch = msg.msg.epoch;
            match rack.request(&to, |n, ctx| n.coordinate_reconfiguration(ctx, msg)) {
                Some(result) => ReplyKind::Reconfigure { epoch, from: to, result },
                None => ReplyKind::Unreachable { node: to },
            }
        }
        ControlAction::PollCoordinator { to, epoch } => {
            match rack.request(&to, |n, _| n.coordinator_status()) {
                Some(status) => ReplyKind::Status { epoch, from: to, status },
                None => ReplyKind::Unreachable { node: to },
            }
        }
        ControlAction::Commit { member, via, req } => match relay_ok(rack, &via, &member) {
            Err(node) => ReplyKind::Unreachable { node },
            Ok(()) => {
                let epoch = req.epoch;
                match rack.request(&member, |n, ctx| n.commit_configuration(ctx, req)) {
                    Some(result) => ReplyKind::Commit {
                        epoch,
                        member,
                        result: result.map_err(MemberCommitError::Commit),
                    },
                    None => ReplyKind::Unreachable { node: member },
                }
            }
        },
        ControlAction::PrepareAndCommit { member, via, req } => {
            match relay_ok(rack, &via, &member) {
                Err(node) => ReplyKind::Unreachable { node },
                Ok(()) => {
                    let epoch = req.config.epoch;
                    match rack.request(&member, |n, ctx| n.prepare_and_commit(ctx, req)) {
                        Some(result) => ReplyKind::Commit {
                            epoch,
                            member,
                            result: result.map_err(MemberCommitError::PrepareAndCommit),
                        },
                        None => ReplyKind::Unreachable { node: member },
                    }
                }
            }
        }
        ControlAction::Activate { member } => {
            if rack.is_up(&member) {
                activated.insert(member.clone());
                ReplyKind::Activated { member }
            } else {
                ReplyKind::Unreachable { node: member }
            }
        }
    };
    InFlightReply { replica, kind }
}

/// Hands `reply` to the replica waiting for it at simulated time `now_ms`.
pub(crate) fn deliver_reply(replicas: &mut Replicas, now_ms: u64, reply: InFlightReply) {
    let r = reply.replica;
    let kind = reply.kind;
    let outcome = replicas.transact(r, now_ms, |cp, now, _| {
        Answer(match &kind {
            ReplyKind::Reconfigure { epoch, from, result } => cp
                .on_reconfigure_result(*epoch, from, result.clone(), now)
                .map_err(|e| e.to_string()),
            ReplyKind::Status { epoch, from, status } => cp
                .on_coordinator_status(*epoch, from, status.clone(), now)
                .map_err(|e| e.to_string()),
            ReplyKind::Commit { epoch, member, result } => {
                cp.on_commit_result(*epoch, member, result.clone(), now).map_err(|e| e.to_string())
            }
            ReplyKind::Activated { member } => {
                cp.on_activated(member, now).map_err(|e| e.to_string())
            }
            ReplyKind::Unreachable { node } => {
                cp.on_unreachable(node, now);
                Ok(())
            }
        })
    });
    if let Some(Err(e)) = outcome {
        tracing::debug!(replica = r, %e, "stale or rejected control-plane result");
    }
}
