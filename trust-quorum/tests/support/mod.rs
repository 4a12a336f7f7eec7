//! A small in-test harness: several `Node`s driven exactly as an embedder
//! drives them (one call, persist if changed, then send), a FIFO network and
//! a hand-rolled control plane.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tq_types::{
    BaseboardId, CommitRequest, CommitStatus, Envelope, Epoch, PrepareAndCommitRequest, RackId,
    ReconfigureMsg, Threshold,
};
use trust_quorum::{Node, NodeCtx, PersistentState};

pub fn id(i: usize) -> BaseboardId {
    format!("PPP-PPPPPPP:{i:011}").parse().unwrap()
}

pub fn ids(range: impl IntoIterator<Item = usize>) -> BTreeSet<BaseboardId> {
    range.into_iter().map(id).collect()
}

pub fn rack() -> RackId {
    RackId(uuid::Uuid::from_u128(0x0dbe_f452_a6dd_4831_bbdc_769e_a335_3f28))
}

pub struct Sled {
    pub node: Node,
    pub ctx: NodeCtx,
    /// What the embedder wrote durably, encoded.
    pub disk: Vec<u8>,
    pub up: bool,
    seed: u64,
    restarts: u64,
}

pub struct Cluster {
    pub sleds: BTreeMap<BaseboardId, Sled>,
    pub net: Vec<Envelope>,
    /// Every envelope ever sent, in order.
    pub sent: Vec<Envelope>,
}

impl Cluster {
    /// `n` sleds, all up and connected, rngs seeded from `seed`.
    pub fn new(n: usize, seed: u64) -> Self {
        let mut sleds = BTreeMap::new();
        for i in 0..n {
            let sled_seed = seed.wrapping_mul(1000).wrapping_add(i as u64);
            let ctx = NodeCtx::new(id(i), ChaCha20Rng::seed_from_u64(sled_seed));
            let mut ctx = ctx;
            let node = Node::new(&mut ctx);
            let disk = PersistentState::new().encode().unwrap();
            sleds.insert(id(i), Sled { node, ctx, disk, up: true, seed: sled_seed, restarts: 0 });
        }
        let mut c = Cluster { sleds, net: Vec::new(), sent: Vec::new() };
        let all: Vec<BaseboardId> = c.sleds.keys().cloned().collect();
        for a in &all {
            for b in &all {
                if a != b {
                    c.call(a, |n, ctx| n.on_connect(ctx, b.clone()));
                }
            }
        }
        c
    }

    pub fn sled(&self, who: &BaseboardId) -> &Sled {
        &self.sleds[who]
    }

    pub fn state(&self, who: &BaseboardId) -> &PersistentState {
        self.sleds[who].ctx.persistent_state()
    }

    /// One call into `who`'s node, followed by the embedder loop: persist if
    /// changed, then send.
    pub fn call<T>(
        &mut self,
        who: &BaseboardId,
        f: impl FnOnce(&mut Node, &mut NodeCtx) -> T,
    ) -> T {
        let sled = self.sleds.get_mut(who).unwrap();
        assert!(sled.up, "call into a crashed sled");
        let out = f(&mut sled.node, &mut sled.ctx);
        // Sending before persisting is refused while a change is pending.
        if sled.ctx.take_persistent_state_changed() {
            sled.disk = sled.ctx.persistent_state().encode().unwrap();
        }
        let envelopes = sled.ctx.drain_envelopes().unwrap();
        for e in envelopes {
            assert_eq!(&e.from, who);
            self.sent.push(e.clone());
            self.net.push(e);
        }
        out
    }

    /// Delivers the envelope at `index` in the queue; dropped if either end
    /// is down.
    pub fn deliver_at(&mut self, index: usize) {
        let e = self.net.remove(index);
        let (Some(from), Some(to)) = (self.sleds.get(&e.from), self.sleds.get(&e.to)) else {
            return;
        };
        if !from.up || !to.up {
            return;
        }
        let sender = e.from.clone();
        self.call(&e.to, |n, ctx| n.handle(ctx, sender, e.msg));
    }

    /// Delivers everything in FIFO order until the network is empty.
    pub fn deliver_all(&mut self) {
        let mut steps = 0;
        while !self.net.is_empty() {
            self.deliver_at(0);
            steps += 1;
            assert!(steps < 1_000_000, "network never drained");
        }
    }

    /// Crashes `who`: in-memory state and unsent messages are lost, the
    /// durable state is kept.
    pub fn crash(&mut self, who: &BaseboardId) {
        let sled = self.sleds.get_mut(who).unwrap();
        sled.up = false;
        let peers: Vec<BaseboardId> =
            self.sleds.iter().filter(|(k, s)| *k != who && s.up).map(|(k, _)| k.clone()).collect();
        for p in &peers {
            self.call(p, |n, ctx| n.on_disconnect(ctx, who));
        }
    }

