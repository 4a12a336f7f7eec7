//! Fixtures for the benchmarks: a small rack of real nodes driven through
//! the embedder step (`trust_quorum::harness`), from which benchmarks take
//! durable states and the messages a node under measurement receives.
#![forbid(unsafe_code)]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark fixtures run fixed, known-good scenarios"
)]

use std::collections::BTreeSet;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::{
    BaseboardId, CommitRequest, Envelope, Epoch, PeerMsg, RackId, ReconfigureMsg, Share,
    SignedReconfigure, Threshold,
};
use trust_quorum::PersistentState;
use trust_quorum::crypto::authority::Authority;
use trust_quorum::harness::{Rack, Sled};

/// The id of the i-th sled.
pub fn sled(i: usize) -> BaseboardId {
    format!("PPP-PPPPPPP:{i:011}").parse().expect("valid id")
}

/// The rack of every fixture.
pub fn rack() -> RackId {
    RackId(uuid::Uuid::from_u128(0xbe7c))
}

/// K for `n` members.
pub fn threshold(n: usize) -> Threshold {
    Threshold(u8::try_from((n / 2).saturating_add(1)).expect("n <= 32"))
}

/// The control plane's authority of every fixture.
pub fn authority() -> &'static Authority {
    static AUTHORITY: std::sync::OnceLock<Authority> = std::sync::OnceLock::new();
    AUTHORITY.get_or_init(|| Authority::generate(&mut ChaCha20Rng::seed_from_u64(0xa7)))
}

/// A reconfiguration request for `coordinator`, signed by [`authority`].
pub fn request(
    epoch: u64,
    last: Option<u64>,
    members: &BTreeSet<BaseboardId>,
    coordinator: &BaseboardId,
) -> SignedReconfigure {
    let msg = ReconfigureMsg {
        rack_id: rack(),
        epoch: Epoch(epoch),
        last_committed_epoch: last.map(Epoch),
        members: members.clone(),
        threshold: threshold(members.len()),
        coordinator: coordinator.clone(),
    };
    authority().sign_reconfigure(msg).expect("signs")
}

/// A sled restarted over `state`, connected to sleds `0..n` except itself,
/// with nothing queued: the starting point of every node benchmark. Its
/// "disk" is in memory, so a step's durable write is a copy of the state.
pub fn connected_node(id: &BaseboardId, state: &PersistentState, n: usize) -> Sled {
    let mut sled = Sled::with_disk(id.clone(), state.clone());
    sled.start(ChaCha20Rng::seed_from_u64(99));
    for i in 0..n {
        let _connected = sled.call(|node, ctx| node.on_connect(ctx, self::sled(i)));
    }
    sled
}

/// Delivers `inputs` one by one, each through the embedder step; returns
/// everything sent.
pub fn deliver(sled: &mut Sled, inputs: Vec<(BaseboardId, PeerMsg)>) -> Vec<Envelope> {
    let mut sent = Vec::new();
    for (from, msg) in inputs {
        if let Some(stepped) = sled.call(|node, ctx| node.handle(ctx, from, msg)) {
            sent.extend(stepped.envelopes);
        }
    }
    sent
}

/// Coordinates and commits a configuration everywhere.
pub fn commit(rack: &mut Rack, coordinator: &BaseboardId, msg: SignedReconfigure) {
    let epoch = msg.msg.epoch;
    let members = msg.msg.members.clone();
    let started = rack.request(coordinator, |node, ctx| node.coordinate_reconfiguration(ctx, msg));
    started.expect("up").expect("valid");
    rack.deliver_all().expect("drains");
    let config = rack.state(coordinator).config(epoch).expect("prepared");
    let certificate = authority().certify(config).expect("certifies");
    for m in &members {
        let req = CommitRequest { rack_id: self::rack(), epoch, certificate };
        let answer = rack.request(m, |node, ctx| node.commit_configuration(ctx, req));
        answer.expect("up").expect("prepared");
    }
    rack.deliver_all().expect("drains");
}

/// The share `who` holds for `epoch`.
pub fn share(rack: &Rack, who: &BaseboardId, epoch: Epoch) -> Share {
    rack.state(who).share(epoch).expect("held").clone()
}

/// A rack of `n` sleds with epoch 1 committed on all of them.
pub fn committed_rack(n: usize) -> Rack {
    let mut rack = Rack::new((0..n).map(sled), authority().public_key(), 0);
    let members: BTreeSet<BaseboardId> = (0..n).map(sled).collect();
    commit(&mut rack, &sled(0), request(1, None, &members, &sled(0)));
    rack
}
