//! The lagging node's replay session, free of I/O: it learns which
//! committed range every peer holds, splits the gap into `batch_size`
//! chunks, and hands back fetched chunks in log order. The fetches run on
//! the shared scheduler (`fetch.rs`: one chunk in flight per peer, a
//! timed-out or refused chunk retried elsewhere); this module decides only
//! which peer may serve a chunk: one whose range holds it, the leader only
//! when no one else can.

use std::collections::BTreeMap;
use std::time::Duration;

use super::fetch::FetchScheduler;
use super::LogReplaySync;
use crate::entry::{Entry, Index, Term};
use crate::ids::PeerId;
use crate::wire::SyncMessage;

/// Committed range `first..=last` a peer holds, once it said so.
type Range = Option<(Index, Index)>;

/// A fetched chunk, ready to append after checking `prev_term`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub prev_term: Term,
    pub entries: Vec<Entry>,
}

/// How the gap is cut into chunks, and who leads.
#[derive(Debug, Clone, Copy)]
struct Plan {
    leader: PeerId,
    batch_size: u64,
    /// Where the chunks start counting: each is `batch_size` long from it.
    base: Index,
    /// Last index to fetch.
    target: Index,
}

impl Plan {
    /// The end of the chunk holding `start`: a chunk's rest (after a
    /// provider sent what fit in one message) ends where the chunk did.
    fn chunk_end(self, start: Index) -> Index {
        let chunk = (start - self.base) / self.batch_size;
        (self.base + (chunk + 1) * self.batch_size - 1).min(self.target)
    }

    fn chunks_from(self, next: Index) -> impl Iterator<Item = Index> {
        (next..=self.target).step_by(self.batch_size as usize)
    }

    /// A ready peer that holds the chunk, the leader only if no one else does.
    fn provider_for(self, fetch: &FetchScheduler<Index, Range>, start: Index) -> Option<PeerId> {
        let end = self.chunk_end(start);
        let mut candidates = fetch.ready().filter_map(|(peer, range)| {
            range
                .is_some_and(|(first, last)| first <= start && end <= last)
                .then_some(peer)
        });
        let first = candidates.next()?;
        if first != self.leader {
            return Some(first);
        }
        Some(candidates.next().unwrap_or(first))
    }
}

/// State of one catch-up: which chunks are missing, asked for, or fetched.
#[derive(Debug)]
pub struct ReplaySession {
    plan: Plan,
    /// First index not yet handed back.
    next: Index,
    /// Chunk starts waiting for a peer, and the fetches in flight.
    fetch: FetchScheduler<Index, Range>,
    fetched: BTreeMap<Index, Chunk>,
}

impl ReplaySession {
    /// A session fetching `from..=target`; returns it with the availability
    /// requests to send to every peer.
    pub fn start(
        leader: PeerId,
        peers: impl IntoIterator<Item = PeerId>,
        from: Index,
        target: Index,
        settings: LogReplaySync,
        now: Duration,
    ) -> (Self, Vec<(PeerId, SyncMessage)>) {
        let plan = Plan {
            leader,
            batch_size: settings.batch_size.max(1),
            base: from,
            target,
        };
        let mut fetch = FetchScheduler::new(
            peers.into_iter().map(|p| (p, None)),
            settings.fetch_timeout,
            now,
        );
        fetch.restart(plan.chunks_from(from));
        let requests = fetch
            .sources()
            .map(|(p, _)| (*p, SyncMessage::AvailabilityRequest))
            .collect();
        let session = ReplaySession {
            plan,
            next: from,
            fetch,
            fetched: BTreeMap::new(),
        };
        (session, requests)
    }

    pub fn leader(&self) -> PeerId {
        self.plan.leader
    }

    pub fn target(&self) -> Index {
        self.plan.target
    }

    /// First index not yet handed back.
    pub fn next(&self) -> Index {
        self.next
    }

    /// Whether a peer that said what it holds can serve the next chunk.
    pub fn covers_next(&self) -> bool {
        self.fetch.sources().any(|(_, p)| {
            !p.is_failed()
                && p.info
                    .is_some_and(|(first, last)| first <= self.next && self.next <= last)
        })
    }

    /// Goes on from `next` (a snapshot covered everything before it):
    /// pending chunks are dropped and the rest of the gap split again.
    pub fn rebase(&mut self, next: Index) {
        self.next = next;
        self.plan.base = next;
        self.fetched.clear();
        self.fetch.restart(self.plan.chunks_from(next));
    }

    /// Everything up to `target` was handed back.
    pub fn is_done(&self) -> bool {
        self.next > self.plan.target
    }

    /// No fetch in flight, none possible, and patience ran out.
    pub fn is_stuck(&self, now: Duration) -> bool {
        self.fetch.is_out_of_patience(now)
            && !self
                .fetch
                .pool()
                .iter()
                .any(|c| self.plan.provider_for(&self.fetch, *c).is_some())
    }

