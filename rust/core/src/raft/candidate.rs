//! Candidate duties: starting an election and counting its votes.
//!
//! Terms are ballots: `election round << 32 | 32-bit tag of the candidate's
//! id`. Two candidates can never stand in the same term, so (index, term)
//! names one entry everywhere, even where split brain is allowed
//! (`min_quorum` 1 across a partition) and the sides later meet.

use std::collections::BTreeSet;

use super::quorum::election_won;
use super::{RaftNode, RoleState};
use crate::entry::Term;
use crate::error::Result;
use crate::ids::PeerId;
use crate::storage::{HardState, LogStore};
use crate::wire::{Message, RequestVote, Vote, VoteReply};

/// Votes collected in the current election (self included in `granted`).
#[derive(Debug, Default)]
pub(super) struct Campaign {
    granted: BTreeSet<PeerId>,
    abstained: BTreeSet<PeerId>,
}

impl Campaign {
    pub(super) fn forget(&mut self, peer: PeerId) {
        self.granted.remove(&peer);
        self.abstained.remove(&peer);
    }
}

/// The term a candidate stands in after `current`: next round, own tag.
pub(super) fn next_term(current: Term, candidate: PeerId) -> Term {
    let tag = u32::from_le_bytes([
        candidate.0[0],
        candidate.0[1],
        candidate.0[2],
        candidate.0[3],
    ]);
    (((current >> 32) + 1) << 32) | u64::from(tag)
}

impl<S: LogStore> RaftNode<S> {
    /// Starts an election in the next term, voting for itself.
    pub(super) fn campaign(&mut self) -> Result<()> {
        let term = next_term(self.hard.term, self.id);
        self.set_hard_state(HardState {
            term,
            vote: Some(self.id),
        })?;
        let mut campaign = Campaign::default();
        campaign.granted.insert(self.id);
        self.role = RoleState::Candidate(campaign);
        self.set_leader(None);
        self.reset_election_timer();
        let request = RequestVote {
            term,
            last: self.last,
        };
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.send(peer, Message::RequestVote(request));
        }
        self.check_election()
    }

    pub(super) fn handle_vote(&mut self, from: PeerId, reply: VoteReply) -> Result<()> {
        if self.observe_term(reply.term)? || reply.term != self.hard.term {
            return Ok(());
        }
        self.note_observer(from, reply.observer);
        let RoleState::Candidate(campaign) = &mut self.role else {
            return Ok(());
        };
        match reply.vote {
            Vote::Granted => {
                campaign.granted.insert(from);
            }
            Vote::Abstained => {
                campaign.abstained.insert(from);
            }
            Vote::Denied => {}
        }
        self.check_election()
    }

    /// Becomes leader if the votes counted so far win the election.
    pub(super) fn check_election(&mut self) -> Result<()> {
        let RoleState::Candidate(campaign) = &self.role else {
            return Ok(());
        };
        let granted = campaign
            .granted
            .iter()
            .filter(|p| **p == self.id || self.is_voter_peer(p))
            .count();
        let abstained = campaign
            .abstained
            .iter()
            .filter(|p| self.is_voter_peer(p))
            .count();
        if election_won(
            self.voter_count(),
            granted,
            abstained,
            self.config.consensus.min_quorum,
        ) {
            self.become_leader()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_never_share_a_term() {
        let a = PeerId([1; 32]);
        let b = PeerId([2; 32]);
        assert_ne!(next_term(0, a), next_term(0, b));
        assert!(next_term(next_term(0, a), b) > next_term(0, a));
        assert!(next_term(next_term(0, b), a) > next_term(0, b));
    }
}
