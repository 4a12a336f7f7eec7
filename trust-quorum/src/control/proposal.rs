//! Proposing a new configuration (docs/protocol.md section 5.4): the checks
//! a proposal must pass, the choice of its coordinator and the new record.

use std::collections::BTreeSet;

use rand_core::CryptoRng;
use tq_types::{BaseboardId, ConfigState, Epoch, MemberState, Timestamp, TrustQuorumMemberData};

use super::ledger::{ConfigRecord, Ledger};
use super::policy::{Policy, required_acks};

/// Why a proposal was refused (docs/protocol.md section 5.4); each operation
/// maps it into its own error.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum ProposeError {
    NotInitialized,
    InProgress { epoch: Epoch },
    MembershipSize { members: usize },
    PreviousNotCommitted { epoch: Epoch, committed: usize, needed: usize },
    NoCoordinatorCandidate { last_committed: Option<Epoch> },
    EpochExhausted,
}

impl Ledger {
    /// Inserts a validated proposal (docs/protocol.md section 5.4) for `members`
    /// at the next epoch, building on the newest committing or committed
    /// configuration. Mutates only on success, but callers still apply it to
    /// a draft.
    ///
    /// `reachable` says whether this replica believes a sled reachable (no
    /// recent failed call); with the ledger's in-service set it orders the
    /// coordinator candidates (see [`prefer_active_and_reachable`]).
    pub(crate) fn propose<R: CryptoRng + ?Sized>(
        &mut self,
        members: BTreeSet<BaseboardId>,
        attempt: u32,
        policy: &Policy,
        reachable: &dyn Fn(&BaseboardId) -> bool,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Epoch, ProposeError> {
        if self.rack_id.is_none() {
            return Err(ProposeError::NotInitialized);
        }
        let latest = self.latest().map(|(e, r)| (e, r.state));
        if let Some((epoch, ConfigState::Preparing)) = latest {
            return Err(ProposeError::InProgress { epoch });
        }
        let n = members.len();
        let (Some(threshold), Some(z)) = (policy.threshold(n), policy.crash_tolerance(n)) else {
            return Err(ProposeError::MembershipSize { members: n });
        };
        let epoch = match latest {
            None => Epoch::INITIAL,
            Some((e, _)) => e.next().ok_or(ProposeError::EpochExhausted)?,
        };

        let base = self.base().map(|(e, r)| (e, r.clone()));
        if let Some((base_epoch, base_rec)) = &base
            && base_rec.state == ConfigState::Committing
        {
            let committed = base_rec.count(MemberState::Committed);
            let needed = required_acks(base_rec.threshold, base_rec.commit_crash_tolerance);
            if committed < needed {
                return Err(ProposeError::PreviousNotCommitted {
                    epoch: *base_epoch,
                    committed,
                    needed,
                });
            }
        }

        let candidates: Vec<BaseboardId> = match &base {
            None => members.iter().cloned().collect(),
            Some((_, b)) => members
                .iter()
                .filter(|m| b.members.get(*m).is_some_and(|d| d.state == MemberState::Committed))
                .cloned()
                .collect(),
        };
        // Coordinators of aborted attempts since the base, newest first.
        let base_epoch = base.as_ref().map(|(e, _)| *e);
        let failed: Vec<BaseboardId> = self
            .configs
            .iter()
            .rev()
            .take_while(|(e, _)| Some(**e) != base_epoch)
            .filter(|(_, r)| r.state == ConfigState::Aborted)
            .map(|(_, r)| r.coordinator.clone())
            .collect();
        let avoid_all: Vec<BaseboardId> =
            candidates.iter().filter(|c| !failed.contains(c)).cloned().collect();
        let avoid_last: Vec<BaseboardId> =
            candidates.iter().filter(|c| failed.first() != Some(*c)).cloned().collect();
        let pool = if !avoid_all.is_empty() {
            avoid_all
        } else if !avoid_last.is_empty() {
            avoid_last
        } else {
            candidates
        };
        let pool = prefer_active_and_reachable(pool, &|c| self.is_active(c), reachable);
        let coordinator = pick_one(&pool, rng)
            .ok_or(ProposeError::NoCoordinatorCandidate { last_committed: base_epoch })?;

        if let Some((base_epoch, base_rec)) = &base
            && base_rec.state == ConfigState::Committing
            && let Some(b) = self.configs.get_mut(base_epoch)
        {
            b.state = ConfigState::CommittedPartially;
            b.time_committed = Some(now);
        }

        let record = ConfigRecord {
            last_committed_epoch: base_epoch,
            state: ConfigState::Preparing,
            threshold,
            commit_crash_tolerance: z,
            coordinator,
            members: members
                .into_iter()
                .map(|m| {
                    (
                        m,
                        TrustQuorumMemberData {
                            share_digest: None,
                            state: MemberState::Unacked,
                            time_committed: None,
                            time_prepared: None,
                        },
                    )
                })
                .collect(),
            encrypted_rack_secrets: None,
            abort_reason: None,
            attempt,
            time_created: now,
            time_reconfigure_sent: None,
            time_committing: None,
            time_committed: None,
            time_aborted: None,
        };
        self.configs.insert(epoch, record);
        Ok(epoch)
    }
}

/// The first non-empty part of `pool`, in this order of preference: sleds
/// in service and reachable, then in service, then reachable; else the
/// whole pool (docs/protocol.md section 5.4, step 6). The order within the
/// pool is kept, so the draw that follows stays deterministic.
fn prefer_active_and_reachable(
    pool: Vec<BaseboardId>,
    active: &dyn Fn(&BaseboardId) -> bool,
    reachable: &dyn Fn(&BaseboardId) -> bool,
) -> Vec<BaseboardId> {
    let tiers: [&dyn Fn(&BaseboardId) -> bool; 3] =
        [&|c| active(c) && reachable(c), &|c| active(c), &|c| reachable(c)];
    tiers
        .iter()
        .map(|keep| pool.iter().filter(|c| keep(c)).cloned().collect::<Vec<_>>())
        .find(|tier| !tier.is_empty())
        .unwrap_or(pool)
}

/// One element of `pool` chosen with `rng`, or `None` if it is empty.
pub(crate) fn pick_one<T: Clone, R: CryptoRng + ?Sized>(pool: &[T], rng: &mut R) -> Option<T> {
    let len = u64::try_from(pool.len()).ok()?;
    let index = rng.next_u64().checked_rem(len)?;
    pool.get(usize::try_from(index).ok()?).cloned()
}
