//! What the ledger shows the operator (docs/protocol.md section 5.6): the
//! detailed view of a configuration and the status of the change that
//! created it.

use tq_types::{Epoch, MemberState, RackMembershipStatus, TrustQuorumConfig};

use super::ledger::Ledger;

impl Ledger {
    /// The detailed view of one configuration.
    pub(crate) fn view(&self, epoch: Epoch) -> Option<TrustQuorumConfig> {
        let rec = self.configs.get(&epoch)?;
        Some(TrustQuorumConfig {
            abort_reason: rec.abort_reason.as_ref().map(ToString::to_string),
            commit_crash_tolerance: rec.commit_crash_tolerance,
            coordinator: rec.coordinator.clone(),
            encrypted_rack_secrets: rec.encrypted_rack_secrets.clone(),
            epoch,
            last_committed_epoch: rec.last_committed_epoch,
            members: rec.members.clone(),
            rack_id: self.rack_id?,
            state: rec.state,
            threshold: rec.threshold,
            time_aborted: rec.time_aborted,
            time_committed: rec.time_committed,
            time_committing: rec.time_committing,
            time_created: rec.time_created,
        })
    }

    /// The operator's status of the change that created `epoch`.
    pub(crate) fn status(&self, epoch: Epoch) -> Option<RackMembershipStatus> {
        let rec = self.configs.get(&epoch)?;
        Some(RackMembershipStatus {
            epoch,
            members: rec.members.keys().cloned().collect(),
            rack_id: self.rack_id?,
            state: rec.state.into(),
            time_aborted: rec.time_aborted,
            time_committed: rec.time_committed,
            time_created: rec.time_created,
            unacknowledged_members: rec
                .members
                .iter()
                .filter(|(_, d)| d.state != MemberState::Committed)
                .map(|(m, _)| m.clone())
                .collect(),
        })
    }
}
