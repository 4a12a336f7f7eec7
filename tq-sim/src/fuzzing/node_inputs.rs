//! `node_inputs`: one node fed arbitrary method calls and peer messages,
//! real, altered and garbage.

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::{
    AuthoritySignature, BaseboardId, CommitCertificate, CommitRequest, CommitStatus, ConfigDigest,
    Configuration, Envelope, Epoch, PeerMsg, PeerMsgKind, PrepareAndCommitRequest, RackId,
    ReconfigureMsg, Share, Threshold,
};
use trust_quorum::PersistentState;
use trust_quorum::crypto::authority::Authority;
use trust_quorum::harness::{self, Stepped};

use crate::fuzzing::scenario::{Scenario, rack, scenario};
use crate::world::{retention, sled_id};

/// One input to the node under test.
#[derive(Debug, Arbitrary)]
enum NodeInput {
    /// Deliver a message the scenario sent, from its real sender.
    Replay {
        index: u16,
    },
    /// Deliver a message the scenario sent, altered.
    Mutated {
        index: u16,
        mutation: Mutation,
    },
    /// Deliver a message with arbitrary bytes as its encoding.
    Raw {
        from: u8,
        bytes: Vec<u8>,
    },
    Connect {
        peer: u8,
    },
    Disconnect {
        peer: u8,
    },
    /// A request signed by the authority, or (`forged`) by another key.
    Reconfigure {
        epoch: u8,
        last: Option<u8>,
        members: u8,
        threshold: u8,
        coordinator: u8,
        forged: bool,
    },
    /// A commit with the certificate of the node's stored configuration
    /// of `epoch` (or of nothing), signed by the authority or forged.
    Commit {
        epoch: u8,
        other_rack: bool,
        forged: bool,
    },
    /// A scenario configuration, maybe altered, certified by the authority
    /// or forged.
    PrepareAndCommit {
        config: u8,
        mutation: Option<Mutation>,
        forged: bool,
    },
    LoadSecret {
        epoch: u8,
    },
    ClearSecrets,
    Restart,
}

/// How a message or configuration is altered.
#[derive(Debug, Arbitrary)]
enum Mutation {
    Epoch(u8),
    RackId,
    Sender(u8),
    ShareByte { index: u8, xor: u8 },
    TruncateShare(u8),
    Digest(u8),
    Threshold(u8),
    DropMember(u8),
}

fn mutate_config(config: &mut Configuration, m: &Mutation) {
    match m {
        Mutation::Epoch(e) => config.epoch = Epoch(u64::from(*e)),
        Mutation::RackId => config.rack_id = RackId(uuid::Uuid::from_u128(7)),
        Mutation::Digest(i) => {
            let n = config.members.len().max(1);
            if let Some(d) = config.members.values_mut().nth(usize::from(*i) % n) {
                d.0[0] ^= 1;
            }
        }
        Mutation::Threshold(t) => config.threshold = Threshold(*t),
        Mutation::DropMember(i) => {
            let n = config.members.len().max(1);
            if let Some(k) = config.members.keys().nth(usize::from(*i) % n).cloned() {
                config.members.remove(&k);
            }
        }
        Mutation::Sender(_) | Mutation::ShareByte { .. } | Mutation::TruncateShare(_) => {}
    }
}

fn mutate_share(share: &Share, m: &Mutation) -> Share {
    let mut bytes = share.as_bytes().to_vec();
    match m {
        Mutation::ShareByte { index, xor } => {
            let n = bytes.len().max(1);
            if let Some(b) = bytes.get_mut(usize::from(*index) % n) {
                *b ^= xor | 1;
            }
        }
        Mutation::TruncateShare(len) => bytes.truncate(usize::from(*len) % 40),
        _ => {}
    }
    Share::new(bytes)
}

