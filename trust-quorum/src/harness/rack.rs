//! A rack of in-memory sleds joined by one FIFO network: every sled is
//! embedded through [`Sled`]'s step, every envelope is queued and kept.

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::{AuthorityKey, BaseboardId, Envelope};

use super::sled::{Sled, Stepped};
use crate::node::{Node, NodeCtx, PersistentState, Reply};

/// Bound on the deliveries of one [`Rack::deliver_all`]: a protocol that
/// has not gone quiet by then never will.
pub const MAX_DELIVERIES: usize = 1_000_000;

/// Sleds, a FIFO network between them, and a record of everything sent.
#[derive(Debug)]
pub struct Rack {
    sleds: BTreeMap<BaseboardId, Sled>,
    seeds: BTreeMap<BaseboardId, (u64, u64)>,
    queue: Vec<Envelope>,
    sent: Vec<Envelope>,
    blank: PersistentState,
}

/// [`Rack::deliver_all`] did not drain the network within [`MAX_DELIVERIES`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("the network did not drain within {MAX_DELIVERIES} deliveries")]
pub struct NeverDrained;

impl Rack {
    /// `ids` as blank sleds trusting `authority`, all up and connected to
    /// each other. The `i`-th sled's rng is seeded with `seed * 1000 + i`
    /// (and re-seeded on every restart), so a rack is reproducible from
    /// `seed`.
    pub fn new(
        ids: impl IntoIterator<Item = BaseboardId>,
        authority: AuthorityKey,
        seed: u64,
    ) -> Rack {
        let mut rack = Rack {
            sleds: BTreeMap::new(),
            seeds: BTreeMap::new(),
            queue: Vec::new(),
            sent: Vec::new(),
            blank: PersistentState::new(authority),
        };
        for (i, id) in ids.into_iter().enumerate() {
            let sled_seed = seed.wrapping_mul(1000).wrapping_add(i as u64);
            let mut sled = Sled::new(id.clone(), authority);
            sled.start(ChaCha20Rng::seed_from_u64(sled_seed));
            rack.seeds.insert(id.clone(), (sled_seed, 0));
            rack.sleds.insert(id, sled);
        }
        let ids: Vec<BaseboardId> = rack.sleds.keys().cloned().collect();
        for a in &ids {
            for b in ids.iter().filter(|b| *b != a) {
                rack.call(a, |n, ctx| n.on_connect(ctx, b.clone()));
            }
        }
        rack
    }

    /// The sleds, by id.
    pub fn sleds(&self) -> &BTreeMap<BaseboardId, Sled> {
        &self.sleds
    }

    /// One sled.
    pub fn sled(&self, who: &BaseboardId) -> Option<&Sled> {
        self.sleds.get(who)
    }

    /// What `who` wrote durably (a blank state for an unknown sled).
    pub fn state(&self, who: &BaseboardId) -> &PersistentState {
        self.sleds.get(who).map_or(&self.blank, Sled::disk)
    }

    /// Envelopes queued for delivery, oldest first.
    pub fn queue(&self) -> &[Envelope] {
        &self.queue
    }

    /// The queue itself, to drop, reorder or tamper with envelopes in flight.
    pub fn queue_mut(&mut self) -> &mut Vec<Envelope> {
        &mut self.queue
    }

    /// Every envelope ever released, in order.
    pub fn sent(&self) -> &[Envelope] {
        &self.sent
    }

    /// One call into `who`'s node and the embedder step; what it released is
    /// queued. `None` if `who` is down or unknown.
    pub fn call<T>(
        &mut self,
        who: &BaseboardId,
        f: impl FnOnce(&mut Node, &mut NodeCtx) -> T,
    ) -> Option<T> {
        let stepped = self.sleds.get_mut(who)?.call(f)?;
        Some(self.queue_all(stepped))
    }

    /// One control-plane request into `who`'s node and the embedder step;
    /// the answer comes back once durable. `None` if `who` is down.
    pub fn request<T>(
        &mut self,
        who: &BaseboardId,
        f: impl FnOnce(&mut Node, &mut NodeCtx) -> Reply<T>,
    ) -> Option<T> {
        let stepped = self.sleds.get_mut(who)?.request(f)?;
        Some(self.queue_all(stepped))
    }

    fn queue_all<T>(&mut self, stepped: Stepped<T>) -> T {
        self.sent.extend(stepped.envelopes.iter().cloned());
        self.queue.extend(stepped.envelopes);
        stepped.value
    }

    /// Delivers the queued envelope at `index`: it is lost if either end is
    /// down. Returns whether there was one.
    pub fn deliver_at(&mut self, index: usize) -> bool {
        if index >= self.queue.len() {
            return false;
        }
        let e = self.queue.remove(index);
        let sender_up = self.sleds.get(&e.from).is_some_and(Sled::is_up);
        if sender_up {
            let from = e.from.clone();
            let _delivered = self.call(&e.to, |n, ctx| n.handle(ctx, from, e.msg));
        }
        true
    }

    /// Delivers in FIFO order until the network is empty.
    pub fn deliver_all(&mut self) -> Result<(), NeverDrained> {
        self.deliver_all_by(|_| 0)
    }

    /// Delivers until the network is empty, each time the envelope at the
    /// index `pick(queue length)` returns (taken modulo the length).
    pub fn deliver_all_by(
        &mut self,
        mut pick: impl FnMut(usize) -> usize,
    ) -> Result<(), NeverDrained> {
        for _ in 0..MAX_DELIVERIES {
            let len = self.queue.len();
            if len == 0 {
                return Ok(());
            }
            self.deliver_at(pick(len).checked_rem(len).unwrap_or(0));
        }
        if self.queue.is_empty() { Ok(()) } else { Err(NeverDrained) }
    }

    /// Stops `who`: its in-memory state and unsent envelopes are lost, and
    /// the sleds that are up see the connection drop.
    pub fn crash(&mut self, who: &BaseboardId) {
        let Some(sled) = self.sleds.get_mut(who) else { return };
        sled.crash();
        for peer in self.up_peers(who) {
            self.call(&peer, |n, ctx| n.on_disconnect(ctx, who));
        }
    }

    /// Loses `who`'s durable state; only while it is down.
    pub fn wipe(&mut self, who: &BaseboardId) {
        if let Some(sled) = self.sleds.get_mut(who) {
            sled.wipe();
        }
    }

    /// Restarts `who` from its durable state and connects it to every sled
    /// that is up.
    pub fn restart(&mut self, who: &BaseboardId) {
        let (Some(sled), Some((seed, restarts))) =
            (self.sleds.get_mut(who), self.seeds.get_mut(who))
        else {
            return;
        };
        *restarts = restarts.wrapping_add(1);
        sled.start(ChaCha20Rng::seed_from_u64(*seed ^ (*restarts << 32)));
        for peer in self.up_peers(who) {
            self.call(&peer, |n, ctx| n.on_connect(ctx, who.clone()));
            self.call(who, |n, ctx| n.on_connect(ctx, peer.clone()));
        }
    }

    fn up_peers(&self, who: &BaseboardId) -> Vec<BaseboardId> {
        self.sleds.iter().filter(|(k, s)| *k != who && s.is_up()).map(|(k, _)| k.clone()).collect()
    }
}
