//! The control side of the world: the replicas with their ledger store, the
//! channel to sleds, and the control-plane events applied to them.

use std::collections::{BTreeMap, BTreeSet};

use crate::options::PlantedBug;
use crate::policy::SimPolicy;
use tq_types::membership::TrustQuorumConfig;
use tq_types::{BaseboardId, Epoch, RackId};
use trust_quorum::control::{ControlPlane, Ledger};

use crate::control::channel::{self, Channel};
use crate::control::store::Replicas;
use crate::event::Event;
use crate::rack::Rack;

/// What applying a control-plane event needs from the rest of the world.
pub(crate) struct Surroundings {
    /// The simulated time.
    pub(crate) now_ms: u64,
    /// The rack's id, for initializing it again.
    pub(crate) rack_id: RackId,
    /// The per-mille chance that a sled asked to coordinate stays down,
    /// while faults are on.
    pub(crate) coordinator_stays_down: Option<u16>,
}

/// Replicas, the ledger store and the channel to sleds.
pub struct ControlSide {
    replicas: Replicas,
    channel: Channel,
    /// Sleds put in service (activation is idempotent).
    activated: BTreeSet<BaseboardId>,
    /// Sleds of the rack universe.
    universe: Vec<BaseboardId>,
}

impl ControlSide {
    /// Replicas over a ledger initialized with `initial` as the first
    /// membership.
    pub(crate) fn new(
        seed: u64,
        policy: &SimPolicy,
        replicas: usize,
        rack_id: RackId,
        initial: &[BaseboardId],
        universe: Vec<BaseboardId>,
        planted_bug: Option<PlantedBug>,
    ) -> ControlSide {
        ControlSide {
            replicas: Replicas::new(seed, policy, replicas, rack_id, initial, planted_bug),
            channel: Channel::default(),
            activated: initial.iter().cloned().collect(),
            universe,
        }
    }

    /// The control plane over the stored ledger.
    pub fn observer(&self) -> &ControlPlane {
        self.replicas.observer()
    }

    /// The stored ledger.
    pub fn ledger(&self) -> &Ledger {
        self.replicas.ledger()
    }

    /// The text report of the latest commit pass of any running replica.
    pub fn last_report(&self) -> Option<String> {
        self.replicas.last_report()
    }

    /// How many compare-and-set races replicas lost so far.
    pub(crate) fn races_lost(&self) -> u64 {
        self.replicas.races_lost()
    }

    /// Whether nothing is in flight between the control plane and sleds.
    pub(crate) fn is_idle(&self) -> bool {
        self.channel.is_idle()
    }

    /// The running replicas.
    pub(crate) fn up_replicas(&self) -> Vec<usize> {
        self.replicas.up()
    }

    /// The crashed replicas.
    pub(crate) fn down_replicas(&self) -> Vec<usize> {
        self.replicas.down()
    }

    /// How many requests are in flight.
    pub(crate) fn request_count(&self) -> usize {
        self.channel.requests().len()
    }

    /// How many replies are in flight.
    pub(crate) fn reply_count(&self) -> usize {
        self.channel.replies().len()
    }

    /// Every signed decision the control plane sent to sleds.
    pub(crate) fn decisions(&self) -> &super::decisions::Decisions {
        self.channel.decisions()
    }

    /// Sleds of the rack universe.
    pub(crate) fn universe(&self) -> &[BaseboardId] {
        &self.universe
    }

    /// The latest configuration in the ledger.
    pub(crate) fn latest_view(&self) -> Option<TrustQuorumConfig> {
        self.observer().latest()
    }

    /// Pending activations (members committed but not yet in service).
    pub(crate) fn pending_activations(&self) -> BTreeSet<BaseboardId> {
        self.observer().pending_activations()
    }

    /// Ledger views by epoch, for reports.
    pub(crate) fn views(&self) -> BTreeMap<Epoch, TrustQuorumConfig> {
        let cp = self.observer();
        cp.epochs().filter_map(|e| cp.config(e).map(|v| (e, v))).collect()
    }

    pub(crate) fn digest_into(&self, h: &mut blake3::Hasher) {
        h.update(&tq_types::codec::encode(self.ledger()).unwrap_or_default());
        self.channel.digest_into(h);
        h.update(&tq_types::codec::encode(&self.activated).unwrap_or_default());
        self.replicas.digest_into(h);
    }

