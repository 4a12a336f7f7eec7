//! The driver: what the control plane sends on each pass, and how the
//! answers update the ledger (docs/protocol.md sections 4.3, 4.7, 5.3, 5.5 and 6).
//!
//! - **Preparing:** the reconfiguration request goes to the coordinator once;
//!   afterwards the coordinator is polled on every pass. K+Z prepare
//!   acknowledgements move the configuration to committing, never back. A
//!   coordinator that stays silent for the prepare timeout, refuses the
//!   request or says it is not coordinating gets its configuration aborted;
//!   with auto-retry the same membership is proposed at the next epoch with
//!   another coordinator.
//! - **Committing:** each prepared member gets a commit request and each
//!   unacknowledged one (or one that answered `NotPrepared`, having lost its
//!   prepared state) a prepare-and-commit request with the configuration
//!   rebuilt from the ledger, each through a reachable member in service
//!   acting as proxy, spread over at most `max_proxies` of them.
//! - **Always:** every newly joined member that committed but is not yet in
//!   service gets an activation request on every pass until
//!   [`ControlPlane::on_activated`], whatever the configuration's state.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use tq_types::{
    BaseboardId, CommitError, CommitRequest, CommitStatus, ConfigState, CoordinatorStatus, Epoch,
    MemberState, PrepareAndCommitError, PrepareAndCommitRequest, RackId, ReconfigurationError,
    ReconfigureMsg, Timestamp,
};

use super::ledger::{AbortReason, ConfigMismatch, pick_one};
use super::report::PassReport;
use super::{ControlPlane, transact};
use crate::planted::PlantedBug;

/// Something the embedder should send now, on behalf of the control plane.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// Ask `to` to coordinate the new configuration; sent once per epoch.
    /// Report the answer with [`ControlPlane::on_reconfigure_result`].
    Reconfigure {
        /// The chosen coordinator.
        to: BaseboardId,
        /// The request.
        msg: ReconfigureMsg,
    },
    /// Ask the coordinator for its status. Report the answer with
    /// [`ControlPlane::on_coordinator_status`], a failure to reach it with
    /// [`ControlPlane::on_unreachable`].
    PollCoordinator {
        /// The coordinator.
        to: BaseboardId,
        /// The epoch it coordinates.
        epoch: Epoch,
    },
    /// Through the proxy `via`, ask the prepared `member` to commit. Report
    /// the answer with [`ControlPlane::on_commit_result`].
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
    /// with [`ControlPlane::on_commit_result`].
    PrepareAndCommit {
        /// The member to commit.
        member: BaseboardId,
        /// The member in service relaying the request.
        via: BaseboardId,
        /// The request, with the configuration rebuilt from the ledger.
        req: PrepareAndCommitRequest,
    },
    /// Put the newly joined `member` in service (idempotent). Report success
    /// with [`ControlPlane::on_activated`].
    Activate {
        /// The member to start.
        member: BaseboardId,
    },
}

/// A node's error answer to a commit or prepare-and-commit request.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberCommitError {
    /// The answer to a commit request.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// The answer to a prepare-and-commit request.
    #[error(transparent)]
    PrepareAndCommit(#[from] PrepareAndCommitError),
}

/// Why a coordinator's answer to the reconfiguration request was ignored.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ReconfigureResultError {
    /// No configuration has this epoch.
    #[error("no configuration at epoch {0}")]
    UnknownEpoch(Epoch),
    /// The epoch is not the latest.
    #[error("epoch {epoch} is not the latest epoch ({latest}); answer ignored")]
    StaleEpoch {
        /// The answer's epoch.
        epoch: Epoch,
        /// The latest epoch.
        latest: Epoch,
    },
    /// The configuration is no longer preparing.
    #[error("epoch {epoch} is {state}, no longer preparing; answer ignored")]
    NotPreparing {
        /// The epoch.
        epoch: Epoch,
        /// Its state.
        state: ConfigState,
    },
    /// The answer comes from a node that is not the epoch's coordinator.
    #[error("{from} is not the coordinator of epoch {epoch} ({coordinator}); answer ignored")]
    NotCoordinator {
        /// The epoch.
        epoch: Epoch,
        /// The answering node.
        from: BaseboardId,
        /// The epoch's coordinator.
        coordinator: BaseboardId,
    },
}

