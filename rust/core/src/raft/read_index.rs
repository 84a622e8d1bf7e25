//! The leader's queue of strong reads waiting for a read-index confirmation.
//!
//! A read is bound to the first heartbeat round started after it arrived; it
//! is answered once a quorum acknowledged that round (or a later one) and
//! the leader has committed an entry of its own term. The answer is
//! `max(commit index when it arrived, index of the term's first entry)`.

use std::collections::VecDeque;

use crate::entry::Index;
use crate::ids::PeerId;
use crate::wire::{Ask, RequestId};

/// Who asked for a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOrigin {
    Local(RequestId),
    Remote(PeerId, Ask),
}

#[derive(Debug, Clone, Copy)]
struct PendingRead {
    origin: ReadOrigin,
    commit_at_arrival: Index,
    round: u64,
}

/// Reads waiting for a round to start, and reads waiting for their round.
#[derive(Debug, Default)]
pub(crate) struct ReadQueue {
    round: u64,
    unbound: Vec<PendingRead>,
    bound: VecDeque<PendingRead>,
}

impl ReadQueue {
    /// The current heartbeat round, carried by every append message.
    pub(crate) fn round(&self) -> u64 {
        self.round
    }

    pub(crate) fn push(&mut self, origin: ReadOrigin, commit: Index) {
        self.unbound.push(PendingRead {
            origin,
            commit_at_arrival: commit,
            round: 0,
        });
    }

    /// Whether some read waits for a round that has not started.
    pub(crate) fn needs_round(&self) -> bool {
        !self.unbound.is_empty()
    }

    /// Starts a new round and binds every waiting read to it.
    pub(crate) fn start_round(&mut self) -> u64 {
        self.round += 1;
        let round = self.round;
        self.bound.extend(
            self.unbound
                .drain(..)
                .map(|read| PendingRead { round, ..read }),
        );
        round
    }

    /// Reads whose round is at most `confirmed`, with the index to answer.
    pub(crate) fn confirm(
        &mut self,
        confirmed: u64,
        term_start: Index,
    ) -> Vec<(ReadOrigin, Index)> {
        let mut done = Vec::new();
        while self
            .bound
            .front()
            .is_some_and(|read| read.round <= confirmed)
        {
            let read = self.bound.pop_front().expect("front checked");
            done.push((read.origin, read.commit_at_arrival.max(term_start)));
        }
        done
    }

    /// Every read still waiting, for a leader that steps down.
    pub(crate) fn drain(&mut self) -> Vec<ReadOrigin> {
        let bound = self.bound.drain(..).map(|read| read.origin);
        let unbound = self.unbound.drain(..).map(|read| read.origin);
        bound.chain(unbound).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_waits_for_a_round_started_after_it_arrived() {
        let mut queue = ReadQueue::default();
        let earlier = queue.start_round();
        queue.push(ReadOrigin::Local(1), 4);
        assert!(queue.confirm(earlier, 1).is_empty());
        let round = queue.start_round();
        assert_eq!(queue.confirm(round, 1), vec![(ReadOrigin::Local(1), 4)]);
    }

    #[test]
    fn read_index_is_at_least_the_terms_first_entry() {
        let mut queue = ReadQueue::default();
        queue.push(ReadOrigin::Local(1), 4);
        let round = queue.start_round();
        assert_eq!(queue.confirm(round, 9), vec![(ReadOrigin::Local(1), 9)]);
    }
}
