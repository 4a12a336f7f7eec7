//! Real persisted states for the persistent-state tests, and a small rack of
//! `harness::Sled`s started from chosen disks.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::{Alarm, BaseboardId, CommitStatus, Envelope, Epoch, LoadRackSecretError};
use trust_quorum::harness::Sled;
use trust_quorum::node::Reply;
use trust_quorum::{Node, NodeCtx, PersistentState, RackSecret};

use crate::support::{Cluster, authority_key, commit_request, id, ids, reconfigure_msg, sign};

/// A rack after: epoch 1 (sleds 0-3) committed, epoch 2 (sleds 0-4)
/// committed, epoch 3 (sleds 0, 1, 2, 4) committed, epoch 4 (the same
/// members) prepared but never committed, and sled 3, removed at epoch 3,
/// told so while loading a secret.
///
/// Sled 0 then keeps 2 configurations (epochs 3 and 4, both with sealed
/// secrets), their 2 shares, and 1 commit with its certificate; sled 3 keeps
/// 1 of each (epoch 2) and the expunged marker. Every configuration's request is signed, and every
/// certificate issued, by the test authority (`support::authority`).
pub struct RealRack {
    pub cluster: Cluster,
    /// The secrets of epochs 1 to 3, as sled 1 loads them.
    pub secrets: BTreeMap<u64, RackSecret>,
}

pub fn real_rack() -> RealRack {
    let mut c = Cluster::new(5, 12);
    c.reconfigure_and_commit(&id(0), 1, None, &ids(0..4));
    c.reconfigure_and_commit(&id(1), 2, Some(1), &ids(0..5));
    c.reconfigure_and_commit(&id(2), 3, Some(2), &ids([0, 1, 2, 4]));
    c.reconfigure(&id(0), 4, Some(3), &ids([0, 1, 2, 4]));
    c.deliver_all();
    let pending = c.call(&id(3), |n, ctx| n.load_rack_secret(ctx, Epoch(2)));
    assert_eq!(pending, Ok(None));
    c.deliver_all();
    assert!(c.state(&id(3)).expunged().is_some(), "sled 3 was told it is expunged");
    let secrets = (1..=3).map(|e| (e, c.load_secret(&id(1), e))).collect();
    let s0 = c.state(&id(0));
    assert_eq!(s0.configs().len(), 2);
    assert_eq!(s0.commits().len(), 1);
    assert_eq!(s0.configs().values().filter(|c| c.encrypted_rack_secrets.is_some()).count(), 2);
    assert_eq!(*s0.authority(), authority_key());
    for epoch in s0.commits() {
        assert!(s0.certificate(*epoch).is_some(), "epoch {epoch} committed with its certificate");
    }
    let s3 = c.state(&id(3)).to_parts();
    let counts = (s3.configs.len(), s3.shares.len(), s3.commits.len(), s3.certificates.len());
    assert_eq!(counts, (1, 1, 1, 1));
    RealRack { cluster: c, secrets }
}

/// `haystack`'s offset of the first occurrence of `needle`.
pub fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).expect("bytes not found")
}

/// The offset of sled `me`'s share of `epoch` inside `bytes`, its encoded
/// state (after the share's one-byte length prefix).
pub fn share_offset(state: &PersistentState, bytes: &[u8], epoch: u64) -> usize {
    let share = state.share(Epoch(epoch)).unwrap().as_bytes();
    let mut needle = vec![u8::try_from(share.len()).unwrap()];
    needle.extend_from_slice(share);
    find(bytes, &needle) + 1
}

/// Sleds started from given disks, fully connected, with one FIFO network.
pub struct Net {
    pub sleds: BTreeMap<BaseboardId, Sled>,
    pub queue: Vec<Envelope>,
    pub sent: Vec<Envelope>,
}

