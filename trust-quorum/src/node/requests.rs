//! The control plane's requests to a node (docs/protocol.md section 3.3):
//! coordinate, commit, prepare-and-commit. Each answer is a [`Reply`],
//! released once the state it reports is durable.

use tq_types::{
    Alarm, AuthorityError, BaseboardId, CommitError, CommitRequest, CommitStatus, CommittedConfig,
    Epoch, NodeRefusal, PrepareAndCommitError, PrepareAndCommitRequest, ReconfigurationError,
    SignedField, SignedReconfigure,
};

use super::activity::Activity;
use super::coordinator::Coordinator;
use super::key_share::KeyShareComputer;
use super::validate::{
    ValidatedReconfigureMsg, check_authorized, check_config, check_not_expunged, check_rack,
};
use super::{Node, NodeCtx, PersistentState, Reply};
use crate::crypto::authority::{
    verify_certificate, verify_certificate_signature, verify_committed,
};

impl Node {
    /// Starts coordinating a new configuration (docs/protocol.md section 3.3).
    ///
    /// On success the node is coordinating: it either prepared at once (a
    /// first configuration) or is collecting shares of the last committed
    /// configuration. An identical repeat of the request being coordinated
    /// is accepted without change.
    pub fn coordinate_reconfiguration(
        &mut self,
        ctx: &mut NodeCtx,
        msg: SignedReconfigure,
    ) -> Reply<Result<(), ReconfigurationError>> {
        Reply::new(self.coordinate(ctx, msg))
    }

    fn coordinate(
        &mut self,
        ctx: &mut NodeCtx,
        msg: SignedReconfigure,
    ) -> Result<(), ReconfigurationError> {
        if let Some(c) = self.activity.coordinator() {
            if c.request().signed() == &msg {
                tracing::debug!(node = %ctx.id(), epoch = %msg.msg.epoch, "repeated reconfigure");
                return Ok(());
            }
            if msg.msg.epoch <= c.epoch() {
                return Err(ReconfigurationError::AlreadyCoordinating {
                    coordinating: c.epoch(),
                    requested: msg.msg.epoch,
                });
            }
        }
        let epoch = msg.msg.epoch;
        let request = ValidatedReconfigureMsg::validate(ctx.id(), ctx.persistent_state(), msg)?;
        self.activity = Activity::Idle;
        let coordinator = Coordinator::start(ctx, request)
            .ok_or(ReconfigurationError::CoordinationFailed { epoch })?;
        self.activity = Activity::Coordinating(Box::new(coordinator));
        Ok(())
    }

    /// Commits a prepared epoch (docs/protocol.md section 3.3).
    pub fn commit_configuration(
        &mut self,
        ctx: &mut NodeCtx,
        req: CommitRequest,
    ) -> Reply<Result<CommitStatus, CommitError>> {
        Reply::new(self.commit(ctx, req))
    }

    fn commit(
        &mut self,
        ctx: &mut NodeCtx,
        req: CommitRequest,
    ) -> Result<CommitStatus, CommitError> {
        let state = ctx.persistent_state();
        check_not_expunged(state, None)?;
        check_rack(state, req.rack_id)?;
        // The certificate must name the request's epoch and exactly the
        // configuration this node prepared.
        let certificate = req.certificate;
        let names_request = || {
            if certificate.rack_id != req.rack_id || certificate.epoch != req.epoch {
                let field = if certificate.epoch != req.epoch {
                    SignedField::Epoch
                } else {
                    SignedField::Rack
                };
                return Err(NodeRefusal::Unauthorized(AuthorityError::CertificateMismatch(field)));
            }
            Ok(())
        };
        if state.latest_committed_epoch().is_some_and(|l| l >= req.epoch) {
            // At or below the newest commit: an earlier epoch's configuration
            // is no longer kept (docs/protocol.md section 2.4), so only the
            // authority's signature can be checked; a certified earlier
            // epoch is committed as far as this node is concerned.
            names_request()?;
            let verified = match state.config(req.epoch) {
                Some(config) => verify_certificate(state.authority(), &certificate, config),
                None => verify_certificate_signature(state.authority(), &certificate),
            };
            check_authorized(verified)?;
            return Ok(CommitStatus::Committed);
        }
        let Some(config) = state.config(req.epoch).filter(|_| state.is_prepared(req.epoch)) else {
            return Err(CommitError::NotPrepared(req.epoch));
        };
        names_request()?;
        check_authorized(verify_certificate(state.authority(), &certificate, config))?;
        ctx.update_persistent(|p| {
            let c = p.insert_certificate(certificate);
            let k = p.insert_commit(req.epoch);
            (c || k, ())
        });
        tracing::info!(node = %ctx.id(), epoch = %req.epoch, "committed");
        self.after_commit(req.epoch);
        Ok(CommitStatus::Committed)
    }

