//! The on-disk layout of one state file: a fixed header, then the payload.
//!
//! | offset | size | field                                                  |
//! |-------:|-----:|--------------------------------------------------------|
//! |      0 |    8 | [`MAGIC`], `b"TQSTATE\0"`                              |
//! |      8 |    4 | format version, little-endian `u32` ([`FORMAT_VERSION`]) |
//! |     12 |    8 | generation, little-endian `u64`                        |
//! |     20 |    8 | payload length in bytes, little-endian `u64`           |
//! |     28 |   32 | BLAKE3 hash of bytes 8..28 followed by the payload     |
//! |     60 |    … | payload (opaque bytes)                                 |
//!
//! The checksum covers the version, the generation, the length and the
//! payload, so a flipped bit anywhere in the file is caught: in the magic or
//! version by comparison, in the length by the file size (or the size cap),
//! everywhere else by the checksum. A file must be exactly
//! [`HEADER_LEN`] + payload length bytes long.

use std::fmt;

use trust_quorum::node::MAX_PERSISTENT_STATE_LEN;

/// The first eight bytes of every state file.
pub const MAGIC: [u8; 8] = *b"TQSTATE\0";

/// The only format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Size of the header in bytes.
pub const HEADER_LEN: usize = 60;

/// The largest payload accepted, written or read
/// ([`MAX_PERSISTENT_STATE_LEN`], 64 MiB).
pub const MAX_PAYLOAD_LEN: usize = MAX_PERSISTENT_STATE_LEN;

/// The largest state file accepted: a header and a maximal payload.
pub const MAX_FILE_LEN: usize = HEADER_LEN + MAX_PAYLOAD_LEN;

/// Why the bytes of a state file are not a valid state file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum FormatError {
    /// The file is shorter than the header.
    TruncatedHeader {
        /// The file's length.
        len: u64,
    },
    /// The file does not start with [`MAGIC`].
    BadMagic {
        /// The first eight bytes found.
        found: [u8; 8],
    },
    /// The header names a format version other than [`FORMAT_VERSION`].
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// The header declares a payload longer than [`MAX_PAYLOAD_LEN`]; or, when
    /// encoding, the payload is longer than that.
    PayloadTooLarge {
        /// The declared (or given) payload length.
        len: u64,
    },
    /// The file is longer than [`MAX_FILE_LEN`] (detected before reading it).
    FileTooLarge {
        /// The file's length.
        len: u64,
    },
    /// The file is shorter than the header says.
    Truncated {
        /// The file's length.
        len: u64,
        /// The length the header implies.
        expected: u64,
    },
    /// The file is longer than the header says.
    TrailingData {
        /// The file's length.
        len: u64,
        /// The length the header implies.
        expected: u64,
    },
    /// The checksum does not match the header and payload.
    ChecksumMismatch,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TruncatedHeader { len } => {
                write!(f, "truncated header ({len} of {HEADER_LEN} bytes)")
            }
            Self::BadMagic { found } => write!(
                f,
                "wrong magic (found 0x{}, expected 0x{})",
                hex::encode(found),
                hex::encode(MAGIC)
            ),
            Self::UnsupportedVersion { found } => write!(
                f,
                "unsupported format version {found} (this build reads version {FORMAT_VERSION})"
            ),
            Self::PayloadTooLarge { len } => {
                write!(f, "payload of {len} bytes exceeds the limit of {MAX_PAYLOAD_LEN} bytes")
            }
            Self::FileTooLarge { len } => {
                write!(f, "file of {len} bytes exceeds the limit of {MAX_FILE_LEN} bytes")
            }
            Self::Truncated { len, expected } => write!(f, "truncated ({len} of {expected} bytes)"),
            Self::TrailingData { len, expected } => {
                write!(f, "trailing data ({len} bytes, header declares {expected})")
            }
            Self::ChecksumMismatch => f.write_str("checksum mismatch"),
        }
    }
}

impl std::error::Error for FormatError {}

