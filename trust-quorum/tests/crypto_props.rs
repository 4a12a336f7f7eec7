//! Property tests of the protocol's cryptography (docs/protocol.md section 8):
//! Shamir split/combine, recomputing a missed share by
//! interpolation, the threshold, share digests, sealing of prior rack
//! secrets and its tamper detection, and determinism under a seeded rng.
//!
//! Every case draws all of its cryptographic randomness (secrets, share
//! polynomials, salts, subset choices) from a `ChaCha20Rng` seeded with a
//! proptest-generated `u64`, so a failing case is reproduced by its seed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::btree_set;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use test_strategy::proptest;
use tq_types::{EncryptedRackSecrets, Epoch, RackId, Salt, Share, Threshold};
use trust_quorum::crypto::{
    CryptoError, RECORD_LEN, RackSecret, SECRET_LEN, SHARE_LEN, TAG_LEN, combine, interpolate,
    open, seal, share_digest, share_matches, share_x, split,
};

/// The protocol's membership range: 3..=32 members.
const MIN_N: usize = 3;
const MAX_N: usize = 32;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Every (N, K) the protocol allows: N in 3..=32, K in 2..=N-1.
fn all_pairs() -> impl Iterator<Item = (usize, u8)> {
    (MIN_N..=MAX_N).flat_map(|n| (2..n).map(move |k| (n, u8::try_from(k).unwrap())))
}

/// A uniformly random number in `0..bound` (`bound > 0`). The modulo bias is
/// below 2^-58 and irrelevant here.
fn below(r: &mut ChaCha20Rng, bound: usize) -> usize {
    usize::try_from(r.next_u64() % u64::try_from(bound).unwrap()).unwrap()
}

/// `m` distinct indices out of `pool`, in random order (partial
/// Fisher-Yates).
fn pick_from(r: &mut ChaCha20Rng, mut pool: Vec<usize>, m: usize) -> Vec<usize> {
    assert!(m <= pool.len());
    for i in 0..m {
        let j = i + below(r, pool.len() - i);
        pool.swap(i, j);
    }
    pool.truncate(m);
    pool
}

/// `m` distinct indices out of `0..n`, in random order.
fn pick(r: &mut ChaCha20Rng, n: usize, m: usize) -> Vec<usize> {
    pick_from(r, (0..n).collect(), m)
}

fn select(shares: &[Share], idx: &[usize]) -> Vec<Share> {
    idx.iter().map(|&i| shares[i].clone()).collect()
}

fn x_of(i: usize) -> u8 {
    u8::try_from(i + 1).unwrap()
}

/// Splits a fresh secret from `r` into `n` shares with threshold `k` and
/// checks the shape of the result.
fn split_fresh(
    r: &mut ChaCha20Rng,
    n: usize,
    k: u8,
) -> Result<(RackSecret, Vec<Share>), TestCaseError> {
    let secret = RackSecret::generate(r);
    prop_assert_ne!(*secret.expose(), [0u8; SECRET_LEN]);
    let shares = split(&secret, Threshold(k), n, r)
        .map_err(|e| TestCaseError::fail(format!("split(K={k}, N={n}) failed: {e:?}")))?;
    prop_assert_eq!(shares.len(), n);
    for (i, share) in shares.iter().enumerate() {
        prop_assert_eq!(share.as_bytes().len(), SHARE_LEN, "N={} K={} share {}", n, k, i);
        prop_assert_eq!(share_x(share), Some(x_of(i)), "N={} K={} share {}", n, k, i);
    }
    Ok((secret, shares))
}

/// Any K shares (random subset, random order) and any larger subset
/// rebuild the secret.
fn check_round_trip(
    r: &mut ChaCha20Rng,
    k: u8,
    secret: &RackSecret,
    shares: &[Share],
) -> Result<(), TestCaseError> {
    let n = shares.len();
    let k_us = usize::from(k);
    let want = Ok(*secret.expose());

    let subset = pick(r, n, k_us);
    let got = combine(&select(shares, &subset));
    prop_assert_eq!(got.map(|s| *s.expose()), want, "N={} K={} subset {:?}", n, k, subset);
    prop_assert!(combine(&select(shares, &subset)).unwrap() == *secret);

    let m = k_us + 1 + below(r, n - k_us);
    let superset = pick(r, n, m);
    let got = combine(&select(shares, &superset));
    prop_assert_eq!(got.map(|s| *s.expose()), want, "N={} K={} superset {:?}", n, k, superset);
    Ok(())
}

