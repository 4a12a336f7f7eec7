//! The driver's work on a preparing configuration (docs/protocol.md sections
//! 4.7 and 5.5): the reconfiguration request, the polls of the coordinator,
//! the abort of a configuration whose coordinator stays silent, refuses or
//! is not coordinating, the automatic retry, and the coordinator's answers.

use rand_core::CryptoRng;
use tq_types::{
    BaseboardId, ConfigState, CoordinatorStatus, Epoch, RackId, ReconfigurationError, Timestamp,
};

use super::action::ControlAction;
use super::driver::{PrepareWatch, ignored};
use super::errors::{CoordinatorStatusError, ReconfigureResultError};
use super::ledger::AbortReason;
use super::{ControlPlane, transact};
use crate::crypto::authority::verify_reconfigure;
use crate::planted::PlantedBug;

/// Why a result about a preparing configuration does not apply.
enum NotApplicable {
    Unknown,
    Stale { latest: Epoch },
    NotPreparing { state: ConfigState },
    NotCoordinator { coordinator: BaseboardId },
}

impl ControlPlane {
    /// Aborts the latest, preparing configuration if its coordinator has
    /// not answered for `prepare_timeout`.
    pub(super) fn check_prepare_timeout(&mut self, now: Timestamp) {
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
    pub(super) fn auto_retry<R: CryptoRng + ?Sized>(&mut self, now: Timestamp, rng: &mut R) {
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
        let (driver, backoff) = (&self.driver, self.config.unreachable_backoff);
        let reachable = |m: &BaseboardId| driver.is_reachable(m, now, backoff);
        match transact(&mut self.ledger, |l| {
            l.propose(members, attempt, policy, &reachable, now, rng)
        }) {
            Ok(new_epoch) => {
                tracing::info!(aborted = %epoch, %new_epoch, attempt, "retrying aborted change");
            }
            Err(error) => {
                tracing::warn!(aborted = %epoch, ?error, "automatic retry refused");
            }
        }
    }

    pub(super) fn drive_prepare(
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
        let msg = match self.authority.sign_reconfigure(rec.reconfigure_msg(rack_id, epoch)) {
            Ok(msg) => msg,
            Err(error) => {
                tracing::error!(%epoch, %error, "cannot sign the reconfiguration request");
                return;
            }
        };
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
        self.driver.seen(now);
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
        // Any answer shows that the coordinator is reachable.
        self.driver.unreachable.remove(&coordinator);
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
    /// the coordinator says it is not coordinating, which aborts the
    /// configuration once `not_coordinating_grace` has passed since the
    /// request was sent (earlier, the request may simply not have arrived,
    /// and the answer is ignored); otherwise the poll update of
    /// docs/protocol.md section 5.3. A status that disagrees with the ledger
    /// is rejected as a whole.
    pub fn on_coordinator_status(
        &mut self,
        epoch: Epoch,
        from: &BaseboardId,
        status: Option<CoordinatorStatus>,
        now: Timestamp,
    ) -> Result<(), CoordinatorStatusError> {
        self.driver.seen(now);
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
        // Any answer shows that the coordinator is reachable.
        self.driver.unreachable.remove(&coordinator);
        let Some(status) = status else {
            // The request may not have reached the coordinator yet: a replica
            // that did not send it, or restarted, polls without waiting for
            // its answer. Only after the grace period does the answer mean
            // that the coordinator lost its coordination.
            let sent = self.ledger.record(epoch).and_then(|r| r.time_reconfigure_sent);
            let grace = self.config.not_coordinating_grace;
            if sent.is_none_or(|sent| now.saturating_duration_since(sent) < grace) {
                tracing::debug!(%epoch, %coordinator, "early \"not coordinating\" ignored");
                return Ok(());
            }
            tracing::warn!(%epoch, %coordinator, "coordinator is not coordinating; aborting");
            let reason = AbortReason::CoordinatorNotCoordinating { coordinator };
            if let Err(error) = self.abort_with(reason, now) {
                tracing::error!(%epoch, %error, "could not abort");
            }
            self.driver.forget_epoch(epoch);
            return Ok(());
        };
        let commit_at_threshold = self.planted.is(PlantedBug::CommitAtThreshold);
        let key = self.authority.public_key();
        if verify_reconfigure(&key, &status.config.reconfigure).is_err() {
            tracing::warn!(%epoch, %from, "coordinator status with a bad signature rejected");
            return Err(CoordinatorStatusError::Mismatch {
                epoch,
                from: from.clone(),
                mismatch: Box::new(super::errors::ConfigMismatch::Reconfigure),
            });
        }
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
}
