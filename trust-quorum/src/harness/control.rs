//! A control plane embedded over an in-memory ledger store: every call that
//! holds its result back goes through the store step first.

use core::ops::{Deref, DerefMut};
use std::sync::Arc;

use rand_core::CryptoRng;
use tq_types::{
    BaseboardId, CommitStatus, CoordinatorStatus, Epoch, RackId, ReconfigurationError, Timestamp,
};

use crate::control::{
    AbortError, ActivationError, AddSledsError, CommitResultError, ControlAction, ControlPlane,
    ControlPlaneConfig, CoordinatorStatusError, InitializeError, Ledger, LedgerError, LedgerWrite,
    MemberCommitError, ReconfigureResultError, RemoveSledsError, Stored,
};
use crate::crypto::authority::Authority;

/// A [`ControlPlane`] and the ledger it last stored. Every call that can
/// change the ledger is followed by the store step, and operations and
/// passes return their results once the ledger is stored; the rest is the
/// control plane's own API, through `Deref`.
#[derive(Clone, Debug)]
pub struct Controller {
    cp: ControlPlane,
    stored: Ledger,
}

impl Controller {
    /// A control plane for a rack with no ledger yet, signing with
    /// `authority`.
    pub fn new(config: ControlPlaneConfig, authority: Arc<Authority>) -> Controller {
        Controller { cp: ControlPlane::new(config, authority), stored: Ledger::default() }
    }

    /// A control plane over a stored ledger (a replica starting, or one
    /// that lost a compare-and-set race and reloads).
    pub fn from_ledger(
        config: ControlPlaneConfig,
        authority: Arc<Authority>,
        ledger: Ledger,
    ) -> Result<Controller, LedgerError> {
        let cp = ControlPlane::from_ledger(config, authority, ledger.clone())?;
        Ok(Controller { cp, stored: ledger })
    }

    /// The ledger as last stored.
    pub fn stored(&self) -> &Ledger {
        &self.stored
    }

    /// A driver pass; the actions once the ledger is stored.
    pub fn tick<R: CryptoRng + ?Sized>(
        &mut self,
        now: Timestamp,
        rng: &mut R,
    ) -> Vec<ControlAction> {
        let held = self.cp.tick(now, rng);
        self.store_then(|stored| held.release(stored))
    }

    /// [`ControlPlane::initialize`], once stored.
    pub fn initialize<R: CryptoRng + ?Sized>(
        &mut self,
        rack_id: RackId,
        members: impl IntoIterator<Item = BaseboardId>,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Epoch, InitializeError> {
        let held = self.cp.initialize(rack_id, members, now, rng);
        self.store_then(|stored| held.release(stored))
    }

    /// [`ControlPlane::add_sleds`], once stored.
    pub fn add_sleds<R: CryptoRng + ?Sized>(
        &mut self,
        sleds: impl IntoIterator<Item = BaseboardId>,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Epoch, AddSledsError> {
        let held = self.cp.add_sleds(sleds, now, rng);
        self.store_then(|stored| held.release(stored))
    }

    /// [`ControlPlane::remove_sleds`], once stored.
    pub fn remove_sleds<R: CryptoRng + ?Sized>(
        &mut self,
        sleds: impl IntoIterator<Item = BaseboardId>,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Epoch, RemoveSledsError> {
        let held = self.cp.remove_sleds(sleds, now, rng);
        self.store_then(|stored| held.release(stored))
    }

    /// [`ControlPlane::abort_latest`], once stored.
    pub fn abort_latest(&mut self, reason: &str, now: Timestamp) -> Result<Epoch, AbortError> {
        let held = self.cp.abort_latest(reason, now);
        self.store_then(|stored| held.release(stored))
    }

    /// [`ControlPlane::on_reconfigure_result`], then the store step.
    pub fn on_reconfigure_result(
        &mut self,
        epoch: Epoch,
        from: &BaseboardId,
        result: Result<(), ReconfigurationError>,
        now: Timestamp,
    ) -> Result<(), ReconfigureResultError> {
        let out = self.cp.on_reconfigure_result(epoch, from, result, now);
        self.store_then(|_| out)
    }

    /// [`ControlPlane::on_coordinator_status`], then the store step.
    pub fn on_coordinator_status(
        &mut self,
        epoch: Epoch,
        from: &BaseboardId,
        status: Option<CoordinatorStatus>,
        now: Timestamp,
    ) -> Result<(), CoordinatorStatusError> {
        let out = self.cp.on_coordinator_status(epoch, from, status, now);
        self.store_then(|_| out)
    }

    /// [`ControlPlane::on_commit_result`], then the store step.
    pub fn on_commit_result(
        &mut self,
        epoch: Epoch,
        member: &BaseboardId,
        result: Result<CommitStatus, MemberCommitError>,
        now: Timestamp,
    ) -> Result<(), CommitResultError> {
        let out = self.cp.on_commit_result(epoch, member, result, now);
        self.store_then(|_| out)
    }

    /// [`ControlPlane::on_activated`], then the store step.
    pub fn on_activated(
        &mut self,
        sled: &BaseboardId,
        now: Timestamp,
    ) -> Result<(), ActivationError> {
        let out = self.cp.on_activated(sled, now);
        self.store_then(|_| out)
    }

    /// Stores the ledger if it changed, then releases through `release`.
    fn store_then<T>(&mut self, release: impl FnOnce(&Stored<'_>) -> T) -> T {
        let Controller { cp, stored } = self;
        let proof = match cp.take_write() {
            LedgerWrite::Pending(write) => {
                *stored = write.ledger().clone();
                write.written()
            }
            LedgerWrite::Nothing(proof) => proof,
        };
        release(&proof)
    }
}

impl Deref for Controller {
    type Target = ControlPlane;

    fn deref(&self) -> &ControlPlane {
        &self.cp
    }
}

impl DerefMut for Controller {
    fn deref_mut(&mut self) -> &mut ControlPlane {
        &mut self.cp
    }
}
