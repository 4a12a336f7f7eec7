//! The rules about one configuration record on its own: its sizes, its
//! members' states and its state (docs/protocol.md sections 1, 5.2, 5.3).

use tq_types::{ConfigState, Epoch, MemberState};

use super::{
    COORDINATOR_IS_MEMBER, Findings, MEMBER_STATES, OraclePolicy, QUORUM, RecordImage, SIZES,
    STATES, committing_or_committed,
};

/// Checks the record of `epoch` on its own.
pub(super) fn record(epoch: Epoch, r: &RecordImage, policy: &OraclePolicy, out: &mut Findings) {
    sizes(epoch, r, policy, out);
    out.require(r.members.contains_key(&r.coordinator), COORDINATOR_IS_MEMBER, || {
        format!("epoch {epoch}: coordinator {} is not a member", r.coordinator)
    });
    member_states(epoch, r, out);
    quorum(epoch, r, policy, out);
    state(epoch, r, out);
}

/// N is allowed; K and Z are the ones N gives.
fn sizes(epoch: Epoch, r: &RecordImage, policy: &OraclePolicy, out: &mut Findings) {
    let n = r.members.len();
    out.require((policy.min_members..=policy.max_members).contains(&n), SIZES, || {
        format!(
            "epoch {epoch}: {n} members, allowed {}..={}",
            policy.min_members, policy.max_members
        )
    });
    let k = policy.k(n);
    out.require(usize::from(r.threshold) == k, SIZES, || {
        format!("epoch {epoch}: K is {} for {n} members, should be {k}", r.threshold)
    });
    let z = policy.z(n);
    out.require(z == Some(usize::from(r.commit_crash_tolerance)), SIZES, || {
        format!("epoch {epoch}: Z is {} for {n} members, should be {z:?}", r.commit_crash_tolerance)
    });
}

/// Unacked members have no times; Prepared ones a digest and a prepare
/// time; Committed ones a digest and a commit time, and only in a
/// committing or committed configuration. Times are not before the record
/// was created, a prepare not after the move to committing, a member's
/// commit not before it.
fn member_states(epoch: Epoch, r: &RecordImage, out: &mut Findings) {
    for (m, d) in &r.members {
        let consistent = match d.state {
            MemberState::Unacked => d.time_prepared.is_none() && d.time_committed.is_none(),
            MemberState::Prepared => {
                d.share_digest.is_some() && d.time_prepared.is_some() && d.time_committed.is_none()
            }
            MemberState::Committed => {
                d.share_digest.is_some()
                    && d.time_committed.is_some()
                    && committing_or_committed(r.state)
            }
        };
        out.require(consistent, MEMBER_STATES, || {
            format!("epoch {epoch} ({}): {m} is {} with {d:?}", r.state, d.state)
        });
        let ordered = d.time_prepared.is_none_or(|t| t >= r.time_created)
            && d.time_committed.is_none_or(|t| t >= r.time_created)
            && d.time_prepared.zip(d.time_committed).is_none_or(|(p, c)| p <= c)
            && d.time_prepared.zip(r.time_committing).is_none_or(|(p, c)| p <= c)
            && d.time_committed.zip(r.time_committing).is_none_or(|(m, c)| m >= c);
        out.require(ordered, MEMBER_STATES, || {
            format!("epoch {epoch}: {m}'s times are out of order: {d:?}")
        });
    }
}

/// The counts each state needs, with K + Z computed from N.
fn quorum(epoch: Epoch, r: &RecordImage, policy: &OraclePolicy, out: &mut Findings) {
    let n = r.members.len();
    let Some(needed) = policy.quorum(n) else { return };
    let acked = r.members.values().filter(|d| d.state != MemberState::Unacked).count();
    let committed = r.members.values().filter(|d| d.state == MemberState::Committed).count();
    let ok = match r.state {
        ConfigState::Preparing | ConfigState::Aborted => true,
        ConfigState::Committing => acked >= needed && committed < n,
        ConfigState::Committed => committed == n,
        ConfigState::CommittedPartially => committed >= needed,
    };
    out.require(ok, QUORUM, || {
        format!(
            "epoch {epoch} is {} with {acked} acknowledged and {committed} committed of {n} \
             (K + Z = {needed})",
            r.state
        )
    });
}

/// A state's timestamps, abort reason, digests and sealed secrets.
fn state(epoch: Epoch, r: &RecordImage, out: &mut Findings) {
    let times = (
        r.time_committing.is_some(),
        r.time_committed.is_some(),
        r.time_aborted.is_some(),
        r.abort_reason.is_some(),
    );
    let times_ok = match r.state {
        ConfigState::Preparing => times == (false, false, false, false),
        ConfigState::Committing => times == (true, false, false, false),
        ConfigState::Committed | ConfigState::CommittedPartially => {
            times == (true, true, false, false)
        }
        ConfigState::Aborted => times == (false, false, true, true),
    };
    out.require(times_ok, STATES, || {
        format!(
            "epoch {epoch} is {} with (committing, committed, aborted, reason) set = {times:?}",
            r.state
        )
    });
    let ordered = r.time_committing.is_none_or(|t| t >= r.time_created)
        && r.time_committed.is_none_or(|t| r.time_committing.is_some_and(|c| t >= c))
        && r.time_aborted.is_none_or(|t| t >= r.time_created)
        && r.time_reconfigure_sent.is_none_or(|t| t >= r.time_created);
    out.require(ordered, STATES, || format!("epoch {epoch}: times out of order"));
    if committing_or_committed(r.state) {
        let digests = r.members.values().all(|d| d.share_digest.is_some());
        out.require(digests, STATES, || {
            format!("epoch {epoch} is {} without every digest", r.state)
        });
        // Acknowledgements of a configuration that builds on a committed one
        // carry its sealed secrets (docs/protocol.md section 5.3).
        let sealed = r.last_committed_epoch.is_none() || r.encrypted_rack_secrets.is_some();
        out.require(sealed, STATES, || {
            format!("epoch {epoch} is {} without the sealed secrets of its base", r.state)
        });
    }
    if r.state == ConfigState::Committed {
        // It became Committed with its last member's commit.
        let last = r.members.values().filter_map(|d| d.time_committed).max();
        out.require(last == r.time_committed, STATES, || {
            format!(
                "epoch {epoch} committed at {:?}, its last member at {last:?}",
                r.time_committed
            )
        });
    }
}
