//! The persistent state's format version and size bounds.
//!
//! The bounds are far above what a real rack reaches and exist so that a
//! corrupt or forged state cannot make the node hold or process unbounded
//! data. They are checked when a state is decoded; the library does not yet
//! refuse to store more, so a node flooded past a bound by forged messages
//! would fail its next start with a typed error instead of silently running
//! on (bounding what a node accepts is issue 12, item 3).

use tq_types::codec::MAX_PEER_MSG_LEN;

/// The format version this build writes as the first byte of
/// [`PersistentState::encode`](super::PersistentState::encode) and the only
/// one [`PersistentState::decode`](super::PersistentState::decode) reads.
///
/// Version 1 is: that byte; a [`PERSISTENT_CHECKSUM_LEN`]-byte BLAKE3
/// checksum (keyed by deriving from [`PERSISTENT_CHECKSUM_CONTEXT`]) of the
/// version byte and the body; the body, which is the postcard encoding of
/// [`PersistentStateParts`](super::PersistentStateParts).
pub const PERSISTENT_FORMAT_VERSION: u8 = 1;

/// Length of the checksum that follows the version byte.
pub const PERSISTENT_CHECKSUM_LEN: usize = 32;

/// The `blake3` derive-key context of the checksum of format version 1.
pub const PERSISTENT_CHECKSUM_CONTEXT: &str = "trust-quorum 2026-11 persistent state checksum v1";

/// The largest encoded persistent state accepted by
/// [`PersistentState::decode`](super::PersistentState::decode), version byte
/// included.
pub const MAX_PERSISTENT_STATE_LEN: usize = 64 << 20;

/// The most configurations a state may hold: 65,536. A rack allocates one
/// epoch per reconfiguration attempt (adding or removing sleds), so a real
/// rack stores tens to hundreds; an unpruned state of 32-member
/// configurations meets [`MAX_PERSISTENT_STATE_LEN`] at about 1,800
/// committed epochs, since each one carries all earlier sealed secrets.
pub const MAX_CONFIGS: usize = 1 << 16;

/// The most shares a state may hold: one per stored configuration at most.
pub const MAX_SHARES: usize = MAX_CONFIGS;

/// The most committed epochs a state may hold: one per stored share at most.
pub const MAX_COMMITS: usize = MAX_SHARES;

/// The longest sealed prior-secret data of one configuration:
/// [`MAX_PEER_MSG_LEN`] (1 MiB), about 26,000 prior epochs of 40 bytes. A
/// configuration with more could not be sent in a `Prepare` or
/// `CommitAdvance`, so no peer can make a node store one.
pub const MAX_SEALED_DATA_LEN: usize = MAX_PEER_MSG_LEN;

/// The longest part number or serial number of a stored id, in bytes: 256.
/// Real baseboard part and serial numbers are about a dozen characters.
pub const MAX_ID_FIELD_LEN: usize = 256;
