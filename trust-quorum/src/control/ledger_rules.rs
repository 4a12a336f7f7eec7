//! The rules every ledger satisfies (docs/protocol.md sections 5 and 7.3),
//! checked when a stored ledger is loaded and, in debug builds, after every
//! change.

use tq_types::{ConfigState, Epoch, MemberState, Threshold};

use super::errors::LedgerError;
use super::ledger::{ConfigRecord, Ledger};
use super::policy::required_acks;

impl Ledger {
    /// Checks every rule a ledger must satisfy (docs/protocol.md sections 5 and
    /// 7.3): sequential epochs, at most one non-terminal configuration and
    /// only as the latest, each configuration built on the newest committing
    /// or committed one before it, aborted only from preparing, member
    /// states consistent with digests, timestamps and the configuration's
    /// state, and K+Z acknowledgements behind every commit.
    pub fn validate(&self) -> Result<(), LedgerError> {
        if self.rack_id.is_some() == self.configs.is_empty() {
            return Err(LedgerError::RackIdInconsistent);
        }
        let latest = self.configs.keys().next_back().copied();
        let mut expected = Epoch::INITIAL;
        let mut newest_committed: Option<Epoch> = None;
        for (&epoch, rec) in &self.configs {
            if epoch != expected {
                return Err(LedgerError::EpochGap { expected, found: epoch });
            }
            if !rec.state.is_terminal() && Some(epoch) != latest {
                return Err(LedgerError::ActiveNotLatest { epoch, state: rec.state });
            }
            if rec.last_committed_epoch != newest_committed {
                return Err(LedgerError::WrongLastCommitted {
                    epoch,
                    recorded: rec.last_committed_epoch,
                    expected: newest_committed,
                });
            }
            validate_record(epoch, rec, Some(epoch) == latest)?;
            if rec.state.is_committed_or_committing() {
                newest_committed = Some(epoch);
            }
            expected = epoch.next().unwrap_or(epoch);
        }
        for (sled, act) in &self.activations {
            let committed = self
                .configs
                .get(&act.epoch)
                .and_then(|rec| rec.members.get(sled))
                .is_some_and(|m| m.state == MemberState::Committed);
            if !committed {
                return Err(LedgerError::InconsistentActivation {
                    sled: sled.clone(),
                    epoch: act.epoch,
                });
            }
        }
        Ok(())
    }
}

fn validate_record(epoch: Epoch, rec: &ConfigRecord, is_latest: bool) -> Result<(), LedgerError> {
    let n = rec.members.len();
    let shape_ok = (tq_types::ids::MIN_MEMBERS..=tq_types::ids::MAX_MEMBERS).contains(&n)
        && rec.threshold >= Threshold::MIN
        && rec.threshold <= Threshold::MAX
        && usize::from(rec.threshold.0) < n
        && rec.members.contains_key(&rec.coordinator);
    if !shape_ok {
        return Err(LedgerError::InvalidShape { epoch });
    }
    for (member, d) in &rec.members {
        let consistent = match d.state {
            MemberState::Unacked => d.time_prepared.is_none() && d.time_committed.is_none(),
            MemberState::Prepared => {
                d.share_digest.is_some() && d.time_prepared.is_some() && d.time_committed.is_none()
            }
            MemberState::Committed => {
                d.share_digest.is_some()
                    && d.time_committed.is_some()
                    && rec.state.is_committed_or_committing()
            }
        };
        if !consistent {
            return Err(LedgerError::InconsistentMember { epoch, member: member.clone() });
        }
    }
    let needed = required_acks(rec.threshold, rec.commit_crash_tolerance);
    let acked = rec.members.values().filter(|d| d.state != MemberState::Unacked).count();
    let committed = rec.count(MemberState::Committed);
    let all_digests = rec.members.values().all(|d| d.share_digest.is_some());
    let consistent = match rec.state {
        ConfigState::Preparing => {
            rec.time_committing.is_none()
                && rec.time_committed.is_none()
                && rec.time_aborted.is_none()
                && rec.abort_reason.is_none()
        }
        ConfigState::Committing => {
            all_digests
                && acked >= needed
                && committed < n
                && rec.time_committing.is_some()
                && rec.time_committed.is_none()
                && rec.time_aborted.is_none()
        }
        ConfigState::Committed => {
            all_digests
                && committed == n
                && rec.time_committing.is_some()
                && rec.time_committed.is_some()
                && rec.time_aborted.is_none()
        }
        ConfigState::CommittedPartially => {
            all_digests
                && !is_latest
                && committed >= needed
                && rec.time_committing.is_some()
                && rec.time_committed.is_some()
                && rec.time_aborted.is_none()
        }
        ConfigState::Aborted => {
            rec.time_committing.is_none()
                && rec.time_committed.is_none()
                && rec.time_aborted.is_some()
                && rec.abort_reason.is_some()
        }
    };
    if !consistent {
        return Err(LedgerError::InconsistentState { epoch, state: rec.state });
    }
    Ok(())
}