fn mutate(e: &Envelope, m: &Mutation) -> (BaseboardId, PeerMsg) {
    let mut from = e.from.clone();
    let mut msg = e.msg.clone();
    match m {
        Mutation::Sender(i) => from = sled_id(usize::from(*i % 8)),
        Mutation::RackId => msg.rack_id = RackId(uuid::Uuid::from_u128(7)),
        _ => {}
    }
    msg.kind = match msg.kind {
        PeerMsgKind::Prepare { mut config, share } => {
            mutate_config(&mut config, m);
            PeerMsgKind::Prepare { config, share: mutate_share(&share, m) }
        }
        PeerMsgKind::Share { epoch, share } => {
            let epoch = if let Mutation::Epoch(x) = m { Epoch(u64::from(*x)) } else { epoch };
            PeerMsgKind::Share { epoch, share: mutate_share(&share, m) }
        }
        PeerMsgKind::CommitAdvance(mut committed) => {
            mutate_config(&mut committed.config, m);
            PeerMsgKind::CommitAdvance(committed)
        }
        PeerMsgKind::Expunged(mut committed) => {
            mutate_config(&mut committed.config, m);
            PeerMsgKind::Expunged(committed)
        }
        PeerMsgKind::PrepareAck(e) | PeerMsgKind::GetShare(e) => {
            let e = if let Mutation::Epoch(x) = m { Epoch(u64::from(*x)) } else { e };
            match msg.kind {
                PeerMsgKind::PrepareAck(_) => PeerMsgKind::PrepareAck(e),
                _ => PeerMsgKind::GetShare(e),
            }
        }
    };
    (from, msg)
}

/// docs/protocol.md's rules for how a node's durable state may change: configs
/// and shares never replaced, and removed only once superseded (section
/// 2.4); the latest commit never moves back, commits are only of prepared
/// epochs; `expunged` cleared only by a later configuration that lists `me`
/// (a re-add) and never changed otherwise; the state stays within the
/// retention bound.
fn check_transition(me: &BaseboardId, before: &PersistentState, after: &PersistentState) {
    let superseded = |e: Epoch| retention::superseded(after, e);
    for (e, c) in before.configs() {
        match after.config(*e) {
            Some(kept) => assert_eq!(kept, c, "stored config {e} replaced"),
            None => assert!(superseded(*e), "stored config {e} removed before superseded"),
        }
    }
    for e in before.share_epochs() {
        match after.share(e) {
            Some(kept) => assert!(Some(kept) == before.share(e), "stored share {e} replaced"),
            None => assert!(superseded(e), "stored share {e} removed before superseded"),
        }
    }
    assert!(
        before.latest_committed_epoch() <= after.latest_committed_epoch(),
        "the latest commit moved back"
    );
    assert!(after.configs().len() <= 3 && after.commits().len() <= 1, "state over its bound");
    for e in after.commits() {
        assert!(after.is_prepared(*e), "committed {e} without config and share");
    }
    if let Some(ex) = before.expunged().filter(|_| after.expunged() != before.expunged()) {
        assert!(after.expunged().is_none(), "expunged changed");
        let readmitted = after.configs().iter().any(|(e, c)| *e > ex.epoch && c.is_member(me));
        assert!(readmitted, "expunged cleared without a later configuration listing the node");
    }
}

/// `node_inputs`: an arbitrary sequence of method calls and peer messages
/// (real, altered and garbage) on a node that starts blank or from a real
/// checkpoint: no panic, and the durable state changes only as allowed.
pub fn node_inputs(data: &[u8]) {
    let s = scenario();
    let mut u = Unstructured::new(data);
    let start = u.choose_index(s.checkpoints.len().saturating_add(1)).unwrap_or(0);
    let (me, state) = match s.checkpoints.get(start) {
        Some((id, state)) => (id.clone(), state.clone()),
        None => (sled_id(0), PersistentState::new(s.authority.public_key())),
    };
    let seed = u.arbitrary::<u64>().unwrap_or(0);
    let mut sled = harness::Sled::with_disk(me.clone(), state);
    sled.start(ChaCha20Rng::seed_from_u64(seed));
    let mut steps = 0;
    while let Ok(input) = u.arbitrary::<NodeInput>() {
        steps += 1;
        if steps > 64 {
            break;
        }
        let before = sled.disk().clone();
        let sent = apply_node_input(s, &mut sled, input, seed);
        check_transition(&me, &before, sled.disk());
        for e in sent {
            assert_eq!(e.from, me, "envelope from another sender");
            if sled.disk().expunged().is_some() && before.expunged().is_some() {
                panic!("an expunged node sent {}", e.msg.kind.name());
            }
        }
    }
}

