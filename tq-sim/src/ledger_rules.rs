//! Ledger rules, checked after every event: the independent oracle's rules
//! on every stored ledger and on each change of it (`oracle/`), and the
//! rules that tie the ledger to what the sleds durably hold: commit safety,
//! recoverability, recorded acknowledgements that are real, and the
//! configurations nodes hold (docs/protocol.md sections 5.2, 7.1, 7.3).
//!
//! K, Z and K + Z come from the oracle's own computation from the
//! membership and the run's policy as plain data ([`oracle_policy`]), never
//! from the record under test or the control plane's `Policy`.

use std::collections::{BTreeMap, BTreeSet};

use tq_types::membership::MemberState;
use tq_types::{BaseboardId, Configuration, Epoch};
use trust_quorum::control::Ledger;

use crate::violation::Violations;
use crate::world::{Exemptions, LostFacts, World, retention};

pub(crate) mod oracle;

use oracle::{KFromN, LedgerImage, OraclePolicy, RecordImage, ZTable, committing_or_committed};

use crate::policy::{KRule, SimPolicy, ZTableChoice};

/// Committing(e) has at least K + Z members durably prepared.
pub(crate) const COMMIT_SAFETY: &str = "commit_safety";
/// A committing or committed e keeps K holders unless more than Z of its
/// members lost their share.
pub(crate) const RECOVERABILITY: &str = "recoverability";
/// Members the ledger records as Prepared are durably prepared.
pub(crate) const ACKED_PREPARES: &str = "acked_prepares_are_prepares";
/// Members the ledger records as Committed have committed locally.
pub(crate) const ACKED_COMMITS: &str = "acked_commits_are_commits";
/// Nodes hold the ledger's configurations: same members, K, coordinator,
/// digests and sealed secrets, and no epoch the ledger never created.
pub(crate) const NODE_CONFIGS_MATCH: &str = "node_configs_match_cp";

/// The rules tying the ledger to the sleds.
const WORLD_RULES: &[&str] =
    &[COMMIT_SAFETY, RECOVERABILITY, ACKED_PREPARES, ACKED_COMMITS, NODE_CONFIGS_MATCH];

/// What the ledger rules carry across events.
#[derive(Default)]
pub(crate) struct LedgerRules {
    /// The last stored ledger seen, and its image.
    last: Option<(Ledger, LedgerImage)>,
}

/// The oracle's policy for a run's `policy`: the same choices, restated
/// in the oracle's own terms, with the simulated control plane's other
/// settings (the product's defaults: 3 to 32 members, 3 attempts).
pub(crate) fn oracle_policy(policy: &SimPolicy) -> OraclePolicy {
    let k_rule = match policy.threshold {
        KRule::Majority => KFromN::Majority,
        KRule::MajorityPlus(d) => KFromN::MajorityPlus(d),
    };
    let z_table = match policy.z_table {
        ZTableChoice::AddSledsRelease => ZTable::AddSledsRelease,
        ZTableChoice::LatestReference => ZTable::LatestReference,
        ZTableChoice::Fixed(z) => ZTable::Fixed(z),
    };
    OraclePolicy { k_rule, z_table, ..OraclePolicy::DEFAULT }
}

/// The exact prepares and commits wiped disks took with them: the only
/// facts a rule may excuse ([`WorldExcuses`] in a run, which counts every
/// excuse used).
pub(crate) trait Excuses {
    /// Whether a wipe took `who`'s durable prepare of `epoch`.
    fn lost_prepare(&self, who: &BaseboardId, epoch: Epoch) -> bool;
    /// Whether `rule` may excuse `who` not being prepared for `epoch` (a
    /// wipe took that very prepare); a use is counted.
    fn excuse_prepare(&mut self, rule: &'static str, who: &BaseboardId, epoch: Epoch) -> bool;
    /// Whether `rule` may excuse `who` not having committed `epoch` (a wipe
    /// took that very commit); a use is counted.
    fn excuse_commit(&mut self, rule: &'static str, who: &BaseboardId, epoch: Epoch) -> bool;
}

/// The world's record of lost facts, with the checker's count of the
/// exemptions used.
pub(crate) struct WorldExcuses<'a> {
    /// What wiped disks took.
    pub(crate) lost: &'a LostFacts,
    /// The exemptions used so far.
    pub(crate) used: &'a mut Exemptions,
}

impl Excuses for WorldExcuses<'_> {
    fn lost_prepare(&self, who: &BaseboardId, epoch: Epoch) -> bool {
        self.lost.prepare(who, epoch)
    }

