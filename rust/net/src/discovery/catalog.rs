//! The peer catalog: the newest signed entry of every known peer, merged
//! from syncs and purged when a peer stops refreshing it, with a bounded
//! number of peers. No I/O; the caller passes the time. Merging is split
//! into a cheap `screen` and an `insert` of entries whose signature the
//! caller verified in between, so that signatures are checked outside any
//! lock and only for entries that would change something. A full catalog
//! makes room for a peer met first-hand (it sent its own entry over an
//! authenticated connection) by dropping one only heard of second-hand,
//! so that fake identities cannot keep honest newcomers out.

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
    /// Bad signature, another network, or beyond the bounds of an entry.
    Rejected,
    /// A new peer while the catalog is full.
    Full,
}

/// What `screen` makes of an entry before its signature is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    /// Worth verifying: it would add a peer (`new`) or update one.
    Candidate { new: bool },
    /// Nothing to do, whatever its signature.
    Ignore,
    /// Refused without verifying.
    Reject,
}

/// Encoded bytes the entries of the catalog may take together (about 1,000
/// entries of the largest kind, or the whole peer cap of ordinary ones).
pub const MAX_CATALOG_BYTES: usize = 32 * 1024 * 1024;

struct Known {
    signed: SignedEntry,
    refreshed_at: Instant,
    /// The peer itself sent this entry over a connection it authenticated.
    first_hand: bool,
}

pub struct Catalog {
    local: PeerId,
    network: NetworkId,
    max_peers: usize,
    /// Sum of the entries' encoded size bounds.
    bytes: usize,
    peers: HashMap<PeerId, Known>,
    /// Highest version of each purged peer, kept for one ttl so that stale
    /// copies still travelling between other nodes do not bring it back.
    tombstones: HashMap<PeerId, (u64, Instant)>,
}

impl Catalog {
    pub fn new(local: PeerId, network: NetworkId, max_peers: usize) -> Self {
        Catalog {
            local,
            network,
            max_peers,
            bytes: 0,
            peers: HashMap::new(),
            tombstones: HashMap::new(),
        }
    }

    /// The cheap checks: network, bounds, own entry, purged or not newer.
    pub fn screen(&self, signed: &SignedEntry) -> Screen {
        let entry = &signed.entry;
        if entry.network_id != self.network || !signed.well_formed() {
            return Screen::Reject;
        }
        if entry.peer_id == self.local || self.is_tombstoned(entry) {
            return Screen::Ignore;
        }
        match self.peers.get(&entry.peer_id) {
            None => Screen::Candidate { new: true },
            Some(known) if known.signed.entry.version >= entry.version => Screen::Ignore,
            Some(_) => Screen::Candidate { new: false },
        }
    }

    /// Verifies and inserts one entry (for callers with a single entry).
    pub fn merge(&mut self, signed: SignedEntry, now: Instant, first_hand: bool) -> Merge {
        match self.screen(&signed) {
            Screen::Reject => Merge::Rejected,
            Screen::Ignore => Merge::Ignored,
            Screen::Candidate { .. } if !signed.verify() => Merge::Rejected,
            Screen::Candidate { .. } => self.insert_verified(signed, now, first_hand),
        }
    }

    fn is_full(&self, adding: usize) -> bool {
        self.peers.len() >= self.max_peers || self.bytes + adding > MAX_CATALOG_BYTES
    }

    /// Inserts an entry whose signature the caller has verified; screens it
    /// again, since the catalog may have changed since it was screened.
    /// `first_hand`: its own peer sent it.
    pub fn insert_verified(
        &mut self,
        signed: SignedEntry,
        now: Instant,
        first_hand: bool,
    ) -> Merge {
        let entry = &signed.entry;
        let size = signed.encoded_size_bound();
        let outcome = match (self.screen(&signed), self.peers.get(&entry.peer_id)) {
            (Screen::Reject, _) => return Merge::Rejected,
            (Screen::Ignore, _) => return Merge::Ignored,
            (_, None) => Merge::New,
            (_, Some(known)) if known.signed.entry.same_content(entry) => Merge::Refreshed,
            (_, Some(_)) => Merge::Changed,
        };
        if outcome == Merge::New
            && self.is_full(size)
            && !(first_hand && self.evict_second_hand(size))
        {
            return Merge::Full;
        }
        self.tombstones.remove(&entry.peer_id);
        let first_hand = first_hand || self.peers.get(&entry.peer_id).is_some_and(|k| k.first_hand);
        self.bytes += size;
        let replaced = self.peers.insert(
            entry.peer_id,
            Known {
                signed,
                refreshed_at: now,
                first_hand,
            },
        );
        if let Some(old) = replaced {
            self.bytes -= old.signed.encoded_size_bound();
        }
        outcome
    }

    /// Drops entries heard of only second-hand until `adding` more bytes
    /// and one more peer fit; false if they cannot be made to fit.
    fn evict_second_hand(&mut self, adding: usize) -> bool {
        while self.is_full(adding) {
            let Some(victim) = self
                .peers
                .iter()
                .find(|(_, k)| !k.first_hand)
                .map(|(p, _)| *p)
            else {
                return false;
            };
            if let Some(known) = self.peers.remove(&victim) {
                self.bytes -= known.signed.encoded_size_bound();
            }
        }
        true
    }