    /// What a peer holds now; a fresh answer makes a failed peer usable again.
    pub fn on_availability(&mut self, from: PeerId, first: Index, last: Index) {
        let range = (last >= first && last > 0).then_some((first, last));
        self.fetch.renew(from, range);
    }

    /// A fetched batch; an empty or misplaced one puts the chunk back for
    /// another peer. A provider may send only the chunk's first entries
    /// (what fits in one message): the rest goes back to the pool as a
    /// chunk of its own.
    pub fn on_batch(&mut self, from: PeerId, start: Index, prev_term: Term, entries: Vec<Entry>) {
        if !self.fetch.answered(from, start) {
            return;
        }
        let end = self.plan.chunk_end(start);
        let count = entries.len() as Index;
        let well_placed = count > 0
            && count <= end + 1 - start
            && entries
                .iter()
                .zip(start..)
                .all(|(entry, index)| entry.index == index);
        if !well_placed {
            self.fetch.refused(from, start);
            return;
        }
        if start + count <= end {
            self.fetch.requeue(start + count);
        }
        self.fetched.insert(start, Chunk { prev_term, entries });
    }

    pub fn peer_removed(&mut self, peer: PeerId) {
        self.fetch.remove_source(peer);
    }

    /// Fetches past their deadline go back to the pool; their peer is not asked again.
    pub fn expire(&mut self, now: Duration) {
        self.fetch.expire(now);
    }

    /// Fetch requests for as many chunks as there are idle providers.
    pub fn assign(&mut self, now: Duration) -> Vec<(PeerId, SyncMessage)> {
        let plan = self.plan;
        self.fetch
            .assign(now, |fetch, start| plan.provider_for(fetch, start))
            .into_iter()
            .map(|(peer, start)| {
                let to = plan.chunk_end(start);
                (peer, SyncMessage::Fetch { from: start, to })
            })
            .collect()
    }

    /// The next chunk in log order, once fetched.
    pub fn take_next(&mut self) -> Option<Chunk> {
        let chunk = self.fetched.remove(&self.next)?;
        self.next += chunk.entries.len() as Index;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryKind;

    fn peer(n: u8) -> PeerId {
        PeerId([n; 32])
    }

    fn entries(from: Index, to: Index) -> Vec<Entry> {
        (from..=to)
            .map(|index| Entry {
                term: 1,
                index,
                kind: EntryKind::Marker,
            })
            .collect()
    }

    fn settings() -> LogReplaySync {
        LogReplaySync {
            batch_size: 10,
            fetch_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_gap_is_split_over_peers_with_the_leader_last() {
        let (mut session, asks) = ReplaySession::start(
            peer(1),
            [peer(1), peer(2), peer(3)],
            1,
            25,
            settings(),
            Duration::ZERO,
        );
        assert_eq!(asks.len(), 3);
        for p in [1, 2, 3] {
            session.on_availability(peer(p), 1, 30);
        }
        let fetches = session.assign(Duration::ZERO);
        let targets: Vec<PeerId> = fetches.iter().map(|(p, _)| *p).collect();
        assert_eq!(targets, vec![peer(2), peer(3), peer(1)]);
        assert!(
            session.assign(Duration::ZERO).is_empty(),
            "one request in flight per peer"
        );
    }

    #[test]
    fn a_timed_out_fetch_is_retried_at_another_peer() {
        let (mut session, _) = ReplaySession::start(
            peer(1),
            [peer(1), peer(2)],
            1,
            5,
            settings(),
            Duration::ZERO,
        );
        session.on_availability(peer(1), 1, 5);
        session.on_availability(peer(2), 1, 5);
        assert_eq!(session.assign(Duration::ZERO)[0].0, peer(2));
        session.expire(Duration::from_secs(2));
        let retry = session.assign(Duration::from_secs(2));
        assert_eq!(retry[0].0, peer(1));
        session.on_batch(peer(1), 1, 0, entries(1, 5));
        assert_eq!(session.take_next().unwrap().entries.len(), 5);
        assert!(session.is_done());
    }

    #[test]
    fn chunks_come_back_in_log_order() {
        let (mut session, _) = ReplaySession::start(
            peer(1),
            [peer(2), peer(3)],
            1,
            20,
            settings(),
            Duration::ZERO,
        );
        session.on_availability(peer(2), 1, 20);
        session.on_availability(peer(3), 1, 20);
        session.assign(Duration::ZERO);
        session.on_batch(peer(3), 11, 1, entries(11, 20));
        assert!(session.take_next().is_none());
        session.on_batch(peer(2), 1, 0, entries(1, 10));
        assert_eq!(session.take_next().unwrap().entries[0].index, 1);
        assert_eq!(session.take_next().unwrap().entries[0].index, 11);
        assert!(session.is_done());
    }

    #[test]
    fn a_session_without_providers_gets_stuck() {
        let (session, _) =
            ReplaySession::start(peer(1), [peer(2)], 1, 20, settings(), Duration::ZERO);
        assert!(!session.is_stuck(Duration::ZERO));
        assert!(session.is_stuck(Duration::from_secs(1)));
    }
}