/// For a random missing member i, interpolating K other shares (random
/// choice and order) at x_i gives back exactly the share split produced for
/// i, with the same digest. So does interpolating from all other shares.
fn check_interpolation(r: &mut ChaCha20Rng, k: u8, shares: &[Share]) -> Result<(), TestCaseError> {
    let n = shares.len();
    let missing = below(r, n);
    let others: Vec<usize> = (0..n).filter(|&i| i != missing).collect();

    let chosen = pick_from(r, others.clone(), usize::from(k));
    let got = interpolate(&select(shares, &chosen), x_of(missing))
        .map_err(|e| TestCaseError::fail(format!("interpolate failed: {e:?}")))?;
    prop_assert_eq!(
        got.as_bytes(),
        shares[missing].as_bytes(),
        "N={} K={} missing {} from {:?}",
        n,
        k,
        missing,
        chosen
    );
    prop_assert_eq!(share_digest(&got), share_digest(&shares[missing]));
    prop_assert!(share_matches(&got, &share_digest(&shares[missing])));

    let all_others = pick_from(r, others, n - 1);
    let got = interpolate(&select(shares, &all_others), x_of(missing)).unwrap();
    prop_assert_eq!(got.as_bytes(), shares[missing].as_bytes(), "N={} K={} all others", n, k);
    Ok(())
}

/// K-1 shares do not rebuild the secret (nor recompute a missing share):
/// with K-1 >= 2 they give a wrong value (false only with probability
/// 2^-256), with K-1 < 2 they are an error.
fn check_below_threshold(
    r: &mut ChaCha20Rng,
    k: u8,
    secret: &RackSecret,
    shares: &[Share],
) -> Result<(), TestCaseError> {
    let n = shares.len();
    let few = usize::from(k) - 1;
    let subset = pick(r, n, few);
    let picked = select(shares, &subset);
    match combine(&picked) {
        Ok(got) => {
            prop_assert!(few >= 2, "N={} K={}: combine of {} share(s) succeeded", n, k, few);
            prop_assert_ne!(*got.expose(), *secret.expose(), "N={} K={} {:?}", n, k, subset);
            prop_assert!(got != *secret);
        }
        Err(e) => {
            prop_assert!(few < 2, "N={} K={}: combine of {} shares failed: {:?}", n, k, few, e);
            prop_assert_eq!(e, CryptoError::TooFewShares(few));
        }
    }
    // A member outside the subset cannot recompute its share from K-1 shares.
    let outside = (0..n).find(|i| !subset.contains(i)).unwrap();
    match interpolate(&picked, x_of(outside)) {
        Ok(got) => {
            prop_assert!(few >= 2);
            prop_assert_ne!(got.as_bytes(), shares[outside].as_bytes(), "N={} K={}", n, k);
        }
        Err(e) => {
            prop_assert!(few < 2);
            prop_assert_eq!(e, CryptoError::TooFewShares(few));
        }
    }
    Ok(())
}

// --- split / combine, interpolation, threshold --------------------------------

/// Every (N, K) pair the protocol allows, in every case: one fresh split per
/// pair, then any K-subset and any superset rebuild the secret, a missed
/// share is recomputed exactly, and K-1 shares do not yield the secret.
#[proptest(cases = 256)]
fn shamir_properties_for_every_n_and_k(#[any] seed: u64) {
    let mut r = rng(seed);
    for (n, k) in all_pairs() {
        let (secret, shares) = split_fresh(&mut r, n, k)?;
        check_round_trip(&mut r, k, &secret, &shares)?;
        check_interpolation(&mut r, k, &shares)?;
        check_below_threshold(&mut r, k, &secret, &shares)?;
    }
}

