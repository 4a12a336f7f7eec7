//! The rules that tie records together: the sequence of epochs, the choice
//! of coordinators, retries and activations (docs/protocol.md sections 5.2,
//! 5.4, 5.5), and what may change from one stored ledger to the next.

use tq_types::{BaseboardId, ConfigState, Epoch, MemberState};

use super::{
    ACTIVATIONS, COORDINATOR_CHOICE, COORDINATOR_COMMITTED_LAST, EPOCHS, FORWARD_ONLY, Finding,
    Findings, LedgerImage, OraclePolicy, RETRIES, RecordImage, STATES, committing_or_committed,
};

/// The epoch after `e`.
fn next(e: Epoch) -> Option<Epoch> {
    e.0.checked_add(1).map(Epoch)
}

/// Rack id, sequential epochs from 1, only the latest active, each record
/// built on the newest committing or committed one before it, and each
/// partially committed one followed by the record that made it so.
pub(super) fn epochs(l: &LedgerImage, out: &mut Findings) {
    out.require(l.rack_id.is_some() != l.configs.is_empty(), EPOCHS, || {
        format!("rack id {:?} with {} configurations", l.rack_id, l.configs.len())
    });
    let latest = l.latest();
    let mut expected = Some(Epoch(1));
    let mut base: Option<Epoch> = None;
    for (&e, r) in &l.configs {
        out.require(Some(e) == expected, EPOCHS, || {
            format!("epoch {e} where {expected:?} was due")
        });
        expected = next(e);
        let active = matches!(r.state, ConfigState::Preparing | ConfigState::Committing);
        out.require(!active || Some(e) == latest, EPOCHS, || {
            format!("epoch {e} is {} but is not the latest", r.state)
        });
        out.require(r.last_committed_epoch == base, EPOCHS, || {
            format!(
                "epoch {e} builds on {:?}, the newest committed is {base:?}",
                r.last_committed_epoch
            )
        });
        if r.state == ConfigState::CommittedPartially {
            let successor = next(e).and_then(|n| l.configs.get(&n));
            out.require(
                successor.is_some_and(|s| s.last_committed_epoch == Some(e)),
                EPOCHS,
                || format!("epoch {e} is committed partially but no proposal built on it"),
            );
            // It became so when that proposal was made.
            if let Some(s) = successor {
                out.require(r.time_committed == Some(s.time_created), STATES, || {
                    format!(
                        "epoch {e} committed partially at {:?}, not when {} was proposed",
                        r.time_committed, s.time_created
                    )
                });
            }
        }
        if committing_or_committed(r.state) {
            base = Some(e);
        }
    }
}

/// The coordinator committed the base, and avoids the coordinators of the
/// attempts aborted since the base: all of them if that leaves a candidate,
/// else only the most recent one (docs/protocol.md section 5.4, step 6).
/// The preference for sleds in service needs the ledger the record was
/// proposed on, so [`check_transition`] checks it.
pub(super) fn coordinator(l: &LedgerImage, e: Epoch, r: &RecordImage, out: &mut Findings) {
    let base = r.last_committed_epoch.and_then(|b| l.configs.get(&b).map(|rec| (b, rec)));
    let committed_in_base = |m: &BaseboardId| match base {
        None => true,
        Some((_, b)) => b.members.get(m).is_some_and(|d| d.state == MemberState::Committed),
    };
    if !r.members.contains_key(&r.coordinator) {
        return; // reported as COORDINATOR_IS_MEMBER
    }
    if let Some((b, _)) = base {
        if !committed_in_base(&r.coordinator) {
            out.add(
                COORDINATOR_COMMITTED_LAST,
                format!("coordinator {} of {e} did not commit {b}", r.coordinator),
            );
            return;
        }
    }
    let chosen = &r.coordinator;
    let ok = allowed(l, e, r).contains(&chosen);
    out.require(ok, COORDINATOR_CHOICE, || {
        let since = r.last_committed_epoch;
        format!("epoch {e}: coordinator {chosen} chosen although it failed since {since:?}")
    });
}

