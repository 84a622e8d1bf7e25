//! mosaik-net: the I/O layer of mosaik. A QUIC endpoint per `Network`
//! (quinn + rustls, peers authenticated by ed25519 keys), framed links,
//! ALPN routing, admission and dial limits, peer discovery, group bonds and
//! the worker that drives the consensus core. Knows nothing of Python.

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
