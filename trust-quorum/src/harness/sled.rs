//! One sled embedded in memory: a node, its context while it runs, and what
//! it wrote durably.

use tq_types::{AuthorityKey, BaseboardId, CoordinatorStatus, Envelope};

use crate::node::{Node, NodeCtx, NodeRng, Persisted, PersistentState, Reply, Write};

/// A running node: its in-memory state and its context.
struct Live {
    node: Node,
    ctx: NodeCtx,
}

/// A sled whose durable store is a value in memory. Every call goes through
/// the embedder step: the call, the durable write if it made one necessary,
/// then the release of its envelopes and answer.
pub struct Sled {
    id: BaseboardId,
    live: Option<Live>,
    disk: PersistentState,
    /// The coordinator status as of the last step, released.
    coordination: Option<CoordinatorStatus>,
}

/// What one call into a sled produced.
#[derive(Debug)]
#[must_use = "the envelopes must be delivered"]
pub struct Stepped<T> {
    /// The call's result (an answer for the control plane is released).
    pub value: T,
    /// The envelopes the call released, to deliver.
    pub envelopes: Vec<Envelope>,
    /// The durable state the call's write replaced, if it wrote.
    pub replaced: Option<PersistentState>,
}

impl Sled {
    /// A blank sled that is down, trusting the control plane whose
    /// authority key is `authority`: start it with [`Sled::start`].
    pub fn new(id: BaseboardId, authority: AuthorityKey) -> Sled {
        Sled { id, live: None, disk: PersistentState::new(authority), coordination: None }
    }

    /// A sled that is down, whose disk holds `disk`.
    pub fn with_disk(id: BaseboardId, disk: PersistentState) -> Sled {
        Sled { id, live: None, disk, coordination: None }
    }

    /// This sled's identity.
    pub fn id(&self) -> &BaseboardId {
        &self.id
    }

    /// Boots the node from what was written durably, replacing any running
    /// node (its in-memory state and unsent envelopes are lost).
    pub fn start(&mut self, rng: impl NodeRng + 'static) {
        self.start_with(rng, |_| {});
    }

    /// [`start`](Self::start), with `setup` applied to the new context
    /// before the node is created.
    pub fn start_with(&mut self, rng: impl NodeRng + 'static, setup: impl FnOnce(&mut NodeCtx)) {
        let mut ctx = NodeCtx::with_persistent_state(self.id.clone(), self.disk.clone(), rng);
        setup(&mut ctx);
        let node = Node::new(&mut ctx);
        self.live = Some(Live { node, ctx });
        self.coordination = None;
    }

    /// Stops the node: in-memory state and unsent envelopes are lost, the
    /// durable state is kept.
    pub fn crash(&mut self) {
        self.live = None;
        self.coordination = None;
    }

    /// Loses the durable state (the disk is replaced by a blank one that
    /// trusts the same authority, as a re-provisioned sled would). Only
    /// while the sled is down.
    pub fn wipe(&mut self) {
        if self.live.is_none() {
            self.disk = PersistentState::new(*self.disk.authority());
        }
    }

    /// Replaces the durable state, as when a damaged disk was read back
    /// into another state. Only while the sled is down.
    pub fn replace_disk(&mut self, disk: PersistentState) {
        if self.live.is_none() {
            self.disk = disk;
        }
    }

    /// Whether the node runs.
    pub fn is_up(&self) -> bool {
        self.live.is_some()
    }

    /// The running node and its context.
    pub fn live(&self) -> Option<(&Node, &NodeCtx)> {
        self.live.as_ref().map(|l| (&l.node, &l.ctx))
    }

    /// What the sled wrote durably.
    pub fn disk(&self) -> &PersistentState {
        &self.disk
    }

    /// What the node would answer a coordinator poll with, as released
    /// after the last step (`None` when not coordinating or down).
    pub fn coordinator_status(&self) -> Option<&CoordinatorStatus> {
        self.coordination.as_ref()
    }

    /// One call into the running node, then the embedder step. `None` if
    /// the sled is down.
    pub fn call<T>(&mut self, f: impl FnOnce(&mut Node, &mut NodeCtx) -> T) -> Option<Stepped<T>> {
        let live = self.live.as_mut()?;
        let value = f(&mut live.node, &mut live.ctx);
        Some(step(live, &mut self.disk, &mut self.coordination, |_| value))
    }

    /// One control-plane request into the running node, then the embedder
    /// step; the answer is released once the state it reports is durable.
    /// `None` if the sled is down.
    pub fn request<T>(
        &mut self,
        f: impl FnOnce(&mut Node, &mut NodeCtx) -> Reply<T>,
    ) -> Option<Stepped<T>> {
        let live = self.live.as_mut()?;
        let reply = f(&mut live.node, &mut live.ctx);
        Some(step(live, &mut self.disk, &mut self.coordination, |p| reply.release(p)))
    }
}

/// The embedder step after a call: write what changed to `disk`, then
/// release the envelopes, the answer (through `release`) and the
/// coordinator status.
fn step<T>(
    live: &mut Live,
    disk: &mut PersistentState,
    coordination: &mut Option<CoordinatorStatus>,
    release: impl FnOnce(&Persisted<'_>) -> T,
) -> Stepped<T> {
    let Live { node, ctx } = live;
    let (mut persisted, replaced) = match ctx.take_write() {
        Write::Pending(write) => {
            let replaced = std::mem::replace(disk, write.state().clone());
            (write.written(), Some(replaced))
        }
        Write::Nothing(persisted) => (persisted, None),
    };
    let envelopes = persisted.envelopes();
    let value = release(&persisted);
    *coordination = node.coordinator_status().release(&persisted);
    Stepped { value, envelopes, replaced }
}

impl core::fmt::Debug for Sled {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sled")
            .field("id", &self.id)
            .field("up", &self.is_up())
            .field("node", &self.live.as_ref().map(|l| &l.node))
            .field("disk", &self.disk)
            .finish()
    }
}