    /// Commits a configuration whose prepare this node never acknowledged
    /// (docs/protocol.md section 3.3): stores it and starts computing its share.
    pub fn prepare_and_commit(
        &mut self,
        ctx: &mut NodeCtx,
        req: PrepareAndCommitRequest,
    ) -> Reply<Result<CommitStatus, PrepareAndCommitError>> {
        Reply::new(self.accept_committed(ctx, req))
    }

    fn accept_committed(
        &mut self,
        ctx: &mut NodeCtx,
        req: PrepareAndCommitRequest,
    ) -> Result<CommitStatus, PrepareAndCommitError> {
        let state = ctx.persistent_state();
        check_not_expunged(state, Some(req.config.epoch))?;
        check_rack(state, req.config.rack_id)?;
        check_config(&req.config).map_err(PrepareAndCommitError::Invalid)?;
        let committed = CommittedConfig { config: req.config, certificate: req.certificate };
        check_authorized(verify_committed(state.authority(), &committed))?;
        self.learn_committed(ctx, committed, None)
    }

    /// Learning that `committed` is committed, from the control plane
    /// (prepare-and-commit, `from == None`) or a peer (commit advance).
    /// Callers have verified its certificate.
    pub(super) fn learn_committed(
        &mut self,
        ctx: &mut NodeCtx,
        committed: CommittedConfig,
        from: Option<BaseboardId>,
    ) -> Result<CommitStatus, PrepareAndCommitError> {
        let CommittedConfig { config, certificate } = committed;
        let me = ctx.id().clone();
        let epoch = config.epoch;
        let state = ctx.persistent_state();
        if !config.is_member(&me) {
            return Err(PrepareAndCommitError::NotAMember(epoch));
        }
        if state.latest_committed_epoch().is_some_and(|l| l >= epoch) {
            return Ok(commit_status(state, epoch));
        }
        if !state.would_keep(epoch) {
            // A newer configuration that does not build on this epoch is
            // stored: the control plane that sent it has moved past it.
            tracing::debug!(node = %me, %epoch, "superseded committed configuration not learned");
            return Ok(CommitStatus::Pending);
        }
        if let Some(stored) = state.config(epoch) {
            if *stored != config {
                ctx.raise_alarm(Alarm::MismatchedConfigurations { epoch, from });
                return Err(PrepareAndCommitError::ConflictingConfiguration(epoch));
            }
        }
        let prepared = state.is_prepared(epoch);
        ctx.update_persistent(|p| {
            let certified = p.insert_certificate(certificate);
            let changed = if prepared {
                p.insert_commit(epoch)
            } else {
                p.insert_member_config(config.clone())
            };
            (certified || changed, ())
        });
        if prepared {
            tracing::info!(node = %me, %epoch, "committed (was prepared)");
        }
        self.activity.stop_coordinating_up_to(epoch);
        match self.activity.computing_share() {
            Some(k) if k > epoch => return Ok(commit_status(ctx.persistent_state(), epoch)),
            Some(k) if k == epoch => {
                if prepared {
                    self.activity = Activity::Idle;
                }
                return Ok(commit_status(ctx.persistent_state(), epoch));
            }
            Some(_) => self.activity = Activity::Idle,
            None => {}
        }
        if prepared {
            self.after_commit(epoch);
        } else if let Some(coordinating) = self.activity.coordinating() {
            // Coordinating a later epoch while computing a share of an
            // earlier one cannot arise legitimately; refuse it.
            tracing::warn!(node = %me, %epoch, %coordinating,
                "not computing a share while coordinating a later epoch");
        } else {
            self.activity = Activity::ComputingShare(KeyShareComputer::start(ctx, config));
        }
        Ok(commit_status(ctx.persistent_state(), epoch))
    }
}

/// Committed at or below the newest committed epoch (earlier commits are
/// no longer kept, docs/protocol.md section 2.4), otherwise pending.
fn commit_status(state: &PersistentState, epoch: Epoch) -> CommitStatus {
    if state.latest_committed_epoch().is_some_and(|l| l >= epoch) {
        CommitStatus::Committed
    } else {
        CommitStatus::Pending
    }
}
