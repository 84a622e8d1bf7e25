//! Follower duties: accepting the leader's appends (log matching, conflict
//! truncation, commit) and answering vote requests (Granted, Abstained,
//! Denied).

use super::{RaftNode, RoleState};
use crate::entry::Entry;
use crate::error::Result;
use crate::ids::PeerId;
use crate::storage::{HardState, LogStore};
use crate::wire::{
    AppendEntries, AppendOutcome, AppendReply, Message, RequestVote, Vote, VoteReply,
};

impl<S: LogStore> RaftNode<S> {
    pub(super) fn handle_append(&mut self, from: PeerId, append: AppendEntries) -> Result<()> {
        if append.term < self.hard.term {
            // Round 0 acknowledges nothing: the round of an older term's
            // append means nothing to a leader of our current term, whose
            // rounds count from 1 again (a read confirmed by such an echo
            // would be stale).
            let hint = self.last.index + 1;
            self.reply_append(from, 0, AppendOutcome::Rejected { hint });
            return Ok(());
        }
        self.observe_term(append.term)?;
        if !matches!(self.role, RoleState::Follower) || self.leader != Some(from) {
            self.become_follower(Some(from));
        }
        self.pre_vote = None;
        self.leader_heard = self.now;
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
        let append = self.skip_compacted(append)?;
        let prev = append.prev;
        if prev.index < self.store.base().index {
            return Ok(AppendOutcome::Rejected {
                hint: self.store.base().index + 1,
            });
        }
        if prev.index > self.last.index {
            return Ok(AppendOutcome::Rejected {
                hint: self.last.index + 1,
            });
        }
        if !self.log_has(prev)? {
            if prev.index + 1 == append.first {
                // The leader's log starts right after `prev`, a committed
                // entry: ours differs, so it is not committed. Cut it; the
                // next append finds us behind the leader's log and we catch
                // up from a snapshot.
                self.truncate_log(prev.index)?;
                return Ok(AppendOutcome::Rejected {
                    hint: self.last.index + 1,
                });
            }
            return Ok(AppendOutcome::Rejected {
                hint: self.conflict_hint(prev.index)?,
            });
        }
        let matched = prev.index + append.entries.len() as u64;
        self.merge_entries(append.entries)?;
        if self.last.index < matched {
            return Ok(AppendOutcome::Rejected {
                hint: self.last.index + 1,
            });
        }
        self.advance_commit(append.commit.min(matched))?;
        if append.admit && self.term_at(matched)? == Some(append.term) {
            // A leader confirmed by a quorum committed the first entry of
            // its term, and our log (matching the leader's up to an entry
            // of that term) holds it: it holds every entry committed before.
            self.stop_learning()?;
        }
        Ok(AppendOutcome::Accepted { last: matched })
    }

    /// Our log starts after its base: an append starting before it is cut
    /// to start right after the base once it reaches it with our base's
    /// term (then everything before matches too). A position at or before
    /// our base with a newer term than the base's, or another term at the
    /// base, means our snapshot lost to another log: the log is cleared and
    /// the node catches up like a new one.
    fn skip_compacted(&mut self, mut append: AppendEntries) -> Result<AppendEntries> {
        let base = self.store.base();
        if append.prev.index >= base.index {
            return Ok(append);
        }
        let positions =
            std::iter::once(append.prev).chain(append.entries.iter().map(Entry::position));
        let lost = positions
            .take_while(|p| p.index <= base.index)
            .any(|p| p.term > base.term || (p.index == base.index && p.term != base.term));
        if lost {
            self.truncate_log(base.index)?;
            append.entries.clear();
            return Ok(append);
        }
        let reaches = append.prev.index + append.entries.len() as u64;
        if reaches < base.index {
            append.entries.clear();
            return Ok(append);
        }
        let skip = usize::try_from(base.index - append.prev.index).unwrap_or(usize::MAX);
        append.entries.drain(..skip);
        append.prev = base;
        Ok(append)
    }

    pub(super) fn reply_append(&mut self, to: PeerId, round: u64, outcome: AppendOutcome) {
        let reply = AppendReply {
            term: self.hard.term,
            round,
            outcome,
            observer: self.is_observer(),
            syncing: self.replay.is_some(),
            learner: self.hard.learner,
        };
        self.send(to, Message::AppendReply(reply));
    }

    /// Leader stickiness (Raft thesis 4.2.3): while this node hears from a
    /// leader, a vote request changes nothing, not even its term.
    pub(super) fn handle_request_vote(&mut self, from: PeerId, request: RequestVote) -> Result<()> {
        if request.term > self.hard.term && self.hears_leader() {
            return Ok(());
        }
        self.observe_term(request.term)?;
        let vote = self.decide_vote(from, request)?;
        if matches!(vote, Vote::Granted | Vote::Abstained) && !self.is_observer() {
            self.set_hard_state(HardState {
                vote: Some(from),
                ..self.hard
            })?;
            self.reset_election_timer();
        }
        let reply = VoteReply {
            term: self.hard.term,
            vote,
            observer: self.is_observer(),
            learner: self.hard.learner,
            life: self.hard.life,
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
        if self.hard.vote.is_some_and(|v| v != from) {
            return Ok(Vote::Denied);
        }
        Ok(match request.last.cmp(&self.last) {
            std::cmp::Ordering::Less => Vote::Denied,
            std::cmp::Ordering::Equal => Vote::Granted,
            std::cmp::Ordering::Greater => Vote::Abstained,
        })
    }
}
