//! Follower duties: accepting the leader's appends (log matching, conflict
//! truncation, commit) and answering vote requests (Granted, Abstained,
//! Denied).

use super::{RaftNode, RoleState};
use crate::error::Result;
use crate::ids::PeerId;
use crate::storage::{HardState, LogStore};
use crate::wire::{
    AppendEntries, AppendOutcome, AppendReply, Message, RequestVote, Vote, VoteReply,
};

impl<S: LogStore> RaftNode<S> {
    pub(super) fn handle_append(&mut self, from: PeerId, append: AppendEntries) -> Result<()> {
        if append.term < self.hard.term {
            let hint = self.last.index + 1;
            self.reply_append(from, append.round, AppendOutcome::Rejected { hint });
            return Ok(());
        }
        self.observe_term(append.term)?;
        if !matches!(self.role, RoleState::Follower) || self.leader != Some(from) {
            self.become_follower(Some(from));
        }
        self.reset_election_timer();
        if self.replay_intercepts(from, &append)? {
            return Ok(());
        }
        let round = append.round;
        let outcome = self.accept_append(append)?;
        self.reply_append(from, round, outcome);
        Ok(())
    }

    pub(super) fn accept_append(&mut self, append: AppendEntries) -> Result<AppendOutcome> {
        let prev = append.prev;
        if prev.index > self.last.index {
            return Ok(AppendOutcome::Rejected {
                hint: self.last.index + 1,
            });
        }
        if !self.log_has(prev)? {
            return Ok(AppendOutcome::Rejected {
                hint: self.conflict_hint(prev.index)?,
            });
        }
        let matched = prev.index + append.entries.len() as u64;
        self.merge_entries(append.entries)?;
        self.advance_commit(append.commit.min(matched))?;
        Ok(AppendOutcome::Accepted { last: matched })
    }

    pub(super) fn reply_append(&mut self, to: PeerId, round: u64, outcome: AppendOutcome) {
        let reply = AppendReply {
            term: self.hard.term,
            round,
            outcome,
            observer: self.is_observer(),
            syncing: self.replay.is_some(),
        };
        self.send(to, Message::AppendReply(reply));
    }

    pub(super) fn handle_request_vote(&mut self, from: PeerId, request: RequestVote) -> Result<()> {
        self.observe_term(request.term)?;
        let vote = self.decide_vote(from, request)?;
        if matches!(vote, Vote::Granted | Vote::Abstained) && !self.is_observer() {
            self.set_hard_state(HardState {
                term: self.hard.term,
                vote: Some(from),
            })?;
            self.reset_election_timer();
        }
        let reply = VoteReply {
            term: self.hard.term,
            vote,
            observer: self.is_observer(),
        };
        self.send(from, Message::Vote(reply));
        Ok(())
    }

    fn decide_vote(&self, from: PeerId, request: RequestVote) -> Result<Vote> {
        if request.term < self.hard.term {
            return Ok(Vote::Denied);
        }
        if self.is_observer() {
            return Ok(Vote::Abstained);
        }
        if self.hard.vote.is_some_and(|v| v != from) || self.leader.is_some_and(|l| l != from) {
            return Ok(Vote::Denied);
        }
        Ok(match request.last.cmp(&self.last) {
            std::cmp::Ordering::Less => Vote::Denied,
            std::cmp::Ordering::Equal => Vote::Granted,
            std::cmp::Ordering::Greater => Vote::Abstained,
        })
    }
}
