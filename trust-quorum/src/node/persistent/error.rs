//! Why bytes are not a usable persistent state. Variants name epochs and
//! sizes, never share bytes.

use tq_types::codec::DecodeError;
use tq_types::{Epoch, InvalidConfiguration, RackId};

use super::limits::PERSISTENT_FORMAT_VERSION;

/// Why [`PersistentState::decode`](super::PersistentState::decode) refused
/// its input.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum PersistentStateError {
    /// The input is empty: not even the format-version byte.
    #[error("persistent state is empty (no format version)")]
    MissingVersion,
    /// The first byte names a format this build cannot read.
    #[error(
        "persistent state has format version {found}, \
         this build reads version {PERSISTENT_FORMAT_VERSION}"
    )]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// The input ends inside the checksum that follows the version byte.
    #[error("persistent state is truncated: {len} bytes, shorter than its header")]
    Truncated {
        /// The input's length.
        len: usize,
    },
    /// The checksum does not match the version byte and the body: the bytes
    /// changed after they were written.
    #[error("persistent state checksum mismatch")]
    ChecksumMismatch,
    /// The body is not a valid encoding, or the input is too long.
    #[error("persistent state does not decode: {0}")]
    Codec(DecodeError),
    /// The bytes decode, but are not the encoding the library writes (map
    /// keys out of order or repeated, over-long integers): a writer other
    /// than this library, or corruption.
    #[error("persistent state is not canonically encoded")]
    NonCanonical,
    /// The decoded state breaks a rule every state the library writes obeys.
    #[error("invalid persistent state: {0}")]
    Invalid(InvalidPersistentState),
}

impl From<InvalidPersistentState> for PersistentStateError {
    fn from(invalid: InvalidPersistentState) -> Self {
        Self::Invalid(invalid)
    }
}