/// Why a coordinator status was rejected; the ledger is unchanged.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CoordinatorStatusError {
    /// No configuration has this epoch.
    #[error("no configuration at epoch {0}")]
    UnknownEpoch(Epoch),
    /// The epoch is not the latest.
    #[error("epoch {epoch} is not the latest epoch ({latest}); status ignored")]
    StaleEpoch {
        /// The status's epoch.
        epoch: Epoch,
        /// The latest epoch.
        latest: Epoch,
    },
    /// The configuration is no longer preparing.
    #[error("epoch {epoch} is {state}, no longer preparing; status ignored")]
    NotPreparing {
        /// The epoch.
        epoch: Epoch,
        /// Its state.
        state: ConfigState,
    },
    /// The status comes from a node that is not the epoch's coordinator.
    #[error("{from} is not the coordinator of epoch {epoch} ({coordinator}); status ignored")]
    NotCoordinator {
        /// The epoch.
        epoch: Epoch,
        /// The reporting node.
        from: BaseboardId,
        /// The epoch's coordinator.
        coordinator: BaseboardId,
    },
    /// The coordinator's configuration disagrees with the ledger.
    #[error("status from {from} for epoch {epoch} disagrees with the ledger: {mismatch}")]
    Mismatch {
        /// The epoch.
        epoch: Epoch,
        /// The reporting node.
        from: BaseboardId,
        /// What disagrees.
        mismatch: Box<ConfigMismatch>,
    },
}

/// Why a commit result was rejected; the ledger is unchanged.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CommitResultError {
    /// No configuration has this epoch.
    #[error("no configuration at epoch {0}")]
    UnknownEpoch(Epoch),
    /// The epoch is not the latest (a newer configuration superseded it).
    #[error("epoch {epoch} is not the latest epoch ({latest}); result ignored")]
    StaleEpoch {
        /// The result's epoch.
        epoch: Epoch,
        /// The latest epoch.
        latest: Epoch,
    },
    /// The configuration is not committing (still preparing, or aborted).
    #[error("epoch {epoch} is {state}, not committing; result ignored")]
    NotCommitting {
        /// The epoch.
        epoch: Epoch,
        /// Its state.
        state: ConfigState,
    },
    /// The node is not a member of the configuration.
    #[error("{member} is not a member of epoch {epoch}; result ignored")]
    NotAMember {
        /// The epoch.
        epoch: Epoch,
        /// The node.
        member: BaseboardId,
    },
}

/// Why an activation report was rejected.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ActivationError {
    /// The sled never committed as a newly joined member.
    #[error("{sled} did not join through a membership change; nothing to activate")]
    NotJoined {
        /// The sled.
        sled: BaseboardId,
    },
}

/// The driver's in-memory bookkeeping. Losing it (a restart) is safe: the
/// prepare timeout starts afresh, fallbacks are rediscovered.
#[derive(Clone, Debug, Default)]
pub(crate) struct DriverState {
    watch: Option<PrepareWatch>,
    /// Nodes reported unreachable, and since when.
    unreachable: BTreeMap<BaseboardId, Timestamp>,
    /// Prepared members that answered `NotPrepared`: prepare-and-commit them.
    fallback: BTreeSet<(Epoch, BaseboardId)>,
    /// The proxy each member's request went through in the current pass.
    routes: BTreeMap<BaseboardId, BaseboardId>,
    pass: Option<PassReport>,
}

/// Liveness of the coordinator of the preparing configuration.
#[derive(Clone, Debug)]
struct PrepareWatch {
    epoch: Epoch,
    /// When watching started: the reconfiguration request was sent, or this
    /// replica first saw the epoch.
    since: Timestamp,
    /// When the coordinator last answered.
    last_heard: Option<Timestamp>,
    /// The request was sent by this replica and is not yet answered: do not
    /// poll before the coordinator got it.
    awaiting_reconfigure: bool,
}

impl DriverState {
    pub(crate) fn forget_epoch(&mut self, epoch: Epoch) {
        if self.watch.as_ref().is_some_and(|w| w.epoch == epoch) {
            self.watch = None;
        }
        self.fallback.retain(|(e, _)| *e != epoch);
    }

    fn watch_for(&mut self, epoch: Epoch, now: Timestamp) -> &mut PrepareWatch {
        let fresh =
            PrepareWatch { epoch, since: now, last_heard: None, awaiting_reconfigure: false };
        if self.watch.as_ref().is_none_or(|w| w.epoch != epoch) {
            self.watch = Some(fresh.clone());
        }
        self.watch.get_or_insert(fresh)
    }