    fn excuse_prepare(&mut self, rule: &'static str, who: &BaseboardId, epoch: Epoch) -> bool {
        self.used.excuse_prepare(self.lost, rule, who, epoch)
    }

    fn excuse_commit(&mut self, rule: &'static str, who: &BaseboardId, epoch: Epoch) -> bool {
        self.used.excuse_commit(self.lost, rule, who, epoch)
    }
}

/// What the other checks learned that the ledger rules compare against.
pub(crate) struct Seen<'a> {
    /// What wiped disks took with them.
    pub(crate) lost: &'a mut dyn Excuses,
    /// The first configuration seen for each epoch, anywhere.
    pub(crate) configs: &'a BTreeMap<Epoch, Configuration>,
}

impl LedgerRules {
    /// The name of every rule the ledger rules report.
    pub(crate) fn names() -> impl Iterator<Item = &'static str> {
        oracle::RULES.iter().chain(WORLD_RULES).copied()
    }

    /// Checks the world's ledger, recording what is broken in `out`.
    pub(crate) fn check(&mut self, world: &World, seen: &mut Seen<'_>, out: &mut Violations) {
        let policy = oracle_policy(world.policy());
        let ledger = world.control.ledger();
        if self.last.as_ref().is_none_or(|(l, _)| l != ledger) {
            match LedgerImage::of(ledger) {
                Ok(image) => {
                    let findings = oracle::check_ledger(&image, &policy);
                    let moved =
                        self.last.as_ref().map(|(_, old)| oracle::check_transition(old, &image));
                    for f in findings.into_iter().chain(moved.into_iter().flatten()) {
                        out.record(f.rule, f.detail);
                    }
                    self.last = Some((ledger.clone(), image));
                }
                Err(e) => out.record(oracle::UNREADABLE, e),
            }
        }
        let Some((_, image)) = &self.last else { return };
        for (epoch, record) in &image.configs {
            let view = Record { epoch: *epoch, record, policy: &policy };
            view.commit_safety(world, seen, out);
            view.acked_facts(world, seen, out);
            node_configs_match_ledger(seen, &view, out);
        }
        // No node holds a configuration for an epoch the ledger never created.
        let latest = image.latest();
        for (id, s) in &world.rack.sleds {
            if let Some(c) = s.disk().latest_config() {
                if latest.is_none_or(|l| c.epoch > l) {
                    out.record(
                        NODE_CONFIGS_MATCH,
                        format!("{id} holds config {} unknown to the ledger", c.epoch),
                    );
                }
            }
        }
    }
}

/// One record under check, with the policy its K and Z come from.
struct Record<'a> {
    epoch: Epoch,
    record: &'a RecordImage,
    policy: &'a OraclePolicy,
}

