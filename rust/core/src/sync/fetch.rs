//! The fetch scheduler that log replay and snapshot fetches share, free of
//! I/O: a pool of work items (a chunk's first index, a piece's offset),
//! the peers that may serve them, at most one item in flight per peer
//! with a deadline of `fetch_timeout`, and the retry rule: an item whose
//! fetch timed out or was answered wrongly goes back to the pool and its
//! peer is not asked again until the caller says otherwise. Which peer may
//! serve which item is the caller's choice, passed to `assign`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::ids::PeerId;

/// One peer: what the caller knows of it, and the fetch it is serving.
#[derive(Debug, Clone)]
pub(super) struct Source<K, P> {
    /// The caller's knowledge of the peer (the range it holds, say).
    pub info: P,
    /// The item in flight at this peer and its deadline.
    inflight: Option<(K, Duration)>,
    /// Timed out or answered wrongly: not asked again until renewed.
    failed: bool,
}

impl<K, P> Source<K, P> {
    /// Neither serving a fetch nor failed: may be asked now.
    pub fn is_ready(&self) -> bool {
        !self.failed && self.inflight.is_none()
    }

    pub fn is_failed(&self) -> bool {
        self.failed
    }
}

/// Items still to fetch, the peers serving them, and how long to wait.
#[derive(Debug)]
pub(super) struct FetchScheduler<K, P> {
    fetch_timeout: Duration,
    sources: BTreeMap<PeerId, Source<K, P>>,
    pool: BTreeSet<K>,
    /// Give up if nothing can be fetched by then.
    patience: Duration,
}

impl<K: Ord + Copy, P> FetchScheduler<K, P> {
    /// A scheduler with an empty pool; patience runs out one
    /// `fetch_timeout` from `now` unless a fetch is sent.
    pub fn new(
        sources: impl IntoIterator<Item = (PeerId, P)>,
        fetch_timeout: Duration,
        now: Duration,
    ) -> Self {
        FetchScheduler {
            fetch_timeout,
            sources: sources
                .into_iter()
                .map(|(peer, info)| {
                    let source = Source {
                        info,
                        inflight: None,
                        failed: false,
                    };
                    (peer, source)
                })
                .collect(),
            pool: BTreeSet::new(),
            patience: now + fetch_timeout,
        }
    }

    /// Every peer, in id order.
    pub fn sources(&self) -> impl Iterator<Item = (&PeerId, &Source<K, P>)> {
        self.sources.iter()
    }

    /// The peers that may be asked now, in id order.
    pub fn ready(&self) -> impl Iterator<Item = (PeerId, &P)> {
        self.sources
            .iter()
            .filter(|(_, s)| s.is_ready())
            .map(|(peer, s)| (*peer, &s.info))
    }

    /// Items waiting for a peer, in order.
    pub fn pool(&self) -> &BTreeSet<K> {
        &self.pool
    }

    /// A new peer with `info`; a peer already known keeps its state.
    pub fn add_source(&mut self, peer: PeerId, info: P) {
        self.sources.entry(peer).or_insert(Source {
            info,
            inflight: None,
            failed: false,
        });
    }

    /// Fresh news from a known peer: its `info`, and it may be asked again.
    pub fn renew(&mut self, peer: PeerId, info: P) {
        if let Some(source) = self.sources.get_mut(&peer) {
            source.info = info;
            source.failed = false;
        }
    }

    /// A peer gone; its item in flight goes back to the pool.
    pub fn remove_source(&mut self, peer: PeerId) {
        if let Some(source) = self.sources.remove(&peer) {
            if let Some((item, _)) = source.inflight {
                self.pool.insert(item);
            }
        }
    }

    /// Replaces the pool; fetches in flight are forgotten (their answers
    /// will no longer match), failures are kept.
    pub fn restart(&mut self, items: impl IntoIterator<Item = K>) {
        for source in self.sources.values_mut() {
            source.inflight = None;
        }
        self.pool = items.into_iter().collect();
    }

    /// Marks every peer failed (`true`) or usable again (`false`).
    pub fn set_all_failed(&mut self, failed: bool) {
        for source in self.sources.values_mut() {
            source.failed = failed;
        }
    }

    /// Fetches past their deadline go back to the pool; their peer fails.
    pub fn expire(&mut self, now: Duration) {
        for source in self.sources.values_mut() {
            if let Some((item, deadline)) = source.inflight {
                if now >= deadline {
                    source.inflight = None;
                    source.failed = true;
                    self.pool.insert(item);
                }
            }
        }
    }