/// The sleds that the failed-coordinator rule leaves for the record `r` of
/// epoch `e`: the members that committed the base (all members without
/// one), minus the coordinators of the attempts aborted since the base if
/// that leaves anyone, else minus the most recent of them, else all.
fn allowed<'a>(l: &LedgerImage, e: Epoch, r: &'a RecordImage) -> Vec<&'a BaseboardId> {
    let base = r.last_committed_epoch.and_then(|b| l.configs.get(&b));
    let candidates: Vec<&BaseboardId> = r
        .members
        .keys()
        .filter(|m| {
            base.is_none_or(|b| {
                b.members.get(*m).is_some_and(|d| d.state == MemberState::Committed)
            })
        })
        .collect();
    let since = r.last_committed_epoch.unwrap_or(Epoch(0));
    let failed: Vec<&BaseboardId> = l
        .configs
        .range(..e)
        .rev()
        .take_while(|(x, _)| **x > since)
        .filter(|(_, x)| x.state == ConfigState::Aborted)
        .map(|(_, x)| &x.coordinator)
        .collect();
    let avoid_all: Vec<&BaseboardId> =
        candidates.iter().copied().filter(|c| !failed.contains(c)).collect();
    if !avoid_all.is_empty() {
        return avoid_all;
    }
    let avoid_last: Vec<&BaseboardId> =
        candidates.iter().copied().filter(|c| failed.first() != Some(c)).collect();
    if !avoid_last.is_empty() {
        return avoid_last;
    }
    candidates
}

/// Each record that appears from `old` to `new` has a coordinator in
/// service in `old` (the ledger it was proposed on) whenever some sled the
/// failed-coordinator rule allowed was in service (docs/protocol.md
/// section 5.4, step 6). Which sleds the proposing replica believed
/// reachable is in its memory, not in the ledger, so only the preference
/// for sleds in service is checked here.
fn coordinator_in_service(old: &LedgerImage, new: &LedgerImage, out: &mut Findings) {
    let first_new = old.latest().map_or(Epoch(1), |e| Epoch(e.0.saturating_add(1)));
    for (e, r) in new.configs.range(first_new..) {
        let allowed = allowed(new, *e, r);
        let any_in_service = allowed.iter().any(|c| old.active.contains(*c));
        out.require(
            !any_in_service || old.active.contains(&r.coordinator),
            COORDINATOR_CHOICE,
            || {
                format!(
                    "epoch {e}: coordinator {} was not in service, although {:?} were allowed",
                    r.coordinator,
                    allowed.iter().filter(|c| old.active.contains(**c)).collect::<Vec<_>>()
                )
            },
        );
    }
}

/// Attempt 1 for an operator's change; attempt a > 1 only right after
/// attempt a - 1 of the same members was aborted for a retryable reason;
/// never more than the maximum.
pub(super) fn retries(
    l: &LedgerImage,
    e: Epoch,
    r: &RecordImage,
    policy: &OraclePolicy,
    out: &mut Findings,
) {
    out.require((1..=policy.max_attempts).contains(&r.attempt), RETRIES, || {
        format!("epoch {e} is attempt {} of at most {}", r.attempt, policy.max_attempts)
    });
    if r.attempt <= 1 {
        return;
    }
    let previous = e.0.checked_sub(1).and_then(|p| l.configs.get(&Epoch(p)));
    let ok = previous.is_some_and(|p| {
        p.state == ConfigState::Aborted
            && p.abort_reason.as_ref().is_some_and(|reason| reason.get("operator").is_none())
            && p.attempt.checked_add(1) == Some(r.attempt)
            && p.members.keys().eq(r.members.keys())
    });
    out.require(ok, RETRIES, || {
        format!("epoch {e} is attempt {} but does not retry an abort of its members", r.attempt)
    });
}

/// Every activation record belongs to a newcomer's recorded commit; a sled
/// awaiting activation is out of service and an activated one in service;
/// every newcomer that committed has a record; the first members are in
/// service unless awaiting activation (docs/protocol.md section 5.5).
pub(super) fn activations(l: &LedgerImage, out: &mut Findings) {
    for (sled, a) in &l.activations {
        let rec = l.configs.get(&a.epoch);
        let tied = rec.is_some_and(|r| {
            r.last_committed_epoch.is_some()
                && r.members.get(sled).is_some_and(|d| {
                    d.state == MemberState::Committed && d.time_committed == Some(a.time_committed)
                })
        });
        out.require(tied, ACTIVATIONS, || {
            format!("{sled}'s activation for {} matches no recorded commit as a newcomer", a.epoch)
        });
        let in_service = l.active.contains(sled);
        let ok = match a.time_activated {
            None => !in_service,
            Some(t) => in_service && t >= a.time_committed,
        };
        out.require(ok, ACTIVATIONS, || {
            format!("{sled}: activation {:?} but in service {in_service}", a.time_activated)
        });
    }
    for (e, r) in &l.configs {
        if !committing_or_committed(r.state) {
            continue;
        }
        let base = r.last_committed_epoch.and_then(|b| l.configs.get(&b));
        for (m, d) in &r.members {
            let ok = match base {
                Some(b) => {
                    d.state != MemberState::Committed
                        || b.members.contains_key(m)
                        || l.activations.contains_key(m)
                }
                None => {
                    l.active.contains(m)
                        || l.activations.get(m).is_some_and(|a| a.time_activated.is_none())
                }
            };
            out.require(ok, ACTIVATIONS, || {
                format!("{m} of epoch {e} is neither in service nor awaiting activation")
            });
        }
    }
}

