//! Properties of the persistent state's encoding: every valid state round
//! trips byte for byte, and mutated encodings are refused with a typed error
//! or decode to a valid, canonical state, never panicking. Each case is
//! built from a proptest-generated seed, so a failure is reproduced by it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use test_strategy::proptest;
use tq_types::{
    BaseboardId, Configuration, EncryptedRackSecrets, Epoch, ExpungedMetadata, RackId,
    ReconfigureMsg, Salt, Threshold,
};
use trust_quorum::PersistentState;
use trust_quorum::crypto::authority::Authority;
use trust_quorum::crypto::{self, RackSecret};
use trust_quorum::node::{PERSISTENT_CHECKSUM_LEN, PersistentStateParts};

fn id(i: u64) -> BaseboardId {
    format!("PPP-PPPPPPP:{i:011}").parse().unwrap()
}

fn below(rng: &mut ChaCha20Rng, n: u64) -> u64 {
    rng.next_u64() % n
}

/// A valid state of node `id(0)` drawn from `epochs` configurations of 3
/// to 8 members each (of which it keeps at most three) (shares split from fresh secrets), some shares, some
/// commits, sealed data of valid lengths, and maybe an expunged marker.
/// One authority, drawn from the seed, signs every configuration's request
/// and certifies every committed epoch (and some uncommitted ones, as a node
/// that learned of a commit holds).
fn valid_parts(seed: u64, epochs: usize) -> (BaseboardId, PersistentStateParts) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let me = id(0);
    let authority = Authority::generate(&mut rng);
    let rack_id = RackId(uuid::Uuid::from_u128(u128::from(rng.next_u64())));
    let mut parts = PersistentStateParts {
        authority: authority.public_key(),
        configs: BTreeMap::new(),
        shares: BTreeMap::new(),
        commits: BTreeSet::new(),
        certificates: BTreeMap::new(),
        expunged: None,
    };
    let mut epoch = 0;
    for _ in 0..epochs {
        let previous = epoch;
        epoch += 1 + below(&mut rng, 3);
        let n = 3 + below(&mut rng, 6) as usize;
        let mut members = BTreeSet::from([me.clone()]);
        while members.len() < n {
            members.insert(id(1 + below(&mut rng, 15)));
        }
        let k = 2 + below(&mut rng, n as u64 - 2) as u8;
        let secret = RackSecret::generate(&mut rng);
        let shares = crypto::split(&secret, Threshold(k), n, &mut rng).unwrap();
        let encrypted_rack_secrets = (previous > 0 && below(&mut rng, 2) == 0).then(|| {
            let mut salt = [0; 32];
            rng.fill_bytes(&mut salt);
            let mut data = vec![0; crypto::TAG_LEN + crypto::RECORD_LEN * (1 + epoch as usize)];
            rng.fill_bytes(&mut data);
            EncryptedRackSecrets { salt: Salt(salt), data }
        });
        let coordinator = members.iter().nth(below(&mut rng, n as u64) as usize).unwrap().clone();
        let request = ReconfigureMsg {
            rack_id,
            epoch: Epoch(epoch),
            last_committed_epoch: encrypted_rack_secrets.as_ref().map(|_| Epoch(previous)),
            members: members.clone(),
            threshold: Threshold(k),
            coordinator: coordinator.clone(),
        };
        let digests: BTreeMap<BaseboardId, _> =
            members.iter().cloned().zip(shares.iter().map(crypto::share_digest)).collect();
        let config = Configuration {
            rack_id,
            epoch: Epoch(epoch),
            coordinator,
            members: digests,
            threshold: Threshold(k),
            encrypted_rack_secrets,
            reconfigure: Box::new(authority.sign_reconfigure(request).unwrap()),
        };
        let certificate = authority.certify(&config).unwrap();
        let mine = members.iter().position(|m| *m == me).unwrap();
        if below(&mut rng, 4) != 0 {
            parts.shares.insert(Epoch(epoch), shares[mine].clone());
            if below(&mut rng, 2) == 0 {
                parts.commits.insert(Epoch(epoch));
                parts.certificates.insert(Epoch(epoch), certificate);
            }
        }
        if !parts.certificates.contains_key(&Epoch(epoch)) && below(&mut rng, 4) == 0 {
            parts.certificates.insert(Epoch(epoch), certificate);
        }
        parts.configs.insert(Epoch(epoch), config);
    }
    // Keep only what a node keeps (docs/protocol.md section 2.4): the newest
    // commit, the newest configuration, and the epoch that one builds on if
    // it is newer than the commit.
    let committed = parts.commits.last().copied();
    let newest =
        parts.configs.last_key_value().map(|(e, c)| (*e, c.reconfigure.msg.last_committed_epoch));
    let keep = |e: &Epoch| {
        let base = newest.and_then(|(_, b)| b).filter(|b| committed.is_none_or(|c| *b > c));
        Some(*e) == committed || Some(*e) == newest.map(|(n, _)| n) || Some(*e) == base
    };
    parts.configs.retain(|e, _| keep(e));
    parts.shares.retain(|e, _| keep(e));
    parts.commits.retain(|e| keep(e));
    parts.certificates.retain(|e, _| keep(e));
    if epochs > 0 && below(&mut rng, 4) == 0 {
        let from = id(1 + below(&mut rng, 15));
        let at = Epoch(epoch + below(&mut rng, 3));
        // The certificate of the (unstored) configuration that removed it.
        let newest = parts.configs.values().next_back().unwrap().clone();
        let certificate = authority.certify(&Configuration { epoch: at, ..newest }).unwrap();
        parts.expunged = Some(ExpungedMetadata { epoch: at, from, certificate });
    }
    (me, parts)
}

