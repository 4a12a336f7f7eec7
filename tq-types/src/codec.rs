//! The binary encoding of peer messages, persistent state and simulator
//! logs: postcard, with a size limit and a typed decode error.
//!
//! Decoding arbitrary bytes never panics; anything that decodes re-encodes to
//! an equal value.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::messages::PeerMsg;

/// The largest encoded peer message accepted: far above the largest real
/// message (a 32-member configuration with thousands of sealed prior epochs).
pub const MAX_PEER_MSG_LEN: usize = 1 << 20;

/// Why bytes could not be decoded.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than the limit for this kind of value.
    #[error("encoded value is {len} bytes, over the limit of {limit}")]
    TooLong {
        /// The input length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a valid encoding.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// A valid value was followed by extra bytes.
    #[error("{0} trailing bytes after the encoded value")]
    TrailingBytes(usize),
}

/// Why a value could not be encoded (only for values whose serialization
/// itself fails, which no type of this crate does).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("cannot encode value: {0}")]
pub struct EncodeError(String);

/// Encodes any serializable value.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    postcard::to_stdvec(value).map_err(|e| EncodeError(e.to_string()))
}

/// Decodes a value from exactly `bytes`, which may be at most `limit` long.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLong { len: bytes.len(), limit });
    }
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

impl PeerMsg {
    /// Encodes this message for the wire.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        encode(self)
    }

    /// Decodes a message received from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes, MAX_PEER_MSG_LEN)
    }
}
