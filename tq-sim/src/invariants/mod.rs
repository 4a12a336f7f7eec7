//! Safety invariants, checked after every event (docs/protocol.md section 7).
//!
//! Each check is one function named after the rule it enforces, and reports
//! a `Rule` whose name is in `INVARIANTS`, the list every name has a firing
//! test for. Checks that need to see a transition (a persist, a send, a
//! secret load) run on what the world reports having done (observations,
//! which the run loop feeds to the [`Checker`]); the rest run over the whole
//! world, read-only, after every event. Answers and secrets are judged
//! against the world's ground truth (the epochs some sled committed, the
//! secret each coordinator generated), not against what nodes report.
//!
//! | file | checks |
//! | --- | --- |
//! | `durable.rs` | every durable write |
//! | `sends.rs` | every released envelope |
//! | `loads.rs` | every secret load |
//! | `whole.rs` | the whole world after every event |

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tq_types::{BaseboardId, Configuration, Epoch, ExpungedMetadata};
use trust_quorum::PersistentState;

use crate::ledger_rules::{LedgerRules, Seen, WorldExcuses};
use crate::observation::Observation;
pub use crate::violation::Violation;
use crate::violation::Violations;
use crate::world::{Exemptions, World};

mod durable;
mod loads;
mod rules;
mod sends;
mod signed;
mod whole;

use rules::{INVARIANTS, Rule};

/// Invariant state carried across events.
#[derive(Default)]
pub struct Checker {
    violations: Violations,
    /// The exemptions checks used (the facts lost disks took are in the
    /// world's ground truth).
    exemptions: Exemptions,
    /// The first configuration seen for each epoch, anywhere.
    configs: BTreeMap<Epoch, Configuration>,
    /// Which sled loaded which epoch's secret.
    loaded: BTreeSet<(BaseboardId, Epoch)>,
    /// The epochs sealed in each configuration, as opened on a load.
    sealed: BTreeMap<Epoch, Vec<Epoch>>,
    /// Loads reported without the world at hand, judged at the next event.
    pending_loads: Vec<Observation>,
    /// How many loads got each kind of answer.
    load_answers: BTreeMap<&'static str, u64>,
    /// For each epoch, how many of the shares its coordinator handed out
    /// were checked against the generated secret's polynomial.
    split_checked: BTreeMap<Epoch, usize>,
    /// The ledger rules' own state.
    ledger: LedgerRules,
    /// The compromised sled of a byzantine run: it is exempt from the node
    /// rules (it still counts as a member for the protocol and the ledger).
    compromised: Option<BaseboardId>,
    /// Durable writes (sled, its expunged marker before, what it wrote)
    /// still to be judged against the control plane's decisions.
    pending_signed: Vec<(BaseboardId, Option<ExpungedMetadata>, Arc<PersistentState>)>,
}

impl Checker {
    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        self.violations.as_slice()
    }

    /// The name of every invariant this checker can report (the ledger
    /// rules it runs report their own).
    pub fn invariants() -> &'static [&'static str] {
        INVARIANTS
    }

    /// How many exemptions checks used: each distinct (rule, sled, epoch)
    /// for which a check excused a missing prepare or commit because a
    /// wiped disk took that very fact counts once, however many events the
    /// check ran on it. Zero in a run without wipes.
    pub fn exemptions_used(&self) -> u64 {
        self.exemptions.used()
    }

    /// How many secret loads got each answer, by kind: `secret`, `pending`,
    /// `no_committed_configurations`, `not_committed`, `not_available`,
    /// `alarm` and `expunged`.
    pub fn load_answers(&self) -> &BTreeMap<&'static str, u64> {
        &self.load_answers
    }

    /// Records a violation of `rule`.
    fn violation(&mut self, rule: Rule, detail: impl Into<String>) {
        self.violations.record(rule.name(), detail);
    }

    /// Feeds what the world reported during an event, in order, then runs
    /// the whole-world checks over the world as the event left it.
    pub(crate) fn after_event(&mut self, observed: Vec<Observation>, world: &World) {
        self.compromised = world.compromised().cloned();
        for o in observed {
            self.observe(o);
        }
        for (who, old, new) in std::mem::take(&mut self.pending_signed) {
            self.on_signed_persist(&who, old.as_ref(), &new, world.control.decisions());
        }
        self.judge_loads(world);
        self.check_all(world);
    }

    /// Checks one transition the world reported. A secret load is judged
    /// against the world's ground truth at the next [`after_event`]
    /// (Self::after_event).
    /// What the compromised sled does is not judged.
    pub(crate) fn observe(&mut self, observation: Observation) {
        match observation {
            Observation::Persisted { who, .. } if self.is_compromised(&who) => {}
            Observation::Persisted { who, old, new } => {
                self.on_persist(&who, &old, &new);
                self.pending_signed.push((who, old.expunged().cloned(), new));
            }
            Observation::Sent { envelope, .. } if self.is_compromised(&envelope.from) => {}
            Observation::Sent { envelope, sender_disk } => self.on_send(&envelope, &sender_disk),
            // What the disk held is in the world's ground truth.
            Observation::Wiped { .. } => {}
            Observation::DiskDecoded { who, written, decoded } => {
                self.corruption_detected(&who, &written, decoded.as_deref());
            }
            Observation::SecretLoaded { who, .. } if self.is_compromised(&who) => {}
            load @ Observation::SecretLoaded { .. } => self.pending_loads.push(load),
        }
    }

    /// Whether `who` is the compromised sled of a byzantine run.
    pub(crate) fn is_compromised(&self, who: &BaseboardId) -> bool {
        self.compromised.as_ref() == Some(who)
    }

    /// Judges the loads reported so far against the world's ground truth
    /// (which only grows: a commit or a generated secret, once known, stays).
    fn judge_loads(&mut self, world: &World) {
        for load in std::mem::take(&mut self.pending_loads) {
            if let Observation::SecretLoaded { who, epoch, result, disk, alarmed } = load {
                self.on_load(&who, epoch, &result, &disk, alarmed, world.truth());
            }
        }
    }

    /// Whether `who` loaded the secret of `epoch`.
    pub(crate) fn has_loaded(&self, who: &BaseboardId, epoch: Epoch) -> bool {
        self.loaded.contains(&(who.clone(), epoch))
    }

    /// The epochs sealed in the configuration of `epoch`, once opened.
    pub(crate) fn sealed_epochs(&self, epoch: Epoch) -> Option<&[Epoch]> {
        self.sealed.get(&epoch).map(Vec::as_slice)
    }

    /// The whole-world checks, run after every event.
    fn check_all(&mut self, world: &World) {
        self.check_sleds(world);
        self.split_consistency(world.truth());
        let mut excuses = WorldExcuses { lost: world.truth().lost(), used: &mut self.exemptions };
        let mut seen = Seen { lost: &mut excuses, configs: &self.configs };
        self.ledger.check(world, &mut seen, &mut self.violations);
    }
}

#[cfg(test)]
mod answers;
#[cfg(test)]
mod firing;
#[cfg(test)]
mod support;
