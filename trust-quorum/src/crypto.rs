//! The protocol's cryptography: rack secrets, Shamir shares over GF(2^8),
//! share digests and sealing of prior rack secrets (docs/protocol.md section 8).
//!
//! Every secret value lives in a zeroizing buffer that is wiped on drop and
//! redacted from `Debug`, and secrets are compared in constant time.
//!
//! # Stability
//!
//! These functions are a public, stable API: the node role is built on
//! them, the benchmarks and property tests call them directly, and an
//! embedder may use them to check shares or sealed secrets it holds. Their
//! outputs (share layout, digest, key derivation, sealed format) are part
//! of the persistent state and the wire format, so they change only with a
//! format version. Protocol limits (3 to 32 members, K from 2 to 31) are
//! enforced by request validation, not here.
//!
//! ```
//! use std::collections::BTreeMap;
//! use rand_core::SeedableRng;
//! use tq_types::{Epoch, RackId, Threshold};
//! use trust_quorum::crypto::{self, RackSecret};
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
//! let rack = RackId(uuid::Uuid::nil());
//!
//! // Epoch 1: a secret split into 5 shares, any 3 of which rebuild it.
//! let first = RackSecret::generate(&mut rng);
//! let shares = crypto::split(&first, Threshold(3), 5, &mut rng).unwrap();
//! assert_eq!(crypto::share_x(&shares[0]), Some(1)); // the first member's x
//! assert_eq!(crypto::combine(&shares[2..]).unwrap(), first);
//!
//! // A member that lost its share recomputes it from 3 others and checks
//! // it against the digest recorded in the configuration.
//! let digest = crypto::share_digest(&shares[0]);
//! let again = crypto::interpolate(&shares[1..4], 1).unwrap();
//! assert!(crypto::share_matches(&again, &digest));
//!
//! // Epoch 2 seals epoch 1's secret under its own secret.
//! let second = RackSecret::generate(&mut rng);
//! let prior = BTreeMap::from([(Epoch(1), first.clone())]);
//! let sealed = crypto::seal(&prior, rack, Epoch(2), &second, &mut rng).unwrap();
//! assert_eq!(sealed.data.len(), crypto::RECORD_LEN + crypto::TAG_LEN);
//! assert_eq!(crypto::open(&sealed, rack, Epoch(2), &second).unwrap(), prior);
//! assert!(crypto::open(&sealed, rack, Epoch(3), &second).is_err()); // wrong key
//! ```
//!
//! What the dependencies do not wipe: vsss-rs 6 returns shares and combined
//! secrets as plain `Vec`s and does not wipe its internal polynomial
//! coefficients. Every buffer it returns is moved into a [`Zeroizing`]
//! wrapper at once; the coefficients inside `split_bytes` are outside our
//! reach. The AEAD cipher object wipes its key on drop because the workspace
//! enables chacha20poly1305's `zeroize` feature.

pub mod authority;

use core::fmt;
use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use tq_types::{EncryptedRackSecrets, Epoch, RackId, Salt, Share, ShareDigest, Threshold};
use vsss_rs::Gf256;
use zeroize::{Zeroize, Zeroizing};

/// Length of a rack secret in bytes.
pub const SECRET_LEN: usize = 32;
/// Length of a share in bytes: one x-coordinate byte and [`SECRET_LEN`] y bytes.
pub const SHARE_LEN: usize = SECRET_LEN + 1;
/// Length of one sealed prior-secret record: `epoch (u64 BE) || secret`.
pub const RECORD_LEN: usize = 8 + SECRET_LEN;
/// Length of the AEAD tag appended to the ciphertext.
pub const TAG_LEN: usize = 16;

/// The `blake3::derive_key` context for keys sealing prior rack secrets.
const SEAL_KEY_CONTEXT: &str = "trust-quorum 2026-11 prior rack secrets sealing key v1";

/// A rack secret: 32 random bytes, never all zero. Wiped on drop, redacted
/// from `Debug`, compared in constant time.
#[derive(Clone)]
pub struct RackSecret(Zeroizing<[u8; SECRET_LEN]>);

impl RackSecret {
    /// Draws a fresh secret from `rng`, redrawing if it is all zero.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> RackSecret {
        let mut bytes = Zeroizing::new([0u8; SECRET_LEN]);
        loop {
            rng.fill_bytes(bytes.as_mut_slice());
            if !bool::from(bytes.ct_eq(&[0u8; SECRET_LEN])) {
                return RackSecret(bytes);
            }
        }
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    fn from_slice(bytes: &[u8]) -> Result<RackSecret, CryptoError> {
        let mut out = Zeroizing::new([0u8; SECRET_LEN]);
        if bytes.len() != SECRET_LEN {
            return Err(CryptoError::BadSecretLength(bytes.len()));
        }
        out.copy_from_slice(bytes);
        Ok(RackSecret(out))
    }
}