/// A decoded state file, borrowing its payload from the file's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Decoded<'a> {
    /// The generation recorded in the header.
    pub generation: u64,
    /// The payload.
    pub payload: &'a [u8],
}

/// Encodes a state file holding `payload` at `generation`.
///
/// Fails only if `payload` is longer than [`MAX_PAYLOAD_LEN`].
pub fn encode(generation: u64, payload: &[u8]) -> Result<Vec<u8>, FormatError> {
    let len = u64_len(payload.len());
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(FormatError::PayloadTooLarge { len });
    }
    let mut out = Vec::with_capacity(HEADER_LEN.saturating_add(payload.len()));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    let checksum = checksum(FORMAT_VERSION, generation, len, payload);
    out.extend_from_slice(&checksum);
    out.extend_from_slice(payload);
    Ok(out)
}

/// Decodes and verifies the bytes of a whole state file.
///
/// Checks, in order: the header is complete, the magic, the version, the
/// declared length against [`MAX_PAYLOAD_LEN`], the file size against the
/// declared length, and the checksum. Never panics.
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, FormatError> {
    let file_len = u64_len(bytes.len());
    if bytes.len() > MAX_FILE_LEN {
        return Err(FormatError::FileTooLarge { len: file_len });
    }
    let truncated_header = FormatError::TruncatedHeader { len: file_len };
    let mut rest = bytes;
    let magic: [u8; 8] = take(&mut rest).ok_or_else(|| truncated_header.clone())?;
    let version: [u8; 4] = take(&mut rest).ok_or_else(|| truncated_header.clone())?;
    let generation: [u8; 8] = take(&mut rest).ok_or_else(|| truncated_header.clone())?;
    let len: [u8; 8] = take(&mut rest).ok_or_else(|| truncated_header.clone())?;
    let stored_checksum: [u8; 32] = take(&mut rest).ok_or(truncated_header)?;
    let payload = rest;

    if magic != MAGIC {
        // A file shorter than the header was rejected above, so a wrong magic
        // here is a genuinely foreign or damaged file.
        return Err(FormatError::BadMagic { found: magic });
    }
    let version = u32::from_le_bytes(version);
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion { found: version });
    }
    let generation = u64::from_le_bytes(generation);
    let len = u64::from_le_bytes(len);
    let expected = match usize::try_from(len) {
        Ok(n) if n <= MAX_PAYLOAD_LEN => u64_len(HEADER_LEN.saturating_add(n)),
        _ => return Err(FormatError::PayloadTooLarge { len }),
    };
    if file_len < expected {
        return Err(FormatError::Truncated { len: file_len, expected });
    }
    if file_len > expected {
        return Err(FormatError::TrailingData { len: file_len, expected });
    }
    if checksum(version, generation, len, payload) != stored_checksum {
        return Err(FormatError::ChecksumMismatch);
    }
    Ok(Decoded { generation, payload })
}

/// The BLAKE3 hash of the checked header fields followed by the payload.
fn checksum(version: u32, generation: u64, len: u64, payload: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&version.to_le_bytes());
    hasher.update(&generation.to_le_bytes());
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    *hasher.finalize().as_bytes()
}

/// Splits the first `N` bytes off `rest`.
fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(*head)
}

/// A length as `u64` (lossless on every supported target).
pub(crate) fn u64_len(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let bytes = encode(7, b"abc").unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + 3);
        assert_eq!(&bytes[..8], b"TQSTATE\0");
        assert_eq!(&bytes[8..12], &1u32.to_le_bytes());
        assert_eq!(&bytes[12..20], &7u64.to_le_bytes());
        assert_eq!(&bytes[20..28], &3u64.to_le_bytes());
        let mut h = blake3::Hasher::new();
        h.update(&bytes[8..28]);
        h.update(b"abc");
        assert_eq!(&bytes[28..60], h.finalize().as_bytes());
        assert_eq!(decode(&bytes).unwrap(), Decoded { generation: 7, payload: b"abc" });
    }
}
