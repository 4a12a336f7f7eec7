//! The simulated world: sleds running real `Node`s, their durable stores,
//! the network, the control plane, a clock and one seed from which every
//! random choice is drawn.
//!
//! Sleds are driven exactly as an embedder drives them: one call into the
//! node, persist if changed, then send.

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tq_types::{BaseboardId, Envelope, Epoch, PeerMsg, PeerMsgKind, RackId, Share};
use trust_quorum::harness::{self, Stepped};
use trust_quorum::node::Reply;
use trust_quorum::{Node, NodeCtx, PersistentState, PlantedBug};

use crate::control::ControlSide;
use crate::event::Event;
use crate::faults::{FaultPlan, FaultPreset, chance};
use crate::invariants::{Checker, Violation};
use crate::network::Network;

/// The options of one run; with the seed they determine the run exactly.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SimOptions {
    /// The seed every random choice is drawn from.
    pub seed: u64,
    /// How many events the fault phase runs.
    pub steps: u64,
    /// How many sleds the rack's universe has (members and spares).
    pub nodes: usize,
    /// Which faults are injected.
    pub faults: FaultPreset,
    /// How many control-plane replicas share the ledger.
    pub replicas: usize,
    /// A deliberately wrong behaviour to plant in every node and replica
    /// (self-test; needs the `planted-bugs` feature, ignored without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planted_bug: Option<PlantedBug>,
}

impl SimOptions {
    /// Options with defaults for everything but the seed.
    pub fn new(seed: u64) -> Self {
        SimOptions {
            seed,
            steps: 2000,
            nodes: 8,
            faults: FaultPreset::Swarm,
            replicas: 2,
            planted_bug: None,
        }
    }
}

/// One sled: its node embedded through the harness (running or not, and its
/// durable store), and the simulator's bookkeeping.
pub(crate) struct Sled {
    pub(crate) index: u64,
    pub(crate) embedded: harness::Sled,
    pub(crate) incarnation: u64,
    pub(crate) crash_after_persist: bool,
    /// A sled kept down (a dead coordinator) until this time.
    pub(crate) down_until_ms: Option<u64>,
}

impl Sled {
    /// What the sled wrote durably.
    pub(crate) fn disk(&self) -> &PersistentState {
        self.embedded.disk()
    }

    /// Whether its node runs.
    pub(crate) fn is_up(&self) -> bool {
        self.embedded.is_up()
    }
}

/// The whole simulated rack.
pub struct World {
    pub(crate) options: SimOptions,
    pub(crate) plan: FaultPlan,
    pub(crate) rack_id: RackId,
    pub(crate) sleds: BTreeMap<BaseboardId, Sled>,
    pub(crate) net: Network,
    pub(crate) control: ControlSide,
    pub(crate) clock_ms: u64,
    pub(crate) wipes: u32,
    /// Sleds that lost their disk after committing the configuration that was
    /// latest then (and possibly acknowledging it): the protocol has no
    /// way to restore them (the operator must remove and re-add them), so
    /// liveness exempts them while that configuration stays the latest.
    pub(crate) lost_after_commit: BTreeMap<BaseboardId, Epoch>,
    pub(crate) checker: Checker,
    /// Draws the next event (separate from the world's own randomness, so a
    /// replayed log reproduces the world without re-drawing events).
    chooser: ChaCha20Rng,
    /// Whether faults are injected (false during the liveness phase).
    pub(crate) faults_on: bool,
}

/// Derives an independent seed for a named stream.
pub(crate) fn subseed(seed: u64, stream: &str, index: u64) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(stream.as_bytes());
    h.update(&index.to_le_bytes());
    let out = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(out.as_bytes().get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(b)
}

/// Plants `bug` in a node's context (with the `planted-bugs` feature).
fn plant(ctx: &mut NodeCtx, bug: Option<PlantedBug>) {
    #[cfg(feature = "planted-bugs")]
    if let Some(bug) = bug {
        ctx.plant_bug(bug);
    }
    #[cfg(not(feature = "planted-bugs"))]
    let _ = (ctx, bug);
}

/// A uniform-enough index below `n` (0 when `n` is 0).
pub(crate) fn below<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    let n = u64::try_from(n).unwrap_or(u64::MAX);
    usize::try_from(rng.next_u64().checked_rem(n).unwrap_or(0)).unwrap_or(0)
}

