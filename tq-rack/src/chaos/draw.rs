//! What the chaos run draws from its seed: the next operation, the pauses
//! and the victims.

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;

/// One operation of the chaos run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    /// Add one or two sleds (fresh spares or removed sleds).
    Add,
    /// Remove one member.
    Remove,
    /// SIGKILL one agent; it restarts after a drawn pause.
    KillAgent,
    /// SIGKILL one control-plane replica; it restarts after a drawn pause.
    KillCtl,
    /// Add, then SIGKILL the new epoch's coordinator at once (in the middle
    /// of its prepare).
    AddKillCoordinator,
    /// Add or remove, then SIGKILL a member of the new epoch or a replica
    /// as soon as the epoch is committing (in the middle of the commit).
    ChangeKillInCommit,
    /// Add, then SIGKILL the replicas' driver at once (a replica right
    /// after it stored the proposal).
    AddKillCtl,
}

/// The operations and their weights.
const WEIGHTS: [(Op, u64); 7] = [
    (Op::Add, 3),
    (Op::Remove, 3),
    (Op::KillAgent, 3),
    (Op::KillCtl, 1),
    (Op::AddKillCoordinator, 2),
    (Op::ChangeKillInCommit, 2),
    (Op::AddKillCtl, 1),
];

/// A uniform-enough number below `n` (0 when `n` is 0).
pub(super) fn below(rng: &mut ChaCha20Rng, n: usize) -> usize {
    let n = u64::try_from(n).unwrap_or(u64::MAX);
    usize::try_from(rng.next_u64().checked_rem(n).unwrap_or(0)).unwrap_or(0)
}

/// True with probability 1/`n`.
pub(super) fn one_in(rng: &mut ChaCha20Rng, n: usize) -> bool {
    below(rng, n) == 0
}

/// A random element of `items`.
pub(super) fn pick<T: Clone>(rng: &mut ChaCha20Rng, items: &[T]) -> Option<T> {
    items.get(below(rng, items.len())).cloned()
}

/// A pause between `low_ms` and `high_ms` milliseconds.
pub(super) fn pause(rng: &mut ChaCha20Rng, low_ms: u64, high_ms: u64) -> Duration {
    let span = high_ms.saturating_sub(low_ms).saturating_add(1);
    Duration::from_millis(low_ms.saturating_add(rng.next_u64().checked_rem(span).unwrap_or(0)))
}

/// The next operation.
pub(super) fn op(rng: &mut ChaCha20Rng) -> Op {
    let total: u64 = WEIGHTS.iter().map(|(_, w)| *w).sum();
    let mut roll = rng.next_u64().checked_rem(total).unwrap_or(0);
    for (op, weight) in WEIGHTS {
        if roll < weight {
            return op;
        }
        roll = roll.saturating_sub(weight);
    }
    Op::Add
}