    fn heard(&mut self, epoch: Epoch, now: Timestamp) {
        let w = self.watch_for(epoch, now);
        w.last_heard = Some(w.last_heard.map_or(now, |t| t.max(now)));
        w.awaiting_reconfigure = false;
    }
}

/// Logs a rejected result before returning its error.
fn ignored<E: core::fmt::Display>(error: E) -> E {
    tracing::debug!(%error, "result ignored");
    error
}

/// Why a result about a preparing configuration does not apply.
enum NotApplicable {
    Unknown,
    Stale { latest: Epoch },
    NotPreparing { state: ConfigState },
    NotCoordinator { coordinator: BaseboardId },
}

impl ControlPlane {
    /// One driver pass: everything to send now, in order. Call it
    /// periodically (every few seconds) and after every operation.
    ///
    /// It may change the ledger (recording that the reconfiguration request
    /// was sent, aborting a configuration whose coordinator stayed silent
    /// for `prepare_timeout`, proposing an automatic retry): store the
    /// ledger before sending the actions.
    #[must_use = "the actions must be sent"]
    pub fn tick<R: CryptoRng + ?Sized>(
        &mut self,
        now: Timestamp,
        rng: &mut R,
    ) -> Vec<ControlAction> {
        let mut actions = Vec::new();
        let Some(rack_id) = self.ledger.rack_id() else {
            return actions;
        };
        let backoff = self.config.unreachable_backoff;
        self.driver.unreachable.retain(|_, since| now.saturating_duration_since(*since) < backoff);
        self.check_prepare_timeout(now);
        self.auto_retry(now, rng);
        if let Some((epoch, state)) = self.ledger.latest().map(|(e, r)| (e, r.state)) {
            match state {
                ConfigState::Preparing => self.drive_prepare(rack_id, epoch, now, &mut actions),
                ConfigState::Committing => self.drive_commit(rack_id, epoch, rng, &mut actions),
                ConfigState::Committed | ConfigState::CommittedPartially | ConfigState::Aborted => {
                }
            }
        }
        actions.extend(
            self.ledger
                .pending_activations()
                .into_iter()
                .map(|member| ControlAction::Activate { member }),
        );
        actions
    }

    /// Aborts the latest, preparing configuration if its coordinator has
    /// not answered for `prepare_timeout`.
    fn check_prepare_timeout(&mut self, now: Timestamp) {
        let Some((epoch, rec)) = self.ledger.latest() else {
            return;
        };
        if rec.state != ConfigState::Preparing || rec.time_reconfigure_sent.is_none() {
            return;
        }
        let coordinator = rec.coordinator.clone();
        let watch = self.driver.watch_for(epoch, now);
        let reference = watch.last_heard.map_or(watch.since, |t| t.max(watch.since));
        let silent = now.saturating_duration_since(reference);
        if silent < self.config.prepare_timeout {
            return;
        }
        let silent_ms = u64::try_from(silent.as_millis()).unwrap_or(u64::MAX);
        let reason =
            AbortReason::CoordinatorTimeout { coordinator: coordinator.clone(), silent_ms };
        match self.abort_with(reason, now) {
            Ok(_) => {
                tracing::warn!(%epoch, %coordinator, silent_ms, "coordinator silent; aborted");
                self.driver.forget_epoch(epoch);
            }
            Err(error) => tracing::error!(%epoch, %error, "could not abort after timeout"),
        }
    }

    /// Proposes the membership of an aborted latest configuration again, at
    /// the next epoch, if it was aborted because of its coordinator and
    /// attempts remain.
    fn auto_retry<R: CryptoRng + ?Sized>(&mut self, now: Timestamp, rng: &mut R) {
        if !self.config.auto_retry {
            return;
        }
        let Some((epoch, rec)) = self.ledger.latest() else {
            return;
        };
        let retryable = rec.state == ConfigState::Aborted
            && rec.abort_reason.as_ref().is_some_and(AbortReason::is_retryable)
            && rec.attempt < self.config.max_attempts;
        if !retryable {
            return;
        }
        let members = rec.member_ids();
        let attempt = rec.attempt.saturating_add(1);
        let policy = &self.config.policy;
        match transact(&mut self.ledger, |l| l.propose(members, attempt, policy, now, rng)) {
            Ok(new_epoch) => {
                tracing::info!(aborted = %epoch, %new_epoch, attempt, "retrying aborted change");
            }
            Err(error) => {
                tracing::warn!(aborted = %epoch, ?error, "automatic retry refused");
            }
        }
    }

