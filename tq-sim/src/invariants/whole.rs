//! Checks over the whole world, after every event (docs/protocol.md sections
//! 7.2 and 7.3): each node's status, each coordinator's count of
//! acknowledgements, and the shares each coordinator handed out.

use tq_types::{BaseboardId, CoordinatorStatus, NodeStatus};
use trust_quorum::PersistentState;

use super::Checker;
use super::rules::Rule;
use crate::world::truth::point;
use crate::world::{GroundTruth, LostFacts, World, retention};

impl Checker {
    /// The checks on each sled's status and coordination.
    pub(super) fn check_sleds(&mut self, world: &World) {
        let sleds = &world.rack.sleds;
        let lost = world.truth().lost();
        for (id, s) in sleds {
            if self.is_compromised(id) {
                continue;
            }
            if let Some((node, ctx)) = s.embedded.live() {
                let status = node.status(ctx);
                self.no_alarms(id, &status);
                self.no_coordinating_while_computing(id, &status);
            }
            if let Some(status) = s.embedded.coordinator_status() {
                let disk = |m: &BaseboardId| sleds.get(m).map(|x| x.disk());
                self.acked_members_have_prepared(id, status, disk, lost);
            }
        }
    }

    /// No alarm is ever raised (7.2).
    pub(super) fn no_alarms(&mut self, id: &BaseboardId, status: &NodeStatus) {
        if let Some(a) = status.alarms.first() {
            self.violation(Rule::NoAlarms, format!("{id} raised {a:?}"));
        }
    }

    /// No node coordinates while computing a key share (7.2).
    pub(super) fn no_coordinating_while_computing(&mut self, id: &BaseboardId, st: &NodeStatus) {
        if st.coordinating.is_some() && st.computing_share.is_some() {
            self.violation(Rule::CoordinateXorCompute, format!("{id} does both"));
        }
    }

    /// Any member the coordinator `id` counts as acked is durably prepared
    /// or has moved past the epoch (7.2, 2.4), unless a wipe took that very prepare (`lost`; counted as an
    /// exemption used). `disk` gives each sled's durable state.
    pub(super) fn acked_members_have_prepared<'a>(
        &mut self,
        id: &BaseboardId,
        status: &CoordinatorStatus,
        disk: impl Fn(&BaseboardId) -> Option<&'a PersistentState>,
        lost: &LostFacts,
    ) {
        let e = status.config.epoch;
        for m in &status.acked_prepares {
            // A member that moved past e since may have dropped it
            // (docs/protocol.md section 2.4).
            let prepared = disk(m).is_some_and(|d| retention::prepared_or_superseded(d, e));
            let rule = Rule::AckedMembersPrepared;
            if !prepared && !self.exemptions.excuse_prepare(lost, rule.name(), m, e) {
                self.violation(
                    Rule::AckedMembersPrepared,
                    format!("coordinator {id} counts {m} acked for {e} but it is not prepared"),
                );
            }
        }
        // While collecting old shares the configuration has no sealed
        // secrets yet; it is final once the coordinator prepares.
        if !status.acked_prepares.is_empty() {
            self.global_uniqueness(&format!("coordinated by {id}"), &status.config);
        }
    }

    /// Every share a coordinator handed out matches its member's digest and
    /// x-coordinate in the configuration, and lies on the polynomial the
    /// first K of them define, so that any K members rebuild the secret the
    /// coordinator generated. Each share is checked once, after K are known.
    pub(super) fn split_consistency(&mut self, truth: &GroundTruth) {
        for (e, split) in truth.splits() {
            if split.secret.is_none() {
                continue;
            }
            let from = self.split_checked.get(e).copied().unwrap_or(0);
            for (m, share) in split.handed.iter().skip(from) {
                let digest_ok = split
                    .config
                    .members
                    .get(m)
                    .is_some_and(|d| *blake3::hash(share.as_bytes()).as_bytes() == d.0);
                let x = point(share).map(|(x, _)| x);
                let on_polynomial = point(share)
                    .is_some_and(|(x, ys)| split.value_at(x).is_some_and(|v| v.as_slice() == ys));
                let why = if !digest_ok {
                    "does not match its digest"
                } else if x != split.config.x_coordinate(m) {
                    "has another member's x-coordinate"
                } else if !on_polynomial {
                    "is not on the polynomial of the others"
                } else {
                    continue;
                };
                self.violation(
                    Rule::SplitConsistency,
                    format!("the share {} handed to {m} for {e} {why}", split.config.coordinator),
                );
            }
            self.split_checked.insert(*e, split.handed.len());
        }
    }
}
