//! Control-plane replicas sharing one ledger store with compare-and-set.
//!
//! Every replica decides on its own snapshot of the ledger; a decision is
//! kept only if the store still holds the generation it started from.

use crate::options::PlantedBug;
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::membership::Timestamp;
use tq_types::{BaseboardId, RackId};
use trust_quorum::control::{
    ControlPlane, ControlPlaneConfig, CrashTolerance, Held, Ledger, LedgerWrite, Policy, Stored,
    ThresholdRule,
};
use trust_quorum::crypto::authority::Authority;

use crate::policy::{KRule, SimPolicy, ZTableChoice};
use crate::random::subseed;

/// The simulated wall clock starts at 2026-01-14T21:32:18Z.
const EPOCH_MICROS: i64 = 1_768_426_338_000_000;

/// The simulated time `ms` milliseconds after the start.
pub fn timestamp(ms: u64) -> Timestamp {
    let micros = i64::try_from(ms).unwrap_or(i64::MAX / 2).saturating_mul(1000);
    Timestamp::from_unix_micros(EPOCH_MICROS.saturating_add(micros))
        .or_else(|| Timestamp::from_unix_micros(EPOCH_MICROS))
        .unwrap_or_else(|| unreachable!("the start time is valid"))
}

/// Plants `bug` in a control plane (with the `planted-bugs` feature).
fn plant(cp: &mut ControlPlane, bug: Option<PlantedBug>) {
    #[cfg(feature = "planted-bugs")]
    if let Some(bug) = bug {
        cp.plant_bug(bug);
    }
    #[cfg(not(feature = "planted-bugs"))]
    if let Some(bug) = bug {
        match bug {}
    }
    #[cfg(not(feature = "planted-bugs"))]
    let _ = cp;
}

/// One control-plane replica.
struct Replica {
    /// `None` while crashed.
    cp: Option<ControlPlane>,
    /// Act once on the current snapshot without refreshing it.
    stale: bool,
}

/// The replicas and the ledger store they share.
pub(crate) struct Replicas {
    settings: ControlPlaneConfig,
    planted_bug: Option<PlantedBug>,
    store: Ledger,
    /// A control plane over the stored ledger, for views and checks.
    observer: ControlPlane,
    replicas: Vec<Replica>,
    /// The control side's randomness.
    rng: ChaCha20Rng,
    /// The authority every replica signs with.
    authority: Arc<Authority>,
    /// How many compare-and-set races replicas lost (for coverage; not
    /// part of the world's digest).
    races_lost: u64,
}

/// The product's policy for the run's `policy`.
fn product_policy(policy: &SimPolicy) -> Policy {
    let table = match policy.z_table {
        ZTableChoice::AddSledsRelease => CrashTolerance::AddSledsRelease,
        ZTableChoice::LatestReference => CrashTolerance::LatestReference,
        ZTableChoice::Fixed(z) => CrashTolerance::Fixed(z),
    };
    let rule = match policy.threshold {
        KRule::Majority => ThresholdRule::Majority,
        KRule::MajorityPlus(d) => ThresholdRule::MajorityPlus(d),
    };
    Policy::new(table).with_threshold(rule)
}

impl Replicas {
    /// `count` replicas over a ledger initialized with `initial` as the
    /// first membership.
    pub(crate) fn new(
        seed: u64,
        policy: &SimPolicy,
        count: usize,
        rack_id: RackId,
        initial: &[BaseboardId],
        planted_bug: Option<PlantedBug>,
    ) -> Replicas {
        let settings =
            ControlPlaneConfig { policy: product_policy(policy), ..ControlPlaneConfig::default() };
        let mut rng = ChaCha20Rng::seed_from_u64(subseed(seed, "control", 0));
        let authority = Arc::new(crate::random::authority(seed));
        let mut first = ControlPlane::new(settings.clone(), authority.clone());
        plant(&mut first, planted_bug);
        let held = first.initialize(rack_id, initial.iter().cloned(), timestamp(0), &mut rng);
        let store = first.ledger().clone();
        let initialized = match first.take_write() {
            LedgerWrite::Pending(write) => held.release(&write.written()),
            LedgerWrite::Nothing(stored) => held.release(&stored),
        };
        if let Err(e) = initialized {
            tracing::error!(%e, "initialize failed");
        }
        let mut replicas = Replicas {
            observer: first,
            settings,
            authority,
            store,
            rng,
            planted_bug,
            replicas: Vec::new(),
            races_lost: 0,
        };
        replicas.replicas =
            (0..count).map(|_| Replica { cp: replicas.load_replica(), stale: false }).collect();
        replicas
    }

    /// A replica's control plane freshly loaded from the store.
    fn load_replica(&self) -> Option<ControlPlane> {
        let mut cp = ControlPlane::from_ledger(
            self.settings.clone(),
            self.authority.clone(),
            self.store.clone(),
        )
        .ok()?;
        plant(&mut cp, self.planted_bug);
        Some(cp)
    }

    /// The control plane over the stored ledger.
    pub(crate) fn observer(&self) -> &ControlPlane {
        &self.observer
    }

