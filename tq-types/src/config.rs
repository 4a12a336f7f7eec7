//! Configurations and the opaque cryptographic values they carry.

use core::fmt;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::authority::{CommitCertificate, SignedReconfigure};
use crate::ids::{BaseboardId, Epoch, RackId, Threshold};
use crate::serde_util::{hex_array32, hex_bytes, member_map};

/// The BLAKE3 digest of a member's share (`x || y`), as recorded in the
/// configuration. Digests are public: every member's digest is sent to every
/// member so that shares can be checked before use.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, pattern = "^[0-9a-f]{64}$")
)]
#[serde(transparent)]
pub struct ShareDigest(#[serde(with = "hex_array32")] pub [u8; 32]);

impl fmt::Debug for ShareDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareDigest({})", hex::encode(self.0))
    }
}

impl fmt::Display for ShareDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A fresh random salt, drawn for every encryption of prior rack secrets.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, pattern = "^[0-9a-f]{64}$")
)]
#[serde(transparent)]
pub struct Salt(#[serde(with = "hex_array32")] pub [u8; 32]);

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Salt({})", hex::encode(self.0))
    }
}

/// The rack secrets of earlier committed configurations, sealed under a key
/// derived from the secret of the configuration that carries them.
///
/// `data` is the ChaCha20-Poly1305 ciphertext followed by its 16-byte tag:
/// 40 bytes per prior epoch plus 16 (56 bytes for one prior epoch).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EncryptedRackSecrets {
    /// The salt mixed into the key derivation.
    pub salt: Salt,
    /// Ciphertext and tag.
    #[serde(with = "hex_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^([0-9a-f]{2})*$"))]
    pub data: Vec<u8>,
}

impl fmt::Debug for EncryptedRackSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedRackSecrets")
            .field("salt", &self.salt)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// The unit of agreement: created once by an epoch's coordinator and
/// byte-identical everywhere it is stored or sent.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Configuration {
    /// The rack this configuration belongs to.
    pub rack_id: RackId,
    /// The configuration's epoch.
    pub epoch: Epoch,
    /// The node that built this configuration and distributed its shares.
    pub coordinator: BaseboardId,
    /// Every member with the digest of its share, in identity order.
    #[serde(with = "member_map")]
    pub members: BTreeMap<BaseboardId, ShareDigest>,
    /// Shares needed to rebuild this configuration's rack secret.
    pub threshold: Threshold,
    /// Sealed secrets of earlier committed configurations; absent iff there
    /// was no prior committed secret.
    pub encrypted_rack_secrets: Option<EncryptedRackSecrets>,
    /// The authority's signed request this configuration was built from
    /// (boxed: it is as large as the rest of the configuration).
    pub reconfigure: Box<SignedReconfigure>,
}

impl Configuration {
    /// Whether `id` is a member of this configuration.
    pub fn is_member(&self, id: &BaseboardId) -> bool {
        self.members.contains_key(id)
    }

    /// The share x-coordinate of `id`: its 1-based position in identity
    /// order, or `None` if it is not a member.
    pub fn x_coordinate(&self, id: &BaseboardId) -> Option<u8> {
        let pos = self.members.keys().position(|m| m == id)?;
        u8::try_from(pos).ok()?.checked_add(1)
    }
}

/// One member's Shamir share: the x-coordinate byte followed by the y bytes
/// (33 bytes for a 32-byte secret).
///
/// The bytes are opaque here: the protocol crate checks their length and
/// digest before use. They are wiped on drop, never printed by `Debug`, and
/// compared in constant time.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct Share(#[serde(with = "hex_bytes")] Vec<u8>);

impl Share {
    /// Wraps share bytes. The caller's buffer moves in and is wiped with the
    /// share.
    pub fn new(bytes: Vec<u8>) -> Self {
        Share(bytes)
    }

    /// Copies share bytes out of a zeroizing buffer.
    pub fn from_zeroizing(bytes: &Zeroizing<Vec<u8>>) -> Self {
        Share(bytes.to_vec())
    }

    /// The share bytes, `x || y`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for Share {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Share {}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Share(<redacted>)")
    }
}

/// A configuration with the certificate that it is committed: what a node
/// forwards to tell a peer about a commit (`CommitAdvance`, `Expunged`) and
/// what the control plane sends with a prepare-and-commit.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CommittedConfig {
    /// The configuration.
    pub config: Configuration,
    /// The certificate naming it.
    pub certificate: CommitCertificate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_debug_is_redacted() {
        let s = Share::new(vec![0xab; 33]);
        let printed = format!("{s:?}");
        assert_eq!(printed, "Share(<redacted>)");
        assert!(!printed.contains("ab"));
    }

    #[test]
    fn share_equality_is_by_value() {
        assert_eq!(Share::new(vec![1, 2, 3]), Share::new(vec![1, 2, 3]));
        assert_ne!(Share::new(vec![1, 2, 3]), Share::new(vec![1, 2, 4]));
        assert_ne!(Share::new(vec![1, 2, 3]), Share::new(vec![1, 2]));
    }

    #[test]
    fn x_coordinates_follow_identity_order() {
        let ids: Vec<BaseboardId> =
            ["B:1", "A:2", "A:1"].iter().map(|s| s.parse().unwrap()).collect();
        let config = Configuration {
            rack_id: RackId(uuid::Uuid::nil()),
            epoch: Epoch(1),
            coordinator: ids[0].clone(),
            members: ids.iter().map(|id| (id.clone(), ShareDigest([0; 32]))).collect(),
            threshold: Threshold(2),
            encrypted_rack_secrets: None,
            reconfigure: Box::new(crate::SignedReconfigure {
                msg: crate::ReconfigureMsg {
                    rack_id: RackId(uuid::Uuid::nil()),
                    epoch: Epoch(1),
                    last_committed_epoch: None,
                    members: ids.iter().cloned().collect(),
                    threshold: Threshold(2),
                    coordinator: ids[0].clone(),
                },
                signature: crate::AuthoritySignature([0; 64]),
            }),
        };
        assert_eq!(config.x_coordinate(&"A:1".parse().unwrap()), Some(1));
        assert_eq!(config.x_coordinate(&"A:2".parse().unwrap()), Some(2));
        assert_eq!(config.x_coordinate(&"B:1".parse().unwrap()), Some(3));
        assert_eq!(config.x_coordinate(&"C:1".parse().unwrap()), None);
    }

    #[test]
    fn digest_rejects_wrong_length_hex() {
        assert!(serde_json::from_str::<ShareDigest>("\"abcd\"").is_err());
        assert!(serde_json::from_str::<ShareDigest>("\"zz\"").is_err());
    }
}
