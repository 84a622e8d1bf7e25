//! The lagging node's snapshot fetch, free of I/O: when no peer's log
//! reaches back to the start of the gap, the node fetches the newest
//! snapshot its peers offer, in `SNAPSHOT_CHUNK` pieces spread over every
//! peer that offers the same one (same position, digest and size). The
//! pieces run on the shared scheduler (`fetch.rs`: one piece in flight per
//! peer, a timed-out or short piece retried elsewhere). The assembled bytes
//! must match the digest; if they do not, the fetch starts over from one
//! holder at a time, so one peer serving garbage cannot stop the node from
//! catching up.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::fetch::FetchScheduler;
use super::LogReplaySync;
use crate::ids::{Digest, PeerId};
use crate::storage::{Snapshot, SnapshotMeta};
use crate::wire::SyncMessage;

/// Bytes of one snapshot piece (well under the frame limit).
pub const SNAPSHOT_CHUNK: u64 = 1 << 20;

/// State of one snapshot fetch.
#[derive(Debug)]
pub struct SnapshotFetch {
    meta: SnapshotMeta,
    /// Piece offsets waiting for a holder, and the pieces in flight.
    fetch: FetchScheduler<u64, ()>,
    /// After a failed assembly only this holder serves the next attempt.
    solo: Option<PeerId>,
    /// Holders that already served an attempt alone.
    tried_solo: BTreeSet<PeerId>,
    pieces: BTreeMap<u64, Bytes>,
}

impl SnapshotFetch {
    /// A fetch of the snapshot `meta` from `holders`.
    pub fn start(
        meta: SnapshotMeta,
        holders: impl IntoIterator<Item = PeerId>,
        settings: LogReplaySync,
        now: Duration,
    ) -> Self {
        let holders = holders.into_iter().map(|p| (p, ()));
        let mut fetch = SnapshotFetch {
            meta,
            fetch: FetchScheduler::new(holders, settings.fetch_timeout, now),
            solo: None,
            tried_solo: BTreeSet::new(),
            pieces: BTreeMap::new(),
        };
        fetch.restart();
        fetch
    }

    pub fn meta(&self) -> SnapshotMeta {
        self.meta
    }

    /// Another peer offers the same snapshot.
    pub fn add_holder(&mut self, peer: PeerId) {
        self.fetch.add_source(peer, ());
    }

    pub fn peer_removed(&mut self, peer: PeerId) {
        self.fetch.remove_source(peer);
    }

    /// Pieces past their deadline go back to the pool; their peer is not asked again.
    pub fn expire(&mut self, now: Duration) {
        self.fetch.expire(now);
    }

    /// Nothing in flight and no holder left to ask: the offer is spent.
    pub fn is_exhausted(&self) -> bool {
        self.fetch.is_idle() && idle_holder(&self.fetch, self.solo).is_none()
    }

    /// Nothing in flight, no holder left to ask, and patience ran out.
    pub fn is_stuck(&self, now: Duration) -> bool {
        self.fetch.is_out_of_patience(now) && idle_holder(&self.fetch, self.solo).is_none()
    }

    /// Piece requests for as many pieces as there are idle holders.
    pub fn assign(&mut self, now: Duration) -> Vec<(PeerId, SyncMessage)> {
        let solo = self.solo;
        let (digest, size) = (self.meta.digest, self.meta.size);
        self.fetch
            .assign(now, |fetch, _| idle_holder(fetch, solo))
            .into_iter()
            .map(|(peer, offset)| {
                let len = SNAPSHOT_CHUNK.min(size - offset);
                let message = SyncMessage::SnapshotFetch {
                    digest,
                    offset,
                    len,
                };
                (peer, message)
            })
            .collect()
    }

    /// A piece arrived; a short, empty or unexpected one fails its peer.
    pub fn on_piece(&mut self, from: PeerId, digest: Digest, offset: u64, data: Bytes) {
        if digest != self.meta.digest || !self.fetch.answered(from, offset) {
            return;
        }
        let expected = SNAPSHOT_CHUNK.min(self.meta.size - offset);
        if data.len() as u64 == expected {
            self.pieces.insert(offset, data);
        } else {
            self.fetch.refused(from, offset);
        }
    }

    /// Every piece is in: the snapshot if its bytes match the digest.
    /// Otherwise the next attempt starts, served by one untried holder.
    pub fn take_complete(&mut self) -> Option<Snapshot> {
        if !self.fetch.pool().is_empty() || self.pieces.len() != piece_count(self.meta.size) {
            return None;
        }
        let mut data = BytesMut::with_capacity(self.meta.size as usize);
        for piece in std::mem::take(&mut self.pieces).into_values() {
            data.extend_from_slice(&piece);
        }
        let snapshot = Snapshot {
            meta: self.meta,
            data: data.freeze(),
        };
        if snapshot.is_intact() {
            return Some(snapshot);
        }
        self.next_attempt();
        None
    }

