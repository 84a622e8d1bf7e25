//! Messages of the discovery protocol (ALPN `/mosaik/discovery/1`).
//!
//! The dialer sends `Hello` with its network id and the first entries it
//! holds (its own first, which the acceptor requires), then `More` frames
//! with the rest, and finishes its side of the stream; the acceptor answers
//! the same way with `Catalog` and `More`; the dialer then closes with 200.
//! No frame holds more than `CHUNK_BYTES` of entries, so a catalog of any
//! size can be sent. An acceptor on another network closes with 101 instead
//! of answering.

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
    /// Further entries after a `Hello` or a `Catalog`.
    More {
        entries: Vec<SignedEntry>,
    },
}

/// Bytes of entries one frame carries at most (well below the frame limit).
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Splits `entries` into runs whose encoded size stays under `CHUNK_BYTES`
/// (each run holds at least one entry).
pub fn chunks(entries: Vec<SignedEntry>) -> Vec<Vec<SignedEntry>> {
    let mut out: Vec<Vec<SignedEntry>> = Vec::new();
    let mut size = 0;
    for entry in entries {
        let bound = entry.encoded_size_bound();
        match out.last_mut() {
            Some(run) if size + bound <= CHUNK_BYTES => {
                run.push(entry);
                size += bound;
            }
            _ => {
                out.push(vec![entry]);
                size = bound;
            }
        }
    }
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

/// The largest frame a discovery link accepts: one chunk and its framing.
pub const MAX_FRAME: usize = CHUNK_BYTES + 1024;