/// Any K-subset and any superset rebuild the secret, for a shrinkable random
/// (N, K) pair with a fresh rng per case.
#[proptest(cases = 1024)]
fn split_combine_round_trip(
    #[strategy(MIN_N..=MAX_N)] n: usize,
    #[strategy(2..u8::try_from(#n).unwrap())] k: u8,
    #[any] seed: u64,
) {
    let mut r = rng(seed);
    let (secret, shares) = split_fresh(&mut r, n, k)?;
    check_round_trip(&mut r, k, &secret, &shares)?;
}

/// Interpolating K other shares at a missing member's x gives its share.
#[proptest(cases = 1024)]
fn interpolated_share_equals_split_share(
    #[strategy(MIN_N..=MAX_N)] n: usize,
    #[strategy(2..u8::try_from(#n).unwrap())] k: u8,
    #[any] seed: u64,
) {
    let mut r = rng(seed);
    let (_, shares) = split_fresh(&mut r, n, k)?;
    check_interpolation(&mut r, k, &shares)?;
}

/// K-1 shares give a wrong secret (K-1 >= 2) or an error (K-1 < 2).
#[proptest(cases = 1024)]
fn fewer_than_k_shares_do_not_yield_the_secret(
    #[strategy(MIN_N..=MAX_N)] n: usize,
    #[strategy(2..u8::try_from(#n).unwrap())] k: u8,
    #[any] seed: u64,
) {
    let mut r = rng(seed);
    let (secret, shares) = split_fresh(&mut r, n, k)?;
    check_below_threshold(&mut r, k, &secret, &shares)?;
}

/// K >= N, K < 2 and more than 255 shares are rejected with `InvalidSplit`;
/// in particular K == N, which the protocol's K < N rule forbids.
#[proptest(cases = 256)]
fn split_rejects_invalid_thresholds(
    #[strategy(MIN_N..=MAX_N)] n: usize,
    #[strategy(prop_oneof![
        Just(u8::try_from(#n).unwrap()),
        0u8..2,
        u8::try_from(#n).unwrap()..=u8::MAX,
    ])]
    k: u8,
    #[any] seed: u64,
) {
    let mut r = rng(seed);
    let secret = RackSecret::generate(&mut r);
    prop_assert_eq!(
        split(&secret, Threshold(k), n, &mut r),
        Err(CryptoError::InvalidSplit { threshold: k, shares: n })
    );
    let n_eq = u8::try_from(n).unwrap();
    prop_assert_eq!(
        split(&secret, Threshold(n_eq), n, &mut r),
        Err(CryptoError::InvalidSplit { threshold: n_eq, shares: n })
    );
    prop_assert_eq!(
        split(&secret, Threshold(2), 256, &mut r),
        Err(CryptoError::InvalidSplit { threshold: 2, shares: 256 })
    );
}

#[proptest(cases = 256)]
fn interpolate_rejects_x_zero(#[any] seed: u64) {
    let mut r = rng(seed);
    let (_, shares) = split_fresh(&mut r, 5, 3)?;
    prop_assert_eq!(interpolate(&shares, 0), Err(CryptoError::InterpolateAtZero));
}

// --- share digests -----------------------------------------------------------