    /// The ledger and in-flight work, for `replay --show control`.
    pub(crate) fn show(&self) -> serde_json::Value {
        let cp = self.observer();
        let configs: Vec<TrustQuorumConfig> = cp.epochs().filter_map(|e| cp.config(e)).collect();
        serde_json::json!({
            "configs": configs,
            "requests": self.channel.requests(),
            "replies": self.channel.replies(),
            "activated": self.activated,
            "replicas_up": self.replicas.running(),
        })
    }

    /// Applies a control-plane event; other events are ignored.
    pub(crate) fn apply(&mut self, rack: &mut Rack, event: &Event, around: &Surroundings) {
        let now_ms = around.now_ms;
        match event {
            Event::ControlTick { replica } => {
                let r = *replica;
                if let Some(actions) =
                    self.replicas.transact(r, now_ms, |cp, now, rng| cp.tick(now, rng))
                {
                    self.channel.send(r, actions);
                }
            }
            Event::ControlRequest { index } => {
                if let Some(req) = self.channel.take_request(*index) {
                    let reply = channel::deliver_request(
                        req,
                        rack,
                        &mut self.replicas,
                        &mut self.activated,
                        now_ms,
                        around.coordinator_stays_down,
                    );
                    self.channel.reply(reply);
                }
            }
            Event::ControlReply { index } => {
                if let Some(reply) = self.channel.take_reply(*index) {
                    channel::deliver_reply(&mut self.replicas, now_ms, reply);
                }
            }
            Event::LoseControlRequest { index } => {
                self.channel.take_request(*index);
            }
            Event::LoseControlReply { index } => {
                self.channel.take_reply(*index);
            }
            Event::ControlCrash { replica } => self.replicas.crash(*replica),
            Event::ControlRestart { replica } => self.replicas.restart(*replica),
            Event::ControlStale { replica } => self.replicas.make_stale(*replica),
            Event::Initialize { replica, sleds } => {
                let rack_id = around.rack_id;
                let out = self.replicas.transact(*replica, now_ms, |cp, now, rng| {
                    cp.initialize(rack_id, sleds.iter().cloned(), now, rng)
                });
                if let Some(Err(e)) = out {
                    tracing::debug!(%e, "initialize rejected");
                }
            }
            Event::AddSleds { replica, sleds } => {
                let latest = self.observer().latest_epoch();
                let out = self.replicas.transact(*replica, now_ms, |cp, now, rng| {
                    cp.add_sleds(sleds.iter().cloned(), now, rng)
                });
                match out {
                    // A new configuration: sleds that left the rack earlier
                    // are reset before anything about the new epoch reaches
                    // them. (A repeated add returns the epoch already
                    // preparing.)
                    Some(Ok(epoch)) if Some(epoch) > latest => {
                        for sled in sleds {
                            self.reset_sled(rack, sled);
                        }
                    }
                    Some(Err(e)) => tracing::debug!(%e, "add sleds rejected"),
                    Some(Ok(_)) | None => {}
                }
            }
            Event::RemoveSleds { replica, sleds } => {
                let out = self.replicas.transact(*replica, now_ms, |cp, now, rng| {
                    cp.remove_sleds(sleds.iter().cloned(), now, rng)
                });
                if let Some(Err(e)) = out {
                    tracing::debug!(%e, "remove sleds rejected");
                }
            }
            Event::Abort { replica } => {
                let out = self.replicas.transact(*replica, now_ms, |cp, now, _| {
                    cp.abort_latest("operator abort", now)
                });
                if let Some(Err(e)) = out {
                    tracing::debug!(%e, "abort rejected");
                }
            }
            _ => {}
        }
    }

    /// The operator's reset of a sled that is about to be added: a sled with
    /// state from an earlier membership is wiped (and restarted if it ran).
    fn reset_sled(&mut self, rack: &mut Rack, sled: &BaseboardId) {
        let has_state = rack.sleds.get(sled).is_some_and(|s| s.disk().latest_config().is_some());
        if !has_state {
            return;
        }
        let was_up = rack.is_up(sled);
        rack.crash(sled);
        rack.wipe(sled);
        // Requests addressed to the sled's previous life die with it.
        self.channel.forget_requests_to(sled);
        if was_up {
            rack.restart(sled);
        }
    }
}