    fn drive_prepare(
        &mut self,
        rack_id: RackId,
        epoch: Epoch,
        now: Timestamp,
        actions: &mut Vec<ControlAction>,
    ) {
        let Some(rec) = self.ledger.record(epoch) else {
            return;
        };
        let to = rec.coordinator.clone();
        if rec.time_reconfigure_sent.is_some() {
            if !self.driver.watch_for(epoch, now).awaiting_reconfigure {
                actions.push(ControlAction::PollCoordinator { to, epoch });
            }
            return;
        }
        let msg = rec.reconfigure_msg(rack_id, epoch);
        let marked = transact(&mut self.ledger, |l| match l.record_mut(epoch) {
            Some(r) => {
                r.time_reconfigure_sent = Some(now);
                Ok(())
            }
            None => Err(()),
        });
        if marked.is_ok() {
            self.driver.watch = Some(PrepareWatch {
                epoch,
                since: now,
                last_heard: None,
                awaiting_reconfigure: true,
            });
            actions.push(ControlAction::Reconfigure { to, msg });
        }
    }

    fn drive_commit<R: CryptoRng + ?Sized>(
        &mut self,
        rack_id: RackId,
        epoch: Epoch,
        rng: &mut R,
        actions: &mut Vec<ControlAction>,
    ) {
        let Some(rec) = self.ledger.record(epoch) else {
            return;
        };
        let targets: Vec<(BaseboardId, MemberState)> = rec
            .members
            .iter()
            .filter(|(_, d)| d.state != MemberState::Committed)
            .map(|(m, d)| (m.clone(), d.state))
            .collect();
        if targets.is_empty() {
            return;
        }
        let proxies = self.choose_proxies(epoch, rng);
        if proxies.is_empty() {
            tracing::warn!(%epoch, "no member in service to relay commit requests");
            return;
        }
        let config = rec.rebuild(rack_id, epoch);
        let mut pass = PassReport::new(rack_id, epoch);
        self.driver.routes.clear();
        for (index, (member, state)) in targets.into_iter().enumerate() {
            let Some(via) = index.checked_rem(proxies.len()).and_then(|i| proxies.get(i)) else {
                continue;
            };
            let fallback = self.driver.fallback.contains(&(epoch, member.clone()));
            let action = if state == MemberState::Prepared && !fallback {
                ControlAction::Commit {
                    member: member.clone(),
                    via: via.clone(),
                    req: CommitRequest { rack_id, epoch },
                }
            } else if let Some(config) = &config {
                ControlAction::PrepareAndCommit {
                    member: member.clone(),
                    via: via.clone(),
                    req: PrepareAndCommitRequest { config: config.clone() },
                }
            } else {
                tracing::error!(%epoch, %member, "committing configuration lacks digests");
                continue;
            };
            pass.sent(via, &member);
            self.driver.routes.insert(member, via.clone());
            actions.push(action);
        }
        self.driver.pass = Some(pass);
    }

    /// Up to `max_proxies` members in service, chosen at random: reachable
    /// members of the configuration, else reachable members of the one it
    /// builds on, else the same ignoring reachability.
    fn choose_proxies<R: CryptoRng + ?Sized>(&self, epoch: Epoch, rng: &mut R) -> Vec<BaseboardId> {
        let Some(rec) = self.ledger.record(epoch) else {
            return Vec::new();
        };
        let own = rec.member_ids();
        let base = rec
            .last_committed_epoch
            .and_then(|b| self.ledger.record(b))
            .map(|b| b.member_ids())
            .unwrap_or_default();
        let in_service = |set: &BTreeSet<BaseboardId>, reachable_only: bool| -> Vec<BaseboardId> {
            set.iter()
                .filter(|m| self.ledger.is_active(m))
                .filter(|m| !reachable_only || !self.driver.unreachable.contains_key(*m))
                .cloned()
                .collect()
        };
        let mut pool = in_service(&own, true);
        if pool.is_empty() {
            pool = in_service(&base, true);
        }
        if pool.is_empty() {
            pool = in_service(&own, false);
        }
        if pool.is_empty() {
            pool = in_service(&base, false);
        }
        let mut chosen = Vec::new();
        while chosen.len() < self.config.max_proxies.max(1) {
            let Some(pick) = pick_one(&pool, rng) else {
                break;
            };
            pool.retain(|m| *m != pick);
            chosen.push(pick);
        }
        chosen
    }