    /// Restarts a crashed `who` from its durable state and reconnects it.
    pub fn restart(&mut self, who: &BaseboardId) {
        let sled = self.sleds.get_mut(who).unwrap();
        sled.restarts += 1;
        let state = PersistentState::decode(&sled.disk).unwrap();
        let rng = ChaCha20Rng::seed_from_u64(sled.seed ^ (sled.restarts << 32));
        sled.ctx = NodeCtx::with_persistent_state(who.clone(), state, rng);
        sled.node = Node::new(&mut sled.ctx);
        sled.up = true;
        let peers: Vec<BaseboardId> =
            self.sleds.iter().filter(|(k, s)| *k != who && s.up).map(|(k, _)| k.clone()).collect();
        for p in &peers {
            self.call(p, |n, ctx| n.on_connect(ctx, who.clone()));
            self.call(who, |n, ctx| n.on_connect(ctx, p.clone()));
        }
    }

    /// Asks `coordinator` to coordinate a new configuration.
    pub fn reconfigure(
        &mut self,
        coordinator: &BaseboardId,
        epoch: u64,
        last: Option<u64>,
        members: &BTreeSet<BaseboardId>,
    ) {
        let msg = ReconfigureMsg {
            rack_id: rack(),
            epoch: Epoch(epoch),
            last_committed_epoch: last.map(Epoch),
            members: members.clone(),
            threshold: Threshold((members.len() / 2 + 1) as u8),
        };
        self.call(coordinator, |n, ctx| n.coordinate_reconfiguration(ctx, msg)).unwrap();
    }

    /// The coordinator's acked set for `epoch`, if it is preparing it.
    pub fn acks(&self, coordinator: &BaseboardId, epoch: u64) -> BTreeSet<BaseboardId> {
        self.sleds[coordinator]
            .node
            .coordinator_status()
            .filter(|s| s.config.epoch == Epoch(epoch))
            .map(|s| s.acked_prepares)
            .unwrap_or_default()
    }

    /// Commits `epoch` like the control plane: commit on members that
    /// acked, prepare-and-commit on the others, until every up member
    /// answers committed.
    pub fn commit(&mut self, coordinator: &BaseboardId, epoch: u64) {
        let status = self.sleds[coordinator].node.coordinator_status().unwrap();
        let config = status.config;
        assert_eq!(config.epoch, Epoch(epoch));
        let acked = status.acked_prepares;
        let mut committed = BTreeSet::new();
        for round in 0..50 {
            for m in config.members.keys() {
                if committed.contains(m) || !self.sleds[m].up {
                    continue;
                }
                let answer = if acked.contains(m) {
                    let req = CommitRequest { rack_id: rack(), epoch: Epoch(epoch) };
                    self.call(m, |n, ctx| n.commit_configuration(ctx, req))
                        .map_err(|e| e.to_string())
                } else {
                    let req = PrepareAndCommitRequest { config: config.clone() };
                    self.call(m, |n, ctx| n.prepare_and_commit(ctx, req)).map_err(|e| e.to_string())
                };
                if answer == Ok(CommitStatus::Committed) {
                    committed.insert(m.clone());
                }
            }
            self.deliver_all();
            if config.members.keys().all(|m| committed.contains(m) || !self.sleds[m].up) {
                return;
            }
            assert!(round < 49, "commit of epoch {epoch} never completed");
        }
    }

    /// A whole fault-free reconfiguration: request, deliver, commit.
    pub fn reconfigure_and_commit(
        &mut self,
        coordinator: &BaseboardId,
        epoch: u64,
        last: Option<u64>,
        members: &BTreeSet<BaseboardId>,
    ) {
        self.reconfigure(coordinator, epoch, last, members);
        self.deliver_all();
        let up_members = members.iter().filter(|m| self.sleds[*m].up).count();
        assert_eq!(self.acks(coordinator, epoch).len(), up_members, "not every up member acked");
        self.commit(coordinator, epoch);
    }

    /// Loads the rack secret of `epoch` on `who`, delivering messages until
    /// it is ready.
    pub fn load_secret(&mut self, who: &BaseboardId, epoch: u64) -> trust_quorum::RackSecret {
        for _ in 0..10 {
            let out = self.call(who, |n, ctx| n.load_rack_secret(ctx, Epoch(epoch)));
            match out {
                Ok(Some(secret)) => return secret,
                Ok(None) => self.deliver_all(),
                Err(e) => panic!("load of epoch {epoch} on {who} failed: {e}"),
            }
        }
        panic!("load of epoch {epoch} on {who} never completed");
    }

    /// Delivers the queued envelopes in an order drawn from `rng`.
    pub fn deliver_all_shuffled(&mut self, rng: &mut ChaCha20Rng) {
        let mut steps = 0;
        while !self.net.is_empty() {
            let i = (rng.next_u64() % self.net.len() as u64) as usize;
            self.deliver_at(i);
            steps += 1;
            assert!(steps < 1_000_000, "network never drained");
        }
    }

    pub fn alarms(&self) -> Vec<(BaseboardId, tq_types::Alarm)> {
        self.sleds
            .iter()
            .flat_map(|(k, s)| s.ctx.alarms().iter().map(move |a| (k.clone(), a.clone())))
            .collect()
    }
}
