//! Node operations on a 32-member rack, each from the input to the last
//! message it causes: coordinating a reconfiguration, handling a prepare,
//! computing a missed share, loading the rack secret. Each routine returns
//! the node and its context so that criterion drops them outside the timing.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tq_benches::{committed_rack, connected_node, deliver, rack, request, sled, step};
use tq_types::{BaseboardId, Epoch, PeerMsg, PeerMsgKind, PrepareAndCommitRequest};

const N: usize = 32;
const K: usize = N / 2 + 1;

fn share_msg(epoch: Epoch, share: tq_types::Share) -> PeerMsg {
    PeerMsg { rack_id: rack(), kind: PeerMsgKind::Share { epoch, share } }
}

fn node_operations(c: &mut Criterion) {
    let mut r = committed_rack(N);
    let members: BTreeSet<BaseboardId> = (0..N).map(sled).collect();
    let coordinator = sled(0);
    let coordinator_state = r.state(&coordinator);
    // K - 1 old shares from other members complete the collection.
    let old_shares: Vec<(BaseboardId, PeerMsg)> =
        (1..K).map(|i| (sled(i), share_msg(Epoch(1), r.share(&sled(i), Epoch(1))))).collect();

    // A coordinator, from the request to the last prepare sent.
    c.bench_function("node/coordinate_32", |b| {
        b.iter_batched(
            || {
                let (node, ctx) = connected_node(&coordinator, &coordinator_state, N);
                (node, ctx, old_shares.clone())
            },
            |(mut node, mut ctx, inputs)| {
                let request = request(2, Some(1), &members);
                let (started, get_shares) =
                    step(&mut node, &mut ctx, |n, c| n.coordinate_reconfiguration(c, request));
                started.unwrap();
                assert_eq!(get_shares.len(), N - 1); // to every old member
                let prepares = deliver(&mut node, &mut ctx, inputs);
                assert_eq!(prepares.len(), N - 1); // to every new member
                (node, ctx, prepares)
            },
            BatchSize::PerIteration,
        )
    });

    // Run epoch 2 for real to capture a prepare and epoch 2's shares.
    let member = sled(1);
    let member_state_before = r.state(&member);
    let sent_before = r.sent.len();
    r.commit(&coordinator, request(2, Some(1), &members));
    let prepare = r
        .sent
        .get(sent_before..)
        .unwrap()
        .iter()
        .find(|e| e.to == sled(1) && matches!(e.msg.kind, PeerMsgKind::Prepare { .. }))
        .unwrap()
        .clone();
    c.bench_function("node/handle_prepare_32", |b| {
        b.iter_batched(
            || {
                let (node, ctx) = connected_node(&member, &member_state_before, N);
                (node, ctx, prepare.msg.clone())
            },
            |(mut node, mut ctx, msg)| {
                node.handle(&mut ctx, prepare.from.clone(), msg);
                assert!(ctx.take_persistent_state_changed());
                let ack = ctx.drain_envelopes().unwrap();
                assert!(matches!(ack.as_slice(), [e] if matches!(e.msg.kind, PeerMsgKind::PrepareAck(_))));
                (node, ctx, ack)
            },
            BatchSize::PerIteration,
        )
    });

    // A member that missed the prepare computes its share from K others.
    let config2 = r.state(&coordinator).config(Epoch(2)).unwrap().clone();
    let new_shares: Vec<(BaseboardId, PeerMsg)> =
        (2..2 + K).map(|i| (sled(i), share_msg(Epoch(2), r.share(&sled(i), Epoch(2))))).collect();
    c.bench_function("node/compute_missed_share_32", |b| {
        b.iter_batched(
            || {
                let (node, ctx) = connected_node(&member, &member_state_before, N);
                let req = PrepareAndCommitRequest { config: config2.clone() };
                (node, ctx, req, new_shares.clone())
            },
            |(mut node, mut ctx, req, inputs)| {
                let (status, get_shares) =
                    step(&mut node, &mut ctx, |n, c| n.prepare_and_commit(c, req));
                status.unwrap();
                assert_eq!(get_shares.len(), N - 1);
                deliver(&mut node, &mut ctx, inputs);
                assert!(ctx.persistent_state().commits().contains(&Epoch(2)));
                assert!(ctx.persistent_state().share(Epoch(2)).is_some());
                (node, ctx, get_shares)
            },
            BatchSize::PerIteration,
        )
    });

    // A rack-secret load: own share plus K - 1 others, then opening the
    // sealed epoch-1 secret.
    let loader_state = r.state(&member);
    let load_shares: Vec<(BaseboardId, PeerMsg)> =
        (2..1 + K).map(|i| (sled(i), share_msg(Epoch(2), r.share(&sled(i), Epoch(2))))).collect();
    c.bench_function("node/load_rack_secret_32", |b| {
        b.iter_batched(
            || {
                let (node, ctx) = connected_node(&member, &loader_state, N);
                (node, ctx, load_shares.clone())
            },
            |(mut node, mut ctx, inputs)| {
                let (pending, get_shares) =
                    step(&mut node, &mut ctx, |n, c| n.load_rack_secret(c, Epoch(2)));
                assert!(pending.unwrap().is_none());
                assert_eq!(get_shares.len(), N - 1);
                deliver(&mut node, &mut ctx, inputs);
                let secret = node.load_rack_secret(&mut ctx, Epoch(2)).unwrap().unwrap();
                (node, ctx, secret)
            },
            BatchSize::PerIteration,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = node_operations
}
criterion_main!(benches);
