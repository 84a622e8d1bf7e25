//! The peer catalog: the newest signed entry of every known peer, merged
//! from syncs and purged when a peer stops refreshing it. No I/O; the
//! caller passes the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mosaik_core::{NetworkId, PeerId};

use super::entry::{PeerEntry, SignedEntry};

/// What a merge did with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// A peer we did not know.
    New,
    /// A newer version with other addresses or groups.
    Changed,
    /// A newer version with the same contents.
    Refreshed,
    /// Our own entry, or a version we already have (or purged).
    Ignored,
    /// Bad signature or another network.
    Rejected,
}

struct Known {
    signed: SignedEntry,
    refreshed_at: Instant,
}

pub struct Catalog {
    local: PeerId,
    network: NetworkId,
    peers: HashMap<PeerId, Known>,
    /// Highest version of each purged peer, kept for one ttl so that stale
    /// copies still travelling between other nodes do not bring it back.
    tombstones: HashMap<PeerId, (u64, Instant)>,
}

impl Catalog {
    pub fn new(local: PeerId, network: NetworkId) -> Self {
        Catalog {
            local,
            network,
            peers: HashMap::new(),
            tombstones: HashMap::new(),
        }
    }

    pub fn merge(&mut self, signed: SignedEntry, now: Instant) -> Merge {
        let entry = &signed.entry;
        if entry.network_id != self.network || !signed.verify() {
            return Merge::Rejected;
        }
        if entry.peer_id == self.local || self.is_tombstoned(entry) {
            return Merge::Ignored;
        }
        let outcome = match self.peers.get(&entry.peer_id) {
            None => Merge::New,
            Some(known) if known.signed.entry.version >= entry.version => return Merge::Ignored,
            Some(known) if known.signed.entry.same_content(entry) => Merge::Refreshed,
            Some(_) => Merge::Changed,
        };
        self.tombstones.remove(&entry.peer_id);
        self.peers.insert(
            entry.peer_id,
            Known {
                signed,
                refreshed_at: now,
            },
        );
        outcome
    }

    fn is_tombstoned(&self, entry: &PeerEntry) -> bool {
        self.tombstones
            .get(&entry.peer_id)
            .is_some_and(|(version, _)| entry.version <= *version)
    }

    /// Drops peers not refreshed within `ttl`; returns them.
    pub fn purge(&mut self, now: Instant, ttl: Duration) -> Vec<PeerId> {
        self.tombstones
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
        let stale: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, k)| now.saturating_duration_since(k.refreshed_at) >= ttl)
            .map(|(p, _)| *p)
            .collect();
        for peer in &stale {
            if let Some(known) = self.peers.remove(peer) {
                self.tombstones
                    .insert(*peer, (known.signed.entry.version, now));
            }
        }
        stale
    }

    pub fn get(&self, peer: &PeerId) -> Option<&PeerEntry> {
        self.peers.get(peer).map(|k| &k.signed.entry)
    }

    pub fn contains(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = &PeerEntry> {
        self.peers.values().map(|k| &k.signed.entry)
    }

    pub fn signed_entries(&self) -> impl Iterator<Item = &SignedEntry> {
        self.peers.values().map(|k| &k.signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn signed(id: &Identity, network: &[u8], version: u64, port: u16) -> SignedEntry {
        PeerEntry {
            peer_id: id.peer_id(),
            network_id: NetworkId::of(network),
            addrs: vec![format!("127.0.0.1:{port}").parse().unwrap()],
            groups: vec![],
            version,
        }
        .sign(id)
    }

    fn catalog() -> Catalog {
        Catalog::new(PeerId([0; 32]), NetworkId::of(b"net"))
    }

    #[test]
    fn newer_versions_replace_older_ones() {
        let (mut c, id, t) = (catalog(), Identity::generate().unwrap(), Instant::now());
        assert_eq!(c.merge(signed(&id, b"net", 1, 1), t), Merge::New);
        assert_eq!(c.merge(signed(&id, b"net", 1, 1), t), Merge::Ignored);
        assert_eq!(c.merge(signed(&id, b"net", 2, 1), t), Merge::Refreshed);
        assert_eq!(c.merge(signed(&id, b"net", 3, 2), t), Merge::Changed);
        assert_eq!(c.merge(signed(&id, b"net", 2, 9), t), Merge::Ignored);
        assert_eq!(c.get(&id.peer_id()).unwrap().version, 3);
    }

    #[test]
    fn other_networks_and_bad_signatures_are_rejected() {
        let (mut c, id, t) = (catalog(), Identity::generate().unwrap(), Instant::now());
        assert_eq!(c.merge(signed(&id, b"other", 1, 1), t), Merge::Rejected);
        let mut forged = signed(&id, b"net", 1, 1);
        forged.entry.addrs[0] = "127.0.0.1:9".parse().unwrap();
        assert_eq!(c.merge(forged, t), Merge::Rejected);
        assert!(c.is_empty());
    }

    #[test]
    fn stale_entries_are_purged_and_not_resurrected_by_old_copies() {
        let (mut c, id, t) = (catalog(), Identity::generate().unwrap(), Instant::now());
        c.merge(signed(&id, b"net", 5, 1), t);
        let ttl = Duration::from_secs(10);
        assert!(c.purge(t + Duration::from_secs(5), ttl).is_empty());
        assert_eq!(c.purge(t + ttl, ttl), vec![id.peer_id()]);
        assert_eq!(c.merge(signed(&id, b"net", 5, 1), t + ttl), Merge::Ignored);
        assert_eq!(c.merge(signed(&id, b"net", 6, 1), t + ttl), Merge::New);
    }
}