/// A random element of `v`.
pub(crate) fn pick<R: Rng + ?Sized, T: Clone>(rng: &mut R, v: &[T]) -> Option<T> {
    v.get(below(rng, v.len())).cloned()
}

/// The sled at `index` of the universe.
pub fn sled_id(index: usize) -> BaseboardId {
    match format!("PPP-PPPPPPP:{index:011}").parse() {
        Ok(id) => id,
        Err(_) => unreachable!("the format always yields a valid id"),
    }
}

impl World {
    /// A world for `options`: `nodes` sleds, all up and connected, and an
    /// initialized rack whose first configuration holds the first
    /// `max(3, nodes / 2 + 1)` sleds.
    pub fn new(options: SimOptions) -> World {
        let seed = options.seed;
        let mut plan_rng = ChaCha20Rng::seed_from_u64(subseed(seed, "faults", 0));
        let plan = FaultPlan::from_preset(options.faults, &mut plan_rng);
        let rack_id = RackId(uuid::Uuid::from_u64_pair(subseed(seed, "rack", 0), 0x7151));
        let mut sleds = BTreeMap::new();
        let nodes = options.nodes.max(3);
        for i in 0..nodes {
            let id = sled_id(i);
            let index = i as u64;
            let rng = ChaCha20Rng::seed_from_u64(subseed(seed, "sled", index << 16));
            let mut embedded = harness::Sled::new(id.clone());
            embedded.start_with(rng, |ctx| plant(ctx, options.planted_bug));
            sleds.insert(
                id,
                Sled {
                    index,
                    embedded,
                    incarnation: 0,
                    crash_after_persist: false,
                    down_until_ms: None,
                },
            );
        }
        let initial: Vec<BaseboardId> =
            (0..(nodes / 2).saturating_add(1).max(3).min(nodes)).map(sled_id).collect();
        let universe: Vec<BaseboardId> = sleds.keys().cloned().collect();
        let control = ControlSide::new(
            seed,
            options.replicas.max(1),
            rack_id,
            &initial,
            universe,
            options.planted_bug,
        );
        let mut world = World {
            chooser: ChaCha20Rng::seed_from_u64(subseed(seed, "chooser", 0)),
            options,
            plan,
            rack_id,
            sleds,
            net: Network::default(),
            control,
            clock_ms: 1_000,
            wipes: 0,
            lost_after_commit: BTreeMap::new(),
            checker: Checker::default(),
            faults_on: true,
        };
        let ids: Vec<BaseboardId> = world.sleds.keys().cloned().collect();
        for (i, a) in ids.iter().enumerate() {
            for b in ids.iter().skip(i.saturating_add(1)) {
                world.connect(a, b);
            }
        }
        world
    }

    /// The options of this run.
    pub fn options(&self) -> &SimOptions {
        &self.options
    }

