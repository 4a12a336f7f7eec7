//! The control-plane role, sans I/O: one rack's ledger, the operator's
//! operations on it, and the driver that says what to send to nodes.
//!
//! [`ControlPlane`] owns a [`Ledger`] (docs/protocol.md section 5). Every method
//! is a function of the ledger, its input, the time `now` and an injected
//! [`CryptoRng`]: it reads no clock, does no I/O and starts no thread, so two
//! replicas holding the same ledger and fed the same inputs decide the same
//! way.
//!
//! # Run loop
//!
//! An embedder (a service, or the simulator) does this:
//!
//! 1. load the stored [`Ledger`] and remember its
//!    [`generation`](Ledger::generation); build the control plane with
//!    [`ControlPlane::from_ledger`] (or [`ControlPlane::new`] for a new rack);
//! 2. call one operation ([`ControlPlane::add_sleds`], ...), driver pass
//!    ([`ControlPlane::tick`]) or result method (`on_*`);
//! 3. if the generation changed, store the ledger, with compare-and-set on
//!    the remembered generation when several replicas share the store; if
//!    the store refuses, throw the result away, reload and go back to 1;
//! 4. only then send the actions the call returned, and report each answer
//!    through the matching `on_*` method.
//!
//! Operator operations return typed errors that name the sleds and epochs
//! involved; a refused operation or result never changes the ledger.
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeSet;
//! use rand_core::SeedableRng;
//! use trust_quorum::control::{ControlAction, ControlPlane, ControlPlaneConfig};
//! use tq_types::{BaseboardId, RackId, Timestamp};
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let now = Timestamp::from_unix_micros(1_768_426_338_780_136).unwrap();
//! let sleds: BTreeSet<BaseboardId> =
//!     ["P:0", "P:1", "P:2"].iter().map(|s| s.parse().unwrap()).collect();
//! let mut cp = ControlPlane::new(ControlPlaneConfig::default());
//! let epoch = cp.initialize(RackId(uuid::Uuid::nil()), sleds, now, &mut rng).unwrap();
//! let actions = cp.tick(now, &mut rng);
//! assert!(matches!(&actions[..], [ControlAction::Reconfigure { msg, .. }] if msg.epoch == epoch));
//! ```

use core::time::Duration;
use std::collections::BTreeSet;

use rand_core::CryptoRng;
use tq_types::{
    BaseboardId, ConfigState, Epoch, RackId, RackMembershipStatus, Timestamp, TrustQuorumConfig,
};

mod driver;
mod ledger;
mod policy;
mod report;

pub use driver::{
    ActivationError, CommitResultError, ControlAction, CoordinatorStatusError, MemberCommitError,
    ReconfigureResultError,
};
pub use ledger::{AbortReason, ConfigMismatch, Ledger, LedgerError};
pub use policy::{CrashTolerance, Policy};
pub use report::{ClientReport, PassReport};

use driver::DriverState;

use crate::planted::Planted;
#[cfg(feature = "planted-bugs")]
use crate::planted::PlantedBug;
use ledger::ProposeError;

/// Settings of a control plane. Replicas sharing a ledger should use the same
/// settings.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ControlPlaneConfig {
    /// K and Z as functions of the membership size, and the allowed sizes.
    pub policy: Policy,
    /// How long a preparing configuration's coordinator may stay silent
    /// before the configuration is aborted as having a dead coordinator.
    pub prepare_timeout: Duration,
    /// Whether a configuration aborted because of its coordinator is
    /// proposed again, same membership, at the next epoch with another
    /// coordinator.
    pub auto_retry: bool,
    /// How many attempts one change gets in all, the operator's included.
    pub max_attempts: u32,
    /// The most members relaying commit requests in one driver pass.
    pub max_proxies: usize,
    /// How long a node reported unreachable is avoided as a proxy.
    pub unreachable_backoff: Duration,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        ControlPlaneConfig {
            policy: Policy::default(),
            prepare_timeout: Duration::from_secs(60),
            auto_retry: true,
            max_attempts: 3,
            max_proxies: 5,
            unreachable_backoff: Duration::from_secs(30),
        }
    }
}

/// The control plane of one rack: its ledger, its settings and the driver's
/// in-memory bookkeeping (which is not durable and may be lost on restart).
#[derive(Clone, Debug)]
pub struct ControlPlane {
    config: ControlPlaneConfig,
    ledger: Ledger,
    driver: DriverState,
    planted: Planted,
}