impl Net {
    /// Starts a sled on each disk (through `NodeCtx::with_persistent_state`,
    /// which trusts its input), `setup` applied to each context, and
    /// connects every pair.
    pub fn boot(
        disks: BTreeMap<BaseboardId, PersistentState>,
        setup: impl Fn(&BaseboardId, &mut NodeCtx),
    ) -> Net {
        let mut net = Net { sleds: BTreeMap::new(), queue: Vec::new(), sent: Vec::new() };
        for (i, (who, disk)) in disks.into_iter().enumerate() {
            let mut sled = Sled::with_disk(who.clone(), disk);
            sled.start_with(ChaCha20Rng::seed_from_u64(100 + i as u64), |ctx| setup(&who, ctx));
            net.sleds.insert(who, sled);
        }
        let all: Vec<BaseboardId> = net.sleds.keys().cloned().collect();
        for a in &all {
            for b in all.iter().filter(|b| *b != a) {
                net.call(a, |n, ctx| n.on_connect(ctx, b.clone()));
            }
        }
        net
    }

    pub fn call<T>(
        &mut self,
        who: &BaseboardId,
        f: impl FnOnce(&mut Node, &mut NodeCtx) -> T,
    ) -> T {
        let stepped = self.sleds.get_mut(who).unwrap().call(f).unwrap();
        self.sent.extend(stepped.envelopes.iter().cloned());
        self.queue.extend(stepped.envelopes);
        stepped.value
    }

    pub fn request<T>(
        &mut self,
        who: &BaseboardId,
        f: impl FnOnce(&mut Node, &mut NodeCtx) -> Reply<T>,
    ) -> T {
        let stepped = self.sleds.get_mut(who).unwrap().request(f).unwrap();
        self.sent.extend(stepped.envelopes.iter().cloned());
        self.queue.extend(stepped.envelopes);
        stepped.value
    }

    pub fn deliver_all(&mut self) {
        for _ in 0..100_000 {
            if self.queue.is_empty() {
                return;
            }
            let e = self.queue.remove(0);
            let from = e.from.clone();
            self.call(&e.to, |n, ctx| n.handle(ctx, from, e.msg));
        }
        panic!("the network never drained");
    }

    /// Loads the secret of `epoch` on `who`, delivering until it is ready.
    pub fn load(
        &mut self,
        who: &BaseboardId,
        epoch: u64,
    ) -> Result<RackSecret, LoadRackSecretError> {
        for _ in 0..10 {
            match self.call(who, |n, ctx| n.load_rack_secret(ctx, Epoch(epoch))) {
                Ok(Some(secret)) => return Ok(secret),
                Ok(None) => self.deliver_all(),
                Err(e) => return Err(e),
            }
        }
        panic!("load of epoch {epoch} on {who} never completed");
    }

    pub fn alarms(&self, who: &BaseboardId) -> Vec<Alarm> {
        self.sleds[who].live().unwrap().1.alarms().to_vec()
    }

    /// Coordinates `epoch` on `coordinator` for `members` (K = N/2 + 1), the
    /// request signed by the test authority, delivers, and commits it (with
    /// the authority's certificate) on every member that acknowledged.
    pub fn reconfigure_and_commit(
        &mut self,
        coordinator: &BaseboardId,
        epoch: u64,
        last: u64,
        members: &[usize],
    ) {
        let members = ids(members.iter().copied());
        let k = u8::try_from(members.len() / 2 + 1).unwrap();
        let msg = sign(reconfigure_msg(coordinator, epoch, Some(last), &members, k));
        self.request(coordinator, |n, ctx| n.coordinate_reconfiguration(ctx, msg)).unwrap();
        self.deliver_all();
        let status = self.request(coordinator, |n, _| n.coordinator_status()).unwrap();
        assert_eq!(status.acked_prepares, members, "every member acknowledged");
        for m in &members {
            let req = commit_request(&status.config);
            let answer = self.request(m, |n, ctx| n.commit_configuration(ctx, req));
            assert_eq!(answer, Ok(CommitStatus::Committed));
        }
        self.deliver_all();
    }
}
