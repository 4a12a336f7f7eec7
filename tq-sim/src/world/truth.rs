//! What really happened, as the world saw it happen: which epochs some sled
//! durably committed, which secret each coordinator split, and what lost
//! disks took with them (see [`LostFacts`]). The safety
//! checker judges the nodes' answers against this record, not against
//! what the nodes themselves report (docs/protocol.md section 7.3).
//!
//! The record is kept independent of the code under test. A coordinator
//! drops the secret it generates once it has split it, so the world
//! rebuilds it from what the coordinator handed out: its own durable share
//! and the shares in the `Prepare`s it released. The secret is the value at
//! zero of the polynomial through the first K of those shares (K being the
//! configuration's threshold), computed here over GF(2^8) with the field of
//! the share format (AES polynomial 0x11B), without the product's `crypto`.

use std::collections::{BTreeMap, BTreeSet};

use tq_types::{BaseboardId, Configuration, Epoch, PeerMsgKind, Share};

use super::lost::LostFacts;
use crate::observation::Observation;

/// The length of a rack secret, and of a share's y-coordinates.
pub(crate) const SECRET_LEN: usize = 32;

/// The world's record of what happened.
#[derive(Clone, Default, Debug)]
pub(crate) struct GroundTruth {
    /// Epochs some sled durably committed (ever, wiped disks included), with
    /// the members of the configuration it committed.
    committed: BTreeMap<Epoch, BTreeSet<BaseboardId>>,
    /// What each epoch's coordinator split.
    splits: BTreeMap<Epoch, Split>,
    /// The prepares and commits wiped disks held.
    lost: LostFacts,
}

/// The shares one coordinator handed out for its epoch.
#[derive(Clone, Debug)]
pub(crate) struct Split {
    /// The configuration it built, as first seen with a share.
    pub(crate) config: Configuration,
    /// The shares it handed out, its own included, by member, in the order
    /// handed out; each member once.
    pub(crate) handed: Vec<(BaseboardId, Share)>,
    /// The indices in `handed` of the first K shares with distinct
    /// x-coordinates, once K are known: they define the secret.
    pub(crate) basis: Vec<usize>,
    /// The generated secret, once K shares are known.
    pub(crate) secret: Option<[u8; SECRET_LEN]>,
}

impl GroundTruth {
    /// Learns from what the world just did, in order.
    pub(crate) fn learn(&mut self, observed: &[Observation]) {
        for o in observed {
            match o {
                Observation::Persisted { who, new, .. } => {
                    self.lost.persisted(who, new);
                    for e in new.commits() {
                        if let Some(c) = new.config(*e) {
                            self.committed
                                .entry(*e)
                                .or_insert_with(|| c.members.keys().cloned().collect());
                        }
                    }
                    // A coordinator's own share is durable before it sends
                    // anything.
                    for (e, c) in new.configs() {
                        if c.coordinator == *who {
                            if let Some(share) = new.share(*e) {
                                self.handed_out(c, who, share);
                            }
                        }
                    }
                }
                Observation::Sent { envelope, .. } => {
                    if let PeerMsgKind::Prepare { config, share } = &envelope.msg.kind {
                        if envelope.from == config.coordinator {
                            self.handed_out(config, &envelope.to, share);
                        }
                    }
                }
                Observation::Wiped { who, lost } => self.lost.record(who, lost),
                Observation::SecretLoaded { .. } | Observation::DiskDecoded { .. } => {}
            }
        }
    }

    /// The coordinator of `config` handed `share` to `member`.
    pub(crate) fn handed_out(
        &mut self,
        config: &Configuration,
        member: &BaseboardId,
        share: &Share,
    ) {
        let split = self.splits.entry(config.epoch).or_insert_with(|| Split {
            config: config.clone(),
            handed: Vec::new(),
            basis: Vec::new(),
            secret: None,
        });
        // A second configuration for the epoch is `global_uniqueness`'s
        // business; the first one defines the record.
        if split.config != *config || split.handed.iter().any(|(m, _)| m == member) {
            return;
        }
        split.handed.push((member.clone(), share.clone()));
        if split.secret.is_none() {
            split.fix_secret();
        }
    }

    /// Whether some sled durably committed `epoch`.
    pub(crate) fn is_committed(&self, epoch: Epoch) -> bool {
        self.committed.contains_key(&epoch)
    }

    /// The members of the committed configuration of `epoch`.
    pub(crate) fn committed_members(&self, epoch: Epoch) -> Option<&BTreeSet<BaseboardId>> {
        self.committed.get(&epoch)
    }

    /// The committed epochs below `epoch`, in order.
    pub(crate) fn committed_below(&self, epoch: Epoch) -> Vec<Epoch> {
        self.committed.range(..epoch).map(|(e, _)| *e).collect()
    }

    /// The secret the coordinator of `epoch` generated, once K of its
    /// shares were handed out.
    pub(crate) fn secret(&self, epoch: Epoch) -> Option<&[u8; SECRET_LEN]> {
        self.splits.get(&epoch).and_then(|s| s.secret.as_ref())
    }

    /// What each epoch's coordinator handed out.
    pub(crate) fn splits(&self) -> &BTreeMap<Epoch, Split> {
        &self.splits
    }

    /// The prepares and commits wiped disks took with them.
    pub(crate) fn lost(&self) -> &LostFacts {
        &self.lost
    }
}

