//! Messages of the discovery protocol (ALPN `/mosaik/discovery/1`).
//!
//! The dialer sends `Hello` with its network id and every entry it holds
//! (its own first); the acceptor answers `Catalog` with all of its entries;
//! the dialer then closes with 200. An acceptor on another network closes
//! with 101 instead of answering.

use mosaik_core::NetworkId;
use serde::{Deserialize, Serialize};

use super::entry::SignedEntry;

#[derive(Debug, Serialize, Deserialize)]
pub enum DiscoveryMessage {
    Hello {
        network_id: NetworkId,
        entries: Vec<SignedEntry>,
    },
    Catalog {
        entries: Vec<SignedEntry>,
    },
}
