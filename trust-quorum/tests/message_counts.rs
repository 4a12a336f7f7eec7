//! A fault-free reconfiguration costs exactly one GetShare and one Share per
//! other old member and one Prepare and one PrepareAck per other new member:
//! each peer asked once, each answering once, no resends.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

mod support;

use support::{Cluster, id, ids};
use tq_types::PeerMsgKind;

fn counts(c: &Cluster, from: usize) -> [usize; 4] {
    let mut n = [0; 4];
    for e in &c.sent()[from..] {
        let i = match e.msg.kind {
            PeerMsgKind::GetShare(_) => 0,
            PeerMsgKind::Share { .. } => 1,
            PeerMsgKind::Prepare { .. } => 2,
            PeerMsgKind::PrepareAck(_) => 3,
            PeerMsgKind::CommitAdvance(_) | PeerMsgKind::Expunged(_) => {
                panic!("unexpected {}", e.msg.kind.name())
            }
        };
        n[i] += 1;
    }
    n
}

#[test]
fn reconfiguration_sends_each_message_once() {
    // (old members, new members): the coordinator, sled 0, is in both; the
    // new membership drops the highest old sleds and adds fresh ones.
    for (n_old, n_new) in [(3, 5), (5, 3), (8, 8), (4, 9), (16, 32), (32, 16)] {
        let total = n_old.max(n_new) + n_new;
        let mut c = Cluster::new(total, n_old as u64);
        c.reconfigure_and_commit(&id(0), 1, None, &ids(0..n_old));
        // Keep ceil(n_new / 2) old members (the coordinator among them).
        let keep = n_new.div_ceil(2).min(n_old);
        let fresh = n_new - keep;
        let new_members = ids((0..keep).chain(n_old..n_old + fresh));
        assert_eq!(new_members.len(), n_new);
        let before = c.sent().len();
        c.reconfigure(&id(0), 2, Some(1), &new_members);
        c.deliver_all();
        assert_eq!(c.acks(&id(0), 2).len(), n_new, "({n_old}, {n_new}) fully acked");
        assert_eq!(
            counts(&c, before),
            [n_old - 1, n_old - 1, n_new - 1, n_new - 1],
            "({n_old}, {n_new}): GetShare, Share, Prepare, PrepareAck"
        );
    }
}

#[test]
fn initial_configuration_sends_only_prepares_and_acks() {
    for n in [3, 8, 32] {
        let mut c = Cluster::new(n, 1);
        let before = c.sent().len();
        c.reconfigure(&id(0), 1, None, &ids(0..n));
        c.deliver_all();
        assert_eq!(counts(&c, before), [0, 0, n - 1, n - 1]);
    }
}
