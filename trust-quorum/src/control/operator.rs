//! The operator's operations on a rack's membership (docs/protocol.md
//! section 5.4): initializing the rack, adding and removing sleds, and
//! aborting a preparing change. Each result is [`Held`] until the ledger it
//! reflects is stored.

use std::collections::BTreeSet;

use rand_core::CryptoRng;
use tq_types::{BaseboardId, ConfigState, Epoch, RackId, Timestamp};

use super::errors::{AbortError, AddSledsError, ChangeRefused, InitializeError, RemoveSledsError};
use super::ledger::AbortReason;
use super::proposal::ProposeError;
use super::write::Held;
use super::{ControlPlane, transact};

impl ControlPlane {
    /// Proposes a rack's first configuration with `members`, at epoch 1 or,
    /// after aborted first attempts, the next epoch. Any member may
    /// coordinate. Repeating the request while the same first configuration
    /// is preparing returns its epoch.
    pub fn initialize<R: CryptoRng + ?Sized>(
        &mut self,
        rack_id: RackId,
        members: impl IntoIterator<Item = BaseboardId>,
        now: Timestamp,
        rng: &mut R,
    ) -> Held<Result<Epoch, InitializeError>> {
        self.driver.seen(now);
        Held::new(self.initialize_now(rack_id, members, now, rng))
    }

