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
//!
//! This file holds the pass and the driver's in-memory bookkeeping; the
//! work on a preparing configuration is in `prepare.rs`, on a committing
//! one in `commit.rs`.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRng;
use tq_types::{BaseboardId, ConfigState, Epoch, Timestamp};

use super::ControlPlane;
use super::action::ControlAction;
use super::ledger::AbortReason;
use super::report::PassReport;
use super::write::Held;

/// The driver's in-memory bookkeeping. Losing it (a restart) is safe: the
/// prepare timeout starts afresh, fallbacks are rediscovered.
#[derive(Clone, Debug, Default)]
pub(crate) struct DriverState {
    pub(super) watch: Option<PrepareWatch>,
    /// Nodes reported unreachable, and since when.
    pub(super) unreachable: BTreeMap<BaseboardId, Timestamp>,
    /// Prepared members that answered `NotPrepared`: prepare-and-commit them.
    pub(super) fallback: BTreeSet<(Epoch, BaseboardId)>,
    /// The proxy each member's request went through in the current pass.
    pub(super) routes: BTreeMap<BaseboardId, BaseboardId>,
    pub(super) pass: Option<PassReport>,
    /// When the last pass ran, and the ledger generation it left.
    pub(super) last_tick: Option<(Timestamp, u64)>,
    /// The latest time any call reported.
    pub(super) last_seen: Option<Timestamp>,
}

/// A deadline before any real time, for "now" when no time was seen yet.
const EARLIEST: Timestamp = Timestamp::UNIX_EPOCH;

/// Liveness of the coordinator of the preparing configuration.
#[derive(Clone, Debug)]
pub(super) struct PrepareWatch {
    pub(super) epoch: Epoch,
    /// When watching started: the reconfiguration request was sent, or this
    /// replica first saw the epoch.
    pub(super) since: Timestamp,
    /// When the coordinator last answered.
    pub(super) last_heard: Option<Timestamp>,
    /// The request was sent by this replica and is not yet answered: do not
    /// poll before the coordinator got it.
    pub(super) awaiting_reconfigure: bool,
}

impl DriverState {
    /// Remembers `now` as the latest time a call reported.
    pub(super) fn seen(&mut self, now: Timestamp) {
        self.last_seen = Some(self.last_seen.map_or(now, |t| t.max(now)));
    }

    pub(crate) fn forget_epoch(&mut self, epoch: Epoch) {
        if self.watch.as_ref().is_some_and(|w| w.epoch == epoch) {
            self.watch = None;
        }
        self.fallback.retain(|(e, _)| *e != epoch);
    }

    pub(super) fn watch_for(&mut self, epoch: Epoch, now: Timestamp) -> &mut PrepareWatch {
        let fresh =
            PrepareWatch { epoch, since: now, last_heard: None, awaiting_reconfigure: false };
        if self.watch.as_ref().is_none_or(|w| w.epoch != epoch) {
            self.watch = Some(fresh.clone());
        }
        self.watch.get_or_insert(fresh)
    }

    /// Whether `node` counts as reachable at `now`: it has no "unreachable"
    /// mark younger than `backoff` (a successful answer clears the mark).
    pub(super) fn is_reachable(
        &self,
        node: &BaseboardId,
        now: Timestamp,
        backoff: core::time::Duration,
    ) -> bool {
        self.unreachable
            .get(node)
            .is_none_or(|since| now.saturating_duration_since(*since) >= backoff)
    }

    pub(super) fn heard(&mut self, epoch: Epoch, now: Timestamp) {
        let w = self.watch_for(epoch, now);
        w.last_heard = Some(w.last_heard.map_or(now, |t| t.max(now)));
        w.awaiting_reconfigure = false;
    }
}

/// Logs a rejected result before returning its error.
pub(super) fn ignored<E: core::fmt::Display>(error: E) -> E {
    tracing::debug!(%error, "result ignored");
    error
}

impl ControlPlane {
    /// One driver pass: everything to send now, in order. Call it
    /// periodically (every few seconds) and after every operation.
    ///
    /// It may change the ledger (recording that the reconfiguration request
    /// was sent, aborting a configuration whose coordinator stayed silent
    /// for `prepare_timeout`, proposing an automatic retry): store the
    /// ledger before sending the actions.
    pub fn tick<R: CryptoRng + ?Sized>(
        &mut self,
        now: Timestamp,
        rng: &mut R,
    ) -> Held<Vec<ControlAction>> {
        let actions = self.pass(now, rng);
        self.driver.last_tick = Some((now, self.ledger.generation()));
        Held::new(actions)
    }

    /// When [`tick`](Self::tick) should next be called: `None` while there
    /// is nothing to drive (the next operator operation or answer changes
    /// that), a time at or before the last one seen when a change since the
    /// last pass needs one at once, otherwise the last pass plus
    /// `tick_interval`, or the coordinator's prepare timeout if sooner.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        if !self.has_work() {
            return None;
        }
        let Some((last, generation)) = self.driver.last_tick else {
            return Some(self.driver.last_seen.unwrap_or(EARLIEST));
        };
        if generation != self.ledger.generation() {
            return Some(self.driver.last_seen.unwrap_or(last));
        }
        let periodic = last.checked_add(self.config.tick_interval);
        // The prepare timeout matters only while the watched epoch is the
        // latest and still preparing.
        let preparing = self.ledger.latest().and_then(|(epoch, r)| {
            (r.state == ConfigState::Preparing && r.time_reconfigure_sent.is_some())
                .then_some(epoch)
        });
        let timeout =
            self.driver.watch.as_ref().filter(|w| Some(w.epoch) == preparing).and_then(|w| {
                let reference = w.last_heard.map_or(w.since, |t| t.max(w.since));
                reference.checked_add(self.config.prepare_timeout)
            });
        match (periodic, timeout) {
            (Some(p), Some(t)) => Some(p.min(t)),
            (p, t) => p.or(t),
        }
    }

    /// Whether a pass has anything to do: a configuration to drive, an
    /// aborted change to retry, a sled to activate.
    fn has_work(&self) -> bool {
        let latest = self.ledger.latest();
        let driving = latest.is_some_and(|(_, r)| {
            matches!(r.state, ConfigState::Preparing | ConfigState::Committing)
                || (self.config.auto_retry
                    && r.state == ConfigState::Aborted
                    && r.abort_reason.as_ref().is_some_and(AbortReason::is_retryable)
                    && r.attempt < self.config.max_attempts)
        });
        driving || !self.ledger.pending_activations().is_empty()
    }

    /// The pass itself.
    fn pass<R: CryptoRng + ?Sized>(&mut self, now: Timestamp, rng: &mut R) -> Vec<ControlAction> {
        self.driver.seen(now);
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

    /// Records that `node` could not be reached (as coordinator, proxy or
    /// member). It is avoided as a proxy for `unreachable_backoff`. A
    /// coordinator is still polled; its silence counts toward the prepare
    /// timeout.
    pub fn on_unreachable(&mut self, node: &BaseboardId, now: Timestamp) {
        self.driver.seen(now);
        tracing::debug!(%node, "unreachable");
        self.driver.unreachable.insert(node.clone(), now);
    }

    /// The report of the latest commit pass, updated as results come in.
    pub fn last_pass(&self) -> Option<&PassReport> {
        self.driver.pass.as_ref()
    }
}