impl PartialEq for RackSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&*other.0).into()
    }
}

impl Eq for RackSecret {}

impl fmt::Debug for RackSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RackSecret(<redacted>)")
    }
}

/// Why a cryptographic operation failed. No variant carries secret material.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CryptoError {
    /// The threshold or share count is outside what the protocol allows.
    #[error("cannot split into {shares} shares with threshold {threshold}")]
    InvalidSplit {
        /// The requested threshold.
        threshold: u8,
        /// The requested number of shares.
        shares: usize,
    },
    /// Fewer than two shares were given.
    #[error("at least 2 shares are needed, got {0}")]
    TooFewShares(usize),
    /// A share does not have [`SHARE_LEN`] bytes.
    #[error("share has {0} bytes, expected {SHARE_LEN}")]
    BadShareLength(usize),
    /// A share has x-coordinate 0, which is the secret itself.
    #[error("share has x-coordinate 0")]
    ZeroXCoordinate,
    /// Two shares have the same x-coordinate.
    #[error("two shares have x-coordinate {0}")]
    DuplicateXCoordinate(u8),
    /// Interpolation at x = 0 was requested; use [`combine`].
    #[error("cannot interpolate a share at x-coordinate 0")]
    InterpolateAtZero,
    /// Combining yielded a value of the wrong length.
    #[error("combined secret has {0} bytes, expected {SECRET_LEN}")]
    BadSecretLength(usize),
    /// Secret sharing failed inside the share library.
    #[error("secret sharing failed")]
    Sharing,
    /// The sealed secrets failed authentication: wrong key, salt, epoch, rack
    /// or tampered ciphertext.
    #[error("sealed rack secrets failed to decrypt")]
    Decryption,
    /// Decrypted data is not a whole number of records, or its epochs are not
    /// strictly ascending.
    #[error("decrypted rack secrets are malformed")]
    MalformedPlaintext,
    /// Sealing failed inside the cipher.
    #[error("sealing rack secrets failed")]
    Encryption,
}

/// Splits `secret` into `n` shares, any `threshold` of which rebuild it.
///
/// The i-th share (0-based) has x-coordinate `i + 1`, so shares are handed
/// out to members in identity order. Requires `2 <= threshold < n <= 255`;
/// the protocol's own limits are enforced by request validation.
pub fn split<R: CryptoRng + ?Sized>(
    secret: &RackSecret,
    threshold: Threshold,
    n: usize,
    rng: &mut R,
) -> Result<Vec<Share>, CryptoError> {
    let k = usize::from(threshold.0);
    if k < 2 || k >= n || n > 255 {
        return Err(CryptoError::InvalidSplit { threshold: threshold.0, shares: n });
    }
    let raw = Zeroizing::new(
        Gf256::split_bytes(k, n, secret.expose(), rng).map_err(|_| CryptoError::Sharing)?,
    );
    Ok(raw.iter().map(|bytes| Share::new(bytes.clone())).collect())
}

/// Checks that every share has [`SHARE_LEN`] bytes and a distinct, non-zero
/// x-coordinate, and that there are at least two.
fn validate_shares(shares: &[Share]) -> Result<(), CryptoError> {
    if shares.len() < 2 {
        return Err(CryptoError::TooFewShares(shares.len()));
    }
    let mut seen = [false; 256];
    for share in shares {
        let bytes = share.as_bytes();
        if bytes.len() != SHARE_LEN {
            return Err(CryptoError::BadShareLength(bytes.len()));
        }
        let x = share_x(share).ok_or(CryptoError::BadShareLength(0))?;
        if x == 0 {
            return Err(CryptoError::ZeroXCoordinate);
        }
        let slot = seen.get_mut(usize::from(x)).ok_or(CryptoError::ZeroXCoordinate)?;
        if *slot {
            return Err(CryptoError::DuplicateXCoordinate(x));
        }
        *slot = true;
    }
    Ok(())
}

/// The x-coordinate of a share, if it has any bytes.
pub fn share_x(share: &Share) -> Option<u8> {
    share.as_bytes().first().copied()
}

/// Rebuilds the secret from shares. With fewer than the threshold the result
/// is a wrong secret, not an error: callers validate shares against digests
/// and count them first.
pub fn combine(shares: &[Share]) -> Result<RackSecret, CryptoError> {
    validate_shares(shares)?;
    let raw: Zeroizing<Vec<Vec<u8>>> =
        Zeroizing::new(shares.iter().map(|s| s.as_bytes().to_vec()).collect());
    let secret = Zeroizing::new(Gf256::combine_bytes(&*raw).map_err(|_| CryptoError::Sharing)?);
    RackSecret::from_slice(&secret)
}

