//! The cryptography's cost: split, combine, interpolation, digests, sealing
//! and opening prior secrets, key derivation.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_benches::rack;
use tq_types::{Epoch, Threshold};
use trust_quorum::crypto::{self, RackSecret};

const SIZES: [(usize, u8); 4] = [(3, 2), (8, 5), (16, 9), (32, 17)];

fn shamir(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let secret = RackSecret::generate(&mut rng);
    let mut g = c.benchmark_group("shamir");
    for (n, k) in SIZES {
        let id = format!("n{n}_k{k}");
        g.bench_function(BenchmarkId::new("split", &id), |b| {
            b.iter(|| crypto::split(black_box(&secret), Threshold(k), n, &mut rng).unwrap())
        });
        let shares = crypto::split(&secret, Threshold(k), n, &mut rng).unwrap();
        let some = shares.get(..usize::from(k)).unwrap();
        g.bench_function(BenchmarkId::new("combine", &id), |b| {
            b.iter(|| crypto::combine(black_box(some)).unwrap())
        });
        let others = shares.get(1..=usize::from(k)).unwrap();
        g.bench_function(BenchmarkId::new("interpolate", &id), |b| {
            b.iter(|| crypto::interpolate(black_box(others), 1).unwrap())
        });
    }
    g.finish();
}

fn digests_and_keys(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let secret = RackSecret::generate(&mut rng);
    let share = crypto::split(&secret, Threshold(2), 3, &mut rng).unwrap().remove(0);
    c.bench_function("share_digest", |b| b.iter(|| crypto::share_digest(black_box(&share))));
    // Key derivation is internal to sealing: sealing nothing is a key
    // derivation plus an AEAD over an empty plaintext.
    let none = BTreeMap::new();
    c.bench_function("derive_key_and_seal_nothing", |b| {
        b.iter(|| crypto::seal(black_box(&none), rack(), Epoch(2), &secret, &mut rng).unwrap())
    });
}

fn sealing(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let secret = RackSecret::generate(&mut rng);
    let mut g = c.benchmark_group("prior_secrets");
    for priors in [1u64, 10, 100] {
        let prior: BTreeMap<Epoch, RackSecret> =
            (1..=priors).map(|e| (Epoch(e), RackSecret::generate(&mut rng))).collect();
        let epoch = Epoch(priors).next().unwrap();
        g.bench_function(BenchmarkId::new("seal", priors), |b| {
            b.iter(|| crypto::seal(black_box(&prior), rack(), epoch, &secret, &mut rng).unwrap())
        });
        let sealed = crypto::seal(&prior, rack(), epoch, &secret, &mut rng).unwrap();
        g.bench_function(BenchmarkId::new("open", priors), |b| {
            b.iter(|| crypto::open(black_box(&sealed), rack(), epoch, &secret).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, shamir, digests_and_keys, sealing);
criterion_main!(benches);
