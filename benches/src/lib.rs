//! Fixtures for the benchmarks: a small rack of real nodes driven through
//! the embedder loop, from which benchmarks take durable states and the
//! messages a node under measurement receives.
#![forbid(unsafe_code)]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark fixtures run fixed, known-good scenarios"
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::{
    BaseboardId, CommitRequest, Envelope, Epoch, PeerMsg, RackId, ReconfigureMsg, Share, Threshold,
};
use trust_quorum::{Node, NodeCtx, PersistentState};

/// The id of the i-th sled.
pub fn sled(i: usize) -> BaseboardId {
    format!("PPP-PPPPPPP:{i:011}").parse().expect("valid id")
}

/// The rack of every fixture.
pub fn rack() -> RackId {
    RackId(uuid::Uuid::from_u128(0xbe7c))
}

/// K for `n` members.
pub fn threshold(n: usize) -> Threshold {
    Threshold(u8::try_from((n / 2).saturating_add(1)).expect("n <= 32"))
}

/// A reconfiguration request.
pub fn request(epoch: u64, last: Option<u64>, members: &BTreeSet<BaseboardId>) -> ReconfigureMsg {
    ReconfigureMsg {
        rack_id: rack(),
        epoch: Epoch(epoch),
        last_committed_epoch: last.map(Epoch),
        members: members.clone(),
        threshold: threshold(members.len()),
    }
}

/// A fresh context for `id` over `state`.
pub fn ctx(id: &BaseboardId, state: &PersistentState) -> NodeCtx {
    NodeCtx::with_persistent_state(id.clone(), state.clone(), ChaCha20Rng::seed_from_u64(99))
}

/// One call into a node followed by the embedder loop: take the change
/// (the durable write is elided), then hand out what the call sent.
pub fn step<T>(
    node: &mut Node,
    ctx: &mut NodeCtx,
    f: impl FnOnce(&mut Node, &mut NodeCtx) -> T,
) -> (T, Vec<Envelope>) {
    let out = f(node, ctx);
    let _ = ctx.take_persistent_state_changed();
    (out, ctx.drain_envelopes().expect("the change was taken"))
}

/// Delivers `inputs` one by one, each through [`step`]; returns everything
/// sent.
pub fn deliver(
    node: &mut Node,
    ctx: &mut NodeCtx,
    inputs: Vec<(BaseboardId, PeerMsg)>,
) -> Vec<Envelope> {
    let mut sent = Vec::new();
    for (from, msg) in inputs {
        sent.extend(step(node, ctx, |node, ctx| node.handle(ctx, from, msg)).1);
    }
    sent
}

/// A restarted node over `state`, connected to sleds `0..n` except itself,
/// with nothing queued: the starting point of every node benchmark.
pub fn connected_node(id: &BaseboardId, state: &PersistentState, n: usize) -> (Node, NodeCtx) {
    let mut ctx = ctx(id, state);
    let mut node = Node::new(&mut ctx);
    for i in 0..n {
        let _ = step(&mut node, &mut ctx, |node, ctx| node.on_connect(ctx, sled(i)));
    }
    (node, ctx)
}

/// Real nodes, all connected, with a FIFO network; every envelope sent is
/// kept.
pub struct Rack {
    nodes: BTreeMap<BaseboardId, (Node, NodeCtx)>,
    queue: VecDeque<Envelope>,
    /// Every envelope sent, in order.
    pub sent: Vec<Envelope>,
}

impl Rack {
    /// `n` blank, connected sleds.
    pub fn new(n: usize) -> Rack {
        let mut nodes = BTreeMap::new();
        for i in 0..n {
            let mut ctx = NodeCtx::new(sled(i), ChaCha20Rng::seed_from_u64(i as u64));
            let node = Node::new(&mut ctx);
            nodes.insert(sled(i), (node, ctx));
        }
        let mut rack = Rack { nodes, queue: VecDeque::new(), sent: Vec::new() };
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    rack.call(&sled(a), |node, ctx| node.on_connect(ctx, sled(b)));
                }
            }
        }
        rack
    }

    /// One call and the embedder loop (the durable write is elided).
    pub fn call<T>(
        &mut self,
        who: &BaseboardId,
        f: impl FnOnce(&mut Node, &mut NodeCtx) -> T,
    ) -> T {
        let (node, ctx) = self.nodes.get_mut(who).expect("known sled");
        let (out, sent) = step(node, ctx, f);
        for e in sent {
            self.sent.push(e.clone());
            self.queue.push_back(e);
        }
        out
    }

    /// Delivers everything.
    pub fn deliver_all(&mut self) {
        while let Some(e) = self.queue.pop_front() {
            let from = e.from.clone();
            self.call(&e.to, |node, ctx| node.handle(ctx, from, e.msg));
        }
    }

    /// Coordinates and commits a configuration everywhere.
    pub fn commit(&mut self, coordinator: &BaseboardId, msg: ReconfigureMsg) {
        let epoch = msg.epoch;
        let members = msg.members.clone();
        self.call(coordinator, |node, ctx| node.coordinate_reconfiguration(ctx, msg))
            .expect("valid");
        self.deliver_all();
        for m in &members {
            self.call(m, |node, ctx| {
                node.commit_configuration(ctx, CommitRequest { rack_id: rack(), epoch })
            })
            .expect("prepared");
        }
        self.deliver_all();
    }

    /// The durable state of `who`.
    pub fn state(&self, who: &BaseboardId) -> PersistentState {
        self.nodes[who].1.persistent_state().clone()
    }

    /// The share `who` holds for `epoch`.
    pub fn share(&self, who: &BaseboardId, epoch: Epoch) -> Share {
        self.nodes[who].1.persistent_state().share(epoch).expect("held").clone()
    }
}

/// A rack of `n` sleds with epoch 1 committed on all of them.
pub fn committed_rack(n: usize) -> Rack {
    let mut rack = Rack::new(n);
    let members: BTreeSet<BaseboardId> = (0..n).map(sled).collect();
    rack.commit(&sled(0), request(1, None, &members));
    rack
}
