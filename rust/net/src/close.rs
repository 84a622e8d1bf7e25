//! QUIC application close codes used on the wire.

/// Finished normally.
pub const SUCCESS: u32 = 200;
/// The node is shutting down.
pub const GRACEFUL_SHUTDOWN: u32 = 204;
/// No handler for the negotiated ALPN.
pub const INVALID_ALPN: u32 = 100;
/// The remote belongs to another network.
pub const DIFFERENT_NETWORK: u32 = 101;
/// The operation was cancelled.
pub const CANCELLED: u32 = 102;
/// Garbage, an oversized frame or an unexpected message.
pub const PROTOCOL_VIOLATION: u32 = 400;
/// The remote is not in the peer catalog.
pub const UNKNOWN_PEER: u32 = 401;

/// Group bond handshake codes.
pub mod groups {
    pub const INVALID_HANDSHAKE: u32 = 30_400;
    pub const GROUP_NOT_FOUND: u32 = 30_404;
    pub const INVALID_PROOF: u32 = 30_405;
    pub const TIMEOUT: u32 = 30_408;
    pub const ALREADY_BONDED: u32 = 30_429;
}