    fn check_preparing(
        &self,
        epoch: Epoch,
        from: &BaseboardId,
    ) -> Result<BaseboardId, NotApplicable> {
        let rec = self.ledger.record(epoch).ok_or(NotApplicable::Unknown)?;
        let latest = self.ledger.latest().map_or(epoch, |(e, _)| e);
        if latest != epoch {
            return Err(NotApplicable::Stale { latest });
        }
        if rec.state != ConfigState::Preparing {
            return Err(NotApplicable::NotPreparing { state: rec.state });
        }
        if rec.coordinator != *from {
            return Err(NotApplicable::NotCoordinator { coordinator: rec.coordinator.clone() });
        }
        Ok(rec.coordinator.clone())
    }

    /// Records the coordinator's answer to [`ControlAction::Reconfigure`].
    ///
    /// A refusal aborts the configuration (with auto-retry, the next pass
    /// proposes it again with another coordinator), except one saying the
    /// node already coordinates this very epoch, which counts as success.
    pub fn on_reconfigure_result(
        &mut self,
        epoch: Epoch,
        from: &BaseboardId,
        result: Result<(), ReconfigurationError>,
        now: Timestamp,
    ) -> Result<(), ReconfigureResultError> {
        let coordinator = self
            .check_preparing(epoch, from)
            .map_err(|e| match e {
                NotApplicable::Unknown => ReconfigureResultError::UnknownEpoch(epoch),
                NotApplicable::Stale { latest } => {
                    ReconfigureResultError::StaleEpoch { epoch, latest }
                }
                NotApplicable::NotPreparing { state } => {
                    ReconfigureResultError::NotPreparing { epoch, state }
                }
                NotApplicable::NotCoordinator { coordinator } => {
                    ReconfigureResultError::NotCoordinator {
                        epoch,
                        from: from.clone(),
                        coordinator,
                    }
                }
            })
            .map_err(ignored)?;
        let already_coordinating = match &result {
            Ok(()) => true,
            Err(ReconfigurationError::StaleEpoch { requested, latest }) => {
                *requested == epoch && *latest == epoch
            }
            Err(ReconfigurationError::AlreadyCoordinating { coordinating, requested }) => {
                *coordinating == epoch && *requested == epoch
            }
            Err(_) => false,
        };
        match result {
            _ if already_coordinating => self.driver.heard(epoch, now),
            Ok(()) => self.driver.heard(epoch, now),
            Err(error) => {
                tracing::warn!(%epoch, %coordinator, %error, "coordinator refused; aborting");
                let reason = AbortReason::CoordinatorRefused { coordinator, error };
                if let Err(error) = self.abort_with(reason, now) {
                    tracing::error!(%epoch, %error, "could not abort after refusal");
                }
                self.driver.forget_epoch(epoch);
            }
        }
        Ok(())
    }

    /// Records the answer to [`ControlAction::PollCoordinator`]: `None` when
    /// the coordinator says it is not coordinating (it restarted), which
    /// aborts the configuration; otherwise the poll update of docs/protocol.md
    /// section 5.3. A status that disagrees with the ledger is rejected as a
    /// whole.
    pub fn on_coordinator_status(
        &mut self,
        epoch: Epoch,
        from: &BaseboardId,
        status: Option<CoordinatorStatus>,
        now: Timestamp,
    ) -> Result<(), CoordinatorStatusError> {
        let coordinator = self
            .check_preparing(epoch, from)
            .map_err(|e| match e {
                NotApplicable::Unknown => CoordinatorStatusError::UnknownEpoch(epoch),
                NotApplicable::Stale { latest } => {
                    CoordinatorStatusError::StaleEpoch { epoch, latest }
                }
                NotApplicable::NotPreparing { state } => {
                    CoordinatorStatusError::NotPreparing { epoch, state }
                }
                NotApplicable::NotCoordinator { coordinator } => {
                    CoordinatorStatusError::NotCoordinator {
                        epoch,
                        from: from.clone(),
                        coordinator,
                    }
                }
            })
            .map_err(ignored)?;
        let Some(status) = status else {
            tracing::warn!(%epoch, %coordinator, "coordinator is not coordinating; aborting");
            let reason = AbortReason::CoordinatorNotCoordinating { coordinator };
            if let Err(error) = self.abort_with(reason, now) {
                tracing::error!(%epoch, %error, "could not abort");
            }
            self.driver.forget_epoch(epoch);
            return Ok(());
        };
        let commit_at_threshold = self.planted.is(PlantedBug::CommitAtThreshold);
        transact(&mut self.ledger, |l| {
            l.apply_coordinator_status(epoch, &status, now, commit_at_threshold)
        })
        .map_err(|mismatch| {
            tracing::warn!(%epoch, %from, %mismatch, "coordinator status rejected");
            CoordinatorStatusError::Mismatch {
                epoch,
                from: from.clone(),
                mismatch: Box::new(mismatch),
            }
        })?;
        self.driver.heard(epoch, now);
        Ok(())
    }

