//! Store before you send, as types: the control plane's step after every
//! call that can change its ledger.
//!
//! [`ControlPlane::take_write`] says whether the ledger changed since it
//! was last stored. If it did, the embedder gets a [`PendingLedgerWrite`]:
//! it stores [`ledger`](PendingLedgerWrite::ledger) with compare-and-set on
//! [`expected_generation`](PendingLedgerWrite::expected_generation) and, if
//! the store took it, calls [`written`](PendingLedgerWrite::written). If the
//! store refused (another replica wrote first), it drops the write and the
//! held results, reloads the ledger and builds a new control plane with
//! [`ControlPlane::from_ledger`]. Only the [`Stored`] proof releases what a
//! call holds back: the actions of [`ControlPlane::tick`] and the epochs of
//! operator operations ([`Held::release`]).
//!
//! ```
//! use std::collections::BTreeSet;
//! use rand_core::SeedableRng;
//! use trust_quorum::control::{ControlPlane, ControlPlaneConfig, LedgerWrite};
//! use tq_types::{BaseboardId, RackId, Timestamp};
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let now = Timestamp::from_unix_micros(1_768_426_338_780_136).unwrap();
//! let sleds: BTreeSet<BaseboardId> =
//!     ["P:0", "P:1", "P:2"].iter().map(|s| s.parse().unwrap()).collect();
//! let mut stored_generation = 0; // what the database holds
//! # let authority = std::sync::Arc::new(trust_quorum::crypto::authority::Authority::generate(&mut rng));
//! let mut cp = ControlPlane::new(ControlPlaneConfig::default(), authority);
//! let held = cp.initialize(RackId(uuid::Uuid::nil()), sleds, now, &mut rng);
//! let stored = match cp.take_write() {
//!     LedgerWrite::Pending(write) => {
//!         // UPDATE ledger SET body = $1, generation = $2 WHERE generation = $3
//!         assert_eq!(write.expected_generation(), stored_generation);
//!         stored_generation = write.ledger().generation();
//!         write.written()
//!     }
//!     LedgerWrite::Nothing(stored) => stored,
//! };
//! let epoch = held.release(&stored).unwrap();
//! # let _ = epoch;
//! ```
//!
//! Actions cannot be had without the proof:
//!
//! ```compile_fail,E0308
//! # use rand_core::SeedableRng;
//! # use trust_quorum::control::{ControlAction, ControlPlane, ControlPlaneConfig};
//! # let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! # let now = tq_types::Timestamp::from_unix_micros(0).unwrap();
//! # let authority = std::sync::Arc::new(trust_quorum::crypto::authority::Authority::generate(&mut rng));
//! let mut cp = ControlPlane::new(ControlPlaneConfig::default(), authority);
//! let actions: Vec<ControlAction> = cp.tick(now, &mut rng); // a Held, not the actions
//! ```

use super::ControlPlane;
use super::ledger::Ledger;

impl ControlPlane {
    /// The ledger write the calls since the last one made necessary:
    /// [`LedgerWrite::Pending`] when the ledger changed, otherwise the proof
    /// at once.
    pub fn take_write(&mut self) -> LedgerWrite<'_> {
        if self.ledger.generation() == self.stored_generation {
            LedgerWrite::Nothing(Stored { cp: self })
        } else {
            LedgerWrite::Pending(PendingLedgerWrite { cp: self })
        }
    }
}

/// What [`ControlPlane::take_write`] found: a ledger to store, or nothing.
#[must_use = "held results are released only by the proof this leads to"]
#[derive(Debug)]
pub enum LedgerWrite<'a> {
    /// The ledger changed: store it, then call [`PendingLedgerWrite::written`].
    Pending(PendingLedgerWrite<'a>),
    /// Nothing changed since the last store: the proof, at once.
    Nothing(Stored<'a>),
}

/// A ledger to store, with compare-and-set, before anything the calls that
/// changed it decided leaves the control plane.
#[must_use = "store the ledger, then call written()"]
#[derive(Debug)]
pub struct PendingLedgerWrite<'a> {
    cp: &'a mut ControlPlane,
}

impl<'a> PendingLedgerWrite<'a> {
    /// The ledger to store; its [`generation`](Ledger::generation) is the
    /// one to write.
    pub fn ledger(&self) -> &Ledger {
        &self.cp.ledger
    }

    /// The generation the store must still hold for this write to be taken
    /// (the compare of compare-and-set): the one this control plane was
    /// built from or last stored.
    pub fn expected_generation(&self) -> u64 {
        self.cp.stored_generation
    }

    /// Call once the store took the ledger. Returns the proof that
    /// releases held results.
    pub fn written(self) -> Stored<'a> {
        self.cp.stored_generation = self.cp.ledger.generation();
        Stored { cp: self.cp }
    }
}

/// Proof that the ledger as it is now is stored. Only
/// [`PendingLedgerWrite::written`] and [`LedgerWrite::Nothing`] make one.
#[derive(Debug)]
pub struct Stored<'a> {
    #[allow(dead_code, reason = "the borrow is the point: no call until the proof is gone")]
    cp: &'a mut ControlPlane,
}

/// A result held back until the ledger it reflects is stored.
#[must_use = "release it with the proof that the ledger is stored"]
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Held<T>(T);

impl<T> Held<T> {
    pub(super) fn new(value: T) -> Self {
        Held(value)
    }

    /// The result, once the ledger it reflects is stored.
    pub fn release(self, _proof: &Stored<'_>) -> T {
        self.0
    }
}