    fn initialize_now<R: CryptoRng + ?Sized>(
        &mut self,
        rack_id: RackId,
        members: impl IntoIterator<Item = BaseboardId>,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Epoch, InitializeError> {
        let members: BTreeSet<BaseboardId> = members.into_iter().collect();
        if let Some(ledger) = self.ledger.rack_id()
            && ledger != rack_id
        {
            return Err(InitializeError::RackIdMismatch { ledger, requested: rack_id });
        }
        if let Some((epoch, base)) = self.ledger.base() {
            return Err(InitializeError::AlreadyInitialized { rack_id, epoch, state: base.state });
        }
        if let Some((epoch, latest)) = self.ledger.latest()
            && latest.state == ConfigState::Preparing
        {
            return if latest.member_ids() == members {
                Ok(epoch)
            } else {
                Err(InitializeError::InProgress { epoch })
            };
        }
        let policy = &self.config.policy;
        let (driver, backoff) = (&self.driver, self.config.unreachable_backoff);
        let reachable = |m: &BaseboardId| driver.is_reachable(m, now, backoff);
        transact(&mut self.ledger, |l| {
            l.set_rack_id(rack_id);
            l.propose(members, 1, policy, &reachable, now, rng)
        })
        .map_err(|e| match e {
            ProposeError::InProgress { epoch } => InitializeError::InProgress { epoch },
            ProposeError::MembershipSize { members } => InitializeError::MembershipSize {
                members,
                min: policy.min_members(),
                max: policy.max_members(),
            },
            ProposeError::EpochExhausted => InitializeError::EpochExhausted,
            // Cannot happen after the checks above (a base would have been
            // refused as already initialized); mapped truthfully anyway.
            ProposeError::PreviousNotCommitted { epoch, .. } => {
                InitializeError::AlreadyInitialized {
                    rack_id,
                    epoch,
                    state: ConfigState::Committing,
                }
            }
            ProposeError::NotInitialized | ProposeError::NoCoordinatorCandidate { .. } => {
                InitializeError::NoCoordinatorCandidate
            }
        })
    }

    /// Adds `sleds` to the rack's membership in one new configuration and
    /// returns its epoch, the token for [`status`](Self::status).
    ///
    /// The membership is that of the newest committing or committed
    /// configuration; a preparing or aborted one never counts, so after an
    /// abort the same request is accepted at the next epoch (the reference
    /// system's issue #11050). Repeating a request whose identical change is
    /// preparing returns that epoch; a different change while one is
    /// preparing is refused.
    pub fn add_sleds<R: CryptoRng + ?Sized>(
        &mut self,
        sleds: impl IntoIterator<Item = BaseboardId>,
        now: Timestamp,
        rng: &mut R,
    ) -> Held<Result<Epoch, AddSledsError>> {
        self.driver.seen(now);
        Held::new(self.add_sleds_now(sleds, now, rng))
    }

    fn add_sleds_now<R: CryptoRng + ?Sized>(
        &mut self,
        sleds: impl IntoIterator<Item = BaseboardId>,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Epoch, AddSledsError> {
        let sleds: BTreeSet<BaseboardId> = sleds.into_iter().collect();
        if sleds.is_empty() {
            return Err(AddSledsError::NoSleds);
        }
        let (base_epoch, current) = self.current_membership()?;
        let already: BTreeSet<BaseboardId> = sleds.intersection(&current).cloned().collect();
        if !already.is_empty() {
            return Err(AddSledsError::AlreadyMembers { sleds: already });
        }
        let proposed = current.union(&sleds).cloned().collect();
        Ok(self.propose_change(base_epoch, proposed, now, rng)?)
    }

    /// Removes `sleds` from the rack's membership in one new configuration
    /// and returns its epoch. Membership, idempotence and refusals are as for
    /// [`add_sleds`](Self::add_sleds).
    pub fn remove_sleds<R: CryptoRng + ?Sized>(
        &mut self,
        sleds: impl IntoIterator<Item = BaseboardId>,
        now: Timestamp,
        rng: &mut R,
    ) -> Held<Result<Epoch, RemoveSledsError>> {
        self.driver.seen(now);
        Held::new(self.remove_sleds_now(sleds, now, rng))
    }

    fn remove_sleds_now<R: CryptoRng + ?Sized>(
        &mut self,
        sleds: impl IntoIterator<Item = BaseboardId>,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Epoch, RemoveSledsError> {
        let sleds: BTreeSet<BaseboardId> = sleds.into_iter().collect();
        if sleds.is_empty() {
            return Err(RemoveSledsError::NoSleds);
        }
        let (base_epoch, current) = self.current_membership()?;
        let missing: BTreeSet<BaseboardId> = sleds.difference(&current).cloned().collect();
        if !missing.is_empty() {
            return Err(RemoveSledsError::NotMembers { sleds: missing });
        }
        let proposed = current.difference(&sleds).cloned().collect();
        Ok(self.propose_change(base_epoch, proposed, now, rng)?)
    }

    /// The newest committing or committed epoch and its membership.
    fn current_membership(&self) -> Result<(Epoch, BTreeSet<BaseboardId>), ChangeRefused> {
        let (epoch, base) = self.ledger.base().ok_or(ChangeRefused::NotInitialized)?;
        Ok((epoch, base.member_ids()))
    }

    /// Proposes `proposed` on top of `base_epoch`, or returns the epoch of
    /// the identical change already preparing.
    fn propose_change<R: CryptoRng + ?Sized>(
        &mut self,
        base_epoch: Epoch,
        proposed: BTreeSet<BaseboardId>,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Epoch, ChangeRefused> {
        match self.preparing_change(base_epoch, &proposed) {
            Some(Ok(epoch)) => return Ok(epoch),
            Some(Err(epoch)) => return Err(ChangeRefused::InProgress { epoch }),
            None => {}
        }
        let policy = &self.config.policy;
        let (driver, backoff) = (&self.driver, self.config.unreachable_backoff);
        let reachable = |m: &BaseboardId| driver.is_reachable(m, now, backoff);
        transact(&mut self.ledger, |l| l.propose(proposed, 1, policy, &reachable, now, rng))
            .map_err(|e| match e {
                ProposeError::NotInitialized => ChangeRefused::NotInitialized,
                ProposeError::InProgress { epoch } => ChangeRefused::InProgress { epoch },
                ProposeError::MembershipSize { members } => ChangeRefused::MembershipSize {
                    members,
                    min: policy.min_members(),
                    max: policy.max_members(),
                },
                ProposeError::PreviousNotCommitted { epoch, committed, needed } => {
                    ChangeRefused::PreviousNotCommitted { epoch, committed, needed }
                }
                ProposeError::NoCoordinatorCandidate { last_committed } => {
                    ChangeRefused::NoCoordinatorCandidate { last_committed }
                }
                ProposeError::EpochExhausted => ChangeRefused::EpochExhausted,
            })
    }

    /// `None` unless the latest configuration is preparing; then `Ok` with
    /// its epoch if it proposes exactly `proposed` on top of `base_epoch`
    /// (the same change, repeated), else `Err` with its epoch.
    fn preparing_change(
        &self,
        base_epoch: Epoch,
        proposed: &BTreeSet<BaseboardId>,
    ) -> Option<Result<Epoch, Epoch>> {
        let (epoch, latest) = self.ledger.latest()?;
        if latest.state != ConfigState::Preparing {
            return None;
        }
        if latest.last_committed_epoch == Some(base_epoch) && latest.member_ids() == *proposed {
            Some(Ok(epoch))
        } else {
            Some(Err(epoch))
        }
    }

    /// Aborts the latest configuration if it is preparing, with the
    /// operator's `reason`, and returns its epoch. An operator's abort is
    /// never retried automatically. Aborting an already aborted latest
    /// configuration succeeds without change.
    pub fn abort_latest(
        &mut self,
        reason: &str,
        now: Timestamp,
    ) -> Held<Result<Epoch, AbortError>> {
        self.driver.seen(now);
        let reason = AbortReason::Operator { reason: reason.to_owned() };
        let result = self.abort_with(reason, now);
        if let Ok(epoch) = result {
            self.driver.forget_epoch(epoch);
        }
        Held::new(result)
    }

    pub(crate) fn abort_with(
        &mut self,
        reason: AbortReason,
        now: Timestamp,
    ) -> Result<Epoch, AbortError> {
        transact(&mut self.ledger, |l| match l.abort_latest(reason, now) {
            None => Err(AbortError::NoConfiguration),
            Some((epoch, ConfigState::Preparing | ConfigState::Aborted)) => Ok(epoch),
            Some((epoch, state)) => Err(AbortError::NotPreparing { epoch, state }),
        })
    }
}