/// Why a rack's first configuration was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum InitializeError {
    /// The rack already has a committing or committed configuration.
    #[error("rack {rack_id} is already initialized: epoch {epoch} is {state}")]
    AlreadyInitialized {
        /// The rack.
        rack_id: RackId,
        /// Its newest committing or committed epoch.
        epoch: Epoch,
        /// That epoch's state.
        state: ConfigState,
    },
    /// This ledger belongs to another rack.
    #[error("this control plane manages rack {ledger}, not rack {requested}")]
    RackIdMismatch {
        /// The ledger's rack.
        ledger: RackId,
        /// The requested rack.
        requested: RackId,
    },
    /// A different first configuration is still preparing.
    #[error(
        "a different initial configuration at epoch {epoch} is still preparing; abort it first"
    )]
    InProgress {
        /// The preparing epoch.
        epoch: Epoch,
    },
    /// The membership size is not allowed.
    #[error("a membership of {members} sleds is outside the allowed {min}..={max}")]
    MembershipSize {
        /// The proposed number of members.
        members: usize,
        /// The smallest allowed membership.
        min: usize,
        /// The largest allowed membership.
        max: usize,
    },
    /// No member can coordinate (only possible with an empty membership).
    #[error("no member can coordinate the first configuration")]
    NoCoordinatorCandidate,
    /// Every epoch number has been used.
    #[error("no epoch numbers are left")]
    EpochExhausted,
}

/// Why a membership change (adding or removing sleds) could not be
/// proposed, whatever the sleds.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ChangeRefused {
    /// The rack has no committing or committed configuration yet.
    #[error("the rack has no committed configuration yet; initialize it first")]
    NotInitialized,
    /// A different change is still preparing.
    #[error("a different change at epoch {epoch} is in progress; abort it first")]
    InProgress {
        /// The preparing epoch.
        epoch: Epoch,
    },
    /// The new membership size is not allowed.
    #[error("a membership of {members} sleds is outside the allowed {min}..={max}")]
    MembershipSize {
        /// The proposed number of members.
        members: usize,
        /// The smallest allowed membership.
        min: usize,
        /// The largest allowed membership.
        max: usize,
    },
    /// The committing configuration underneath has too few commit
    /// acknowledgements to be superseded.
    #[error(
        "epoch {epoch} is still committing with {committed} commit acknowledgements; {needed} are needed before a new change"
    )]
    PreviousNotCommitted {
        /// The committing epoch.
        epoch: Epoch,
        /// Its commit acknowledgements.
        committed: usize,
        /// The acknowledgements required (K + Z).
        needed: usize,
    },
    /// No member of the new membership committed the last committed
    /// configuration, so none can coordinate.
    #[error(
        "no member of the new membership committed epoch {last_committed:?}; none can coordinate"
    )]
    NoCoordinatorCandidate {
        /// The last committed epoch.
        last_committed: Option<Epoch>,
    },
    /// Every epoch number has been used.
    #[error("no epoch numbers are left")]
    EpochExhausted,
}

/// Why adding sleds was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum AddSledsError {
    /// The request names no sled.
    #[error("no sleds to add")]
    NoSleds,
    /// Some sleds are already members of the rack's current membership.
    #[error("already members of the rack: {sleds:?}")]
    AlreadyMembers {
        /// The sleds that are already members.
        sleds: BTreeSet<BaseboardId>,
    },
    /// The change cannot be proposed now.
    #[error(transparent)]
    Refused(#[from] ChangeRefused),
}

/// Why removing sleds was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum RemoveSledsError {
    /// The request names no sled.
    #[error("no sleds to remove")]
    NoSleds,
    /// Some sleds are not members of the rack's current membership.
    #[error("not members of the rack: {sleds:?}")]
    NotMembers {
        /// The sleds that are not members.
        sleds: BTreeSet<BaseboardId>,
    },
    /// The change cannot be proposed now.
    #[error(transparent)]
    Refused(#[from] ChangeRefused),
}

/// Why an abort was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum AbortError {
    /// The ledger holds no configuration.
    #[error("there is no configuration to abort")]
    NoConfiguration,
    /// The latest configuration is committing or committed, which is
    /// irreversible.
    #[error("epoch {epoch} is {state}; only a preparing configuration can be aborted")]
    NotPreparing {
        /// The latest epoch.
        epoch: Epoch,
        /// Its state.
        state: ConfigState,
    },
}

impl ControlPlane {
    /// A control plane for a rack that has no ledger yet; call
    /// [`initialize`](Self::initialize) next.
    pub fn new(config: ControlPlaneConfig) -> Self {
        ControlPlane {
            config,
            ledger: Ledger::default(),
            driver: DriverState::default(),
            planted: Planted::default(),
        }
    }