    /// Records a member's answer to [`ControlAction::Commit`] or
    /// [`ControlAction::PrepareAndCommit`]. Only `Committed` counts as an
    /// acknowledgement; a repeated one changes nothing. `NotPrepared` makes
    /// the next pass send that member a prepare-and-commit request instead.
    pub fn on_commit_result(
        &mut self,
        epoch: Epoch,
        member: &BaseboardId,
        result: Result<CommitStatus, MemberCommitError>,
        now: Timestamp,
    ) -> Result<(), CommitResultError> {
        let rec = self.ledger.record(epoch).ok_or(CommitResultError::UnknownEpoch(epoch));
        let rec = rec.map_err(ignored)?;
        let latest = self.ledger.latest().map_or(epoch, |(e, _)| e);
        if latest != epoch {
            return Err(ignored(CommitResultError::StaleEpoch { epoch, latest }));
        }
        if !rec.members.contains_key(member) {
            return Err(ignored(CommitResultError::NotAMember { epoch, member: member.clone() }));
        }
        match rec.state {
            ConfigState::Committing => {}
            ConfigState::Committed => {
                tracing::debug!(%epoch, %member, "result after commit completed; ignored");
                return Ok(());
            }
            state => return Err(ignored(CommitResultError::NotCommitting { epoch, state })),
        }
        let via = match &self.driver.pass {
            Some(pass) if pass.epoch() == epoch => self.driver.routes.get(member).cloned(),
            _ => None,
        };
        match result {
            Ok(CommitStatus::Committed) => {
                let recorded = transact(&mut self.ledger, |l| {
                    l.record_commit_ack(epoch, member, now);
                    Ok::<(), core::convert::Infallible>(())
                });
                if let Err(never) = recorded {
                    match never {}
                }
                self.driver.fallback.remove(&(epoch, member.clone()));
                self.driver.unreachable.remove(member);
                if let Some(via) = &via {
                    self.driver.unreachable.remove(via);
                    if let Some(pass) = &mut self.driver.pass {
                        pass.acked(via, member);
                    }
                }
            }
            Ok(CommitStatus::Pending) => {
                tracing::debug!(%epoch, %member, "commit pending");
            }
            Err(error) => {
                if matches!(&error, MemberCommitError::Commit(CommitError::NotPrepared(e)) if *e == epoch)
                {
                    tracing::info!(%epoch, %member, "member lost its prepared state; will prepare-and-commit");
                    self.driver.fallback.insert((epoch, member.clone()));
                } else {
                    tracing::warn!(%epoch, %member, %error, "commit refused");
                }
                if let (Some(via), Some(pass)) = (&via, &mut self.driver.pass) {
                    pass.failed(via, member, error);
                }
            }
        }
        Ok(())
    }

    /// Records that the newly joined `sled` is in service; it stops getting
    /// [`ControlAction::Activate`] and may relay requests. Repeats are
    /// accepted without change.
    pub fn on_activated(
        &mut self,
        sled: &BaseboardId,
        now: Timestamp,
    ) -> Result<(), ActivationError> {
        transact(&mut self.ledger, |l| {
            l.record_activated(sled, now)
                .map(|_| ())
                .ok_or_else(|| ActivationError::NotJoined { sled: sled.clone() })
        })
        .map_err(ignored)
    }

    /// Records that `node` could not be reached (as coordinator, proxy or
    /// member). It is avoided as a proxy for `unreachable_backoff`. A
    /// coordinator is still polled; its silence counts toward the prepare
    /// timeout.
    pub fn on_unreachable(&mut self, node: &BaseboardId, now: Timestamp) {
        tracing::debug!(%node, "unreachable");
        self.driver.unreachable.insert(node.clone(), now);
    }

    /// The report of the latest commit pass, updated as results come in.
    pub fn last_pass(&self) -> Option<&PassReport> {
        self.driver.pass.as_ref()
    }
}
