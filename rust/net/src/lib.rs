//! mosaik-net: the I/O layer of mosaik. A QUIC endpoint per `Network`
//! (quinn + rustls, peers authenticated by ed25519 keys), framed links,
//! ALPN routing, admission and dial limits, peer discovery, and groups:
//! the bond handshake, each group's mesh of bonds, and the consensus
//! worker, one task per group, that drives mosaik-core's `RaftNode` (its
//! clock, its messages over the mesh's consensus port, the group's log
//! store made durable before a ready's messages leave) and hands
//! committed entries to the group's state machine through the `Applier`
//! port. Knows nothing of Python.

pub mod addr;
pub mod admission;
pub mod close;
pub mod dialing;
pub mod discovery;
pub mod endpoint;
pub mod error;
pub mod groups;
pub mod identity;
pub mod limits;
pub mod link;
pub mod metrics;
pub mod network;
pub mod tasks;
pub mod tls;

pub use addr::EndpointAddr;
pub use error::NetError;
pub use limits::Limits;
pub use network::{Network, NetworkConfig};