    /// Sends every pooled item, in order, to the peer `pick` chooses among
    /// the ready ones (`None`: the item waits). Returns (peer, item) for
    /// each fetch to send.
    pub fn assign(
        &mut self,
        now: Duration,
        mut pick: impl FnMut(&Self, K) -> Option<PeerId>,
    ) -> Vec<(PeerId, K)> {
        let mut sent = Vec::new();
        let items: Vec<K> = self.pool.iter().copied().collect();
        for item in items {
            if self.ready().next().is_none() {
                break;
            }
            let Some(peer) = pick(self, item) else {
                continue;
            };
            let deadline = now + self.fetch_timeout;
            let Some(source) = self.sources.get_mut(&peer).filter(|s| s.is_ready()) else {
                continue;
            };
            source.inflight = Some((item, deadline));
            self.pool.remove(&item);
            self.patience = self.patience.max(deadline);
            sent.push((peer, item));
        }
        sent
    }

    /// An answer from `peer` for `item`: true (and the fetch is over) if it
    /// is the one in flight there, false for a stray or late answer.
    pub fn answered(&mut self, peer: PeerId, item: K) -> bool {
        let Some(source) = self.sources.get_mut(&peer) else {
            return false;
        };
        if source.inflight.map(|(i, _)| i) != Some(item) {
            return false;
        }
        source.inflight = None;
        true
    }

    /// The answer for `item` was wrong: it goes back to the pool, and
    /// `peer` is not asked again until renewed.
    pub fn refused(&mut self, peer: PeerId, item: K) {
        if let Some(source) = self.sources.get_mut(&peer) {
            source.failed = true;
        }
        self.pool.insert(item);
    }

    /// Puts `item` (the rest of a partly answered one) in the pool.
    pub fn requeue(&mut self, item: K) {
        self.pool.insert(item);
    }

    /// No fetch in flight at any peer.
    pub fn is_idle(&self) -> bool {
        self.sources.values().all(|s| s.inflight.is_none())
    }

    /// Nothing in flight and the last fetch's deadline (or the start's
    /// patience) has passed.
    pub fn is_out_of_patience(&self, now: Duration) -> bool {
        self.is_idle() && now >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        PeerId([n; 32])
    }

    fn scheduler(peers: &[u8]) -> FetchScheduler<u64, ()> {
        let mut s = FetchScheduler::new(
            peers.iter().map(|n| (peer(*n), ())),
            Duration::from_secs(1),
            Duration::ZERO,
        );
        s.restart([0, 10, 20]);
        s
    }

    fn first_ready(s: &FetchScheduler<u64, ()>, _: u64) -> Option<PeerId> {
        s.ready().next().map(|(p, _)| p)
    }

    #[test]
    fn one_item_in_flight_per_peer() {
        let mut s = scheduler(&[1, 2]);
        let sent = s.assign(Duration::ZERO, first_ready);
        assert_eq!(sent, vec![(peer(1), 0), (peer(2), 10)]);
        assert!(s.assign(Duration::ZERO, first_ready).is_empty());
        assert_eq!(s.pool().iter().copied().collect::<Vec<_>>(), vec![20]);
    }

    #[test]
    fn an_expired_fetch_goes_back_and_fails_its_peer_until_renewed() {
        let mut s = scheduler(&[1]);
        s.assign(Duration::ZERO, first_ready);
        s.expire(Duration::from_secs(1));
        assert!(s.pool().contains(&0));
        assert!(s.sources().all(|(_, src)| src.is_failed()));
        assert!(s.is_out_of_patience(Duration::from_secs(1)));
        s.renew(peer(1), ());
        assert_eq!(s.assign(Duration::from_secs(1), first_ready).len(), 1);
        assert!(!s.is_out_of_patience(Duration::from_secs(1)));
    }

    #[test]
    fn only_the_fetch_in_flight_is_answered() {
        let mut s = scheduler(&[1, 2]);
        s.assign(Duration::ZERO, first_ready);
        assert!(!s.answered(peer(1), 10), "peer 1 was asked for 0");
        assert!(s.answered(peer(1), 0));
        assert!(!s.answered(peer(1), 0), "answered once");
        assert!(s.answered(peer(2), 10));
        s.refused(peer(2), 10);
        assert!(s.pool().contains(&10));
        assert_eq!(s.ready().count(), 1, "peer 2 is not asked again");
        s.remove_source(peer(2));
        assert_eq!(s.sources().count(), 1);
    }
}
