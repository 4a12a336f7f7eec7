//! The simulated world: sleds running real `Node`s with their durable
//! stores and the network between them, the control plane, a clock and one
//! seed from which every random choice is drawn.
//!
//! The world applies events and reports what they did as observations; it
//! does not check itself. The run loop feeds what it reports to the safety
//! checker (see [`crate::simulation`]).

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tq_types::membership::MemberState;
use tq_types::{BaseboardId, Epoch, PeerMsgKind, RackId};

use crate::adversary::{self, Adversary};
use crate::control::{self, ControlSide, Surroundings};
use crate::event::Event;
use crate::faults::{FaultPlan, chance};
use crate::observation::Observation;
pub use crate::options::SimOptions;
use crate::policy::SimPolicy;
use crate::rack::{Rack, Sled};
use crate::random::{below, pick, subseed};

mod disk;
pub(crate) mod lost;
pub(crate) mod retention;
pub(crate) mod truth;
pub(crate) use lost::{Exemptions, LostFacts};
pub(crate) use truth::GroundTruth;

/// The whole simulated rack.
pub struct World {
    pub(crate) options: SimOptions,
    /// The control-plane policy in force.
    pub(crate) policy: SimPolicy,
    pub(crate) plan: FaultPlan,
    pub(crate) rack_id: RackId,
    /// The sleds and the network between them.
    pub(crate) rack: Rack,
    pub(crate) control: ControlSide,
    pub(crate) clock_ms: u64,
    pub(crate) wipes: u32,
    /// Sleds that lost their disk after committing the configuration that was
    /// latest then (and possibly acknowledging it): the protocol has no
    /// way to restore them (the operator must remove and re-add them), so
    /// liveness exempts them while that configuration stays the latest.
    pub(crate) lost_after_commit: BTreeMap<BaseboardId, Epoch>,
    /// Draws the next event (separate from the world's own randomness, so a
    /// replayed log reproduces the world without re-drawing events).
    chooser: ChaCha20Rng,
    /// Stored states damaged by the disk-corruption fault.
    pub(crate) disk_corruptions: u64,
    /// Damaged states whose decoding was refused (and the sled treated as
    /// having lost its disk).
    pub(crate) corruptions_detected: u64,
    /// Whether faults are injected (false during the liveness phase).
    pub(crate) faults_on: bool,
    /// What really happened (commits, generated secrets, what wiped disks
    /// held), learned from every observation before the checker sees it.
    truth: GroundTruth,
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
        let nodes = options.nodes.max(3);
        let mut rack = Rack::new(seed, (0..nodes).map(sled_id), options.planted_bug);
        let initial: Vec<BaseboardId> =
            (0..(nodes / 2).saturating_add(1).max(3).min(nodes)).map(sled_id).collect();
        if plan.byzantine > 0 {
            // One member of the first configuration is compromised.
            let n = u64::try_from(initial.len()).unwrap_or(1);
            let i = subseed(seed, "adversary", 0).checked_rem(n).unwrap_or(0);
            let id = initial.get(usize::try_from(i).unwrap_or(0)).cloned();
            rack.adversary = id.map(Adversary::new);
        }
        let universe: Vec<BaseboardId> = rack.sleds.keys().cloned().collect();
        let policy = options.policy_in_force();
        let control = ControlSide::new(
            seed,
            &policy,
            options.replicas.max(1),
            rack_id,
            &initial,
            universe,
            options.planted_bug,
        );
        let mut world = World {
            chooser: ChaCha20Rng::seed_from_u64(subseed(seed, "chooser", 0)),
            options,
            policy,
            plan,
            rack_id,
            rack,
            control,
            clock_ms: 1_000,
            wipes: 0,
            lost_after_commit: BTreeMap::new(),
            faults_on: true,
            truth: GroundTruth::default(),
            disk_corruptions: 0,
            corruptions_detected: 0,
        };
        world.rack.connect_all();
        world
    }

    /// The options of this run.
    pub fn options(&self) -> &SimOptions {
        &self.options
    }

    /// The control-plane policy of this run (named in the options, or drawn
    /// from the seed).
    pub fn policy(&self) -> &SimPolicy {
        &self.policy
    }

    /// The fault plan in force.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// The compromised sled of a byzantine run, if any.
    pub fn compromised(&self) -> Option<&BaseboardId> {
        self.rack.adversary.as_ref().map(Adversary::id)
    }

    /// The simulated time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.clock_ms
    }

    /// What the world did that the safety checker must see, since the last
    /// call: the run loop takes it after every event. The world's ground
    /// truth learns from it first.
    pub(crate) fn take_observations(&mut self) -> Vec<Observation> {
        let observed = self.rack.take_observations();
        self.truth.learn(&observed);
        observed
    }

    /// What really happened: the epochs some sled committed, the secret
    /// each coordinator generated and what wiped disks held.
    pub(crate) fn truth(&self) -> &GroundTruth {
        &self.truth
    }

    /// Applies one event. Events whose preconditions no longer hold are
    /// no-ops, so any logged event can be re-applied. What the event did is
    /// recorded for the run loop's checker, not checked here.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Deliver { from, to, index } => self.rack.deliver(from, to, *index),
            Event::CorruptShare { from, to } => self.rack.corrupt_share(from, to),
            Event::Attack { victim, attack, pick } => self.rack.attack(victim, *attack, *pick),
            Event::CorruptDisk { sled, pick } => self.corrupt_disk(sled, *pick),
            Event::DropMessage { from, to, index } => {
                // Links are reliable streams: a lost message means the
                // connection broke, and retransmission happens on reconnect.
                if self.rack.net.take(&(from.clone(), to.clone()), *index).is_some() {
                    self.rack.disconnect(from, to);
                }
            }
            Event::Connect { a, b } => {
                self.rack.connect(a, b);
            }
            Event::Disconnect { a, b } => {
                self.rack.disconnect(a, b);
            }
            Event::Partition { from, to } => {
                if self.rack.net.block(from, to) {
                    self.rack.disconnect(from, to);
                }
            }
            Event::Heal { from, to } => {
                self.rack.net.heal(from, to);
            }
            Event::Crash { sled } => self.rack.crash(sled),
            Event::CrashAfterPersist { sled } => {
                if let Some(s) = self.rack.sleds.get_mut(sled) {
                    s.crash_after_persist = s.is_up();
                }
            }
            Event::WipeDisk { sled } => self.wipe_disk(sled),
            Event::Restart { sled } => self.rack.restart(sled),
            Event::LoadSecret { sled } => self.rack.load_secret(sled),
            Event::LoadEpoch { sled, epoch } => self.rack.load_secret_epoch(sled, *epoch),
            Event::BeginLiveness => {
                self.faults_on = false;
                self.rack.net.heal_all();
                for s in self.rack.sleds.values_mut() {
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
            | Event::Abort { .. } => {
                let around = Surroundings {
                    now_ms: self.clock_ms,
                    rack_id: self.rack_id,
                    coordinator_stays_down: self
                        .faults_on
                        .then_some(self.plan.coordinator_stays_down),
                };
                self.control.apply(&mut self.rack, event, &around);
            }
        }
    }

    /// Wipes a crashed sled's disk, noting whether it had committed (or
    /// acknowledged) the latest configuration.
    pub(crate) fn wipe_disk(&mut self, sled: &BaseboardId) {
        if self.rack.sleds.get(sled).is_some_and(|s| !s.is_up()) {
            if let Some(v) = self.control.latest_view() {
                // Its commit may be recorded already, or its
                // "committed" answer still in flight.
                let acked = v.members.get(sled).is_some_and(|m| m.state == MemberState::Committed)
                    || self
                        .rack
                        .sleds
                        .get(sled)
                        .is_some_and(|s| s.disk().commits().contains(&v.epoch));
                if acked {
                    self.lost_after_commit.insert(sled.clone(), v.epoch);
                }
            }
            self.rack.wipe(sled);
            self.wipes = self.wipes.saturating_add(1);
        }
    }

    /// Draws the next event from the current state and the fault plan.
    pub fn next_event(&mut self) -> Event {
        let plan = if self.faults_on { self.plan } else { FaultPlan::default() };
        let sleds: Vec<BaseboardId> = self.rack.sleds.keys().cloned().collect();
        let any = pick(&mut self.chooser, &sleds);

        // Faults first, each with its own probability.
        if let Some(s) = any.clone() {
            let up = self.rack.sleds.get(&s).is_some_and(Sled::is_up);
            let wipeable = !up
                && self.wipes == 0
                && control::wipe_is_survivable(&self.control, &self.rack, &s);
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
            let honest = self.rack.adversary.as_ref().is_none_or(|a| *a.id() != s);
            if !up && chance(rng, plan.disk_corruption) && wipeable && honest {
                return Event::CorruptDisk { sled: s, pick: rng.next_u64() };
            }
        }
        let rng = &mut self.chooser;
        if let (Some(a), Some(b)) = (pick(rng, &sleds), pick(rng, &sleds)) {
            if a != b && chance(rng, plan.disconnect) && self.rack.net.is_connected(&a, &b) {
                return Event::Disconnect { a, b };
            }
            if a != b && chance(rng, plan.partition) {
                return Event::Partition { from: a, to: b };
            }
        }
        if chance(rng, plan.corrupt_share) {
            let shares: Vec<(BaseboardId, BaseboardId)> = self
                .rack
                .net
                .queued()
                .filter(|(_, m)| matches!(m.kind, PeerMsgKind::Share { .. }))
                .map(|(l, _)| l.clone())
                .collect();
            if let Some((from, to)) = pick(rng, &shares) {
                return Event::CorruptShare { from, to };
            }
        }
        if chance(rng, plan.byzantine) {
            if let Some(e) = adversary::choice::choose(&self.rack, &self.control, rng) {
                return e;
            }
        }
        let rng = &mut self.chooser;
        if let Some((from, to)) = self.rack.net.blocked().next().cloned() {
            if chance(rng, plan.heal) {
                return Event::Heal { from, to };
            }
        }
        if let Some(e) = control::fault_event(&self.control, rng, &plan, self.faults_on) {
            return e;
        }

        // Then ordinary progress, weighted.
        let now = self.clock_ms;
        let restartable: Vec<BaseboardId> = self
            .rack
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
            let both_up = self.rack.is_up(&a) && self.rack.is_up(&b);
            let net = &self.rack.net;
            if a != b
                && both_up
                && !net.is_connected(&a, &b)
                && !net.is_blocked(&a, &b)
                && !net.is_blocked(&b, &a)
            {
                return Event::Connect { a, b };
            }
        }
        let busy = self.rack.net.busy_links();
        let roll = rng.next_u32() % 100;
        if !busy.is_empty() && roll < 55 {
            let link = if chance(rng, plan.reorder_links) {
                pick(rng, &busy)
            } else {
                busy.first().cloned()
            };
            if let Some(link) = link {
                let index = if chance(rng, plan.reorder_within_link) {
                    below(rng, self.rack.net.queue_len(&link))
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
            let reorder = self.faults_on && self.plan.reorder_links > 0;
            if let Some(e) = control::progress_event(&self.control, rng, reorder) {
                return e;
            }
        }
        let rng = &mut self.chooser;
        if roll < 90 {
            if let Some(s) = pick(rng, &sleds) {
                // Half the loads ask for any epoch from the first to one
                // past the ledger's latest: past, current and future ones.
                if rng.next_u32() % 2 == 0 {
                    let latest = self.control.observer().latest_epoch().map_or(0, |e| e.0);
                    let n = usize::try_from(latest.saturating_add(1)).unwrap_or(usize::MAX);
                    let drawn = u64::try_from(below(rng, n)).unwrap_or(0);
                    return Event::LoadEpoch { sled: s, epoch: Epoch(drawn.saturating_add(1)) };
                }
                return Event::LoadSecret { sled: s };
            }
        }
        if roll < 94 && self.faults_on {
            if let Some(e) = control::operator_event(&self.control, &mut self.chooser) {
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
        for (id, s) in &self.rack.sleds {
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
        h.update(&tq_types::codec::encode(&self.rack.net).unwrap_or_default());
        self.control.digest_into(&mut h);
        hex::encode(h.finalize().as_bytes().get(..8).unwrap_or_default())
    }
}
