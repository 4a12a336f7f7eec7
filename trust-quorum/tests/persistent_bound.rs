//! A node's durable state stays bounded (docs/protocol.md section 2.4):
//! 10,000 epochs of a 32-member rack go through one node, one in ten an
//! attempt that never commits, and apart from the sealed secrets its state
//! never grows past [`RETAINED_STATE_BOUND`]. The secret of the very first
//! epoch still loads at the end, from the newest configuration's sealed
//! secrets.
//!
//! The test plays the control plane and the coordinator (sled 1) with the
//! library's own crypto; the node under test is sled 0.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    missing_docs
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use support::{authority_key, commit_request, id, rack, reconfigure_msg, sign};
use tq_types::{
    BaseboardId, CommitStatus, Configuration, Envelope, Epoch, PeerMsg, PeerMsgKind, Share,
    Threshold,
};
use trust_quorum::crypto::{self, RackSecret};
use trust_quorum::node::Write;
use trust_quorum::{Node, NodeCtx, PersistentState};

/// Epochs driven through the node.
const EPOCHS: u64 = 10_000;
/// Members of every configuration: the protocol's largest membership.
const MEMBERS: usize = 32;
/// The threshold of a 32-member configuration, a majority.
const K: u8 = 17;
/// The largest encoded state, minus the sealed secrets of its
/// configurations, that a node of a 32-member rack with this test's 23-byte
/// ids may hold: at most two configurations here (the newest commit and an
/// attempt on top of it) with their signed requests, two shares and one
/// certificate. Measured at 5,842 bytes at most, the same in the first and
/// the last thousand epochs; a third configuration (a base not yet
/// committed here) would add about 2.9 KiB.
const RETAINED_STATE_BOUND: usize = 9 * 1024;

/// The node under test and the world around it.
struct Rack {
    node: Node,
    ctx: NodeCtx,
    rng: ChaCha20Rng,
    members: BTreeSet<BaseboardId>,
    /// The secrets of the committed epochs, for sealing.
    committed: BTreeMap<Epoch, RackSecret>,
    /// The shares of the newest committed epoch.
    latest_shares: Vec<Share>,
}

impl Rack {
    fn new() -> Rack {
        let mut ctx = NodeCtx::new(id(0), authority_key(), ChaCha20Rng::seed_from_u64(1));
        let mut node = Node::new(&mut ctx);
        let members: BTreeSet<_> = (0..MEMBERS).map(id).collect();
        for peer in members.iter().skip(1) {
            node.on_connect(&mut ctx, peer.clone());
        }
        let mut rack = Rack {
            node,
            ctx,
            rng: ChaCha20Rng::seed_from_u64(2),
            members,
            committed: BTreeMap::new(),
            latest_shares: Vec::new(),
        };
        let _ = rack.persist();
        rack
    }

    /// The embedder step: write if needed, then take the envelopes.
    fn persist(&mut self) -> Vec<Envelope> {
        let mut proof = match self.ctx.take_write() {
            Write::Pending(write) => write.written(),
            Write::Nothing(proof) => proof,
        };
        proof.envelopes()
    }

    fn state(&self) -> &PersistentState {
        self.ctx.persistent_state()
    }

    /// The coordinator sends sled 0 its prepare of `epoch`, built on the
    /// newest committed epoch; sled 0 acknowledges.
    fn prepare(&mut self, epoch: u64) -> Attempt {
        let last = self.committed.last_key_value().map(|(e, _)| *e);
        let secret = RackSecret::generate(&mut self.rng);
        let shares = crypto::split(&secret, Threshold(K), MEMBERS, &mut self.rng).unwrap();
        let sealed = last.map(|_| {
            crypto::seal(&self.committed, rack(), Epoch(epoch), &secret, &mut self.rng).unwrap()
        });
        let msg = reconfigure_msg(&id(1), epoch, last.map(|e| e.0), &self.members, K);
        let digests = shares.iter().map(crypto::share_digest);
        let config = Configuration {
            rack_id: rack(),
            epoch: Epoch(epoch),
            coordinator: id(1),
            members: self.members.iter().cloned().zip(digests).collect(),
            threshold: Threshold(K),
            encrypted_rack_secrets: sealed,
            reconfigure: Box::new(sign(msg)),
        };
        let kind = PeerMsgKind::Prepare { config: config.clone(), share: shares[0].clone() };
        self.node.handle(&mut self.ctx, id(1), PeerMsg { rack_id: rack(), kind });
        let sent = self.persist();
        let ack = PeerMsgKind::PrepareAck(Epoch(epoch));
        assert!(sent.iter().any(|e| e.to == id(1) && e.msg.kind == ack), "{epoch} acknowledged");
        Attempt { config, shares, secret }
    }

