//! Node operations on a 32-member rack, each from the input to the last
//! message it causes: coordinating a reconfiguration, handling a prepare,
//! computing a missed share, loading the rack secret. Each goes through the
//! embedder step, whose durable write is a copy of the state in memory.
//! Each routine returns the sled so that criterion drops it outside the
//! timing.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tq_benches::{commit, committed_rack, connected_node, deliver, rack, request, share, sled};
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
    let coordinator_state = r.state(&coordinator).clone();
    // K - 1 old shares from other members complete the collection.
    let old_shares: Vec<(BaseboardId, PeerMsg)> =
        (1..K).map(|i| (sled(i), share_msg(Epoch(1), share(&r, &sled(i), Epoch(1))))).collect();

    // A coordinator, from the request to the last prepare sent.
    c.bench_function("node/coordinate_32", |b| {
        b.iter_batched(
            || {
                let request = request(2, Some(1), &members, &coordinator);
                (connected_node(&coordinator, &coordinator_state, N), old_shares.clone(), request)
            },
            |(mut sled, inputs, request)| {
                let started =
                    sled.request(|n, c| n.coordinate_reconfiguration(c, request)).unwrap();
                started.value.unwrap();
                assert_eq!(started.envelopes.len(), N - 1); // to every old member
                let prepares = deliver(&mut sled, inputs);
                assert_eq!(prepares.len(), N - 1); // to every new member
                (sled, prepares)
            },
            BatchSize::PerIteration,
        )
    });

    // Run epoch 2 for real to capture a prepare and epoch 2's shares.
    let member = sled(1);
    let member_state_before = r.state(&member).clone();
    let sent_before = r.sent().len();
    commit(&mut r, &coordinator, request(2, Some(1), &members, &coordinator));
    let prepare = r
        .sent()
        .get(sent_before..)
        .unwrap()
        .iter()
        .find(|e| e.to == sled(1) && matches!(e.msg.kind, PeerMsgKind::Prepare { .. }))
        .unwrap()
        .clone();
    c.bench_function("node/handle_prepare_32", |b| {
        b.iter_batched(
            || (connected_node(&member, &member_state_before, N), prepare.msg.clone()),
            |(mut sled, msg)| {
                let handled = sled.call(|n, c| n.handle(c, prepare.from.clone(), msg)).unwrap();
                assert!(handled.replaced.is_some(), "the prepare is written");
                let ack = handled.envelopes;
                assert!(matches!(ack.as_slice(), [e] if matches!(e.msg.kind, PeerMsgKind::PrepareAck(_))));
                (sled, ack)
            },
            BatchSize::PerIteration,
        )
    });

    // A member that missed the prepare computes its share from K others.
    let config2 = r.state(&coordinator).config(Epoch(2)).unwrap().clone();
    let certificate = tq_benches::authority().certify(&config2).unwrap();
    let new_shares: Vec<(BaseboardId, PeerMsg)> =
        (2..2 + K).map(|i| (sled(i), share_msg(Epoch(2), share(&r, &sled(i), Epoch(2))))).collect();
    c.bench_function("node/compute_missed_share_32", |b| {
        b.iter_batched(
            || {
                let sled = connected_node(&member, &member_state_before, N);
                let req = PrepareAndCommitRequest { config: config2.clone(), certificate };
                (sled, req, new_shares.clone())
            },
            |(mut sled, req, inputs)| {
                let started = sled.request(|n, c| n.prepare_and_commit(c, req)).unwrap();
                started.value.unwrap();
                assert_eq!(started.envelopes.len(), N - 1);
                deliver(&mut sled, inputs);
                assert!(sled.disk().commits().contains(&Epoch(2)));
                assert!(sled.disk().share(Epoch(2)).is_some());
                (sled, started.envelopes)
            },
            BatchSize::PerIteration,
        )
    });

    // A rack-secret load: own share plus K - 1 others, then opening the
    // sealed epoch-1 secret.
    let loader_state = r.state(&member).clone();
    let load_shares: Vec<(BaseboardId, PeerMsg)> =
        (2..1 + K).map(|i| (sled(i), share_msg(Epoch(2), share(&r, &sled(i), Epoch(2))))).collect();
    c.bench_function("node/load_rack_secret_32", |b| {
        b.iter_batched(
            || (connected_node(&member, &loader_state, N), load_shares.clone()),
            |(mut sled, inputs)| {
                let pending = sled.call(|n, c| n.load_rack_secret(c, Epoch(2))).unwrap();
                assert!(pending.value.unwrap().is_none());
                assert_eq!(pending.envelopes.len(), N - 1);
                deliver(&mut sled, inputs);
                let loaded = sled.call(|n, c| n.load_rack_secret(c, Epoch(2))).unwrap();
                let secret = loaded.value.unwrap().unwrap();
                (sled, secret)
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
