//! Messages on a bond stream (ALPN `/mosaik/groups/1`).
//!
//! The initiator opens one bidirectional stream and sends `HandshakeStart`;
//! the acceptor answers `HandshakeEnd`. From then on both sides send the
//! remaining variants for the life of the bond.

use mosaik_core::{GroupId, NetworkId, PeerId};
use serde::{Deserialize, Serialize};

use crate::discovery::SignedEntry;

/// 32 bytes proving knowledge of the group secret for this TLS session.
pub type Proof = [u8; 32];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BondMessage {
    HandshakeStart {
        network_id: NetworkId,
        group_id: GroupId,
        proof: Proof,
        /// The sender's current bond peers in this group.
        bonds: Vec<PeerId>,
    },
    HandshakeEnd {
        proof: Proof,
        bonds: Vec<PeerId>,
    },
    Ping,
    Pong,
    /// The sender leaves the group; drop the bond at once.
    Departure,
    PeerEntryUpdate(SignedEntry),
    /// The sender formed a bond with `peer`.
    BondFormed {
        peer: PeerId,
    },
    /// A consensus message, opaque to the bond layer.
    Raft(Vec<u8>),
}