    /// The control plane commits `attempt` on sled 0.
    fn commit(&mut self, attempt: Attempt) {
        let req = commit_request(&attempt.config);
        let reply = self.node.commit_configuration(&mut self.ctx, req);
        let proof = match self.ctx.take_write() {
            Write::Pending(write) => write.written(),
            Write::Nothing(proof) => proof,
        };
        assert_eq!(reply.release(&proof), Ok(CommitStatus::Committed));
        self.committed.insert(attempt.config.epoch, attempt.secret);
        self.latest_shares = attempt.shares;
    }

    /// The bound's measure: the encoded state minus its sealed secrets.
    fn retained_len(&self) -> usize {
        let state = self.state();
        let sealed: usize = state
            .configs()
            .values()
            .filter_map(|c| c.encrypted_rack_secrets.as_ref())
            .map(|s| s.data.len())
            .sum();
        state.encode().unwrap().len() - sealed
    }
}

/// One configuration the test coordinated.
struct Attempt {
    config: Configuration,
    shares: Vec<Share>,
    secret: RackSecret,
}

#[test]
fn ten_thousand_epochs_of_32_members_stay_under_the_bound() {
    let mut r = Rack::new();
    let (mut early_max, mut late_max) = (0, 0);
    for epoch in 1..=EPOCHS {
        let attempt = r.prepare(epoch);
        if epoch % 10 == 0 {
            // An attempt that never commits: the next epoch, built on the
            // newest commit, supersedes it.
            assert!(r.state().is_prepared(Epoch(epoch)));
        } else {
            r.commit(attempt);
        }
        let parts = r.state().to_parts();
        let counts = (parts.configs.len(), parts.shares.len(), parts.commits.len());
        assert!(counts.0 <= 3 && counts.1 <= 3 && counts.2 <= 1, "epoch {epoch}: {counts:?}");
        assert!(parts.certificates.len() <= 3, "epoch {epoch}");
        let newest_commit = r.committed.last_key_value().map(|(e, _)| *e);
        assert_eq!(r.state().latest_committed_epoch(), newest_commit);
        if epoch % 10 == 1 && epoch > 1 {
            assert_eq!(r.state().config(Epoch(epoch - 1)), None, "attempt {} dropped", epoch - 1);
        }
        if epoch % 100 == 0 || epoch % 100 == 1 {
            let len = r.retained_len();
            assert!(len <= RETAINED_STATE_BOUND, "epoch {epoch}: {len} bytes");
            if epoch <= 1_000 {
                early_max = early_max.max(len);
            } else if epoch > EPOCHS - 1_000 {
                late_max = late_max.max(len);
            }
        }
    }
    // No growth: the last thousand epochs hold no more than the first.
    assert!(late_max <= early_max, "grew from {early_max} to {late_max} bytes");
    // The sealed secrets still carry every committed epoch's secret.
    let latest = r.state().latest_committed_config().unwrap();
    let sealed = latest.encrypted_rack_secrets.as_ref().unwrap().data.len();
    assert_eq!(sealed, crypto::TAG_LEN + crypto::RECORD_LEN * (r.committed.len() - 1));
    let bytes = r.state().encode().unwrap();
    assert_eq!(PersistentState::decode(&bytes).as_ref(), Ok(r.state()));
    let latest_epoch = latest.epoch;
    assert_eq!(r.node.load_rack_secret(&mut r.ctx, Epoch(1)), Ok(None));
    let asked: Vec<Envelope> = r.persist();
    for envelope in asked {
        assert_eq!(envelope.msg.kind, PeerMsgKind::GetShare(latest_epoch));
        let index = r.members.iter().position(|m| *m == envelope.to).unwrap();
        let share = r.latest_shares[index].clone();
        let kind = PeerMsgKind::Share { epoch: latest_epoch, share };
        r.node.handle(&mut r.ctx, envelope.to, PeerMsg { rack_id: rack(), kind });
        let _ = r.persist();
    }
    let first = r.committed[&Epoch(1)].clone();
    assert_eq!(r.node.load_rack_secret(&mut r.ctx, Epoch(1)), Ok(Some(first)));
    let newest = r.committed[&latest_epoch].clone();
    assert_eq!(r.node.load_rack_secret(&mut r.ctx, latest_epoch), Ok(Some(newest)));
    assert!(r.ctx.alarms().is_empty(), "{:?}", r.ctx.alarms());
}