/// A share matches its own digest, and no longer matches after any single
/// bit flip of the share or of the digest, or after truncation.
#[proptest(cases = 256)]
fn share_digest_detects_any_bit_flip(
    #[strategy(MIN_N..=MAX_N)] n: usize,
    #[strategy(2..u8::try_from(#n).unwrap())] k: u8,
    #[any] seed: u64,
) {
    let mut r = rng(seed);
    let (_, shares) = split_fresh(&mut r, n, k)?;
    let share = &shares[below(&mut r, n)];
    let digest = share_digest(share);
    prop_assert!(share_matches(share, &digest));
    prop_assert_eq!(digest.0, *blake3::hash(share.as_bytes()).as_bytes());
    prop_assert_eq!(share_digest(&share.clone()), digest);

    for bit in 0..SHARE_LEN * 8 {
        let mut bytes = share.as_bytes().to_vec();
        bytes[bit / 8] ^= 1 << (bit % 8);
        let flipped = Share::new(bytes);
        prop_assert!(!share_matches(&flipped, &digest), "share bit {} flipped still matches", bit);
    }
    for bit in 0..256 {
        let mut wrong = digest;
        wrong.0[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(!share_matches(share, &wrong), "digest bit {} flipped still matches", bit);
    }
    let truncated = Share::new(share.as_bytes()[..SHARE_LEN - 1].to_vec());
    prop_assert!(!share_matches(&truncated, &digest));
    // Another member's share does not match.
    let other = &shares[(usize::from(share_x(share).unwrap())) % n];
    prop_assert!(!share_matches(other, &digest));
}

// --- sealing prior secrets ---------------------------------------------------

/// Random prior secrets for `epochs`, from `r`.
fn priors(r: &mut ChaCha20Rng, epochs: &BTreeSet<u64>) -> BTreeMap<Epoch, RackSecret> {
    epochs.iter().map(|&e| (Epoch(e), RackSecret::generate(r))).collect()
}

fn assert_open_fails(
    sealed: &EncryptedRackSecrets,
    rack: RackId,
    epoch: Epoch,
    secret: &RackSecret,
    what: &str,
) -> Result<(), TestCaseError> {
    match open(sealed, rack, epoch, secret) {
        Err(CryptoError::Decryption) => Ok(()),
        Ok(got) => Err(TestCaseError::fail(format!("{what}: opened to {} records", got.len()))),
        Err(e) => Err(TestCaseError::fail(format!("{what}: {e:?}, expected Decryption"))),
    }
}

#[proptest(cases = 256)]
fn seal_open_round_trip(
    #[any] seed: u64,
    #[strategy(btree_set(any::<u64>(), 0..=20))] epochs: BTreeSet<u64>,
    #[any] rack: u128,
    #[any] epoch: u64,
) {
    let mut r = rng(seed);
    let rack = RackId(uuid::Uuid::from_u128(rack));
    let epoch = Epoch(epoch);
    let prior = priors(&mut r, &epochs);
    let secret = RackSecret::generate(&mut r);
    let sealed = seal(&prior, rack, epoch, &secret, &mut r).unwrap();
    prop_assert_eq!(sealed.data.len(), prior.len() * RECORD_LEN + TAG_LEN);

    let opened = open(&sealed, rack, epoch, &secret).unwrap();
    prop_assert_eq!(opened.keys().collect::<Vec<_>>(), prior.keys().collect::<Vec<_>>());
    for ((e, got), want) in opened.iter().zip(prior.values()) {
        prop_assert_eq!(got.expose(), want.expose(), "secret of {:?}", e);
    }
    prop_assert!(opened == prior);
    // Opening is repeatable and does not depend on any rng.
    prop_assert!(open(&sealed, rack, epoch, &secret).unwrap() == prior);
}

/// Any single flipped bit in the ciphertext, the salt, the epoch or the rack
/// id used to open, a wrong secret, a truncated or extended ciphertext: all
/// give `Decryption`. Every bit position is tried.
#[proptest(cases = 256)]
fn sealed_secrets_detect_any_tampering(
    #[any] seed: u64,
    #[strategy(btree_set(any::<u64>(), 0..=20))] epochs: BTreeSet<u64>,
    #[any] rack: u128,
    #[any] epoch: u64,
) {
    let mut r = rng(seed);
    let rack_id = RackId(uuid::Uuid::from_u128(rack));
    let ep = Epoch(epoch);
    let prior = priors(&mut r, &epochs);
    let secret = RackSecret::generate(&mut r);
    let sealed = seal(&prior, rack_id, ep, &secret, &mut r).unwrap();
    prop_assert!(open(&sealed, rack_id, ep, &secret).unwrap() == prior);

    for bit in 0..sealed.data.len() * 8 {
        let mut t = sealed.clone();
        t.data[bit / 8] ^= 1 << (bit % 8);
        assert_open_fails(&t, rack_id, ep, &secret, &format!("data bit {bit}"))?;
    }
    for bit in 0..256 {
        let mut salt = sealed.salt.0;
        salt[bit / 8] ^= 1 << (bit % 8);
        let t = EncryptedRackSecrets { salt: Salt(salt), data: sealed.data.clone() };
        assert_open_fails(&t, rack_id, ep, &secret, &format!("salt bit {bit}"))?;
    }
    for bit in 0..64 {
        let wrong = Epoch(epoch ^ (1 << bit));
        assert_open_fails(&sealed, rack_id, wrong, &secret, &format!("epoch bit {bit}"))?;
    }
    for bit in 0..128 {
        let wrong = RackId(uuid::Uuid::from_u128(rack ^ (1 << bit)));
        assert_open_fails(&sealed, wrong, ep, &secret, &format!("rack id bit {bit}"))?;
    }
    let wrong_secret = RackSecret::generate(&mut r);
    prop_assert!(wrong_secret != secret);
    assert_open_fails(&sealed, rack_id, ep, &wrong_secret, "wrong secret")?;
    // A prior secret is not the key either.
    if let Some(old) = prior.values().next() {
        assert_open_fails(&sealed, rack_id, ep, old, "prior secret as key")?;
    }
    for len in 0..sealed.data.len() {
        let t = EncryptedRackSecrets { salt: sealed.salt, data: sealed.data[..len].to_vec() };
        assert_open_fails(&t, rack_id, ep, &secret, &format!("truncated to {len}"))?;
    }
    let mut extended = sealed.clone();
    extended.data.push(r.next_u64().to_le_bytes()[0]);
    assert_open_fails(&extended, rack_id, ep, &secret, "extended by one byte")?;
}

// --- determinism ---------------------------------------------------------------

/// Everything one seed produces: the secret, its shares, and the sealed
/// prior secrets.
fn pipeline(
    seed: u64,
    n: usize,
    k: u8,
    epochs: &BTreeSet<u64>,
) -> ([u8; SECRET_LEN], Vec<Vec<u8>>, EncryptedRackSecrets) {
    let mut r = rng(seed);
    let secret = RackSecret::generate(&mut r);
    let shares = split(&secret, Threshold(k), n, &mut r).unwrap();
    let prior = priors(&mut r, epochs);
    let rack = RackId(uuid::Uuid::from_u128(u128::from(seed)));
    let sealed = seal(&prior, rack, Epoch(u64::MAX), &secret, &mut r).unwrap();
    (*secret.expose(), shares.iter().map(|s| s.as_bytes().to_vec()).collect(), sealed)
}

#[proptest(cases = 256)]
fn same_seed_gives_identical_bytes(
    #[strategy(MIN_N..=MAX_N)] n: usize,
    #[strategy(2..u8::try_from(#n).unwrap())] k: u8,
    #[strategy(btree_set(any::<u64>(), 0..=5))] epochs: BTreeSet<u64>,
    #[any] seed: u64,
) {
    let (s1, shares1, sealed1) = pipeline(seed, n, k, &epochs);
    let (s2, shares2, sealed2) = pipeline(seed, n, k, &epochs);
    prop_assert_eq!(s1, s2);
    prop_assert_eq!(shares1, shares2);
    prop_assert_eq!(sealed1.salt.0, sealed2.salt.0);
    prop_assert_eq!(sealed1.data, sealed2.data);
}

#[proptest(cases = 256)]
fn different_seeds_give_different_secrets(#[any] a: u64, #[any] b: u64) {
    prop_assume!(a != b);
    let sa = RackSecret::generate(&mut rng(a));
    let sb = RackSecret::generate(&mut rng(b));
    prop_assert_ne!(sa.expose(), sb.expose());
    prop_assert!(sa != sb);
    let (_, shares_a, sealed_a) = pipeline(a, 5, 3, &BTreeSet::from([1]));
    let (_, shares_b, sealed_b) = pipeline(b, 5, 3, &BTreeSet::from([1]));
    prop_assert_ne!(shares_a, shares_b);
    prop_assert_ne!(sealed_a.salt.0, sealed_b.salt.0);
}
