//! Checks on every durable write (docs/protocol.md section 7.3).

use std::collections::BTreeSet;

use tq_types::{BaseboardId, Configuration, Epoch};
use trust_quorum::{PersistentState, crypto};

use super::Checker;
use super::rules::Rule;
use crate::world::retention;

impl Checker {
    /// A sled durably wrote `new` over `old`.
    pub(super) fn on_persist(
        &mut self,
        who: &BaseboardId,
        old: &PersistentState,
        new: &PersistentState,
    ) {
        self.monotonic_across_crashes(who, old, new);
        self.local_commit_implies_prepared(who, new);
        self.membership(who, new);
        self.share_integrity(who, new);
        self.state_bound(who, new);
        for config in new.configs().values() {
            self.global_uniqueness(&format!("stored by {who}"), config);
        }
    }

    /// A stored configuration or share is never replaced, and disappears
    /// only once superseded: the sled committed a later epoch, or stored a
    /// later configuration that does not build on it (docs/protocol.md
    /// section 2.4). The latest committed epoch never decreases, and no
    /// commit is dropped but for a later one. `expunged` is cleared only by
    /// a configuration of a later epoch that lists the sled (7.3, 4.8).
    fn monotonic_across_crashes(
        &mut self,
        who: &BaseboardId,
        old: &PersistentState,
        new: &PersistentState,
    ) {
        let latest = new.latest_committed_epoch();
        let superseded = |e: Epoch| retention::superseded(new, e);
        for (e, c) in old.configs() {
            match new.config(*e) {
                Some(kept) if kept == c => {}
                None if superseded(*e) => {}
                _ => {
                    self.violation(Rule::Monotonicity, format!("{who} lost or replaced config {e}"))
                }
            }
        }
        for e in old.share_epochs() {
            match new.share(e) {
                Some(kept) if Some(kept) == old.share(e) => {}
                None if superseded(e) => {}
                _ => {
                    self.violation(Rule::Monotonicity, format!("{who} lost or replaced share {e}"))
                }
            }
        }
        if old.latest_committed_epoch() > latest
            || old.commits().iter().any(|e| !new.commits().contains(e) && !superseded(*e))
        {
            self.violation(Rule::Monotonicity, format!("{who} lost a commit"));
        }
        if let Some(ex) = old.expunged().filter(|_| new.expunged() != old.expunged()) {
            // Only a re-add clears it: a configuration newer than the
            // expungement that lists the sled (docs/protocol.md section 4.8).
            let readmitted = new.expunged().is_none()
                && new.configs().iter().any(|(e, c)| *e > ex.epoch && c.is_member(who));
            if !readmitted {
                self.violation(Rule::Monotonicity, format!("{who} cleared or changed expunged"));
            }
        }
    }

    /// A local commit implies prepared(e) (7.3, commit safety; TLA+
    /// CommittedNodesHaveShares).
    fn local_commit_implies_prepared(&mut self, who: &BaseboardId, s: &PersistentState) {
        for e in s.commits() {
            if !s.is_prepared(*e) {
                self.violation(
                    Rule::CommitImpliesPrepared,
                    format!("{who} committed {e} unprepared"),
                );
            }
        }
    }

    /// A node holds a config or share for e only if it is in members(e).
    fn membership(&mut self, who: &BaseboardId, s: &PersistentState) {
        for (e, c) in s.configs() {
            if !c.is_member(who) {
                self.violation(Rule::Membership, format!("{who} stores config {e} it is not in"));
            }
        }
        for e in s.share_epochs() {
            if s.config(e).is_none_or(|c| !c.is_member(who)) {
                self.violation(
                    Rule::Membership,
                    format!("{who} holds share {e} without membership"),
                );
            }
        }
    }

    /// Every stored share hashes to its holder's digest.
    fn share_integrity(&mut self, who: &BaseboardId, s: &PersistentState) {
        for e in s.share_epochs() {
            let ok = match (s.share(e), s.config(e).and_then(|c| c.members.get(who))) {
                (Some(share), Some(digest)) => crypto::share_matches(share, digest),
                _ => false,
            };
            if !ok {
                self.violation(
                    Rule::ShareIntegrity,
                    format!("{who}'s share {e} mismatches its digest"),
                );
            }
        }
    }

    /// Nothing superseded is kept (docs/protocol.md section 2.4): at most
    /// the newest commit, the newest configuration and the epoch it builds
    /// on, whatever the rack's history.
    fn state_bound(&mut self, who: &BaseboardId, s: &PersistentState) {
        let stored =
            s.configs().keys().copied().chain(s.share_epochs()).chain(s.commits().iter().copied());
        let kept_past: BTreeSet<Epoch> = stored.filter(|e| retention::superseded(s, *e)).collect();
        if !kept_past.is_empty() || s.configs().len() > 3 || s.commits().len() > 1 {
            self.violation(
                Rule::StateBound,
                format!(
                    "{who} keeps superseded epochs {kept_past:?} ({} configs, {} commits)",
                    s.configs().len(),
                    s.commits().len()
                ),
            );
        }
    }

    /// A damaged stored state read back is either refused or exactly what
    /// was written: never another state, whose shares, configurations or
    /// commits would be silently wrong.
    pub(super) fn corruption_detected(
        &mut self,
        who: &BaseboardId,
        written: &PersistentState,
        decoded: Result<&PersistentState, &String>,
    ) {
        if let Ok(read) = decoded {
            if read != written {
                let share_changed = read.share_epochs().any(|e| read.share(e) != written.share(e));
                let what = if share_changed { "with another share" } else { "into another state" };
                self.violation(
                    Rule::CorruptionDetected,
                    format!("{who}'s damaged disk decoded {what} than it wrote, unnoticed"),
                );
            }
        }
    }

    /// Every epoch has one configuration everywhere (7.2, 7.3).
    pub(super) fn global_uniqueness(&mut self, seen: &str, config: &Configuration) {
        match self.configs.get(&config.epoch) {
            None => {
                self.configs.insert(config.epoch, config.clone());
            }
            Some(first) if first == config => {}
            Some(_) => self.violation(
                Rule::GlobalUniqueness,
                format!("two configurations for epoch {} ({seen})", config.epoch),
            ),
        }
    }
}