    fn next_attempt(&mut self) {
        if let Some(solo) = self.solo {
            self.tried_solo.insert(solo);
        }
        let next = self
            .fetch
            .sources()
            .map(|(p, _)| *p)
            .find(|p| !self.tried_solo.contains(p));
        // With an untried holder left it alone is asked; without, no one is.
        if let Some(peer) = next {
            self.solo = Some(peer);
        }
        self.fetch.set_all_failed(next.is_none());
        self.restart();
    }

    fn restart(&mut self) {
        self.pieces.clear();
        let offsets = (0..piece_count(self.meta.size) as u64).map(|i| i * SNAPSHOT_CHUNK);
        self.fetch.restart(offsets);
    }
}

/// The first holder that may be asked now (only `solo` while one is set).
fn idle_holder(fetch: &FetchScheduler<u64, ()>, solo: Option<PeerId>) -> Option<PeerId> {
    fetch
        .ready()
        .map(|(peer, _)| peer)
        .find(|peer| solo.is_none_or(|solo| solo == *peer))
}

fn piece_count(size: u64) -> usize {
    usize::try_from(size.div_ceil(SNAPSHOT_CHUNK)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::LogPosition;

    fn peer(n: u8) -> PeerId {
        PeerId([n; 32])
    }

    fn settings() -> LogReplaySync {
        LogReplaySync {
            batch_size: 10,
            fetch_timeout: Duration::from_secs(1),
        }
    }

    fn snapshot_of(size: usize) -> Snapshot {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        Snapshot::new(LogPosition::new(3, 700), Bytes::from(data))
    }

    fn piece(snapshot: &Snapshot, request: &SyncMessage) -> (u64, Bytes) {
        let SyncMessage::SnapshotFetch { offset, len, .. } = request else {
            panic!("not a piece request: {request:?}");
        };
        let end = (*offset + *len) as usize;
        (*offset, snapshot.data.slice(*offset as usize..end))
    }

    #[test]
    fn pieces_are_spread_over_every_holder() {
        let snapshot = snapshot_of(3 * SNAPSHOT_CHUNK as usize + 5);
        let mut fetch = SnapshotFetch::start(
            snapshot.meta,
            [peer(1), peer(2)],
            settings(),
            Duration::ZERO,
        );
        fetch.add_holder(peer(3));
        let mut rounds = 0;
        let done = loop {
            let requests = fetch.assign(Duration::ZERO);
            if rounds == 0 {
                let asked: BTreeSet<PeerId> = requests.iter().map(|(p, _)| *p).collect();
                assert_eq!(asked.len(), 3, "one piece in flight at each holder");
            }
            for (peer, request) in &requests {
                let (offset, data) = piece(&snapshot, request);
                fetch.on_piece(*peer, snapshot.meta.digest, offset, data);
            }
            rounds += 1;
            if let Some(done) = fetch.take_complete() {
                break done;
            }
            assert!(rounds < 10);
        };
        assert_eq!(done, snapshot);
    }

    #[test]
    fn garbage_from_one_peer_is_refetched_from_another_alone() {
        let snapshot = snapshot_of(2 * SNAPSHOT_CHUNK as usize);
        let mut fetch = SnapshotFetch::start(
            snapshot.meta,
            [peer(1), peer(2)],
            settings(),
            Duration::ZERO,
        );
        let mut attempts = 0;
        let done = loop {
            for (peer, request) in fetch.assign(Duration::ZERO) {
                let (offset, mut data) = piece(&snapshot, &request);
                if peer == peer_liar() {
                    data = Bytes::from(vec![0xAA; data.len()]);
                }
                fetch.on_piece(peer, snapshot.meta.digest, offset, data);
            }
            if let Some(done) = fetch.take_complete() {
                break done;
            }
            attempts += 1;
            assert!(attempts < 10, "never completed");
        };
        assert_eq!(done, snapshot);

        fn peer_liar() -> PeerId {
            peer(1)
        }
    }

    #[test]
    fn a_short_piece_fails_its_peer_and_a_fetch_without_holders_gets_stuck() {
        let snapshot = snapshot_of(10);
        let mut fetch = SnapshotFetch::start(snapshot.meta, [peer(1)], settings(), Duration::ZERO);
        let requests = fetch.assign(Duration::ZERO);
        assert_eq!(requests.len(), 1);
        fetch.on_piece(peer(1), snapshot.meta.digest, 0, Bytes::new());
        assert!(fetch.assign(Duration::ZERO).is_empty());
        assert!(!fetch.is_stuck(Duration::ZERO));
        assert!(fetch.is_stuck(Duration::from_secs(1)));
    }
}
