//! The driver's work on a committing configuration (docs/protocol.md section
//! 5.5): commit and prepare-and-commit requests relayed by members in
//! service, the members' answers, and the activation reports of newly
//! joined members.

use std::collections::BTreeSet;

use rand_core::CryptoRng;
use tq_types::{
    BaseboardId, CommitError, CommitRequest, CommitStatus, CommittedConfig, ConfigState, Epoch,
    MemberState, PrepareAndCommitRequest, RackId, Timestamp,
};

use super::action::ControlAction;
use super::driver::ignored;
use super::errors::{ActivationError, CommitResultError, MemberCommitError};
use super::proposal::pick_one;
use super::report::PassReport;
use super::{ControlPlane, transact};

impl ControlPlane {
    pub(super) fn drive_commit<R: CryptoRng + ?Sized>(
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
        let Some(committed) = self.committed_config(rack_id, epoch) else {
            tracing::error!(%epoch, "committing configuration lacks digests or cannot be signed");
            return;
        };
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
                    req: CommitRequest { rack_id, epoch, certificate: committed.certificate },
                }
            } else {
                ControlAction::PrepareAndCommit {
                    member: member.clone(),
                    via: via.clone(),
                    req: PrepareAndCommitRequest {
                        config: committed.config.clone(),
                        certificate: committed.certificate,
                    },
                }
            };
            pass.sent(via, &member);
            self.driver.routes.insert(member, via.clone());
            actions.push(action);
        }
        self.driver.pass = Some(pass);
    }

    /// The configuration of `epoch` rebuilt from the ledger, embedding its
    /// request signed again, with the certificate that it is committed.
    /// Signatures are deterministic: these are the same bytes every time,
    /// on every replica sharing the authority.
    pub(super) fn committed_config(
        &self,
        rack_id: RackId,
        epoch: Epoch,
    ) -> Option<CommittedConfig> {
        let rec = self.ledger.record(epoch)?;
        let reconfigure =
            self.authority.sign_reconfigure(rec.reconfigure_msg(rack_id, epoch)).ok()?;
        let config = rec.rebuild(rack_id, epoch, reconfigure)?;
        let certificate = self.authority.certify(&config).ok()?;
        Some(CommittedConfig { config, certificate })
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
        self.driver.seen(now);
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
        self.driver.seen(now);
        transact(&mut self.ledger, |l| {
            l.record_activated(sled, now)
                .map(|_| ())
                .ok_or_else(|| ActivationError::NotJoined { sled: sled.clone() })
        })
        .map_err(ignored)
    }
}
