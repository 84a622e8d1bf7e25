//! The one error type of mosaik-net.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum NetError {
    /// A setting given by the user is invalid; the message names it.
    #[error("{0}")]
    Config(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("could not connect to {peer}: {reason}")]
    Connect { peer: String, reason: String },
    /// The remote closed the connection with an application code.
    #[error("closed by peer with code {code}: {reason}")]
    ClosedByPeer { code: u64, reason: String },
    /// We closed the link after the remote broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    #[error("the network is closed")]
    Closed,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl NetError {
    /// The application close code, when the failure carried one.
    pub fn close_code(&self) -> Option<u64> {
        match self {
            NetError::ClosedByPeer { code, .. } => Some(*code),
            _ => None,
        }
    }
}
