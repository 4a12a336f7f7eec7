//! The node's context: everything the embedder owns and the library changes.

use std::collections::BTreeSet;

use rand_core::CryptoRng;
use tq_types::{Alarm, AuthorityKey, BaseboardId, Envelope, PeerMsg, PeerMsgKind, RackId};

use super::persistent::PersistentState;
use crate::planted::{Planted, PlantedBug};

/// The random number generator a node draws secrets, shares and salts from.
/// Inject a seeded generator for reproducible runs; in production, a CSPRNG
/// seeded from the operating system.
pub trait NodeRng: CryptoRng + Send {}

impl<R: CryptoRng + Send> NodeRng for R {}

/// What a node's embedder owns: the node's identity, its persistent state,
/// the outbox, the connected peers, raised alarms and the injected rng.
///
/// After every call into [`Node`](super::Node), the embedder takes the
/// write the call made necessary with [`take_write`](Self::take_write):
/// only the proof that it is durable releases the queued envelopes and the
/// answers for the control plane (see [`Write`](super::Write)).
pub struct NodeCtx {
    id: BaseboardId,
    persistent: PersistentState,
    persistent_changed: bool,
    outbox: Vec<Envelope>,
    connected: BTreeSet<BaseboardId>,
    alarms: Vec<Alarm>,
    rng: Box<dyn NodeRng>,
    planted: Planted,
}

impl NodeCtx {
    /// A context for a node that has never been part of a rack, trusting
    /// the control plane whose authority key is `authority` (the embedder's
    /// configuration provides it; it is kept in the persistent state).
    pub fn new(id: BaseboardId, authority: AuthorityKey, rng: impl NodeRng + 'static) -> Self {
        Self::with_persistent_state(id, PersistentState::new(authority), rng)
    }

    /// A context for a node restarting with state read back from its durable
    /// store.
    pub fn with_persistent_state(
        id: BaseboardId,
        persistent: PersistentState,
        rng: impl NodeRng + 'static,
    ) -> Self {
        Self {
            id,
            persistent,
            persistent_changed: false,
            outbox: Vec::new(),
            connected: BTreeSet::new(),
            alarms: Vec::new(),
            rng: Box::new(rng),
            planted: Planted::default(),
        }
    }

    /// This node's identity.
    pub fn id(&self) -> &BaseboardId {
        &self.id
    }

    /// The control plane's authority key this node trusts.
    pub fn authority(&self) -> &AuthorityKey {
        self.persistent.authority()
    }

    /// The current persistent state (write it when it changed).
    pub fn persistent_state(&self) -> &PersistentState {
        &self.persistent
    }

    /// Whether the persistent state changed since the last durable write.
    pub(super) fn has_unwritten_change(&self) -> bool {
        self.persistent_changed
    }

    /// The embedder wrote the state durably ([`PendingWrite::written`]).
    pub(super) fn mark_written(&mut self) {
        self.persistent_changed = false;
    }

    /// Takes the queued envelopes ([`Persisted::envelopes`]).
    pub(super) fn take_outbox(&mut self) -> Vec<Envelope> {
        std::mem::take(&mut self.outbox)
    }

    /// Peers with a live connection.
    pub fn connected(&self) -> &BTreeSet<BaseboardId> {
        &self.connected
    }

    /// Alarms raised since the node started.
    pub fn alarms(&self) -> &[Alarm] {
        &self.alarms
    }

    /// Switches on a deliberately wrong behaviour (simulator self-test
    /// only).
    #[cfg(feature = "planted-bugs")]
    pub fn plant_bug(&mut self, bug: PlantedBug) {
        self.planted.set(bug);
    }

    /// Whether `bug` is planted in this node.
    pub(crate) fn has_bug(&self, bug: PlantedBug) -> bool {
        self.planted.is(bug)
    }

    pub(crate) fn rng(&mut self) -> &mut dyn NodeRng {
        &mut *self.rng
    }

    /// Changes the persistent state through `f`, then drops what it no
    /// longer keeps (docs/protocol.md section 2.4), raising the changed flag
    /// when either changed it: one write carries both.
    pub(crate) fn update_persistent<T>(
        &mut self,
        f: impl FnOnce(&mut PersistentState) -> (bool, T),
    ) -> T {
        let (changed, out) = f(&mut self.persistent);
        let pruned = self.persistent.prune();
        self.persistent_changed |= changed || pruned;
        out
    }

    pub(crate) fn add_connection(&mut self, peer: BaseboardId) -> bool {
        self.connected.insert(peer)
    }

    pub(crate) fn remove_connection(&mut self, peer: &BaseboardId) -> bool {
        self.connected.remove(peer)
    }

    /// Queues a message to `to`.
    pub(crate) fn send(&mut self, to: BaseboardId, rack_id: RackId, kind: PeerMsgKind) {
        tracing::debug!(from = %self.id, %to, msg = kind.name(), "queue");
        let from = self.id.clone();
        self.outbox.push(Envelope { to, from, msg: PeerMsg { rack_id, kind } });
    }

    /// Records an alarm (once; repeats of an identical alarm are dropped).
    pub(crate) fn raise_alarm(&mut self, alarm: Alarm) {
        tracing::error!(node = %self.id, ?alarm, "alarm");
        if !self.alarms.contains(&alarm) {
            self.alarms.push(alarm);
        }
    }
}

impl core::fmt::Debug for NodeCtx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeCtx")
            .field("id", &self.id)
            .field("persistent", &self.persistent)
            .field("persistent_changed", &self.persistent_changed)
            .field("outbox", &self.outbox)
            .field("connected", &self.connected)
            .field("alarms", &self.alarms)
            .finish_non_exhaustive()
    }
}
