//! Framed links over a QUIC bidirectional stream.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of a
//! postcard-encoded message. Frames above the link's maximum, or bytes that
//! do not decode, close the connection with `PROTOCOL_VIOLATION` (400). A
//! frame's memory is taken as its bytes arrive, not when its length does.

use quinn::{Connection, RecvStream, SendStream, VarInt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::close;
use crate::error::NetError;

/// Default upper bound of one frame's payload.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;
/// A frame's buffer grows by at most this much ahead of the bytes received.
const READ_PIECE: usize = 64 * 1024;

/// Encodes one message as a length-prefixed frame.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, NetError> {
    let mut out = vec![0u8; 4];
    let mut out = postcard::to_extend(msg, std::mem::take(&mut out))
        .map_err(|e| NetError::Protocol(format!("encode: {e}")))?;
    let len = u32::try_from(out.len() - 4)
        .map_err(|_| NetError::Protocol("message too large to frame".into()))?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// The sending half of a link.
pub struct LinkSender {
    send: SendStream,
}

impl LinkSender {
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), NetError> {
        let frame = encode_frame(msg)?;
        self.send_frame(&frame).await
    }

    /// Writes a frame made by [`encode_frame`].
    pub async fn send_frame(&mut self, frame: &[u8]) -> Result<(), NetError> {
        self.send
            .write_all(frame)
            .await
            .map_err(|e| NetError::ConnectionLost(e.to_string()))
    }

    /// Signals the end of this direction of the stream.
    pub fn finish(&mut self) {
        let _ = self.send.finish();
    }
}

/// The receiving half of a link.
pub struct LinkReceiver {
    recv: RecvStream,
    conn: Connection,
    max_frame: usize,
    last_frame_len: usize,
    /// Bytes of frame bodies read so far, counted piece by piece as they
    /// arrive: it grows while a large frame is still on its way.
    received: Arc<AtomicU64>,
}

impl LinkReceiver {
    /// Reads and decodes the next message; on a protocol violation the
    /// connection is closed with 400 before the error is returned.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, NetError> {
        self.recv_or_close(close::PROTOCOL_VIOLATION).await
    }

    /// Like `recv`, closing with `code` when the bytes are not a message.
    pub async fn recv_or_close<T: DeserializeOwned>(&mut self, code: u32) -> Result<T, NetError> {
        let payload = self.recv_payload(code).await?;
        postcard::from_bytes(&payload)
            .map_err(|e| self.violation(code, format!("undecodable frame: {e}")))
    }

    /// Like `recv`, but `None` when the remote finished the stream at a
    /// frame boundary.
    pub async fn recv_or_end<T: DeserializeOwned>(&mut self) -> Result<Option<T>, NetError> {
        let mut len = [0u8; 4];
        match self.recv.read_exact(&mut len).await {
            Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
            Err(quinn::ReadExactError::FinishedEarly(_)) => {
                return Err(NetError::ConnectionLost("stream finished mid-frame".into()))
            }
            Err(quinn::ReadExactError::ReadError(e)) => return Err(read_error(e)),
            Ok(()) => {}
        }
        let code = close::PROTOCOL_VIOLATION;
        let payload = self
            .recv_body(u32::from_be_bytes(len) as usize, code)
            .await?;
        postcard::from_bytes(&payload)
            .map(Some)
            .map_err(|e| self.violation(code, format!("undecodable frame: {e}")))
    }

    /// A counter of the frame bytes read so far, for a task that wants to
    /// see a large frame making progress before it is whole.
    pub fn received(&self) -> Arc<AtomicU64> {
        self.received.clone()
    }

    /// Changes the largest frame accepted from now on.
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    async fn recv_payload(&mut self, code: u32) -> Result<Vec<u8>, NetError> {
        let mut len = [0u8; 4];
        self.read_exact(&mut len).await?;
        self.recv_body(u32::from_be_bytes(len) as usize, code).await
    }

    /// Reads a frame's payload of `len` bytes.
    async fn recv_body(&mut self, len: usize, code: u32) -> Result<Vec<u8>, NetError> {
        if len > self.max_frame {
            return Err(self.violation(
                code,
                format!(
                    "frame of {len} bytes exceeds the maximum of {}",
                    self.max_frame
                ),
            ));
        }
        let mut payload = Vec::with_capacity(len.min(READ_PIECE));
        while payload.len() < len {
            let start = payload.len();
            payload.resize(start + (len - start).min(READ_PIECE), 0);
            self.read_exact(&mut payload[start..]).await?;
            self.received
                .fetch_add((payload.len() - start) as u64, Ordering::Relaxed);
        }
        self.last_frame_len = len + 4;
        Ok(payload)
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), NetError> {
        self.recv.read_exact(buf).await.map_err(|e| match e {
            quinn::ReadExactError::FinishedEarly(_) => {
                NetError::ConnectionLost("stream finished".into())
            }
            quinn::ReadExactError::ReadError(e) => read_error(e),
        })
    }

    /// Bytes of the last frame received, length prefix included.
    pub fn last_frame_len(&self) -> usize {
        self.last_frame_len
    }

    /// Closes the connection with `code` and returns the protocol error.
    pub fn violation(&self, code: u32, why: String) -> NetError {
        self.conn.close(VarInt::from_u32(code), why.as_bytes());
        NetError::Protocol(why)
    }
}

fn read_error(e: quinn::ReadError) -> NetError {
    match e {
        quinn::ReadError::ConnectionLost(c) => connection_error(c),
        other => NetError::ConnectionLost(other.to_string()),
    }
}

/// Maps a connection failure, keeping the remote's application close code.
pub fn connection_error(e: quinn::ConnectionError) -> NetError {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => NetError::ClosedByPeer {
            code: c.error_code.into_inner(),
            reason: String::from_utf8_lossy(&c.reason).into_owned(),
        },
        other => NetError::ConnectionLost(other.to_string()),
    }
}

/// Splits a bidirectional stream into framed halves.
pub fn link(
    conn: &Connection,
    send: SendStream,
    recv: RecvStream,
    max_frame: usize,
) -> (LinkSender, LinkReceiver) {
    (
        LinkSender { send },
        LinkReceiver {
            recv,
            conn: conn.clone(),
            max_frame,
            last_frame_len: 0,
            received: Arc::new(AtomicU64::new(0)),
        },
    )
}

/// Opens a new bidirectional stream on `conn` as a framed link.
pub async fn open(
    conn: &Connection,
    max_frame: usize,
) -> Result<(LinkSender, LinkReceiver), NetError> {
    let (send, recv) = conn.open_bi().await.map_err(connection_error)?;
    Ok(link(conn, send, recv, max_frame))
}

/// Accepts the next bidirectional stream the remote opens on `conn`.
pub async fn accept(
    conn: &Connection,
    max_frame: usize,
) -> Result<(LinkSender, LinkReceiver), NetError> {
    let (send, recv) = conn.accept_bi().await.map_err(connection_error)?;
    Ok(link(conn, send, recv, max_frame))
}

/// Closes `conn` with an application code and a short reason.
pub fn close_with(conn: &Connection, code: u32, reason: &str) {
    conn.close(VarInt::from_u32(code), reason.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_big_endian_length_then_postcard() {
        let frame = encode_frame(&(7u8, String::from("hi"))).unwrap();
        assert_eq!(&frame[..4], &[0, 0, 0, 4]);
        assert_eq!(&frame[4..], &[7, 2, b'h', b'i']);
    }
}