impl Split {
    /// Fixes the secret once K shares with distinct x-coordinates and the
    /// right length are known.
    fn fix_secret(&mut self) {
        let k = usize::from(self.config.threshold.0);
        let mut basis = Vec::new();
        let mut xs = BTreeSet::new();
        for (i, (_, share)) in self.handed.iter().enumerate() {
            if let Some((x, _)) = point(share) {
                if x != 0 && xs.insert(x) {
                    basis.push(i);
                }
            }
            if basis.len() == k {
                break;
            }
        }
        if k < 2 || basis.len() < k {
            return;
        }
        let points: Vec<(u8, &[u8])> = basis
            .iter()
            .filter_map(|i| self.handed.get(*i))
            .filter_map(|(_, s)| point(s))
            .collect();
        if let Some(secret) = value_at(&points, 0) {
            self.secret = Some(secret);
            self.basis = basis;
        }
    }

    /// The y-coordinates at `x` of the polynomial the basis shares define.
    pub(crate) fn value_at(&self, x: u8) -> Option<[u8; SECRET_LEN]> {
        let points: Vec<(u8, &[u8])> = self
            .basis
            .iter()
            .filter_map(|i| self.handed.get(*i))
            .filter_map(|(_, s)| point(s))
            .collect();
        if points.len() != self.basis.len() || points.is_empty() {
            return None;
        }
        value_at(&points, x)
    }
}

/// A share's x-coordinate and y-coordinates, if it has the share format's
/// length.
pub(crate) fn point(share: &Share) -> Option<(u8, &[u8])> {
    let (x, ys) = share.as_bytes().split_first()?;
    (ys.len() == SECRET_LEN).then_some((*x, ys))
}

/// Lagrange interpolation over GF(2^8): the y-coordinates at `x` of the
/// polynomial through `points` (distinct, non-zero x-coordinates, each with
/// [`SECRET_LEN`] y bytes). `None` if the points do not qualify.
pub(crate) fn value_at(points: &[(u8, &[u8])], x: u8) -> Option<[u8; SECRET_LEN]> {
    let mut out = [0u8; SECRET_LEN];
    for (i, (xi, yi)) in points.iter().enumerate() {
        if *xi == 0 || yi.len() != SECRET_LEN {
            return None;
        }
        // l_i(x) = prod over j != i of (x - x_j) / (x_i - x_j); subtraction
        // is XOR in GF(2^8).
        let mut l = 1u8;
        for (j, (xj, _)) in points.iter().enumerate() {
            if i != j {
                if xi == xj {
                    return None;
                }
                l = gf_mul(l, gf_mul(x ^ *xj, gf_inv(*xi ^ *xj)));
            }
        }
        for (o, y) in out.iter_mut().zip(yi.iter()) {
            *o ^= gf_mul(*y, l);
        }
    }
    Some(out)
}

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
fn gf_mul(a: u8, b: u8) -> u8 {
    let (mut a, mut b, mut r) = (a, b, 0u8);
    for _ in 0..8 {
        if b & 1 == 1 {
            r ^= a;
        }
        let carry = a & 0x80 != 0;
        a = a.wrapping_shl(1);
        if carry {
            a ^= 0x1b;
        }
        b = b.wrapping_shr(1);
    }
    r
}

/// The multiplicative inverse in GF(2^8), a^254 (0 for 0).
fn gf_inv(a: u8) -> u8 {
    // 254 = 0b1111_1110, most significant bit first.
    const BITS: [bool; 8] = [true, true, true, true, true, true, true, false];
    let mut result = 1u8;
    for bit in BITS {
        result = gf_mul(result, result);
        if bit {
            result = gf_mul(result, a);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use tq_types::Threshold;
    use trust_quorum::crypto::{self, RackSecret};

    use super::*;

    #[test]
    fn field_inverse_is_an_inverse() {
        for a in 1..=255u8 {
            assert_eq!(gf_mul(a, gf_inv(a)), 1, "{a}");
        }
    }

    /// The world's reconstruction agrees with the share format: shares
    /// split by the product's crypto rebuild the same secret here, and any
    /// share lies on the polynomial the others define.
    #[test]
    fn interpolation_matches_the_share_format() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for (k, n) in [(2u8, 3usize), (3, 5), (5, 9)] {
            let secret = RackSecret::generate(&mut rng);
            let shares = crypto::split(&secret, Threshold(k), n, &mut rng).unwrap();
            let points: Vec<(u8, &[u8])> = shares.iter().map(|s| point(s).unwrap()).collect();
            let k = usize::from(k);
            assert_eq!(&value_at(&points[..k], 0).unwrap(), secret.expose());
            assert_eq!(&value_at(&points[n - k..], 0).unwrap(), secret.expose());
            let (x, y) = points[0];
            assert_eq!(value_at(&points[1..=k], x).unwrap(), y);
            // Fewer than K points give another value.
            assert_ne!(&value_at(&points[..k - 1], 0).unwrap(), secret.expose());
        }
    }

    #[test]
    fn interpolation_rejects_bad_points() {
        let y = [7u8; SECRET_LEN];
        assert!(value_at(&[(1, &y), (1, &y)], 0).is_none());
        assert!(value_at(&[(0, &y), (1, &y)], 0).is_none());
        assert!(value_at(&[(1, &y[..3]), (2, &y)], 0).is_none());
    }
}
