//! Peer-link framing: a `u32` big-endian length, then that many bytes of
//! [`PeerMsg::encode`] output.
//!
//! Before any frame, right after the TLS handshake, the dialer sends
//! [`HELLO`] and the acceptor answers with it once it has accepted the
//! connection (see [`crate::transport`]).
//!
//! A length above [`MAX_PEER_MSG_LEN`] is refused before any of the body is
//! read or allocated. Every [`FrameError`] from [`read_frame`] means the
//! stream can no longer be trusted: the caller closes that connection.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tq_types::PeerMsg;
use tq_types::codec::{DecodeError, EncodeError, MAX_PEER_MSG_LEN};

/// The size of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// The bytes each side sends once, before any frame: a magic and version.
pub const HELLO: [u8; 4] = *b"tq01";

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed or ended (possibly mid-frame).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The length prefix (or an outgoing message) exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    TooLong {
        /// The announced or actual length.
        len: u64,
        /// [`MAX_PEER_MSG_LEN`].
        limit: usize,
    },
    /// The body is not a valid peer message.
    #[error("undecodable frame: {0}")]
    Decode(#[from] DecodeError),
    /// The peer did not open with [`HELLO`].
    #[error("bad hello {0:02x?}")]
    BadHello([u8; 4]),
    /// The message could not be encoded.
    #[error("unencodable message: {0}")]
    Encode(#[from] EncodeError),
}

impl FrameError {
    /// Whether this error is the peer's fault (an oversized or undecodable
    /// frame) rather than the stream failing or ending.
    pub fn is_protocol_violation(&self) -> bool {
        matches!(self, FrameError::TooLong { .. } | FrameError::Decode(_) | FrameError::BadHello(_))
    }
}

/// Encodes `msg` as one frame (prefix and body).
pub fn encode_frame(msg: &PeerMsg) -> Result<Vec<u8>, FrameError> {
    let body = msg.encode()?;
    let too_long = || FrameError::TooLong {
        len: u64::try_from(body.len()).unwrap_or(u64::MAX),
        limit: MAX_PEER_MSG_LEN,
    };
    if body.len() > MAX_PEER_MSG_LEN {
        return Err(too_long());
    }
    let len = u32::try_from(body.len()).map_err(|_| too_long())?;
    let mut frame = Vec::with_capacity(body.len().saturating_add(LEN_PREFIX));
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Writes `msg` as one frame and flushes.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    msg: &PeerMsg,
) -> Result<(), FrameError> {
    let frame = encode_frame(msg)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Sends [`HELLO`] and flushes.
pub async fn write_hello<W: AsyncWrite + Unpin>(w: &mut W) -> Result<(), FrameError> {
    w.write_all(&HELLO).await?;
    w.flush().await?;
    Ok(())
}

/// Reads the peer's [`HELLO`].
pub async fn read_hello<R: AsyncRead + Unpin>(r: &mut R) -> Result<(), FrameError> {
    let mut hello = [0u8; HELLO.len()];
    r.read_exact(&mut hello).await?;
    if hello != HELLO {
        return Err(FrameError::BadHello(hello));
    }
    Ok(())
}

/// Reads one frame and decodes its message.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<PeerMsg, FrameError> {
    let mut prefix = [0u8; LEN_PREFIX];
    r.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix);
    let body_len = usize::try_from(len).unwrap_or(usize::MAX);
    if body_len > MAX_PEER_MSG_LEN {
        return Err(FrameError::TooLong { len: u64::from(len), limit: MAX_PEER_MSG_LEN });
    }
    let mut body = vec![0u8; body_len];
    r.read_exact(&mut body).await?;
    Ok(PeerMsg::decode(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tq_types::{Epoch, PeerMsgKind, RackId};

    fn msg() -> PeerMsg {
        let rack_id: RackId =
            serde_json::from_str("\"6a8e1c3e-2a3b-4c5d-8e9f-0123456789ab\"").unwrap();
        PeerMsg { rack_id, kind: PeerMsgKind::GetShare(Epoch(7)) }
    }

    #[tokio::test]
    async fn round_trip() {
        let frame = encode_frame(&msg()).unwrap();
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        let mut r = two.as_slice();
        assert_eq!(read_frame(&mut r).await.unwrap(), msg());
        assert_eq!(read_frame(&mut r).await.unwrap(), msg());
        assert!(matches!(read_frame(&mut r).await, Err(FrameError::Io(_))));
    }

    #[tokio::test]
    async fn oversized_prefix_refused_without_body() {
        let len = u32::try_from(MAX_PEER_MSG_LEN + 1).unwrap();
        // Only the prefix: a reader that waited for the body would hit EOF.
        let prefix = len.to_be_bytes();
        let err = read_frame(&mut prefix.as_slice()).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLong { .. }), "{err}");
        assert!(err.is_protocol_violation());
    }

    #[tokio::test]
    async fn garbage_and_truncated() {
        let mut garbage = 3u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(&[0xff, 0xff, 0xff]);
        let err = read_frame(&mut garbage.as_slice()).await.unwrap_err();
        assert!(matches!(err, FrameError::Decode(_)), "{err}");
        let mut truncated = encode_frame(&msg()).unwrap();
        truncated.pop();
        let err = read_frame(&mut truncated.as_slice()).await.unwrap_err();
        assert!(!err.is_protocol_violation(), "{err}");
    }
}
