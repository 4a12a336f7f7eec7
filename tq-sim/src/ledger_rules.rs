//! Ledger rules, checked after every event: the ledger's own validation
//! (sequential epochs, at most one active configuration, well-formed
//! records), states only moving forward, commit safety and agreement with
//! what the nodes durably hold (docs/protocol.md sections 5.2, 7.1, 7.3).

use std::collections::{BTreeMap, BTreeSet};

use tq_types::membership::{ConfigState, MemberState, TrustQuorumConfig};
use tq_types::{BaseboardId, Configuration, Epoch};
use trust_quorum::control::ControlPlane;

use crate::violation::Violations;
use crate::world::World;

/// What the ledger rules carry across events.
#[derive(Default)]
pub(crate) struct LedgerRules {
    /// The last ledger state seen for each epoch.
    states: BTreeMap<Epoch, ConfigState>,
}

/// What the other checks learned that the ledger rules compare against.
pub(crate) struct Seen<'a> {
    /// Sleds whose disk was wiped: rules about durable state exempt them.
    pub(crate) wiped: &'a BTreeSet<BaseboardId>,
    /// The first configuration seen for each epoch, anywhere.
    pub(crate) configs: &'a BTreeMap<Epoch, Configuration>,
}

impl LedgerRules {
    /// Checks the world's ledger, recording what is broken in `out`.
    pub(crate) fn check(&mut self, world: &World, seen: &Seen<'_>, out: &mut Violations) {
        let side = &world.control;
        if let Err(e) = side.ledger().validate() {
            out.record("ledger_rules", format!("stored ledger invalid: {e}"));
        }
        let cp = side.observer();
        let mut previous_state = None;
        for epoch in cp.epochs() {
            let Some(view) = cp.config(epoch) else { continue };
            self.states_move_forward(&view, out);
            if let Some(prev) = previous_state {
                if !matches!(
                    prev,
                    ConfigState::Committed | ConfigState::CommittedPartially | ConfigState::Aborted
                ) {
                    out.record(
                        "ledger_rules",
                        format!("epoch {epoch} follows an active configuration"),
                    );
                }
            }
            previous_state = Some(view.state);
            commit_safety(world, seen, &view, out);
            node_configs_match_ledger(seen, &view, out);
            coordinator_rules(cp, &view, out);
        }
        // No node holds a configuration for an epoch the ledger never created.
        let latest = cp.latest_epoch();
        for (id, s) in &world.rack.sleds {
            if let Some(c) = s.disk().latest_config() {
                if latest.is_none_or(|l| c.epoch > l) {
                    out.record(
                        "node_configs_match_cp",
                        format!("{id} holds config {} unknown to the ledger", c.epoch),
                    );
                }
            }
        }
    }

    /// Committing never goes back, and aborts only come from preparing.
    fn states_move_forward(&mut self, view: &TrustQuorumConfig, out: &mut Violations) {
        let prev = self.states.insert(view.epoch, view.state);
        let Some(prev) = prev else { return };
        let allowed = prev == view.state
            || matches!(
                (prev, view.state),
                (ConfigState::Preparing, ConfigState::Committing | ConfigState::Aborted)
                    | (
                        ConfigState::Committing,
                        ConfigState::Committed | ConfigState::CommittedPartially
                    )
            );
        if !allowed {
            out.record(
                "ledger_forward_only",
                format!("epoch {} went {prev} -> {}", view.epoch, view.state),
            );
        }
    }
}

/// Committing(e) implies K+Z members durably prepared e; members recorded
/// as committed have committed locally (wiped sleds excepted).
fn commit_safety(world: &World, seen: &Seen<'_>, view: &TrustQuorumConfig, out: &mut Violations) {
    if !view.state.is_committed_or_committing() {
        return;
    }
    let sleds = &world.rack.sleds;
    let e = view.epoch;
    let needed =
        usize::from(view.threshold.0).saturating_add(usize::from(view.commit_crash_tolerance));
    let held = view
        .members
        .keys()
        .filter(|m| {
            seen.wiped.contains(*m)
                || sleds.get(*m).is_some_and(|s| {
                    s.disk().is_prepared(e)
                        || s.disk().latest_committed_epoch().is_some_and(|l| l > e)
                })
        })
        .count();
    if held < needed && view.state == ConfigState::Committing {
        out.record(
            "commit_safety",
            format!("epoch {e} committing with {held} durable preparers, needs {needed}"),
        );
    }
    // Recoverability (7.3): K holders remain unless more than Z of the
    // preparers were wiped.
    let holders = view
        .members
        .keys()
        .filter(|m| sleds.get(*m).is_some_and(|s| s.disk().is_prepared(e)))
        .count();
    let wiped = view.members.keys().filter(|m| seen.wiped.contains(*m)).count();
    if holders < usize::from(view.threshold.0) && wiped <= usize::from(view.commit_crash_tolerance)
    {
        out.record("recoverability", format!("epoch {e} has {holders} holders left"));
    }
    for (m, data) in &view.members {
        if data.state == MemberState::Committed && !seen.wiped.contains(m) {
            let ok = sleds.get(m).is_some_and(|s| s.disk().commits().contains(&e));
            if !ok {
                out.record(
                    "acked_commits_are_commits",
                    format!("{m} recorded committed at {e} but is not"),
                );
            }
        }
    }
}

/// Digests the ledger learned equal those of the configuration nodes hold.
fn node_configs_match_ledger(seen: &Seen<'_>, view: &TrustQuorumConfig, out: &mut Violations) {
    let Some(config) = seen.configs.get(&view.epoch) else { return };
    let ledger_members: BTreeSet<&BaseboardId> = view.members.keys().collect();
    let node_members: BTreeSet<&BaseboardId> = config.members.keys().collect();
    if ledger_members != node_members
        || config.threshold != view.threshold
        || config.coordinator != view.coordinator
    {
        out.record(
            "node_configs_match_cp",
            format!("epoch {} differs between nodes and ledger", view.epoch),
        );
    }
    for (m, data) in &view.members {
        if let Some(d) = data.share_digest {
            if config.members.get(m) != Some(&d) {
                out.record(
                    "node_configs_match_cp",
                    format!("digest of {m} at {} differs", view.epoch),
                );
            }
        }
    }
}

/// The coordinator is a member, and (after the first configuration) a
/// member that committed the last committed configuration.
fn coordinator_rules(cp: &ControlPlane, view: &TrustQuorumConfig, out: &mut Violations) {
    if !view.members.contains_key(&view.coordinator) {
        out.record("coordinator_is_member", format!("epoch {}", view.epoch));
    }
    if let Some(last) = view.last_committed_epoch.and_then(|l| cp.config(l)) {
        let ok =
            last.members.get(&view.coordinator).is_some_and(|d| d.state == MemberState::Committed);
        if !ok {
            out.record(
                "coordinator_committed_last",
                format!("coordinator of {} did not commit {}", view.epoch, last.epoch),
            );
        }
    }
}