/// A rule of the persistent state that a state breaks (docs/protocol.md
/// section 2.1). The first broken rule is reported, in the order of the
/// variants, configurations and shares in epoch order.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum InvalidPersistentState {
    /// More configurations than [`MAX_CONFIGS`](super::MAX_CONFIGS).
    #[error("{count} configurations stored, over the limit of {max}")]
    TooManyConfigs {
        /// How many are stored.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More shares than [`MAX_SHARES`](super::MAX_SHARES).
    #[error("{count} shares stored, over the limit of {max}")]
    TooManyShares {
        /// How many are stored.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More commits than [`MAX_COMMITS`](super::MAX_COMMITS).
    #[error("{count} commits stored, over the limit of {max}")]
    TooManyCommits {
        /// How many are stored.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A configuration is stored under another epoch than its own.
    #[error("configuration of epoch {epoch} stored under epoch {key}")]
    ConfigEpochMismatch {
        /// The map key.
        key: Epoch,
        /// The configuration's epoch.
        epoch: Epoch,
    },
    /// A stored configuration is malformed (membership, threshold,
    /// coordinator).
    #[error("configuration of epoch {epoch} is invalid: {reason}")]
    InvalidConfig {
        /// Its epoch.
        epoch: Epoch,
        /// What is wrong.
        reason: InvalidConfiguration,
    },
    /// A part or serial number is longer than
    /// [`MAX_ID_FIELD_LEN`](super::MAX_ID_FIELD_LEN).
    #[error("an id field of {len} bytes (limit {max}) in {}", IdPlace(*.epoch))]
    IdTooLong {
        /// The configuration holding the id, or `None` for the expunged
        /// marker's sender.
        epoch: Option<Epoch>,
        /// The field's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A configuration's sealed secrets are longer than
    /// [`MAX_SEALED_DATA_LEN`](super::MAX_SEALED_DATA_LEN).
    #[error("sealed secrets of epoch {epoch} are {len} bytes, over the limit of {max}")]
    SealedDataTooLong {
        /// The configuration's epoch.
        epoch: Epoch,
        /// The sealed data's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Two stored configurations belong to different racks.
    #[error("configuration of epoch {epoch} is for rack {found}, the others for rack {expected}")]
    RackIdMismatch {
        /// The configuration of another rack.
        epoch: Epoch,
        /// The rack of the earliest stored configuration.
        expected: RackId,
        /// This configuration's rack.
        found: RackId,
    },
    /// A share is stored for an epoch without a configuration.
    #[error("share of epoch {epoch} stored without its configuration")]
    ShareWithoutConfig {
        /// The share's epoch.
        epoch: Epoch,
    },
    /// A share does not have the length of a share.
    #[error("share of epoch {epoch} has {len} bytes")]
    ShareLength {
        /// The share's epoch.
        epoch: Epoch,
        /// Its length.
        len: usize,
    },
    /// A share does not match the digest the configuration records for the
    /// member at the share's x-coordinate.
    #[error("share of epoch {epoch} does not match its digest")]
    ShareDigestMismatch {
        /// The share's epoch.
        epoch: Epoch,
    },
    /// An epoch is committed without its configuration.
    #[error("epoch {epoch} is committed but its configuration is not stored")]
    CommitWithoutConfig {
        /// The committed epoch.
        epoch: Epoch,
    },
    /// An epoch is committed without the node's share.
    #[error("epoch {epoch} is committed but the node's share of it is not stored")]
    CommitWithoutShare {
        /// The committed epoch.
        epoch: Epoch,
    },
    /// An epoch is committed without the authority's certificate.
    #[error("epoch {epoch} is committed but its commit certificate is not stored")]
    CommitWithoutCertificate {
        /// The committed epoch.
        epoch: Epoch,
    },
    /// A commit certificate is stored without the configuration it names.
    #[error("a commit certificate of epoch {epoch} is stored without its configuration")]
    CertificateWithoutConfig {
        /// The certificate's epoch.
        epoch: Epoch,
    },
    /// A configuration or a certificate was not signed by the state's
    /// authority, or does not match what it signed (docs/protocol.md
    /// section 8.4).
    #[error("epoch {epoch} is not authorized: {error}")]
    Unauthorized {
        /// The epoch.
        epoch: Epoch,
        /// Why.
        error: tq_types::AuthorityError,
    },
    /// The node is marked expunged but stores no configuration (a node
    /// only accepts an expunged notice once it has one).
    #[error("expunged at epoch {epoch} without any configuration")]
    ExpungedWithoutConfig {
        /// The marker's epoch.
        epoch: Epoch,
    },
    /// The expunged marker is older than a stored configuration (storing a
    /// later configuration clears the marker).
    #[error("expunged at epoch {epoch} but a configuration of epoch {latest} is stored")]
    ExpungedBeforeLatestConfig {
        /// The marker's epoch.
        epoch: Epoch,
        /// The newest stored configuration.
        latest: Epoch,
    },
    /// Something is stored for an epoch the state no longer keeps: below
    /// the newest committed epoch, or an uncommitted attempt that a newer
    /// configuration superseded (docs/protocol.md section 2.4).
    #[error("epoch {epoch} is stored but not kept")]
    NotRetained {
        /// The first such epoch.
        epoch: Epoch,
    },
    /// [`validate`](super::PersistentState::validate) only: a share is
    /// stored for a configuration that does not list the node.
    #[error("share of epoch {epoch} stored but this node is not a member")]
    NotAMember {
        /// The share's epoch.
        epoch: Epoch,
    },
    /// [`validate`](super::PersistentState::validate) only: a share matches
    /// another member's digest, not this node's (a state copied from another
    /// sled, or shares swapped).
    #[error("share of epoch {epoch} is not this node's")]
    ShareNotOwn {
        /// The share's epoch.
        epoch: Epoch,
    },
}

/// Where an over-long id was found, for messages.
struct IdPlace(Option<Epoch>);

impl core::fmt::Display for IdPlace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(epoch) => write!(f, "the configuration of epoch {epoch}"),
            None => f.write_str("the expunged marker"),
        }
    }
}