    /// The stored ledger.
    pub(crate) fn ledger(&self) -> &Ledger {
        &self.store
    }

    /// How many compare-and-set races replicas lost so far.
    pub(crate) fn races_lost(&self) -> u64 {
        self.races_lost
    }

    /// The control side's randomness.
    pub(crate) fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }

    /// Adds each replica's state (running, stale) to a digest.
    pub(crate) fn digest_into(&self, h: &mut blake3::Hasher) {
        for r in &self.replicas {
            h.update(&[u8::from(r.cp.is_some()), u8::from(r.stale)]);
        }
    }

    /// Whether each replica runs.
    pub(crate) fn running(&self) -> Vec<bool> {
        self.replicas.iter().map(|r| r.cp.is_some()).collect()
    }

    /// The text report of the latest commit pass of any running replica.
    pub(crate) fn last_report(&self) -> Option<String> {
        self.replicas.iter().find_map(|r| r.cp.as_ref()?.last_pass()).map(ToString::to_string)
    }

    /// The running replicas.
    pub(crate) fn up(&self) -> Vec<usize> {
        self.replicas.iter().enumerate().filter(|(_, r)| r.cp.is_some()).map(|(i, _)| i).collect()
    }

    /// The crashed replicas.
    pub(crate) fn down(&self) -> Vec<usize> {
        self.replicas.iter().enumerate().filter(|(_, r)| r.cp.is_none()).map(|(i, _)| i).collect()
    }

    /// Crashes replica `r`.
    pub(crate) fn crash(&mut self, r: usize) {
        if let Some(replica) = self.replicas.get_mut(r) {
            replica.cp = None;
            replica.stale = false;
        }
    }

    /// Restarts replica `r` from the store, if it is down.
    pub(crate) fn restart(&mut self, r: usize) {
        if self.replicas.get(r).is_some_and(|replica| replica.cp.is_none()) {
            let fresh = self.load_replica();
            if let Some(replica) = self.replicas.get_mut(r) {
                replica.cp = fresh;
            }
        }
    }

    /// Makes running replica `r` act once on its current snapshot.
    pub(crate) fn make_stale(&mut self, r: usize) {
        if let Some(replica) = self.replicas.get_mut(r).filter(|replica| replica.cp.is_some()) {
            replica.stale = true;
        }
    }

    /// Runs `f` on replica `r` as one transaction over the shared store at
    /// simulated time `now_ms`: refresh (unless the replica acts on a stale
    /// snapshot), apply, then the store step: compare-and-set on the
    /// generation the replica expects, and only with the proof that the
    /// ledger is stored, release what `f` returned. A replica that lost the
    /// race releases nothing, reloads and decides again, once.
    pub(crate) fn transact<O: Outcome>(
        &mut self,
        r: usize,
        now_ms: u64,
        mut f: impl FnMut(&mut ControlPlane, Timestamp, &mut ChaCha20Rng) -> O,
    ) -> Option<O::Released> {
        let now = timestamp(now_ms);
        let replica = self.replicas.get_mut(r)?;
        let stale = std::mem::take(&mut replica.stale);
        let mut cp = replica.cp.take()?;
        if !stale && cp.ledger().generation() != self.store.generation() {
            cp = self.load_replica()?;
        }
        let mut out = None;
        for _ in 0..2 {
            let held = f(&mut cp, now, &mut self.rng);
            let stored = match cp.take_write() {
                LedgerWrite::Nothing(proof) => Some(proof),
                LedgerWrite::Pending(write)
                    if write.expected_generation() == self.store.generation() =>
                {
                    self.store = write.ledger().clone();
                    if let Ok(observer) = ControlPlane::from_ledger(
                        self.settings.clone(),
                        self.authority.clone(),
                        self.store.clone(),
                    ) {
                        self.observer = observer;
                    }
                    Some(write.written())
                }
                LedgerWrite::Pending(_) => None,
            };
            if let Some(proof) = stored {
                out = Some(held.release(&proof));
                break;
            }
            tracing::debug!(replica = r, "lost a compare-and-set race; deciding again");
            self.races_lost = self.races_lost.saturating_add(1);
            match self.load_replica() {
                Some(fresh) => cp = fresh,
                None => break,
            }
        }
        if let Some(replica) = self.replicas.get_mut(r) {
            replica.cp = Some(cp);
        }
        out
    }
}

/// What a transaction's call returns: a result the control plane holds
/// until its ledger is stored, or an answer to a result report (which
/// needs no release).
pub(crate) trait Outcome {
    /// What the caller gets once the ledger is stored.
    type Released;
    /// Releases the result with the proof.
    fn release(self, proof: &Stored<'_>) -> Self::Released;
}

impl<T> Outcome for Held<T> {
    type Released = T;
    fn release(self, proof: &Stored<'_>) -> T {
        Held::release(self, proof)
    }
}

/// The answer of an `on_*` call, which the control plane does not hold.
pub(crate) struct Answer<T>(pub(crate) T);

impl<T> Outcome for Answer<T> {
    type Released = T;
    fn release(self, _proof: &Stored<'_>) -> T {
        self.0
    }
}