impl Record<'_> {
    /// Committing(e) implies K + Z members durably prepared e (a member
    /// whose wiped disk took that very prepare still counts); a committing
    /// or committed e keeps K holders unless more than Z members lost their
    /// share of it. A wiped sled holds nothing.
    fn commit_safety(&self, world: &World, seen: &mut Seen<'_>, out: &mut Violations) {
        let (e, r) = (self.epoch, self.record);
        if !committing_or_committed(r.state) {
            return;
        }
        let n = r.members.len();
        let k = self.policy.k(n);
        let (Some(z), Some(needed)) = (self.policy.z(n), self.policy.quorum(n)) else { return };
        let holders: BTreeSet<&BaseboardId> =
            r.members.keys().filter(|m| prepared(world, m, e)).collect();
        let lost: Vec<&BaseboardId> =
            r.members.keys().filter(|m| seen.lost.lost_prepare(m, e)).collect();
        if r.state == tq_types::ConfigState::Committing && holders.len() < needed {
            let excused = r
                .members
                .keys()
                .filter(|m| !holders.contains(m))
                .filter(|m| seen.lost.excuse_prepare(COMMIT_SAFETY, m, e))
                .count();
            let prepared = holders.len().saturating_add(excused);
            if prepared < needed {
                out.record(
                    COMMIT_SAFETY,
                    format!(
                        "epoch {e} committing with {prepared} durable preparers, needs {needed}"
                    ),
                );
            }
        }
        if holders.len() < k {
            if lost.len() <= z {
                out.record(
                    RECOVERABILITY,
                    format!(
                        "epoch {e} has {} holders left, {} lost, K = {k}",
                        holders.len(),
                        lost.len()
                    ),
                );
            } else {
                for m in lost {
                    seen.lost.excuse_prepare(RECOVERABILITY, m, e);
                }
            }
        }
    }

    /// Members recorded as Prepared are durably prepared, and those
    /// recorded as Committed have committed locally, unless a wipe took
    /// that very fact.
    fn acked_facts(&self, world: &World, seen: &mut Seen<'_>, out: &mut Violations) {
        let e = self.epoch;
        for (m, data) in &self.record.members {
            match data.state {
                MemberState::Unacked => {}
                MemberState::Prepared => {
                    if !prepared(world, m, e) && !seen.lost.excuse_prepare(ACKED_PREPARES, m, e) {
                        out.record(
                            ACKED_PREPARES,
                            format!("{m} recorded prepared at {e} but is not"),
                        );
                    }
                }
                MemberState::Committed => {
                    let committed = world
                        .rack
                        .sleds
                        .get(m)
                        .is_some_and(|s| retention::committed_at_or_after(s.disk(), e));
                    if !committed && !seen.lost.excuse_commit(ACKED_COMMITS, m, e) {
                        out.record(
                            ACKED_COMMITS,
                            format!("{m} recorded committed at {e} but is not"),
                        );
                    }
                }
            }
        }
    }
}

/// Whether `m` durably holds its configuration and share of `e`.
/// `m` durably holds `e` prepared, or has moved past it (a later commit,
/// whose sealed chain carries e's secret, or a later configuration not
/// built on e; docs/protocol.md section 2.4). For the ledger's latest
/// epoch only the first can hold.
fn prepared(world: &World, m: &BaseboardId, e: Epoch) -> bool {
    world.rack.sleds.get(m).is_some_and(|s| retention::prepared_or_superseded(s.disk(), e))
}

/// Members, K, coordinator, digests and sealed secrets the ledger learned
/// equal those of the configuration nodes hold.
fn node_configs_match_ledger(seen: &Seen<'_>, view: &Record<'_>, out: &mut Violations) {
    let (e, r) = (view.epoch, view.record);
    let Some(config) = seen.configs.get(&e) else { return };
    if !config.members.keys().eq(r.members.keys())
        || config.threshold.0 != r.threshold
        || config.coordinator != r.coordinator
    {
        out.record(NODE_CONFIGS_MATCH, format!("epoch {e} differs between nodes and ledger"));
    }
    for (m, data) in &r.members {
        if let Some(d) = data.share_digest {
            if config.members.get(m) != Some(&d) {
                out.record(NODE_CONFIGS_MATCH, format!("digest of {m} at {e} differs"));
            }
        }
    }
    if let Some(sealed) = &r.encrypted_rack_secrets {
        if config.encrypted_rack_secrets.as_ref() != Some(sealed) {
            out.record(NODE_CONFIGS_MATCH, format!("sealed secrets of {e} differ"));
        }
    }
}

#[cfg(test)]
mod firing;
#[cfg(test)]
mod oracle_firing;
