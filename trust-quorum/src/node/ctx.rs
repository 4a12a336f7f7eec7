//! The node's context: everything the embedder owns and the library changes.

use std::collections::BTreeSet;

use rand_core::CryptoRng;
use tq_types::{Alarm, BaseboardId, Envelope, PeerMsg, PeerMsgKind, RackId};

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
/// # Persist before send
///
/// After every call into [`Node`](super::Node):
///
/// 1. if [`take_persistent_state_changed`](Self::take_persistent_state_changed)
///    returns true, write [`persistent_state`](Self::persistent_state)
///    durably (stop the process if that fails);
/// 2. then send every envelope of [`drain_envelopes`](Self::drain_envelopes),
///    and only then answer the control plane.
///
/// `drain_envelopes` refuses to hand out envelopes while a change is still
/// unacknowledged, so skipping step 1 is an error value, not a silent race.
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

/// Returned by [`NodeCtx::drain_envelopes`] when the persistent state changed
/// and the embedder has not yet taken the change to write it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("persistent state changed: write it durably before sending")]
pub struct PersistFirst;

impl NodeCtx {
    /// A context for a node that has never been part of a rack.
    pub fn new(id: BaseboardId, rng: impl NodeRng + 'static) -> Self {
        Self::with_persistent_state(id, PersistentState::new(), rng)
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

    /// The current persistent state (write it when it changed).
    pub fn persistent_state(&self) -> &PersistentState {
        &self.persistent
    }

    /// Whether the persistent state changed since the last call; clears the
    /// flag. Write the state durably when this returns true.
    #[must_use = "a changed persistent state must be written before sending"]
    pub fn take_persistent_state_changed(&mut self) -> bool {
        std::mem::take(&mut self.persistent_changed)
    }

    /// Takes the queued envelopes. Fails while the persistent state has a
    /// change that [`take_persistent_state_changed`](Self::take_persistent_state_changed)
    /// has not reported yet.
    #[must_use = "queued envelopes must be sent"]
    pub fn drain_envelopes(&mut self) -> Result<Vec<Envelope>, PersistFirst> {
        if self.persistent_changed {
            return Err(PersistFirst);
        }
        Ok(std::mem::take(&mut self.outbox))
    }

    /// Queued envelopes, for inspection.
    pub fn outbox(&self) -> &[Envelope] {
        &self.outbox
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

    /// Changes the persistent state through `f`, raising the changed flag
    /// when `f` reports a change.
    pub(crate) fn update_persistent<T>(
        &mut self,
        f: impl FnOnce(&mut PersistentState) -> (bool, T),
    ) -> T {
        let (changed, out) = f(&mut self.persistent);
        self.persistent_changed |= changed;
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
