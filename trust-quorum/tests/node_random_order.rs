//! Property: an initial configuration and one reconfiguration of a 5-node
//! cluster commit everywhere and agree on one secret, whatever the delivery
//! order and whichever nodes restart (in-memory state dropped, persisted
//! state kept) along the way.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

mod support;

use std::collections::BTreeSet;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use support::{Cluster, commit_request, id, ids, prepare_and_commit_request};
use test_strategy::proptest;
use tq_types::{BaseboardId, CommitStatus, Epoch};

/// Delivers one random queued message. With probability `restart_pct`
/// percent it first crashes and restarts a random sled, and with the same
/// probability it loses the message instead of delivering it.
fn chaotic_step(c: &mut Cluster, rng: &mut ChaCha20Rng, restart_pct: u64) {
    if rng.next_u64() % 100 < restart_pct {
        let victim = id((rng.next_u64() % c.rack.sleds().len() as u64) as usize);
        c.crash(&victim);
        c.restart(&victim);
    }
    if !c.net().is_empty() {
        let i = (rng.next_u64() % c.net().len() as u64) as usize;
        if rng.next_u64() % 100 < restart_pct {
            c.net().remove(i);
        } else {
            c.deliver_at(i);
        }
    }
}

/// Every member reconnects to every other, which makes each resend what its
/// coordinator, key-share computer and secret loader still need.
fn flap(c: &mut Cluster, members: &BTreeSet<BaseboardId>) {
    for a in members {
        for b in members {
            if a != b {
                c.call(a, |n, ctx| n.on_connect(ctx, b.clone()));
            }
        }
    }
}

/// Drives one membership change like the control plane: retries at the next
/// epoch when the coordinator restarts before K+1 acks, then commits and
/// prepare-and-commits until every member is committed. Returns the
/// committed epoch.
fn change(
    c: &mut Cluster,
    rng: &mut ChaCha20Rng,
    restart_pct: u64,
    mut epoch: u64,
    last: Option<u64>,
    members: &BTreeSet<BaseboardId>,
) -> u64 {
    let candidates: Vec<BaseboardId> = match last {
        None => members.iter().cloned().collect(),
        Some(l) => {
            members.iter().filter(|m| c.state(m).commits().contains(&Epoch(l))).cloned().collect()
        }
    };
    let needed = members.len() / 2 + 2; // K + Z with Z = 1
    let (coordinator, config) = 'attempt: loop {
        let coordinator = candidates[(rng.next_u64() % candidates.len() as u64) as usize].clone();
        c.reconfigure(&coordinator, epoch, last, members);
        for _ in 0..10_000 {
            match c.coordinator_status(&coordinator) {
                None => break, // restarted: abort and retry at the next epoch
                Some(s) if s.acked_prepares.len() >= needed => {
                    break 'attempt (coordinator, s.config);
                }
                Some(_) => {}
            }
            if c.net().is_empty() {
                flap(c, members);
            }
            chaotic_step(c, rng, restart_pct);
        }
        epoch += 1;
        assert!(epoch < 200, "never prepared");
    };
    let _ = coordinator;
    let mut committed = BTreeSet::new();
    for round in 0.. {
        assert!(round < 10_000, "commit never completed");
        for m in members {
            if committed.contains(m) {
                continue;
            }
            let status = if c.state(m).is_prepared(config.epoch) {
                let req = commit_request(&config);
                c.request(m, |n, ctx| n.commit_configuration(ctx, req)).ok()
            } else {
                let req = prepare_and_commit_request(&config);
                c.request(m, |n, ctx| n.prepare_and_commit(ctx, req)).ok()
            };
            if status == Some(CommitStatus::Committed) {
                committed.insert(m.clone());
            }
        }
        if committed.len() == members.len() {
            break;
        }
        for _ in 0..20 {
            chaotic_step(c, rng, restart_pct);
        }
        if c.net().is_empty() {
            // Connections flap: every node resends what it still needs.
            flap(c, members);
        }
    }
    config.epoch.0
}

#[proptest(cases = 256)]
fn random_order_and_restarts_still_commit_and_agree(
    seed: u64,
    #[strategy(0u64..30)] restart_pct: u64,
) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut c = Cluster::new(6, seed);
    let first = ids(0..5);
    let e1 = change(&mut c, &mut rng, restart_pct, 1, None, &first);
    let second = ids(1..6);
    let e2 = change(&mut c, &mut rng, restart_pct, e1 + 1, Some(e1), &second);

    // Quiesce: everything delivered, nobody restarting.
    c.deliver_all();
    for m in &second {
        assert_eq!(c.state(m).latest_committed_epoch(), Some(Epoch(e2)), "{m}");
    }
    let secret = c.load_secret(&id(1), e2);
    for m in &second {
        assert_eq!(c.load_secret(m, e2), secret, "{m} loads the same secret");
        assert_eq!(c.load_secret(m, e1), c.load_secret(&id(1), e1), "prior secret agrees");
    }
    assert!(c.alarms().is_empty(), "alarms: {:?}", c.alarms());
}
