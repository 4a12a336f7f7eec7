//! What lost disks took with them, and the exemptions those facts allow.
//!
//! A wipe (a disk loss, or the operator's reset of a sled being re-added)
//! destroys facts that other parts of the system may still rely on: a
//! coordinator counted the sled's prepare acknowledgement, the ledger
//! recorded its commit. Each such fact is kept as a (sled, epoch) pair, read
//! from the sled's durable state just before the wipe (the world learns them
//! from `Observation::Wiped`). A check may excuse a missing prepare or
//! commit only when that exact fact was lost; nothing else about the sled
//! is excused, and a wiped sled never counts as holding anything. Wiping a
//! blank disk loses no fact.

use std::collections::{BTreeMap, BTreeSet};

use tq_types::{BaseboardId, Epoch};
use trust_quorum::PersistentState;

/// The prepares and commits lost disks held.
///
/// A sled keeps only its newest epochs (docs/protocol.md section 2.4), so
/// the facts a disk held are accumulated from every durable write since its
/// last wipe, not read from its final state alone: a wipe takes the prepare
/// of an epoch the sled had since superseded as surely as a current one.
#[derive(Clone, Default, Debug)]
pub(crate) struct LostFacts {
    /// (sled, epoch): the sled durably held the configuration and its share
    /// of the epoch since its last wipe, and a wipe took them.
    prepares: BTreeSet<(BaseboardId, Epoch)>,
    /// (sled, epoch): the sled had durably committed the epoch since its
    /// last wipe, and a wipe took the commit.
    commits: BTreeSet<(BaseboardId, Epoch)>,
    /// What each sled's current disk has durably held since its last wipe.
    held: BTreeMap<BaseboardId, Held>,
}

/// Prepared and committed epochs a disk has held.
#[derive(Clone, Default, Debug)]
struct Held {
    prepares: BTreeSet<Epoch>,
    commits: BTreeSet<Epoch>,
}

impl LostFacts {
    /// Notes what `who` durably wrote.
    pub(crate) fn persisted(&mut self, who: &BaseboardId, state: &PersistentState) {
        let held = self.held.entry(who.clone()).or_default();
        held.prepares.extend(state.configs().keys().filter(|e| state.is_prepared(**e)));
        held.commits.extend(state.commits().iter().copied());
    }

    /// Records what `who`'s disk held when it was wiped: its final state and
    /// everything it held since the previous wipe.
    pub(crate) fn record(&mut self, who: &BaseboardId, lost: &PersistentState) {
        self.persisted(who, lost);
        let held = self.held.remove(who).unwrap_or_default();
        self.prepares.extend(held.prepares.into_iter().map(|e| (who.clone(), e)));
        self.commits.extend(held.commits.into_iter().map(|e| (who.clone(), e)));
    }

    /// Whether a wipe took `who`'s durable prepare of `epoch`.
    pub(crate) fn prepare(&self, who: &BaseboardId, epoch: Epoch) -> bool {
        self.prepares.contains(&(who.clone(), epoch))
    }

    /// Whether a wipe took `who`'s durable commit of `epoch`.
    pub(crate) fn commit(&self, who: &BaseboardId, epoch: Epoch) -> bool {
        self.commits.contains(&(who.clone(), epoch))
    }

    /// The sleds that lost any prepare or commit.
    #[cfg(test)]
    pub(crate) fn sleds(&self) -> BTreeSet<BaseboardId> {
        self.prepares.iter().chain(&self.commits).map(|(s, _)| s.clone()).collect()
    }
}

/// The exemptions checks used, each distinct (rule, sled, epoch) once.
#[derive(Default, Debug)]
pub(crate) struct Exemptions {
    used: BTreeSet<(&'static str, BaseboardId, Epoch)>,
}

impl Exemptions {
    /// Whether `rule` may excuse `who` not being prepared for `epoch`: only
    /// if a wipe took that very prepare. A use is counted.
    pub(crate) fn excuse_prepare(
        &mut self,
        lost: &LostFacts,
        rule: &'static str,
        who: &BaseboardId,
        epoch: Epoch,
    ) -> bool {
        self.excuse(lost.prepare(who, epoch), rule, who, epoch)
    }

    /// Whether `rule` may excuse `who` not having committed `epoch`: only if
    /// a wipe took that very commit. A use is counted.
    #[allow(dead_code, reason = "for the ledger rules' acked_commits_are_commits")]
    pub(crate) fn excuse_commit(
        &mut self,
        lost: &LostFacts,
        rule: &'static str,
        who: &BaseboardId,
        epoch: Epoch,
    ) -> bool {
        self.excuse(lost.commit(who, epoch), rule, who, epoch)
    }

    fn excuse(&mut self, lost: bool, rule: &'static str, who: &BaseboardId, epoch: Epoch) -> bool {
        if lost {
            self.used.insert((rule, who.clone(), epoch));
        }
        lost
    }

    /// How many distinct (rule, sled, epoch) exemptions were used.
    pub(crate) fn used(&self) -> u64 {
        u64::try_from(self.used.len()).unwrap_or(u64::MAX)
    }
}
