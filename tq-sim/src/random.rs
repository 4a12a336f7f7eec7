//! Deterministic randomness: independent seeds for named streams, and
//! uniform-enough draws from them.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use trust_quorum::crypto::authority::Authority;

/// Derives an independent seed for a named stream.
pub(crate) fn subseed(seed: u64, stream: &str, index: u64) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(stream.as_bytes());
    h.update(&index.to_le_bytes());
    let out = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(out.as_bytes().get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(b)
}

/// A uniform-enough index below `n` (0 when `n` is 0).
pub(crate) fn below<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    let n = u64::try_from(n).unwrap_or(u64::MAX);
    usize::try_from(rng.next_u64().checked_rem(n).unwrap_or(0)).unwrap_or(0)
}

/// A random element of `v`.
pub(crate) fn pick<R: Rng + ?Sized, T: Clone>(rng: &mut R, v: &[T]) -> Option<T> {
    v.get(below(rng, v.len())).cloned()
}

/// The control plane's authority of the run seeded `seed`: every replica
/// signs with it, and every sled trusts its public key.
pub(crate) fn authority(seed: u64) -> Authority {
    Authority::generate(&mut ChaCha20Rng::seed_from_u64(subseed(seed, "authority", 0)))
}
