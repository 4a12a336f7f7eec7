//! The versioned encoding of the persistent state, decoding with
//! validation, and conversions to and from plain parts.

use tq_types::BaseboardId;
use tq_types::codec::{self, DecodeError, EncodeError};

use super::error::{InvalidPersistentState, PersistentStateError};
use super::limits::{
    MAX_PERSISTENT_STATE_LEN, PERSISTENT_CHECKSUM_CONTEXT, PERSISTENT_CHECKSUM_LEN,
    PERSISTENT_FORMAT_VERSION,
};
use super::validate::{self, Fields};
use super::{PersistentState, PersistentStateParts};

impl TryFrom<PersistentStateParts> for PersistentState {
    type Error = InvalidPersistentState;

    /// Checks every rule that does not need the node's id (see
    /// [`InvalidPersistentState`]).
    fn try_from(parts: PersistentStateParts) -> Result<Self, Self::Error> {
        validate::check(&parts_fields(&parts))?;
        let PersistentStateParts { authority, configs, shares, commits, certificates, expunged } =
            parts;
        Ok(Self { authority, configs, shares, commits, certificates, expunged })
    }
}

fn parts_fields(parts: &PersistentStateParts) -> Fields<'_> {
    Fields {
        authority: &parts.authority,
        configs: &parts.configs,
        shares: &parts.shares,
        commits: &parts.commits,
        certificates: &parts.certificates,
        expunged: parts.expunged.as_ref(),
    }
}

impl PersistentState {
    fn fields(&self) -> Fields<'_> {
        Fields {
            authority: &self.authority,
            configs: &self.configs,
            shares: &self.shares,
            commits: &self.commits,
            certificates: &self.certificates,
            expunged: self.expunged.as_ref(),
        }
    }

    /// A copy of the fields as plain data.
    pub fn to_parts(&self) -> PersistentStateParts {
        PersistentStateParts {
            authority: self.authority,
            configs: self.configs.clone(),
            shares: self.shares.clone(),
            commits: self.commits.clone(),
            certificates: self.certificates.clone(),
            expunged: self.expunged.clone(),
        }
    }

    /// A state from `parts` without any check: test-only (feature
    /// `harness`), to build states the library would never write and see
    /// that the node and the simulator catch them. Never use it on data read
    /// from a disk.
    #[cfg(feature = "harness")]
    pub fn from_parts_unchecked(parts: PersistentStateParts) -> Self {
        let PersistentStateParts { authority, configs, shares, commits, certificates, expunged } =
            parts;
        Self { authority, configs, shares, commits, certificates, expunged }
    }

    /// Checks the state for the node `me`: every rule of
    /// [`InvalidPersistentState`], including that every stored share is
    /// `me`'s own, matching `me`'s digest in its configuration.
    ///
    /// [`decode`](Self::decode) cannot know whose state it reads, so it
    /// checks each share against the member its x-coordinate names; this
    /// adds that the member is `me`. An embedder loading a state from disk
    /// calls it through
    /// [`NodeCtx::try_with_persistent_state`](crate::node::NodeCtx::try_with_persistent_state).
    pub fn validate(&self, me: &BaseboardId) -> Result<(), InvalidPersistentState> {
        let fields = self.fields();
        validate::check(&fields)?;
        validate::check_own_shares(&fields, me)
    }

    /// Encodes the state for durable storage: the byte
    /// [`PERSISTENT_FORMAT_VERSION`], the checksum, then the body, the
    /// postcard encoding of the fields (those of [`PersistentStateParts`],
    /// in that order).
    ///
    /// `decode(&s.encode()?) == Ok(s)` for every state `s` the library
    /// builds, and `decode(b) == Ok(s)` implies `s.encode() == Ok(b)`.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        Ok(frame(&codec::encode(self)?))
    }

    /// Frames an arbitrary `body` as format version 1 (version byte and
    /// checksum), so that [`decode`](Self::decode) gets past the checksum to
    /// the checks behind it: for fuzzing and tests (feature `harness`).
    #[cfg(feature = "harness")]
    pub fn frame_unchecked(body: &[u8]) -> Vec<u8> {
        frame(body)
    }

    /// Decodes and checks a state read back from durable storage.
    ///
    /// Refuses input over [`MAX_PERSISTENT_STATE_LEN`], a missing or unknown
    /// format version, a truncated header, a checksum mismatch, a malformed
    /// body, a non-canonical body (so that whatever decodes re-encodes to
    /// exactly the same bytes), and any state that breaks a rule of
    /// [`InvalidPersistentState`] that does not need the node's id. Never
    /// panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, PersistentStateError> {
        if bytes.len() > MAX_PERSISTENT_STATE_LEN {
            let limit = MAX_PERSISTENT_STATE_LEN;
            return Err(PersistentStateError::Codec(DecodeError::TooLong {
                len: bytes.len(),
                limit,
            }));
        }
        let (&version, rest) = bytes.split_first().ok_or(PersistentStateError::MissingVersion)?;
        if version != PERSISTENT_FORMAT_VERSION {
            return Err(PersistentStateError::UnsupportedVersion { found: version });
        }
        let (stored, body) = rest
            .split_first_chunk::<PERSISTENT_CHECKSUM_LEN>()
            .ok_or(PersistentStateError::Truncated { len: bytes.len() })?;
        if checksum(version, body) != *stored {
            return Err(PersistentStateError::ChecksumMismatch);
        }
        let parts: PersistentStateParts =
            codec::decode(body, MAX_PERSISTENT_STATE_LEN).map_err(PersistentStateError::Codec)?;
        // Postcard accepts inputs that re-encode differently (map keys out
        // of order or repeated, over-long integers): refuse them, so that
        // what decodes is exactly what the library would write.
        if codec::encode(&parts).ok().as_deref() != Some(body) {
            return Err(PersistentStateError::NonCanonical);
        }
        Self::try_from(parts).map_err(PersistentStateError::Invalid)
    }
}

/// The version byte, the checksum and `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let len = body.len().saturating_add(1).saturating_add(PERSISTENT_CHECKSUM_LEN);
    let mut out = Vec::with_capacity(len);
    out.push(PERSISTENT_FORMAT_VERSION);
    out.extend_from_slice(&checksum(PERSISTENT_FORMAT_VERSION, body));
    out.extend_from_slice(body);
    out
}

/// The checksum of format version 1: a BLAKE3 hash in derive-key mode over
/// the version byte and the body.
fn checksum(version: u8, body: &[u8]) -> [u8; PERSISTENT_CHECKSUM_LEN] {
    let mut hasher = blake3::Hasher::new_derive_key(PERSISTENT_CHECKSUM_CONTEXT);
    hasher.update(&[version]);
    hasher.update(body);
    *hasher.finalize().as_bytes()
}
