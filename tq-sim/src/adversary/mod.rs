//! The compromised member of a byzantine run (`--faults byzantine`, and
//! `swarm` at a low rate).
//!
//! One member of the first configuration, chosen from the seed, is an
//! attacker. Its protocol node keeps running honestly, so it still counts
//! as a member for the protocol and the ledger; on top of it the attacker
//! remembers the last messages it sent and received and, on
//! [`Event::Attack`], sends one honest sled replays of them, forgeries
//! (a Prepare naming itself coordinator with an unsigned or a replayed
//! signed request, a commit advance with a forged or mismatched
//! certificate, an expunged notice for any epoch, a request for a share of
//! an epoch it is not a member of, a mutated share) or a bounded flood.
//! Everything is built when the event is applied, from the attacker's
//! durable state, its memory and the event's `pick`, so a logged event
//! replays to the same bytes. The invariants exempt the attacker and hold
//! every honest sled to the control plane's decisions
//! (`invariants/signed.rs`).

use std::collections::VecDeque;

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use serde::{Deserialize, Serialize};
use tq_types::{BaseboardId, Epoch, PeerMsg};

use crate::control::ControlSide;
use crate::event::Event;
use crate::rack::Rack;
use crate::random::{below, pick};

mod forge;

/// How many past messages the attacker remembers.
const MEMORY: usize = 32;

/// The most messages one flood sends.
pub(crate) const MAX_FLOOD: u8 = 16;

/// What the compromised sled sends in one [`Event::Attack`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attack {
    /// A message it sent or received earlier, sent again.
    Replay,
    /// A Prepare naming itself coordinator of a new epoch: with `signed`,
    /// carrying a genuine signed request of another epoch; without, a
    /// request matching the configuration with a forged signature.
    ForgedPrepare {
        /// Whether the embedded request is a replayed genuine one.
        signed: bool,
    },
    /// A commit advance for an invented configuration: with `mismatched`,
    /// carrying a genuine certificate of another configuration; without,
    /// a certificate with a forged signature.
    ForgedCommitAdvance {
        /// Whether the certificate is a genuine one of another
        /// configuration.
        mismatched: bool,
    },
    /// An expunged notice: a genuine committed configuration, one altered
    /// to leave the victim out, or one invented for any epoch.
    ForgedExpunged,
    /// A request for the victim's share of an epoch the attacker is not a
    /// member of.
    GetShare {
        /// The epoch asked for.
        epoch: Epoch,
    },
    /// One of the attacker's own shares with bytes changed.
    MutatedShare,
    /// `count` replays and share requests at once.
    Flood {
        /// How many messages (at most 16).
        count: u8,
    },
}

/// How many messages of each kind the attacker got onto a link.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, Serialize)]
pub struct Injections {
    /// Replayed messages.
    pub replays: u64,
    /// Forged prepares.
    pub forged_prepares: u64,
    /// Forged commit advances.
    pub forged_commit_advances: u64,
    /// Expunged notices.
    pub forged_expunged: u64,
    /// Share requests for epochs it is not a member of.
    pub get_shares: u64,
    /// Mutated shares.
    pub mutated_shares: u64,
    /// Messages sent in floods.
    pub flooded: u64,
}

/// The attacker: which sled it is, what it remembers and what it did.
#[derive(Clone, Debug)]
pub(crate) struct Adversary {
    id: BaseboardId,
    seen: VecDeque<PeerMsg>,
    injected: Injections,
}

impl Adversary {
    /// The sled `id` turned attacker.
    pub(crate) fn new(id: BaseboardId) -> Adversary {
        Adversary { id, seen: VecDeque::new(), injected: Injections::default() }
    }

    /// The compromised sled.
    pub(crate) fn id(&self) -> &BaseboardId {
        &self.id
    }

    /// What it injected so far.
    pub(crate) fn injected(&self) -> Injections {
        self.injected
    }

    /// Remembers a message it sent or received.
    pub(crate) fn saw(&mut self, msg: &PeerMsg) {
        if self.seen.len() >= MEMORY {
            self.seen.pop_front();
        }
        self.seen.push_back(msg.clone());
    }

    fn count(&mut self, attack: Attack, sent: u64) {
        let i = &mut self.injected;
        let n = match attack {
            Attack::Replay => &mut i.replays,
            Attack::ForgedPrepare { .. } => &mut i.forged_prepares,
            Attack::ForgedCommitAdvance { .. } => &mut i.forged_commit_advances,
            Attack::ForgedExpunged => &mut i.forged_expunged,
            Attack::GetShare { .. } => &mut i.get_shares,
            Attack::MutatedShare => &mut i.mutated_shares,
            Attack::Flood { .. } => &mut i.flooded,
        };
        *n = n.saturating_add(sent);
    }
}

/// Draws the next attack, if the rack has an attacker that runs.
pub(crate) fn choose(rack: &Rack, control: &ControlSide, rng: &mut ChaCha20Rng) -> Option<Event> {
    let attacker = rack.adversary.as_ref()?.id.clone();
    if !rack.is_up(&attacker) {
        return None;
    }
    let others: Vec<BaseboardId> = rack.sleds.keys().filter(|s| **s != attacker).cloned().collect();
    let victim = pick(rng, &others)?;
    let latest = control.observer().latest_epoch().map_or(0, |e| e.0);
    let attack = match rng.next_u32() % 8 {
        0 | 1 => Attack::Replay,
        2 => Attack::ForgedPrepare { signed: rng.next_u32() % 2 == 0 },
        3 => Attack::ForgedCommitAdvance { mismatched: rng.next_u32() % 2 == 0 },
        4 => Attack::ForgedExpunged,
        5 => {
            // Epochs it was left out of first; else any epoch up to one
            // past the latest.
            let outside: Vec<Epoch> = control
                .views()
                .into_iter()
                .filter(|(_, v)| !v.members.contains_key(&attacker))
                .map(|(e, _)| e)
                .collect();
            let mut any = || {
                let n = usize::try_from(latest.saturating_add(1)).unwrap_or(usize::MAX);
                Epoch(u64::try_from(below(rng, n)).unwrap_or(0).saturating_add(1))
            };
            let epoch = match outside.is_empty() {
                true => any(),
                false => pick(rng, &outside).unwrap_or(Epoch(1)),
            };
            Attack::GetShare { epoch }
        }
        6 => Attack::MutatedShare,
        _ => {
            let extra = u8::try_from(
                rng.next_u32().checked_rem(u32::from(MAX_FLOOD.saturating_sub(1))).unwrap_or(0),
            )
            .unwrap_or(0);
            Attack::Flood { count: extra.saturating_add(2) }
        }
    };
    Some(Event::Attack { victim, attack, pick: rng.next_u64() })
}

impl Rack {
    /// The attacker sends `victim` what `attack` and `pick` make of its
    /// state and memory, on its link to the victim (nothing if the attacker
    /// is down or not connected to the victim).
    pub(crate) fn attack(&mut self, victim: &BaseboardId, attack: Attack, pick: u64) {
        let Some(adv) = &self.adversary else { return };
        let attacker = adv.id.clone();
        if attacker == *victim || !self.is_up(&attacker) {
            return;
        }
        let Some(sled) = self.sleds.get(&attacker) else { return };
        let known = forge::Known { me: &attacker, disk: sled.disk(), seen: &adv.seen };
        let msgs = known.build(victim, attack, pick);
        let mut sent = 0u64;
        for msg in msgs {
            if self.net.send(&attacker, victim, msg) {
                sent = sent.saturating_add(1);
            }
        }
        if let Some(adv) = &mut self.adversary {
            adv.count(attack, sent);
        }
    }
}