    /// A control plane over a stored ledger, after checking every ledger
    /// rule. The driver's in-memory bookkeeping starts empty: a pending
    /// coordinator gets a fresh `prepare_timeout`.
    pub fn from_ledger(config: ControlPlaneConfig, ledger: Ledger) -> Result<Self, LedgerError> {
        ledger.validate()?;
        Ok(ControlPlane {
            config,
            ledger,
            driver: DriverState::default(),
            planted: Planted::default(),
        })
    }

    /// Switches on a deliberately wrong behaviour (simulator self-test
    /// only). It is not part of the ledger: set it again after
    /// [`ControlPlane::from_ledger`].
    #[cfg(feature = "planted-bugs")]
    pub fn plant_bug(&mut self, bug: PlantedBug) {
        self.planted.set(bug);
    }

    /// The ledger, to store after a change.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Gives up the control plane, keeping its ledger.
    pub fn into_ledger(self) -> Ledger {
        self.ledger
    }

    /// The settings.
    pub fn settings(&self) -> &ControlPlaneConfig {
        &self.config
    }

    /// The rack, once initialized.
    pub fn rack_id(&self) -> Option<RackId> {
        self.ledger.rack_id()
    }

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
        transact(&mut self.ledger, |l| {
            l.set_rack_id(rack_id);
            l.propose(members, 1, policy, now, rng)
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
        transact(&mut self.ledger, |l| l.propose(proposed, 1, policy, now, rng)).map_err(
            |e| match e {
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
            },
        )
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
    pub fn abort_latest(&mut self, reason: &str, now: Timestamp) -> Result<Epoch, AbortError> {
        let reason = AbortReason::Operator { reason: reason.to_owned() };
        let result = self.abort_with(reason, now);
        if let Ok(epoch) = result {
            self.driver.forget_epoch(epoch);
        }
        result
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

    /// The detailed view of the configuration at `epoch`.
    pub fn config(&self, epoch: Epoch) -> Option<TrustQuorumConfig> {
        self.ledger.view(epoch)
    }

    /// The detailed view of the latest configuration, whatever its state.
    pub fn latest(&self) -> Option<TrustQuorumConfig> {
        self.ledger.latest().and_then(|(epoch, _)| self.ledger.view(epoch))
    }

    /// Every epoch in the ledger, oldest first, whatever its state.
    pub fn epochs(&self) -> impl Iterator<Item = Epoch> + '_ {
        self.ledger.epochs()
    }

    /// The latest epoch, whatever its state.
    pub fn latest_epoch(&self) -> Option<Epoch> {
        self.ledger.latest().map(|(epoch, _)| epoch)
    }

    /// The newest committing or committed epoch, whose membership is the
    /// rack's.
    pub fn last_committed_epoch(&self) -> Option<Epoch> {
        self.ledger.base().map(|(epoch, _)| epoch)
    }

    /// The rack's membership: that of the newest committing or committed
    /// configuration (empty before one exists).
    pub fn membership(&self) -> BTreeSet<BaseboardId> {
        self.ledger.base().map(|(_, r)| r.member_ids()).unwrap_or_default()
    }

    /// The operator's status of the change that created `epoch`.
    pub fn status(&self, epoch: Epoch) -> Option<RackMembershipStatus> {
        self.ledger.status(epoch)
    }

    /// Why `epoch` was aborted, if it was.
    pub fn abort_reason(&self, epoch: Epoch) -> Option<AbortReason> {
        self.ledger.record(epoch).and_then(|r| r.abort_reason.clone())
    }

    /// Newly joined members that committed but are not yet reported in
    /// service; the driver asks for their activation on every pass.
    pub fn pending_activations(&self) -> BTreeSet<BaseboardId> {
        self.ledger.pending_activations()
    }
}

/// Applies `f` to a draft of `ledger`. On success a changed draft replaces
/// the ledger with the next generation; on failure nothing changes.
fn transact<T, E>(
    ledger: &mut Ledger,
    f: impl FnOnce(&mut Ledger) -> Result<T, E>,
) -> Result<T, E> {
    let mut draft = ledger.clone();
    let out = f(&mut draft)?;
    if draft != *ledger {
        draft.bump_generation();
        debug_assert_eq!(draft.validate(), Ok(()), "a transition broke a ledger rule");
        *ledger = draft;
    }
    Ok(out)
}
