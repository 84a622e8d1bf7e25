//! Peer discovery: every node publishes a signed entry and exchanges its
//! catalog with bootstrap peers, with whoever dials it, with all known peers
//! when something new is learned, and with a few random peers every gossip
//! interval. Entries not refreshed within the ttl are purged.

pub mod catalog;
pub mod entry;
mod service;
pub mod wire;

pub use catalog::{Catalog, Merge};
pub use entry::{GroupHint, PeerEntry, SignedEntry};
pub use service::{Discovery, DiscoveryConfig, DiscoveryMetrics};
