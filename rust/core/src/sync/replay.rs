//! The lagging node's replay session, free of I/O: it learns which
//! committed range every peer holds, splits the gap into `batch_size`
//! chunks, keeps one fetch in flight per peer (the leader only when no one
//! else can serve), retries a timed-out or refused chunk elsewhere, and
//! hands back fetched chunks in log order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::LogReplaySync;
use crate::entry::{Entry, Index, Term};
use crate::ids::PeerId;
use crate::wire::SyncMessage;

#[derive(Debug, Default, Clone)]
struct Provider {
    /// Committed range `first..=last` the peer holds, once it said so.
    range: Option<(Index, Index)>,
    /// Start of the chunk in flight and its deadline.
    inflight: Option<(Index, Duration)>,
    /// Timed out or refused: not asked again in this session.
    failed: bool,
}

/// A fetched chunk, ready to append after checking `prev_term`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub prev_term: Term,
    pub entries: Vec<Entry>,
}

/// State of one catch-up: which chunks are missing, asked for, or fetched.
#[derive(Debug)]
pub struct ReplaySession {
    leader: PeerId,
    settings: LogReplaySync,
    /// First index not yet handed back.
    next: Index,
    /// Last index to fetch.
    target: Index,
    providers: BTreeMap<PeerId, Provider>,
    unassigned: BTreeSet<Index>,
    fetched: BTreeMap<Index, Chunk>,
    /// Give up if nothing can be fetched by then.
    patience: Duration,
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
        let batch = settings.batch_size.max(1);
        let providers: BTreeMap<PeerId, Provider> = peers
            .into_iter()
            .map(|p| (p, Provider::default()))
            .collect();
        let requests = providers
            .keys()
            .map(|p| (*p, SyncMessage::AvailabilityRequest))
            .collect();
        let session = ReplaySession {
            leader,
            settings: LogReplaySync {
                batch_size: batch,
                ..settings
            },
            next: from,
            target,
            providers,
            unassigned: (from..=target).step_by(batch as usize).collect(),
            fetched: BTreeMap::new(),
            patience: now + settings.fetch_timeout,
        };
        (session, requests)
    }

    pub fn leader(&self) -> PeerId {
        self.leader
    }

    pub fn target(&self) -> Index {
        self.target
    }

    /// First index not yet handed back.
    pub fn next(&self) -> Index {
        self.next
    }

    /// Whether a peer that said what it holds can serve the next chunk.
    pub fn covers_next(&self) -> bool {
        self.providers.values().any(|p| {
            !p.failed
                && p.range
                    .is_some_and(|(first, last)| first <= self.next && self.next <= last)
        })
    }

    /// Goes on from `next` (a snapshot covered everything before it):
    /// pending chunks are dropped and the rest of the gap split again.
    pub fn rebase(&mut self, next: Index) {
        self.next = next;
        self.fetched.clear();
        for provider in self.providers.values_mut() {
            provider.inflight = None;
        }
        let batch = self.settings.batch_size as usize;
        self.unassigned = (next..=self.target).step_by(batch).collect();
    }

    /// Everything up to `target` was handed back.
    pub fn is_done(&self) -> bool {
        self.next > self.target
    }

    /// No fetch in flight, none possible, and patience ran out.
    pub fn is_stuck(&self, now: Duration) -> bool {
        let idle = self.providers.values().all(|p| p.inflight.is_none());
        idle && now >= self.patience
            && !self
                .unassigned
                .iter()
                .any(|c| self.provider_for(*c).is_some())
    }

    fn chunk_end(&self, start: Index) -> Index {
        (start + self.settings.batch_size - 1).min(self.target)
    }

    /// What a peer holds now; a fresh answer makes a failed peer usable again.
    pub fn on_availability(&mut self, from: PeerId, first: Index, last: Index) {
        if let Some(provider) = self.providers.get_mut(&from) {
            provider.range = (last >= first && last > 0).then_some((first, last));
            provider.failed = false;
        }
    }

    /// A fetched batch; an empty or misplaced one puts the chunk back for another peer.
    pub fn on_batch(&mut self, from: PeerId, start: Index, prev_term: Term, entries: Vec<Entry>) {
        let Some(provider) = self.providers.get_mut(&from) else {
            return;
        };
        if provider.inflight.map(|(s, _)| s) != Some(start) {
            return;
        }
        provider.inflight = None;
        let end = (start + self.settings.batch_size - 1).min(self.target);
        let complete = entries.len() as Index == end + 1 - start
            && entries
                .iter()
                .zip(start..)
                .all(|(entry, index)| entry.index == index);
        if complete {
            self.fetched.insert(start, Chunk { prev_term, entries });
        } else {
            provider.failed = true;
            self.unassigned.insert(start);
        }
    }

    pub fn peer_removed(&mut self, peer: PeerId) {
        if let Some(provider) = self.providers.remove(&peer) {
            if let Some((start, _)) = provider.inflight {
                self.unassigned.insert(start);
            }
        }
    }

    /// Fetches past their deadline go back to the pool; their peer is not asked again.
    pub fn expire(&mut self, now: Duration) {
        for provider in self.providers.values_mut() {
            if let Some((start, deadline)) = provider.inflight {
                if now >= deadline {
                    provider.inflight = None;
                    provider.failed = true;
                    self.unassigned.insert(start);
                }
            }
        }
    }

    /// An idle peer that holds the chunk, the leader only if no one else does.
    fn provider_for(&self, start: Index) -> Option<PeerId> {
        let end = self.chunk_end(start);
        let can_serve = |(peer, p): (&PeerId, &Provider)| {
            let holds = p
                .range
                .is_some_and(|(first, last)| first <= start && end <= last);
            (holds && !p.failed && p.inflight.is_none()).then_some(*peer)
        };
        let mut candidates = self.providers.iter().filter_map(can_serve);
        let first = candidates.next()?;
        if first != self.leader {
            return Some(first);
        }
        Some(candidates.next().unwrap_or(first))
    }

    /// Fetch requests for as many chunks as there are idle providers.
    pub fn assign(&mut self, now: Duration) -> Vec<(PeerId, SyncMessage)> {
        let mut requests = Vec::new();
        let starts: Vec<Index> = self.unassigned.iter().copied().collect();
        for start in starts {
            let Some(peer) = self.provider_for(start) else {
                continue;
            };
            let deadline = now + self.settings.fetch_timeout;
            if let Some(provider) = self.providers.get_mut(&peer) {
                provider.inflight = Some((start, deadline));
            }
            self.unassigned.remove(&start);
            self.patience = self.patience.max(deadline);
            requests.push((
                peer,
                SyncMessage::Fetch {
                    from: start,
                    to: self.chunk_end(start),
                },
            ));
        }
        requests
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
