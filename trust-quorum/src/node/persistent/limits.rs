//! The persistent state's format version and size bounds.
//!
//! The library never stores more than these bounds: it keeps at most three
//! epochs (`retention.rs`), and refuses ids and sealed data over their caps
//! before storing a configuration. Decoding checks them again, so that a
//! corrupt or forged state cannot make the node hold or process unbounded
//! data.

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

/// The most configurations a state holds: 3, the newest committed one, the
/// newest one, and the one the newest builds on while it is not yet
/// committed on this node (docs/protocol.md section 2.4).
pub const MAX_CONFIGS: usize = super::retention::RETAINED_EPOCHS;

/// The most shares a state holds: one per stored configuration at most.
pub const MAX_SHARES: usize = MAX_CONFIGS;

/// The most committed epochs a state holds: only the newest is kept.
pub const MAX_COMMITS: usize = 1;

/// The longest sealed prior-secret data of one configuration:
/// [`MAX_PEER_MSG_LEN`] (1 MiB), about 26,000 prior epochs of 40 bytes. A
/// configuration with more could not be sent in a `Prepare` or
/// `CommitAdvance`, so no peer can make a node store one.
pub const MAX_SEALED_DATA_LEN: usize = MAX_PEER_MSG_LEN;

/// The longest part number or serial number of a stored id, in bytes: 256.
/// Real baseboard part and serial numbers are about a dozen characters.
pub const MAX_ID_FIELD_LEN: usize = 256;
