//! The attacker's data: what it can send ([`Attack`]), what it remembers
//! and what it got onto links ([`Injections`]). Plain data, so that events
//! and the rack can name it without depending on how attacks are chosen
//! or built.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use tq_types::{BaseboardId, Epoch, PeerMsg};

/// How many past messages the attacker remembers.
const MEMORY: usize = 32;

/// The most messages one flood sends.
pub(crate) const MAX_FLOOD: u8 = 16;

/// What the compromised sled sends in one `Event::Attack`.
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

    /// What it remembers, oldest first.
    pub(super) fn seen(&self) -> &VecDeque<PeerMsg> {
        &self.seen
    }

    /// Counts `sent` messages of `attack` that got onto a link.
    pub(super) fn count(&mut self, attack: Attack, sent: u64) {
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
