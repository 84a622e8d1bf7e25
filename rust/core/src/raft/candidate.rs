//! Candidate duties: the pre-vote, starting an election and counting votes.
//!
//! Terms are ballots: `election round << 32 | 32-bit tag`, the tag drawn at
//! random each time a node starts. Two candidates stand in the same term
//! only if their tags collide (one in 2^32 per round), and a node restarted
//! without its store never stands again in a term it used before, so
//! (index, term) names one entry everywhere, even where split brain is
//! allowed (`min_quorum` 1 across a partition) and the sides later meet.
//!
//! Pre-vote (Raft thesis 9.6): a node whose election timer fires first asks
//! whether it would win, without raising any term; only a pre-vote that
//! wins starts the election. Voters that heard from a leader within the
//! election timeout say no, so a node that was cut off and comes back
//! cannot depose a leader its peers still follow.

use std::collections::{BTreeMap, BTreeSet};

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
    /// The life (`HardState::life`) each voter answered from.
    lives: BTreeMap<PeerId, u64>,
}

impl Campaign {
    /// A campaign that starts with the candidate's own vote.
    fn of(candidate: PeerId) -> Self {
        let mut campaign = Campaign::default();
        campaign.granted.insert(candidate);
        campaign
    }

    pub(super) fn forget(&mut self, peer: PeerId) {
        self.granted.remove(&peer);
        self.abstained.remove(&peer);
        self.lives.remove(&peer);
    }

    fn note(&mut self, from: PeerId, reply: &VoteReply) {
        self.lives.insert(from, reply.life);
        match reply.vote {
            Vote::Granted => {
                self.granted.insert(from);
            }
            Vote::Abstained => {
                self.abstained.insert(from);
            }
            Vote::Denied => {}
        }
    }
}

/// The term a candidate stands in after `current`: next round, its tag.
pub(super) fn next_term(current: Term, tag: u32) -> Term {
    (((current >> 32) + 1) << 32) | u64::from(tag)
}

impl<S: LogStore> RaftNode<S> {
    /// Asks the peers whether this node would win the next term's election.
    pub(super) fn pre_campaign(&mut self) -> Result<()> {
        let term = next_term(self.hard.term, self.term_tag());
        self.pre_vote = Some((term, Campaign::of(self.id)));
        self.reset_election_timer();
        self.ask_all(term, Message::PreVote);
        self.check_pre_vote()
    }

    /// Answers a pre-vote as a vote would be answered, changing nothing.
    pub(super) fn handle_pre_vote(&mut self, from: PeerId, request: RequestVote) {
        let vote = if request.term <= self.hard.term || self.hears_leader() {
            Vote::Denied
        } else if self.is_observer() {
            Vote::Abstained
        } else {
            match request.last.cmp(&self.last) {
                std::cmp::Ordering::Less => Vote::Denied,
                std::cmp::Ordering::Equal => Vote::Granted,
                std::cmp::Ordering::Greater => Vote::Abstained,
            }
        };
        // A denial for an old term says which term this node is in, so a
        // pre-candidate behind on terms catches up (Raft thesis 9.6).
        let reply = VoteReply {
            term: request.term.max(self.hard.term),
            vote,
            observer: self.is_observer(),
            learner: self.hard.learner,
            life: self.hard.life,
        };
        self.send(from, Message::PreVoteReply(reply));
    }

    pub(super) fn handle_pre_vote_reply(&mut self, from: PeerId, reply: VoteReply) -> Result<()> {
        self.note_peer(from, reply.observer, reply.learner);
        let Some((term, campaign)) = &mut self.pre_vote else {
            return Ok(());
        };
        if reply.term != *term {
            self.observe_term(reply.term)?;
            return Ok(());
        }
        campaign.note(from, &reply);
        self.check_pre_vote()
    }

    /// Starts the real election once the pre-vote would win it.
    fn check_pre_vote(&mut self) -> Result<()> {
        let Some((term, campaign)) = &self.pre_vote else {
            return Ok(());
        };
        if *term != next_term(self.hard.term, self.term_tag()) || !self.may_stand() {
            self.pre_vote = None;
            return Ok(());
        }
        let (granted, abstained) = self.counted_votes(campaign);
        if self.votes_win(granted.len(), abstained.len()) {
            self.pre_vote = None;
            return self.campaign();
        }
        Ok(())
    }

    /// Whether this node follows (or is) a leader it heard from within the
    /// election timeout: then it takes no part in another's election.
    pub(super) fn hears_leader(&self) -> bool {
        match self.role {
            RoleState::Leader(_) => true,
            _ => {
                self.leader.is_some()
                    && self.now < self.leader_heard + self.config.consensus.election_timeout
            }
        }
    }

    /// Starts an election in the next term, voting for itself.
    pub(super) fn campaign(&mut self) -> Result<()> {
        let term = next_term(self.hard.term, self.term_tag());
        self.set_hard_state(HardState {
            term,
            vote: Some(self.id),
            ..self.hard
        })?;
        self.role = RoleState::Candidate(Campaign::of(self.id));
        self.set_leader(None);
        self.reset_election_timer();
        self.ask_all(term, Message::RequestVote);
        self.check_election()
    }

    /// Sends every bonded peer a (pre-)vote request for `term`.
    fn ask_all(&mut self, term: Term, message: fn(RequestVote) -> Message) {
        let request = RequestVote {
            term,
            last: self.last,
        };
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.send(peer, message(request));
        }
    }

    pub(super) fn handle_vote(&mut self, from: PeerId, reply: VoteReply) -> Result<()> {
        if self.observe_term(reply.term)? || reply.term != self.hard.term {
            return Ok(());
        }
        self.note_peer(from, reply.observer, reply.learner);
        let RoleState::Candidate(campaign) = &mut self.role else {
            return Ok(());
        };
        campaign.note(from, &reply);
        self.check_election()
    }

    /// Becomes leader if the votes counted so far win the election.
    pub(super) fn check_election(&mut self) -> Result<()> {
        let RoleState::Candidate(campaign) = &self.role else {
            return Ok(());
        };
        let (granted, abstained) = self.counted_votes(campaign);
        if self.votes_win(granted.len(), abstained.len()) {
            let electors: Vec<(PeerId, u64)> = granted
                .into_iter()
                .chain(abstained)
                .map(|p| {
                    let life = campaign.lives.get(&p).copied();
                    (p, life.unwrap_or(self.hard.life))
                })
                .collect();
            self.become_leader(&electors)?;
        }
        Ok(())
    }

    /// The granted and abstained votes that count (this node's own included).
    fn counted_votes(&self, campaign: &Campaign) -> (Vec<PeerId>, Vec<PeerId>) {
        let counted = |p: &&PeerId| {
            let life = campaign.lives.get(*p).copied().unwrap_or(0);
            **p == self.id || self.peer_counts_in_election(p, life)
        };
        let granted = campaign.granted.iter().filter(counted).copied().collect();
        let abstained = campaign.abstained.iter().filter(counted).copied().collect();
        (granted, abstained)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_never_share_a_term() {
        let (a, b) = (1, 2);
        assert_ne!(next_term(0, a), next_term(0, b));
        assert!(next_term(next_term(0, a), b) > next_term(0, a));
        assert!(next_term(next_term(0, b), a) > next_term(0, b));
    }
}