/// Recomputes the share at x-coordinate `x` from at least threshold shares of
/// the same secret, by Lagrange interpolation over GF(2^8).
#[allow(clippy::arithmetic_side_effects, reason = "GF(2^8) field operations cannot overflow")]
pub fn interpolate(shares: &[Share], x: u8) -> Result<Share, CryptoError> {
    if x == 0 {
        return Err(CryptoError::InterpolateAtZero);
    }
    validate_shares(shares)?;
    let target = Gf256(x);
    // Lagrange basis polynomials evaluated at `target`. Public values only:
    // the x-coordinates are not secret.
    let xs: Vec<Gf256> = shares.iter().filter_map(share_x).map(Gf256).collect();
    let mut basis = Vec::with_capacity(xs.len());
    for (i, xi) in xs.iter().enumerate() {
        let mut num = Gf256(1);
        let mut den = Gf256(1);
        for (j, xj) in xs.iter().enumerate() {
            if i != j {
                num *= target - *xj;
                den *= *xi - *xj;
            }
        }
        // den != 0 because the x-coordinates are distinct.
        basis.push(num * gf_invert(den));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(SHARE_LEN));
    out.push(x);
    for byte in 1..SHARE_LEN {
        let mut acc = Gf256(0);
        for (share, l) in shares.iter().zip(&basis) {
            let y = share.as_bytes().get(byte).copied().ok_or(CryptoError::BadShareLength(0))?;
            acc += Gf256(y) * *l;
        }
        out.push(acc.0);
        acc.zeroize();
    }
    Ok(Share::from_zeroizing(&out))
}

/// The multiplicative inverse in GF(2^8): `a^254` by square-and-multiply
/// over the field's own multiplication (the exponent is public, so the loop
/// is constant time). Maps 0 to 0.
///
/// vsss-rs 6.0.1's `Gf256::pow` multiplies as integers, not in the field, so
/// it cannot be used here; its `Field::invert` needs the `ff` trait, which
/// the crate only exposes behind features we do not enable.
#[allow(clippy::arithmetic_side_effects, reason = "GF(2^8) field operations cannot overflow")]
fn gf_invert(a: Gf256) -> Gf256 {
    const EXPONENT: u8 = 254;
    let mut result = Gf256(1);
    for bit in (0..8).rev() {
        result *= result;
        if (EXPONENT >> bit) & 1 == 1 {
            result *= a;
        }
    }
    result
}

/// The digest recorded for a share: BLAKE3 over its `x || y` bytes.
pub fn share_digest(share: &Share) -> ShareDigest {
    ShareDigest(*blake3::hash(share.as_bytes()).as_bytes())
}

/// Whether `share` matches `digest`, compared in constant time.
pub fn share_matches(share: &Share, digest: &ShareDigest) -> bool {
    share_digest(share).0.ct_eq(&digest.0).into()
}

/// Derives the one-time key that seals prior secrets in the configuration at
/// (`rack_id`, `epoch`) whose rack secret is `secret`.
fn seal_key(
    rack_id: RackId,
    epoch: Epoch,
    salt: &Salt,
    secret: &RackSecret,
) -> Zeroizing<[u8; 32]> {
    let mut material = Zeroizing::new([0u8; 16 + 8 + 32 + SECRET_LEN]);
    let (rack, rest) = material.split_at_mut(16);
    let (ep, rest) = rest.split_at_mut(8);
    let (sa, sec) = rest.split_at_mut(32);
    rack.copy_from_slice(rack_id.0.as_bytes());
    ep.copy_from_slice(&epoch.0.to_be_bytes());
    sa.copy_from_slice(&salt.0);
    sec.copy_from_slice(secret.expose());
    Zeroizing::new(blake3::derive_key(SEAL_KEY_CONTEXT, &*material))
}

/// Seals `prior` secrets (epoch to secret) for the configuration at
/// (`rack_id`, `epoch`) whose secret is `secret`, under a fresh salt from
/// `rng`. Each derived key encrypts exactly one plaintext, so the nonce is
/// fixed at zero.
pub fn seal<R: CryptoRng + ?Sized>(
    prior: &BTreeMap<Epoch, RackSecret>,
    rack_id: RackId,
    epoch: Epoch,
    secret: &RackSecret,
    rng: &mut R,
) -> Result<EncryptedRackSecrets, CryptoError> {
    let mut salt = Salt([0; 32]);
    rng.fill_bytes(&mut salt.0);
    let mut plaintext = Zeroizing::new(Vec::with_capacity(prior.len().saturating_mul(RECORD_LEN)));
    for (e, s) in prior {
        plaintext.extend_from_slice(&e.0.to_be_bytes());
        plaintext.extend_from_slice(s.expose());
    }
    let key = seal_key(rack_id, epoch, &salt, secret);
    let cipher = ChaCha20Poly1305::new_from_slice(&*key).map_err(|_| CryptoError::Encryption)?;
    let data = cipher
        .encrypt(&Nonce::default(), plaintext.as_slice())
        .map_err(|_| CryptoError::Encryption)?;
    Ok(EncryptedRackSecrets { salt, data })
}