    /// The fault plan in force.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// The simulated time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        self.checker.violations()
    }

    pub(crate) fn is_up(&self, id: &BaseboardId) -> bool {
        self.sleds.get(id).is_some_and(Sled::is_up)
    }

    pub(crate) fn up_sleds(&self) -> Vec<BaseboardId> {
        self.sleds.iter().filter(|(_, s)| s.is_up()).map(|(k, _)| k.clone()).collect()
    }

    /// One call into `who`'s node followed by the embedder step: persist if
    /// changed (then crash if a crash-after-persist is armed), then send.
    /// `None` if the sled is down or crashed before answering.
    pub(crate) fn call<T>(
        &mut self,
        who: &BaseboardId,
        f: impl FnOnce(&mut Node, &mut NodeCtx) -> T,
    ) -> Option<T> {
        let stepped = self.sleds.get_mut(who)?.embedded.call(f)?;
        self.after_step(who, stepped)
    }

    /// One control-plane request into `who`'s node followed by the embedder
    /// step; the answer once the state it reports is durable. `None` if the
    /// sled is down or crashed before answering.
    pub(crate) fn request<T>(
        &mut self,
        who: &BaseboardId,
        f: impl FnOnce(&mut Node, &mut NodeCtx) -> Reply<T>,
    ) -> Option<T> {
        let stepped = self.sleds.get_mut(who)?.embedded.request(f)?;
        self.after_step(who, stepped)
    }

    fn after_step<T>(&mut self, who: &BaseboardId, stepped: Stepped<T>) -> Option<T> {
        if let Some(old) = &stepped.replaced {
            let sled = self.sleds.get_mut(who)?;
            self.checker.on_persist(who, old, sled.embedded.disk(), self.clock_ms);
            if std::mem::take(&mut sled.crash_after_persist) {
                self.crash(who);
                return None;
            }
        }
        for e in stepped.envelopes {
            self.send(e);
        }
        Some(stepped.value)
    }

    fn send(&mut self, e: Envelope) {
        if let Some(sled) = self.sleds.get(&e.from) {
            self.checker.on_send(&e, sled.disk(), &self.control);
        }
        let Envelope { to, from, msg } = e;
        self.net.send(&from, &to, msg);
    }

    /// Brings `a`–`b` up if both run and no partition prevents it; both ends
    /// learn of it.
    pub(crate) fn connect(&mut self, a: &BaseboardId, b: &BaseboardId) -> bool {
        if !self.is_up(a) || !self.is_up(b) || !self.net.connect(a, b) {
            return false;
        }
        self.call(a, |n, ctx| n.on_connect(ctx, b.clone()));
        self.call(b, |n, ctx| n.on_connect(ctx, a.clone()));
        true
    }

    pub(crate) fn disconnect(&mut self, a: &BaseboardId, b: &BaseboardId) -> bool {
        if !self.net.disconnect(a, b) {
            return false;
        }
        self.call(a, |n, ctx| n.on_disconnect(ctx, b));
        self.call(b, |n, ctx| n.on_disconnect(ctx, a));
        true
    }

    pub(crate) fn crash(&mut self, who: &BaseboardId) {
        let Some(sled) = self.sleds.get_mut(who) else { return };
        if !sled.is_up() {
            return;
        }
        sled.embedded.crash();
        sled.crash_after_persist = false;
        for peer in self.net.peers_of(who) {
            self.disconnect(who, &peer);
        }
    }

    /// Wipes a crashed sled's durable state.
    pub(crate) fn apply_wipe(&mut self, who: &BaseboardId) {
        if let Some(s) = self.sleds.get_mut(who).filter(|s| !s.is_up()) {
            s.embedded.wipe();
            self.checker.on_wipe(who);
        }
    }

    pub(crate) fn restart(&mut self, who: &BaseboardId) {
        let seed = self.options.seed;
        let Some(sled) = self.sleds.get_mut(who) else { return };
        if sled.is_up() {
            return;
        }
        sled.incarnation = sled.incarnation.saturating_add(1);
        sled.down_until_ms = None;
        let stream = (sled.index << 16) | (sled.incarnation & 0xffff);
        let rng = ChaCha20Rng::seed_from_u64(subseed(seed, "sled", stream));
        let bug = self.options.planted_bug;
        sled.embedded.start_with(rng, |ctx| plant(ctx, bug));
        for peer in self.up_sleds() {
            if peer != *who {
                self.connect(who, &peer);
            }
        }
    }

    /// Applies one event. Events whose preconditions no longer hold are
    /// no-ops, so any logged event can be re-applied.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Deliver { from, to, index } => {
                let link = (from.clone(), to.clone());
                if let Some(msg) = self.net.take(&link, *index) {
                    self.deliver(from, to, msg);
                }
            }
            Event::CorruptShare { from, to } => self.corrupt_share(from, to),
            Event::DropMessage { from, to, index } => {
                // Links are reliable streams: a lost message means the
                // connection broke, and retransmission happens on reconnect.
                if self.net.take(&(from.clone(), to.clone()), *index).is_some() {
                    self.disconnect(from, to);
                }
            }
            Event::Connect { a, b } => {
                self.connect(a, b);
            }
            Event::Disconnect { a, b } => {
                self.disconnect(a, b);
            }
            Event::Partition { from, to } => {
                if self.net.block(from, to) {
                    self.disconnect(from, to);
                }
            }
            Event::Heal { from, to } => {
                self.net.heal(from, to);
            }
            Event::Crash { sled } => self.crash(sled),
            Event::CrashAfterPersist { sled } => {
                if let Some(s) = self.sleds.get_mut(sled) {
                    s.crash_after_persist = s.is_up();
                }
            }
            Event::WipeDisk { sled } => {
                if self.sleds.get(sled).is_some_and(|s| !s.is_up()) {
                    if let Some(v) = crate::control::latest_view(self) {
                        // Its commit may be recorded already, or its
                        // "committed" answer still in flight.
                        let acked = v.members.get(sled).is_some_and(|m| {
                            m.state == tq_types::membership::MemberState::Committed
                        }) || self
                            .sleds
                            .get(sled)
                            .is_some_and(|s| s.disk().commits().contains(&v.epoch));
                        if acked {
                            self.lost_after_commit.insert(sled.clone(), v.epoch);
                        }
                    }
                    self.apply_wipe(sled);
                    self.wipes = self.wipes.saturating_add(1);
                }
            }
            Event::Restart { sled } => self.restart(sled),
            Event::LoadSecret { sled } => self.load_secret(sled),
            Event::BeginLiveness => {
                self.faults_on = false;
                self.net.heal_all();
                for s in self.sleds.values_mut() {
                    s.crash_after_persist = false;
                    s.down_until_ms = None;
                }
            }
            Event::AdvanceClock { ms } => {
                self.clock_ms = self.clock_ms.saturating_add(*ms);
            }
            Event::ControlTick { .. }
            | Event::ControlRequest { .. }
            | Event::ControlReply { .. }
            | Event::LoseControlRequest { .. }
            | Event::LoseControlReply { .. }
            | Event::ControlCrash { .. }
            | Event::ControlRestart { .. }
            | Event::ControlStale { .. }
            | Event::Initialize { .. }
            | Event::AddSleds { .. }
            | Event::RemoveSleds { .. }
            | Event::Abort { .. } => crate::control::apply(self, event),
        }
        let mut checker = std::mem::take(&mut self.checker);
        checker.check_all(self);
        self.checker = checker;
    }

    /// A faulty or malicious `from` sends `to`, ahead of a share it has
    /// queued, a copy whose bytes are garbled.
    fn corrupt_share(&mut self, from: &BaseboardId, to: &BaseboardId) {
        let link = (from.clone(), to.clone());
        let original = self.net.queued().find_map(|(l, m)| match &m.kind {
            PeerMsgKind::Share { epoch, share } if *l == link => {
                Some((m.rack_id, *epoch, share.clone()))
            }
            _ => None,
        });
        let Some((rack_id, epoch, share)) = original else { return };
        let mut bytes = share.as_bytes().to_vec();
        for b in bytes.iter_mut().skip(1) {
            *b ^= 0x5a;
        }
        let kind = PeerMsgKind::Share { epoch, share: Share::new(bytes) };
        self.net.push_front(from, to, PeerMsg { rack_id, kind });
    }

    fn deliver(&mut self, from: &BaseboardId, to: &BaseboardId, msg: PeerMsg) {
        let sender = from.clone();
        self.call(to, |n, ctx| n.handle(ctx, sender, msg));
    }

    /// The sled asks for the secret of its latest committed epoch, and the
    /// result (once ready) is checked for agreement.
    fn load_secret(&mut self, who: &BaseboardId) {
        let Some(epoch) = self.sleds.get(who).and_then(|s| s.disk().latest_committed_epoch())
        else {
            return;
        };
        self.load_secret_epoch(who, epoch);
    }

    pub(crate) fn load_secret_epoch(&mut self, who: &BaseboardId, epoch: Epoch) {
        let Some(result) = self.call(who, |n, ctx| n.load_rack_secret(ctx, epoch)) else {
            return;
        };
        let latest = self.sleds.get(who).and_then(|s| s.disk().latest_committed_epoch());
        self.checker.load_postconditions(who, epoch, latest, &result);
        if let Ok(Some(secret)) = result {
            let config = self.sleds.get(who).and_then(|s| s.disk().config(epoch));
            self.checker.on_secret(who, epoch, &secret, config);
        }
    }

    pub(crate) fn chooser(&mut self) -> &mut ChaCha20Rng {
        &mut self.chooser
    }

    /// Draws the next event from the current state and the fault plan.
    pub fn next_event(&mut self) -> Event {
        let plan = if self.faults_on { self.plan } else { FaultPlan::default() };
        let sleds: Vec<BaseboardId> = self.sleds.keys().cloned().collect();
        let any = pick(&mut self.chooser, &sleds);

        // Faults first, each with its own probability.
        if let Some(s) = any.clone() {
            let up = self.sleds.get(&s).is_some_and(Sled::is_up);
            let wipeable = !up && self.wipes == 0 && crate::control::wipe_is_survivable(self, &s);
            let rng = &mut self.chooser;
            if up && chance(rng, plan.crash) {
                return Event::Crash { sled: s };
            }
            if up && chance(rng, plan.crash_after_persist) {
                return Event::CrashAfterPersist { sled: s };
            }
            if !up && chance(rng, plan.disk_loss) && wipeable {
                return Event::WipeDisk { sled: s };
            }
        }
        let rng = &mut self.chooser;
        if let (Some(a), Some(b)) = (pick(rng, &sleds), pick(rng, &sleds)) {
            if a != b && chance(rng, plan.disconnect) && self.net.is_connected(&a, &b) {
                return Event::Disconnect { a, b };
            }
            if a != b && chance(rng, plan.partition) {
                return Event::Partition { from: a, to: b };
            }
        }
        if chance(rng, plan.corrupt_share) {
            let shares: Vec<(BaseboardId, BaseboardId)> = self
                .net
                .queued()
                .filter(|(_, m)| matches!(m.kind, PeerMsgKind::Share { .. }))
                .map(|(l, _)| l.clone())
                .collect();
            if let Some((from, to)) = pick(rng, &shares) {
                return Event::CorruptShare { from, to };
            }
        }
        if let Some((from, to)) = self.net.blocked().next().cloned() {
            if chance(rng, plan.heal) {
                return Event::Heal { from, to };
            }
        }
        if let Some(e) = crate::control::fault_event(self, &plan) {
            return e;
        }

        // Then ordinary progress, weighted.
        let now = self.clock_ms;
        let restartable: Vec<BaseboardId> = self
            .sleds
            .iter()
            .filter(|(_, s)| !s.is_up() && s.down_until_ms.is_none_or(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        let rng = &mut self.chooser;
        if let Some(s) = pick(rng, &restartable) {
            if rng.next_u32() % 10 == 0 || !self.faults_on {
                return Event::Restart { sled: s };
            }
        }
        // Reconnect a pair of up sleds that lost their connection.
        if let (Some(a), Some(b)) = (pick(rng, &sleds), pick(rng, &sleds)) {
            let both_up = self.sleds.get(&a).is_some_and(Sled::is_up)
                && self.sleds.get(&b).is_some_and(Sled::is_up);
            if a != b
                && both_up
                && !self.net.is_connected(&a, &b)
                && !self.net.is_blocked(&a, &b)
                && !self.net.is_blocked(&b, &a)
            {
                return Event::Connect { a, b };
            }
        }
        let busy = self.net.busy_links();
        let roll = rng.next_u32() % 100;
        if !busy.is_empty() && roll < 55 {
            let link = if chance(rng, plan.reorder_links) {
                pick(rng, &busy)
            } else {
                busy.first().cloned()
            };
            if let Some(link) = link {
                let index = if chance(rng, plan.reorder_within_link) {
                    below(rng, self.net.queue_len(&link))
                } else {
                    0
                };
                let (from, to) = link;
                if chance(rng, plan.drop_message) {
                    return Event::DropMessage { from, to, index };
                }
                return Event::Deliver { from, to, index };
            }
        }
        if roll < 85 {
            if let Some(e) = crate::control::progress_event(self) {
                return e;
            }
        }
        let rng = &mut self.chooser;
        if roll < 90 {
            if let Some(s) = pick(rng, &sleds) {
                return Event::LoadSecret { sled: s };
            }
        }
        if roll < 94 && self.faults_on {
            if let Some(e) = crate::control::operator_event(self) {
                return e;
            }
        }
        let rng = &mut self.chooser;
        Event::AdvanceClock {
            ms: 100_u64.saturating_add(rng.next_u64().checked_rem(2_000).unwrap_or(0)),
        }
    }

    /// A digest of the whole simulated state: durable stores, in-memory
    /// protocol state that is observable, the network, the ledger and the
    /// control plane's in-flight work, and the clock.
    pub fn digest(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(&self.clock_ms.to_le_bytes());
        for (id, s) in &self.sleds {
            h.update(id.to_string().as_bytes());
            h.update(&tq_types::codec::encode(s.disk()).unwrap_or_default());
            h.update(&[u8::from(s.is_up())]);
            if let Some((node, ctx)) = s.embedded.live() {
                let status = node.status(ctx);
                h.update(&tq_types::codec::encode(&status).unwrap_or_default());
                let coord = s.embedded.coordinator_status();
                h.update(&tq_types::codec::encode(&coord).unwrap_or_default());
            }
        }
        h.update(&tq_types::codec::encode(&self.net).unwrap_or_default());
        self.control.digest_into(&mut h);
        hex::encode(h.finalize().as_bytes().get(..8).unwrap_or_default())
    }
}