/// What may change from the stored ledger `old` to the next one, `new`.
pub(crate) fn check_transition(old: &LedgerImage, new: &LedgerImage) -> Vec<Finding> {
    let mut out = Findings::default();
    let changed = old != new;
    out.require(!changed || new.generation > old.generation, FORWARD_ONLY, || {
        format!("changed at generation {} -> {}", old.generation, new.generation)
    });
    out.require(old.rack_id.is_none() || old.rack_id == new.rack_id, FORWARD_ONLY, || {
        format!("rack id {:?} became {:?}", old.rack_id, new.rack_id)
    });
    for (e, o) in &old.configs {
        match new.configs.get(e) {
            None => out.add(FORWARD_ONLY, format!("epoch {e} disappeared")),
            Some(n) => record_moves_forward(*e, o, n, &mut out),
        }
    }
    coordinator_in_service(old, new, &mut out);
    for (sled, o) in &old.activations {
        let ok = new.activations.get(sled).is_some_and(|n| {
            let same_commit = n.epoch == o.epoch && n.time_committed == o.time_committed;
            match o.time_activated {
                None => same_commit && n.time_activated.is_none_or(|t| t >= o.time_committed),
                Some(_) => n == o || n.epoch > o.epoch,
            }
        });
        out.require(ok, FORWARD_ONLY, || {
            format!("{sled}'s activation {o:?} became {:?}", new.activations.get(sled))
        });
    }
    out.0
}

/// Whether a value once recorded (`old`) is still recorded unchanged.
fn kept<T: PartialEq>(old: &Option<T>, new: &Option<T>) -> bool {
    old.is_none() || old == new
}

/// One record: its state moves forward, what it fixed at creation never
/// changes, recorded facts stay, and a terminal record never changes.
fn record_moves_forward(e: Epoch, o: &RecordImage, n: &RecordImage, out: &mut Findings) {
    use ConfigState::{Aborted, Committed, CommittedPartially, Committing, Preparing};
    let moved = o.state == n.state
        || matches!(
            (o.state, n.state),
            (Preparing, Committing | Aborted) | (Committing, Committed | CommittedPartially)
        );
    out.require(moved, FORWARD_ONLY, || format!("epoch {e} went {} -> {}", o.state, n.state));
    let fixed = o.last_committed_epoch == n.last_committed_epoch
        && o.threshold == n.threshold
        && o.commit_crash_tolerance == n.commit_crash_tolerance
        && o.coordinator == n.coordinator
        && o.attempt == n.attempt
        && o.time_created == n.time_created
        && o.members.keys().eq(n.members.keys());
    out.require(fixed, FORWARD_ONLY, || format!("epoch {e}: what its proposal fixed changed"));
    let record_kept = kept(&o.encrypted_rack_secrets, &n.encrypted_rack_secrets)
        && kept(&o.time_reconfigure_sent, &n.time_reconfigure_sent)
        && kept(&o.time_committing, &n.time_committing);
    out.require(record_kept, FORWARD_ONLY, || format!("epoch {e}: a recorded fact changed"));
    for (m, od) in &o.members {
        let ok = n.members.get(m).is_some_and(|nd| {
            nd.state >= od.state
                && kept(&od.share_digest, &nd.share_digest)
                && kept(&od.time_prepared, &nd.time_prepared)
                && kept(&od.time_committed, &nd.time_committed)
        });
        out.require(ok, FORWARD_ONLY, || format!("epoch {e}: member {m} went back or changed"));
    }
    let terminal = matches!(o.state, Committed | CommittedPartially | Aborted);
    out.require(!terminal || o == n, FORWARD_ONLY, || {
        format!("epoch {e} changed after reaching {}", o.state)
    });
}