/// Opens secrets sealed by [`seal`] for the configuration at (`rack_id`,
/// `epoch`) whose secret is `secret`.
pub fn open(
    sealed: &EncryptedRackSecrets,
    rack_id: RackId,
    epoch: Epoch,
    secret: &RackSecret,
) -> Result<BTreeMap<Epoch, RackSecret>, CryptoError> {
    let key = seal_key(rack_id, epoch, &sealed.salt, secret);
    let cipher = ChaCha20Poly1305::new_from_slice(&*key).map_err(|_| CryptoError::Decryption)?;
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(&Nonce::default(), sealed.data.as_slice())
            .map_err(|_| CryptoError::Decryption)?,
    );
    if plaintext.len() % RECORD_LEN != 0 {
        return Err(CryptoError::MalformedPlaintext);
    }
    let mut out = BTreeMap::new();
    for record in plaintext.chunks_exact(RECORD_LEN) {
        let (e, s) = record.split_at(8);
        let e =
            Epoch(u64::from_be_bytes(e.try_into().map_err(|_| CryptoError::MalformedPlaintext)?));
        if out.last_key_value().is_some_and(|(last, _)| *last >= e) {
            return Err(CryptoError::MalformedPlaintext);
        }
        out.insert(e, RackSecret::from_slice(s)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    #[test]
    fn one_prior_epoch_seals_to_56_bytes() {
        let mut r = rng(1);
        let old = RackSecret::generate(&mut r);
        let new = RackSecret::generate(&mut r);
        let rack = RackId(uuid::Uuid::from_u128(7));
        let prior = BTreeMap::from([(Epoch(1), old.clone())]);
        let sealed = seal(&prior, rack, Epoch(2), &new, &mut r).unwrap();
        assert_eq!(sealed.data.len(), 56);
        assert_eq!(open(&sealed, rack, Epoch(2), &new).unwrap(), prior);
    }

    #[test]
    fn split_is_deterministic_for_a_seed() {
        let secret = RackSecret::generate(&mut rng(3));
        let a = split(&secret, Threshold(3), 5, &mut rng(4)).unwrap();
        let b = split(&secret, Threshold(3), 5, &mut rng(4)).unwrap();
        assert_eq!(a, b);
        let xs: Vec<u8> = a.iter().map(|s| share_x(s).unwrap()).collect();
        assert_eq!(xs, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn interpolation_reproduces_a_split_share() {
        let secret = RackSecret::generate(&mut rng(8));
        let shares = split(&secret, Threshold(3), 5, &mut rng(9)).unwrap();
        for missing in 0..5 {
            let others: Vec<Share> = shares
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != missing)
                .map(|(_, s)| s.clone())
                .collect();
            let x = u8::try_from(missing + 1).unwrap();
            assert_eq!(interpolate(&others[..3], x).unwrap(), shares[missing]);
        }
    }

    #[test]
    fn field_inverse_is_correct() {
        for a in 1..=255u8 {
            assert_eq!(Gf256(a) * gf_invert(Gf256(a)), Gf256(1), "{a}");
        }
        assert_eq!(gf_invert(Gf256(0)), Gf256(0));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = RackSecret::generate(&mut rng(5));
        assert_eq!(format!("{s:?}"), "RackSecret(<redacted>)");
    }

    #[test]
    fn bad_shares_are_typed_errors() {
        let secret = RackSecret::generate(&mut rng(6));
        let shares = split(&secret, Threshold(2), 3, &mut rng(7)).unwrap();
        assert_eq!(combine(&shares[..1]), Err(CryptoError::TooFewShares(1)));
        let short = Share::new(shares[1].as_bytes()[..10].to_vec());
        assert_eq!(combine(&[shares[0].clone(), short]), Err(CryptoError::BadShareLength(10)));
        assert_eq!(
            combine(&[shares[0].clone(), shares[0].clone()]),
            Err(CryptoError::DuplicateXCoordinate(1))
        );
        let mut zero = shares[1].as_bytes().to_vec();
        zero[0] = 0;
        assert_eq!(
            combine(&[shares[0].clone(), Share::new(zero)]),
            Err(CryptoError::ZeroXCoordinate)
        );
        assert_eq!(interpolate(&shares, 0), Err(CryptoError::InterpolateAtZero));
        assert!(split(&secret, Threshold(3), 3, &mut rng(1)).is_err());
        assert!(split(&secret, Threshold(1), 3, &mut rng(1)).is_err());
    }
}
