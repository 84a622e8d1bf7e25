//! The lagging node's snapshot fetch, free of I/O: when no peer's log
//! reaches back to the start of the gap, the node fetches the newest
//! snapshot its peers offer, in `SNAPSHOT_CHUNK` pieces spread over every
//! peer that offers the same one (same position, digest and size), one
//! piece in flight per peer. The assembled bytes must match the digest; if
//! they do not, the fetch starts over from one holder at a time, so one
//! peer serving garbage cannot stop the node from catching up.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::LogReplaySync;
use crate::ids::{Digest, PeerId};
use crate::storage::{Snapshot, SnapshotMeta};
use crate::wire::SyncMessage;

/// Bytes of one snapshot piece (well under the frame limit).
pub const SNAPSHOT_CHUNK: u64 = 1 << 20;

#[derive(Debug, Default, Clone, Copy)]
struct Holder {
    /// Offset of the piece in flight and its deadline.
    inflight: Option<(u64, Duration)>,
    /// Timed out or answered wrongly: not asked again in this attempt.
    failed: bool,
}

/// State of one snapshot fetch.
#[derive(Debug)]
pub struct SnapshotFetch {
    meta: SnapshotMeta,
    fetch_timeout: Duration,
    holders: BTreeMap<PeerId, Holder>,
    /// After a failed assembly only this holder serves the next attempt.
    solo: Option<PeerId>,
    /// Holders that already served an attempt alone.
    tried_solo: BTreeSet<PeerId>,
    unassigned: BTreeSet<u64>,
    pieces: BTreeMap<u64, Bytes>,
    /// Give up if nothing can be fetched by then.
    patience: Duration,
}

impl SnapshotFetch {
    /// A fetch of the snapshot `meta` from `holders`.
    pub fn start(
        meta: SnapshotMeta,
        holders: impl IntoIterator<Item = PeerId>,
        settings: LogReplaySync,
        now: Duration,
    ) -> Self {
        let mut fetch = SnapshotFetch {
            meta,
            fetch_timeout: settings.fetch_timeout,
            holders: holders
                .into_iter()
                .map(|p| (p, Holder::default()))
                .collect(),
            solo: None,
            tried_solo: BTreeSet::new(),
            unassigned: BTreeSet::new(),
            pieces: BTreeMap::new(),
            patience: now + settings.fetch_timeout,
        };
        fetch.restart();
        fetch
    }

    pub fn meta(&self) -> SnapshotMeta {
        self.meta
    }

    /// Another peer offers the same snapshot.
    pub fn add_holder(&mut self, peer: PeerId) {
        self.holders.entry(peer).or_default();
    }

    pub fn peer_removed(&mut self, peer: PeerId) {
        if let Some(holder) = self.holders.remove(&peer) {
            if let Some((offset, _)) = holder.inflight {
                self.unassigned.insert(offset);
            }
        }
    }

    /// Pieces past their deadline go back to the pool; their peer is not asked again.
    pub fn expire(&mut self, now: Duration) {
        for holder in self.holders.values_mut() {
            if let Some((offset, deadline)) = holder.inflight {
                if now >= deadline {
                    holder.inflight = None;
                    holder.failed = true;
                    self.unassigned.insert(offset);
                }
            }
        }
    }

    /// Nothing in flight and no holder left to ask: the offer is spent.
    pub fn is_exhausted(&self) -> bool {
        self.holders.values().all(|h| h.inflight.is_none()) && self.idle_holder().is_none()
    }

    /// Nothing in flight, no holder left to ask, and patience ran out.
    pub fn is_stuck(&self, now: Duration) -> bool {
        let idle = self.holders.values().all(|h| h.inflight.is_none());
        idle && now >= self.patience && self.idle_holder().is_none()
    }

    fn may_serve(&self, peer: &PeerId, holder: &Holder) -> bool {
        !holder.failed && self.solo.is_none_or(|solo| solo == *peer)
    }

    fn idle_holder(&self) -> Option<PeerId> {
        self.holders
            .iter()
            .find(|(peer, h)| h.inflight.is_none() && self.may_serve(peer, h))
            .map(|(peer, _)| *peer)
    }

    /// Piece requests for as many pieces as there are idle holders.
    pub fn assign(&mut self, now: Duration) -> Vec<(PeerId, SyncMessage)> {
        let mut requests = Vec::new();
        while let Some(&offset) = self.unassigned.first() {
            let Some(peer) = self.idle_holder() else {
                break;
            };
            let deadline = now + self.fetch_timeout;
            if let Some(holder) = self.holders.get_mut(&peer) {
                holder.inflight = Some((offset, deadline));
            }
            self.unassigned.remove(&offset);
            self.patience = self.patience.max(deadline);
            let len = SNAPSHOT_CHUNK.min(self.meta.size - offset);
            let message = SyncMessage::SnapshotFetch {
                digest: self.meta.digest,
                offset,
                len,
            };
            requests.push((peer, message));
        }
        requests
    }

    /// A piece arrived; a short, empty or unexpected one fails its peer.
    pub fn on_piece(&mut self, from: PeerId, digest: Digest, offset: u64, data: Bytes) {
        let Some(holder) = self.holders.get_mut(&from) else {
            return;
        };
        if digest != self.meta.digest || holder.inflight.map(|(o, _)| o) != Some(offset) {
            return;
        }
        holder.inflight = None;
        let expected = SNAPSHOT_CHUNK.min(self.meta.size - offset);
        if data.len() as u64 == expected {
            self.pieces.insert(offset, data);
        } else {
            holder.failed = true;
            self.unassigned.insert(offset);
        }
    }

    /// Every piece is in: the snapshot if its bytes match the digest.
    /// Otherwise the next attempt starts, served by one untried holder.
    pub fn take_complete(&mut self) -> Option<Snapshot> {
        if !self.unassigned.is_empty() || self.pieces.len() != piece_count(self.meta.size) {
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
            .holders
            .keys()
            .find(|p| !self.tried_solo.contains(*p))
            .copied();
        match next {
            Some(peer) => {
                self.solo = Some(peer);
                for holder in self.holders.values_mut() {
                    holder.failed = false;
                }
            }
            None => {
                for holder in self.holders.values_mut() {
                    holder.failed = true;
                }
            }
        }
        self.restart();
    }

    fn restart(&mut self) {
        self.pieces.clear();
        self.unassigned = (0..piece_count(self.meta.size) as u64)
            .map(|i| i * SNAPSHOT_CHUNK)
            .collect();
    }
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