/// decode(encode(s)) == s and encode(decode(b)) == b for valid states, and
/// the serde form validates the same way.
#[proptest(cases = 256)]
fn valid_states_round_trip(seed: u64, #[strategy(0usize..7)] epochs: usize) {
    let (me, parts) = valid_parts(seed, epochs);
    let state = PersistentState::try_from(parts.clone()).unwrap();
    prop_assert_eq!(state.validate(&me), Ok(()));
    prop_assert_eq!(&state.to_parts(), &parts);
    let bytes = state.encode().unwrap();
    let decoded = PersistentState::decode(&bytes).unwrap();
    prop_assert_eq!(&decoded, &state);
    prop_assert_eq!(decoded.encode().unwrap(), bytes);
    let json = serde_json::to_string(&state).unwrap();
    let back: PersistentState = serde_json::from_str(&json).unwrap();
    prop_assert_eq!(back, state);
}

/// Mutated bodies (behind a recomputed checksum, to reach the rules) are
/// refused or decode to valid states that re-encode to the same bytes, with
/// every commit prepared and certified.
#[proptest(cases = 512)]
fn mutated_encodings_are_refused_or_valid(
    seed: u64,
    #[strategy(1usize..5)] epochs: usize,
    #[strategy(proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4))] edits: Vec<(
        usize,
        u8,
    )>,
    truncate: Option<usize>,
) {
    let (_, parts) = valid_parts(seed, epochs);
    let bytes = PersistentState::try_from(parts).unwrap().encode().unwrap();
    let mut body = bytes[1 + PERSISTENT_CHECKSUM_LEN..].to_vec();
    for (at, value) in edits {
        let len = body.len();
        body[at % len] = value;
    }
    if let Some(keep) = truncate {
        body.truncate(keep % (body.len() + 1));
    }
    let framed = PersistentState::frame_unchecked(&body);
    if let Ok(state) = PersistentState::decode(&framed) {
        prop_assert_eq!(state.encode().unwrap(), framed);
        for epoch in state.commits() {
            prop_assert!(state.is_prepared(*epoch));
            prop_assert!(state.certificate(*epoch).is_some());
        }
    }
}

/// Raw bytes never get past the checksum unless they are an encoding.
#[proptest(cases = 256)]
fn arbitrary_bytes_are_refused(bytes: Vec<u8>) {
    prop_assert!(PersistentState::decode(&bytes).is_err());
}