/// Applies one input through the embedder step; returns what it released.
fn apply_node_input(
    s: &Scenario,
    sled: &mut harness::Sled,
    input: NodeInput,
    seed: u64,
) -> Vec<Envelope> {
    let n_sent = s.sent.len().max(1);
    match input {
        NodeInput::Replay { index } => match s.sent.get(usize::from(index) % n_sent) {
            Some(e) => {
                released(sled.call(|node, ctx| node.handle(ctx, e.from.clone(), e.msg.clone())))
            }
            None => Vec::new(),
        },
        NodeInput::Mutated { index, mutation } => match s.sent.get(usize::from(index) % n_sent) {
            Some(e) => {
                let (from, msg) = mutate(e, &mutation);
                released(sled.call(|node, ctx| node.handle(ctx, from, msg)))
            }
            None => Vec::new(),
        },
        NodeInput::Raw { from, bytes } => match PeerMsg::decode(&bytes) {
            Ok(msg) => released(
                sled.call(|node, ctx| node.handle(ctx, sled_id(usize::from(from % 8)), msg)),
            ),
            Err(_) => Vec::new(),
        },
        NodeInput::Connect { peer } => {
            released(sled.call(|node, ctx| node.on_connect(ctx, sled_id(usize::from(peer % 8)))))
        }
        NodeInput::Disconnect { peer } => released(
            sled.call(|node, ctx| node.on_disconnect(ctx, &sled_id(usize::from(peer % 8)))),
        ),
        NodeInput::Reconfigure { epoch, last, members, threshold, coordinator, forged } => {
            let members: BTreeSet<BaseboardId> =
                (0..8).filter(|i| members & (1 << i) != 0).map(sled_id).collect();
            let msg = ReconfigureMsg {
                rack_id: rack(),
                epoch: Epoch(u64::from(epoch)),
                last_committed_epoch: last.map(|l| Epoch(u64::from(l))),
                members,
                threshold: Threshold(threshold),
                coordinator: sled_id(usize::from(coordinator % 8)),
            };
            let Ok(msg) = signer(s, forged).sign_reconfigure(msg) else { return Vec::new() };
            released(sled.request(|node, ctx| node.coordinate_reconfiguration(ctx, msg)))
        }
        NodeInput::Commit { epoch, other_rack, forged } => {
            let rack_id = if other_rack { RackId(uuid::Uuid::from_u128(7)) } else { rack() };
            let epoch_ = Epoch(u64::from(epoch));
            let certificate = match sled.disk().config(epoch_) {
                Some(config) => signer(s, forged).certify(config).ok(),
                None => None,
            }
            .unwrap_or(CommitCertificate {
                rack_id,
                epoch: epoch_,
                config_digest: ConfigDigest([0; 32]),
                signature: AuthoritySignature([0; 64]),
            });
            let req = CommitRequest { rack_id, epoch: epoch_, certificate };
            let stepped = sled.request(|node, ctx| node.commit_configuration(ctx, req));
            if stepped.as_ref().is_some_and(|st| st.value == Ok(CommitStatus::Committed)) {
                let e = Epoch(u64::from(epoch));
                assert!(retention::committed_at_or_after(sled.disk(), e));
            }
            released(stepped)
        }
        NodeInput::PrepareAndCommit { config, mutation, forged } => {
            let n = s.configs.len().max(1);
            match s.configs.get(usize::from(config) % n) {
                Some(c) => {
                    let mut c = c.clone();
                    if let Some(m) = &mutation {
                        mutate_config(&mut c, m);
                    }
                    let epoch = c.epoch;
                    let Ok(certificate) = signer(s, forged).certify(&c) else { return Vec::new() };
                    let req = PrepareAndCommitRequest { config: c, certificate };
                    let stepped = sled.request(|node, ctx| node.prepare_and_commit(ctx, req));
                    if stepped.as_ref().is_some_and(|st| st.value == Ok(CommitStatus::Committed)) {
                        assert!(retention::committed_at_or_after(sled.disk(), epoch));
                    }
                    released(stepped)
                }
                None => Vec::new(),
            }
        }
        NodeInput::LoadSecret { epoch } => {
            released(sled.call(|node, ctx| node.load_rack_secret(ctx, Epoch(u64::from(epoch)))))
        }
        NodeInput::ClearSecrets => released(sled.call(|node, _| node.clear_secrets())),
        NodeInput::Restart => {
            sled.crash();
            sled.start(ChaCha20Rng::seed_from_u64(seed.wrapping_add(1)));
            Vec::new()
        }
    }
}

/// The scenario's authority, or (`forged`) a key nobody trusts.
fn signer(s: &Scenario, forged: bool) -> &Authority {
    static FORGER: std::sync::OnceLock<Authority> = std::sync::OnceLock::new();
    if forged {
        FORGER.get_or_init(|| Authority::generate(&mut ChaCha20Rng::seed_from_u64(0xbad)))
    } else {
        &s.authority
    }
}

/// The envelopes a step released (none if the sled was down).
fn released<T>(stepped: Option<Stepped<T>>) -> Vec<Envelope> {
    stepped.map(|st| st.envelopes).unwrap_or_default()
}