    /// Whether `peer`'s entry came from `peer` itself.
    pub fn is_first_hand(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|k| k.first_hand)
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
                self.bytes -= known.signed.encoded_size_bound();
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
            hints: vec![],
            version,
        }
        .sign(id)
    }

    fn catalog() -> Catalog {
        Catalog::new(PeerId([0; 32]), NetworkId::of(b"net"), 3)
    }

    impl Catalog {
        fn merge_test(&mut self, signed: SignedEntry, now: Instant) -> Merge {
            self.merge(signed, now, false)
        }
    }

    #[test]
    fn a_full_catalog_takes_no_new_second_hand_peer_but_still_updates_known_ones() {
        let (mut c, t) = (catalog(), Instant::now());
        let ids: Vec<Identity> = (0..4).map(|_| Identity::generate().unwrap()).collect();
        for id in &ids[..3] {
            assert_eq!(c.merge(signed(id, b"net", 1, 1), t, false), Merge::New);
        }
        assert_eq!(
            c.merge(signed(&ids[3], b"net", 1, 1), t, false),
            Merge::Full
        );
        assert_eq!(
            c.merge(signed(&ids[0], b"net", 2, 7), t, false),
            Merge::Changed
        );
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn a_peer_met_first_hand_displaces_one_heard_of_second_hand() {
        let (mut c, t) = (catalog(), Instant::now());
        for _ in 0..3 {
            c.merge(
                signed(&Identity::generate().unwrap(), b"net", 1, 1),
                t,
                false,
            );
        }
        let honest: Vec<Identity> = (0..4).map(|_| Identity::generate().unwrap()).collect();
        for id in &honest[..3] {
            assert_eq!(c.merge(signed(id, b"net", 1, 2), t, true), Merge::New);
            assert_eq!(c.len(), 3);
            assert!(c.is_first_hand(&id.peer_id()));
        }
        assert!(honest[..3].iter().all(|id| c.contains(&id.peer_id())));
        assert_eq!(
            c.merge(signed(&honest[3], b"net", 1, 2), t, true),
            Merge::Full,
            "first-hand peers are never dropped for others"
        );
    }

    #[test]
    fn screening_rejects_malformed_and_ignores_stale_entries_unverified() {
        let (mut c, id, t) = (catalog(), Identity::generate().unwrap(), Instant::now());
        let mut huge = signed(&id, b"net", 1, 1);
        huge.entry.addrs = vec!["127.0.0.1:1".parse().unwrap(); 100_000];
        assert_eq!(c.screen(&huge), Screen::Reject);
        c.merge_test(signed(&id, b"net", 5, 1), t);
        let mut stale_forgery = signed(&id, b"net", 4, 1);
        stale_forgery.signature = vec![0; 64];
        assert_eq!(c.screen(&stale_forgery), Screen::Ignore);
        assert_eq!(
            c.screen(&signed(&id, b"net", 6, 1)),
            Screen::Candidate { new: false }
        );
    }

    #[test]
    fn newer_versions_replace_older_ones() {
        let (mut c, id, t) = (catalog(), Identity::generate().unwrap(), Instant::now());
        assert_eq!(c.merge_test(signed(&id, b"net", 1, 1), t), Merge::New);
        assert_eq!(c.merge_test(signed(&id, b"net", 1, 1), t), Merge::Ignored);
        assert_eq!(c.merge_test(signed(&id, b"net", 2, 1), t), Merge::Refreshed);
        assert_eq!(c.merge_test(signed(&id, b"net", 3, 2), t), Merge::Changed);
        assert_eq!(c.merge_test(signed(&id, b"net", 2, 9), t), Merge::Ignored);
        assert_eq!(c.get(&id.peer_id()).unwrap().version, 3);
    }

    #[test]
    fn other_networks_and_bad_signatures_are_rejected() {
        let (mut c, id, t) = (catalog(), Identity::generate().unwrap(), Instant::now());
        assert_eq!(
            c.merge_test(signed(&id, b"other", 1, 1), t),
            Merge::Rejected
        );
        let mut forged = signed(&id, b"net", 1, 1);
        forged.entry.addrs[0] = "127.0.0.1:9".parse().unwrap();
        assert_eq!(c.merge_test(forged, t), Merge::Rejected);
        assert!(c.is_empty());
    }

    #[test]
    fn stale_entries_are_purged_and_not_resurrected_by_old_copies() {
        let (mut c, id, t) = (catalog(), Identity::generate().unwrap(), Instant::now());
        c.merge_test(signed(&id, b"net", 5, 1), t);
        let ttl = Duration::from_secs(10);
        assert!(c.purge(t + Duration::from_secs(5), ttl).is_empty());
        assert_eq!(c.purge(t + ttl, ttl), vec![id.peer_id()]);
        assert_eq!(
            c.merge_test(signed(&id, b"net", 5, 1), t + ttl),
            Merge::Ignored
        );
        assert_eq!(c.merge_test(signed(&id, b"net", 6, 1), t + ttl), Merge::New);
    }
}
