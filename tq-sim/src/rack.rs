//! The rack's sleds, each running a real `Node`, and the network between
//! them.
//!
//! Sleds are driven exactly as an embedder drives them: one call into the
//! node, persist if changed, then send. What each step did that the safety
//! checker must see is recorded as an [`Observation`], for the run loop to
//! take after the event.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::{BaseboardId, Envelope, Epoch, PeerMsg, PeerMsgKind, Share};
use trust_quorum::harness::{self, Stepped};
use trust_quorum::node::Reply;
use trust_quorum::{Node, NodeCtx, PersistentState};

use crate::adversary::Adversary;
use crate::network::Network;
use crate::observation::Observation;
use crate::options::PlantedBug;
use crate::random::subseed;

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

/// Plants `bug` in a node's context (with the `planted-bugs` feature).
fn plant(ctx: &mut NodeCtx, bug: Option<PlantedBug>) {
    #[cfg(feature = "planted-bugs")]
    if let Some(bug) = bug {
        ctx.plant_bug(bug);
    }
    #[cfg(not(feature = "planted-bugs"))]
    if let Some(bug) = bug {
        match bug {}
    }
    #[cfg(not(feature = "planted-bugs"))]
    let _ = ctx;
}

/// The sleds and the network between them.
pub(crate) struct Rack {
    pub(crate) sleds: BTreeMap<BaseboardId, Sled>,
    pub(crate) net: Network,
    /// The run's seed, from which every node's randomness is drawn.
    seed: u64,
    /// The bug planted in every node, if any.
    planted_bug: Option<PlantedBug>,
    /// What happened since the run loop last took the observations.
    observations: Vec<Observation>,
    /// The compromised sled of a byzantine run.
    pub(crate) adversary: Option<Adversary>,
}

impl Rack {
    /// The sleds `ids`, all up and none connected yet.
    pub(crate) fn new(
        seed: u64,
        ids: impl IntoIterator<Item = BaseboardId>,
        planted_bug: Option<PlantedBug>,
    ) -> Rack {
        let mut sleds = BTreeMap::new();
        let authority = crate::random::authority(seed).public_key();
        for (index, id) in (0u64..).zip(ids) {
            let rng = ChaCha20Rng::seed_from_u64(subseed(seed, "sled", index << 16));
            let mut embedded = harness::Sled::new(id.clone(), authority);
            embedded.start_with(rng, |ctx| plant(ctx, planted_bug));
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
        Rack {
            sleds,
            net: Network::default(),
            seed,
            planted_bug,
            observations: Vec::new(),
            adversary: None,
        }
    }

    /// Records what the world did to a sled outside any step.
    pub(crate) fn observe(&mut self, observation: Observation) {
        self.observations.push(observation);
    }

    /// What happened since the last call, in order.
    pub(crate) fn take_observations(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.observations)
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
        let Stepped { value, envelopes, replaced } = stepped;
        // `who`'s durable state as of this step, shared by what it reports.
        let mut disk: Option<Arc<PersistentState>> = None;
        if let Some(old) = replaced {
            let sled = self.sleds.get_mut(who)?;
            let new = Arc::new(sled.embedded.disk().clone());
            self.observations.push(Observation::Persisted {
                who: who.clone(),
                old,
                new: Arc::clone(&new),
            });
            disk = Some(new);
            if std::mem::take(&mut sled.crash_after_persist) {
                self.crash(who);
                return None;
            }
        }
        for e in envelopes {
            if let Some(sled) = self.sleds.get(&e.from) {
                let sender_disk = match &disk {
                    Some(d) if e.from == *who => Arc::clone(d),
                    _ => {
                        let d = Arc::new(sled.disk().clone());
                        if e.from == *who {
                            disk = Some(Arc::clone(&d));
                        }
                        d
                    }
                };
                self.observations.push(Observation::Sent { envelope: e.clone(), sender_disk });
            }
            let Envelope { to, from, msg } = e;
            if let Some(adv) = self.adversary.as_mut().filter(|a| *a.id() == from) {
                adv.saw(&msg);
            }
            self.net.send(&from, &to, msg);
        }
        Some(value)
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

    /// Connects every pair of sleds.
    pub(crate) fn connect_all(&mut self) {
        let ids: Vec<BaseboardId> = self.sleds.keys().cloned().collect();
        for (i, a) in ids.iter().enumerate() {
            for b in ids.iter().skip(i.saturating_add(1)) {
                self.connect(a, b);
            }
        }
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

    /// Wipes a crashed sled's durable state, reporting what the disk held
    /// (a blank disk loses nothing and is not reported).
    pub(crate) fn wipe(&mut self, who: &BaseboardId) {
        if let Some(s) = self.sleds.get_mut(who).filter(|s| !s.is_up()) {
            let lost = s.disk().clone();
            s.embedded.wipe();
            if lost != PersistentState::new(*lost.authority()) {
                self.observations.push(Observation::Wiped { who: who.clone(), lost });
            }
        }
    }

    pub(crate) fn restart(&mut self, who: &BaseboardId) {
        let seed = self.seed;
        let Some(sled) = self.sleds.get_mut(who) else { return };
        if sled.is_up() {
            return;
        }
        sled.incarnation = sled.incarnation.saturating_add(1);
        sled.down_until_ms = None;
        let stream = (sled.index << 16) | (sled.incarnation & 0xffff);
        let rng = ChaCha20Rng::seed_from_u64(subseed(seed, "sled", stream));
        let bug = self.planted_bug;
        sled.embedded.start_with(rng, |ctx| plant(ctx, bug));
        for peer in self.up_sleds() {
            if peer != *who {
                self.connect(who, &peer);
            }
        }
    }

    /// Delivers the `index`-th message queued from `from` to `to`.
    pub(crate) fn deliver(&mut self, from: &BaseboardId, to: &BaseboardId, index: usize) {
        let link = (from.clone(), to.clone());
        if let Some(msg) = self.net.take(&link, index) {
            if let Some(adv) = self.adversary.as_mut().filter(|a| a.id() == to) {
                adv.saw(&msg);
            }
            let sender = from.clone();
            self.call(to, |n, ctx| n.handle(ctx, sender, msg));
        }
    }

    /// A faulty or malicious `from` sends `to`, ahead of a share it has
    /// queued, a copy whose bytes are garbled.
    pub(crate) fn corrupt_share(&mut self, from: &BaseboardId, to: &BaseboardId) {
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

    /// The sled asks for the secret of its latest committed epoch; the
    /// answer is reported for the checker.
    pub(crate) fn load_secret(&mut self, who: &BaseboardId) {
        let Some(epoch) = self.sleds.get(who).and_then(|s| s.disk().latest_committed_epoch())
        else {
            return;
        };
        self.load_secret_epoch(who, epoch);
    }

    /// The sled asks for the secret of `epoch`, whatever it holds; the
    /// answer is reported for the checker with the sled's durable state and
    /// whether it had raised an alarm.
    pub(crate) fn load_secret_epoch(&mut self, who: &BaseboardId, epoch: Epoch) {
        let Some(result) = self.call(who, |n, ctx| n.load_rack_secret(ctx, epoch)) else {
            return;
        };
        let Some(sled) = self.sleds.get(who) else { return };
        let alarmed = sled.embedded.live().is_some_and(|(_, ctx)| !ctx.alarms().is_empty());
        self.observations.push(Observation::SecretLoaded {
            who: who.clone(),
            epoch,
            result,
            disk: Arc::new(sled.disk().clone()),
            alarmed,
        });
    }
}
