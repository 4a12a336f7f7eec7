//! The control-plane role, sans I/O: one rack's ledger, the operator's
//! operations on it, and the driver that says what to send to nodes.
//!
//! [`ControlPlane`] owns a [`Ledger`] (docs/protocol.md section 5). Every method
//! is a function of the ledger, its input, the time `now` and an injected
//! [`CryptoRng`](rand_core::CryptoRng): it reads no clock, does no I/O and
//! starts no thread, so two replicas holding the same ledger and fed the same
//! inputs decide the same way.
//!
//! # Run loop
//!
//! An embedder (a service, or the simulator) does this:
//!
//! 1. load the stored [`Ledger`] and build the control plane with
//!    [`ControlPlane::from_ledger`] (or [`ControlPlane::new`] for a new
//!    rack);
//! 2. call one operation ([`ControlPlane::add_sleds`], ...), driver pass
//!    ([`ControlPlane::tick`]) or result method (`on_*`); operations and
//!    passes return their result [`Held`];
//! 3. take the write with [`ControlPlane::take_write`]: if the ledger
//!    changed, store it with compare-and-set on
//!    [`PendingLedgerWrite::expected_generation`] and call
//!    [`PendingLedgerWrite::written`]; if the store refuses, drop the held
//!    results, reload and go back to 1;
//! 4. only with the resulting [`Stored`] proof release the held results:
//!    send the actions, answer the operator, and report each answer through
//!    the matching `on_*` method;
//! 5. call `tick` again at [`ControlPlane::next_deadline`], or when an
//!    operation or answer arrives.
//!
//! Operator operations return typed errors that name the sleds and epochs
//! involved; a refused operation or result never changes the ledger.
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeSet;
//! use std::sync::Arc;
//! use rand_core::SeedableRng;
//! use trust_quorum::control::{ControlAction, ControlPlane, ControlPlaneConfig, LedgerWrite};
//! use trust_quorum::crypto::authority::Authority;
//! use tq_types::{BaseboardId, RackId, Timestamp};
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! // The signing key, shared by the replicas (stored where only they read it).
//! let authority = Arc::new(Authority::generate(&mut rng));
//! let now = Timestamp::from_unix_micros(1_768_426_338_780_136).unwrap();
//! let sleds: BTreeSet<BaseboardId> =
//!     ["P:0", "P:1", "P:2"].iter().map(|s| s.parse().unwrap()).collect();
//! let mut store = None; // the database row: (generation, ledger)
//! let mut cp = ControlPlane::new(ControlPlaneConfig::default(), authority);
//! let initialized = cp.initialize(RackId(uuid::Uuid::nil()), sleds, now, &mut rng);
//! let pass = cp.tick(now, &mut rng);
//! let stored = match cp.take_write() {
//!     LedgerWrite::Pending(write) => {
//!         let expected = store.as_ref().map_or(0, |(generation, _)| *generation);
//!         assert_eq!(write.expected_generation(), expected); // compare, then set
//!         store = Some((write.ledger().generation(), write.ledger().clone()));
//!         write.written()
//!     }
//!     LedgerWrite::Nothing(stored) => stored,
//! };
//! let epoch = initialized.release(&stored).unwrap();
//! let actions = pass.release(&stored);
//! assert!(matches!(&actions[..], [ControlAction::Reconfigure { msg, .. }] if msg.msg.epoch == epoch));
//! assert!(cp.next_deadline().is_some(), "a change is in progress");
//! ```

use core::time::Duration;
use std::collections::BTreeSet;
use std::sync::Arc;

use tq_types::{BaseboardId, Epoch, RackId, RackMembershipStatus, TrustQuorumConfig};

mod action;
mod commit;
mod driver;
mod errors;
mod ledger;
mod ledger_rules;
mod operator;
mod policy;
mod prepare;
mod proposal;
mod report;
mod views;
mod write;

pub use action::ControlAction;
pub use errors::{
    AbortError, ActivationError, AddSledsError, ChangeRefused, CommitResultError, ConfigMismatch,
    CoordinatorStatusError, InitializeError, LedgerError, MemberCommitError,
    ReconfigureResultError, RemoveSledsError,
};
pub use ledger::{AbortReason, Ledger};
pub use policy::{CrashTolerance, Policy, ThresholdRule};
pub use report::{ClientReport, PassReport};
pub use write::{Held, LedgerWrite, PendingLedgerWrite, Stored};

use driver::DriverState;

use crate::crypto::authority::Authority;
use crate::planted::Planted;
#[cfg(feature = "planted-bugs")]
use crate::planted::PlantedBug;

/// Settings of a control plane. Replicas sharing a ledger should use the same
/// settings.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ControlPlaneConfig {
    /// K and Z as functions of the membership size, and the allowed sizes.
    pub policy: Policy,
    /// How long a preparing configuration's coordinator may stay silent
    /// before the configuration is aborted as having a dead coordinator.
    pub prepare_timeout: Duration,
    /// How long after the reconfiguration request was sent (the ledger's
    /// `time_reconfigure_sent`) a coordinator's "not coordinating" answer
    /// is taken as early, the request not having reached it yet, and
    /// ignored. Only a later such answer aborts the configuration.
    pub not_coordinating_grace: Duration,
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
    /// How often [`ControlPlane::tick`] should run while a change is in
    /// progress ([`ControlPlane::next_deadline`]).
    pub tick_interval: Duration,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        ControlPlaneConfig {
            policy: Policy::default(),
            prepare_timeout: Duration::from_secs(60),
            not_coordinating_grace: Duration::from_secs(10),
            auto_retry: true,
            max_attempts: 3,
            max_proxies: 5,
            unreachable_backoff: Duration::from_secs(30),
            tick_interval: Duration::from_secs(2),
        }
    }
}

/// The control plane of one rack: its ledger, its settings and the driver's
/// in-memory bookkeeping (which is not durable and may be lost on restart).
#[derive(Clone, Debug)]
pub struct ControlPlane {
    config: ControlPlaneConfig,
    ledger: Ledger,
    /// The generation of the ledger as last stored (or loaded).
    stored_generation: u64,
    driver: DriverState,
    planted: Planted,
    authority: Arc<Authority>,
}

impl ControlPlane {
    /// A control plane for a rack that has no ledger yet, signing with
    /// `authority` (replicas share one); call
    /// [`initialize`](Self::initialize) next.
    pub fn new(config: ControlPlaneConfig, authority: Arc<Authority>) -> Self {
        ControlPlane {
            authority,
            config,
            stored_generation: Ledger::default().generation(),
            ledger: Ledger::default(),
            driver: DriverState::default(),
            planted: Planted::default(),
        }
    }

    /// A control plane over a stored ledger, after checking every ledger
    /// rule. The driver's in-memory bookkeeping starts empty: a pending
    /// coordinator gets a fresh `prepare_timeout`.
    pub fn from_ledger(
        config: ControlPlaneConfig,
        authority: Arc<Authority>,
        ledger: Ledger,
    ) -> Result<Self, LedgerError> {
        ledger.validate()?;
        Ok(ControlPlane {
            authority,
            config,
            stored_generation: ledger.generation(),
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

    /// The authority this control plane signs with.
    pub fn authority(&self) -> &Arc<Authority> {
        &self.authority
    }

    /// The settings.
    pub fn settings(&self) -> &ControlPlaneConfig {
        &self.config
    }

    /// The rack, once initialized.
    pub fn rack_id(&self) -> Option<RackId> {
        self.ledger.rack_id()
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
