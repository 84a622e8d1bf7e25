//! Log replay inside a node: when to start a session (the leader's log is
//! more than a batch ahead of ours and committed there), buffering the
//! leader's appends meanwhile, appending fetched chunks, resuming normal
//! replication afterwards; and the provider side every node runs.

use std::collections::VecDeque;

use super::RaftNode;
use crate::error::Result;
use crate::ids::PeerId;
use crate::storage::LogStore;
use crate::sync::ReplaySession;
use crate::wire::{AppendEntries, AppendOutcome, Message, SyncMessage};

/// Most leader appends kept while a session runs; older ones are dropped
/// (normal replication repairs whatever they carried).
const MAX_BUFFERED_APPENDS: usize = 64;

/// A running session and the leader's appends that arrived meanwhile.
pub(super) struct CatchUp {
    session: ReplaySession,
    buffered: VecDeque<AppendEntries>,
}

impl<S: LogStore> RaftNode<S> {
    /// Whether `append` was taken by log replay (buffered, answered).
    pub(super) fn replay_intercepts(
        &mut self,
        from: PeerId,
        append: &AppendEntries,
    ) -> Result<bool> {
        let replay_wanted = self.replay.is_none() && self.should_replay(append);
        match &mut self.replay {
            Some(catch_up) if catch_up.session.leader() == from => {
                if catch_up.buffered.len() == MAX_BUFFERED_APPENDS {
                    catch_up.buffered.pop_front();
                }
                catch_up.buffered.push_back(append.clone());
                let hint = catch_up.session.target() + 1;
                self.reply_append(from, append.round, AppendOutcome::Rejected { hint });
                Ok(true)
            }
            Some(_) => {
                self.finish_replay(false)?;
                Ok(false)
            }
            None if replay_wanted => {
                self.start_replay(from, append);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn should_replay(&self, append: &AppendEntries) -> bool {
        let batch = self.config.sync.batch_size;
        let committed_ahead = append.commit.min(append.prev.index);
        self.now >= self.replay_retry_at
            && batch > 0
            && append.prev.index > self.last.index + batch
            && committed_ahead > self.last.index
    }

    fn start_replay(&mut self, leader: PeerId, append: &AppendEntries) {
        let target = append.commit.min(append.prev.index);
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        let (session, asks) = ReplaySession::start(
            leader,
            peers,
            self.last.index + 1,
            target,
            self.config.sync,
            self.now,
        );
        for (peer, ask) in asks {
            self.send(peer, Message::Sync(ask));
        }
        self.replay = Some(CatchUp {
            session,
            buffered: VecDeque::from([append.clone()]),
        });
        self.reply_append(
            leader,
            append.round,
            AppendOutcome::Rejected { hint: target + 1 },
        );
    }

    pub(super) fn handle_sync(&mut self, from: PeerId, message: SyncMessage) -> Result<()> {
        match message {
            SyncMessage::AvailabilityRequest => {
                let reply = SyncMessage::Availability {
                    first: 1,
                    last: self.commit,
                };
                self.send(from, Message::Sync(reply));
                Ok(())
            }
            SyncMessage::Fetch { from: start, to } => self.provide(from, start, to),
            SyncMessage::Availability { first, last } => {
                if let Some(catch_up) = &mut self.replay {
                    catch_up.session.on_availability(from, first, last);
                }
                self.pump_replay()
            }
            SyncMessage::Batch {
                from: start,
                prev_term,
                entries,
            } => {
                if let Some(catch_up) = &mut self.replay {
                    catch_up.session.on_batch(from, start, prev_term, entries);
                }
                self.pump_replay()
            }
        }
    }

    /// Provider side: committed entries `start..=to`, at most a batch.
    fn provide(&mut self, to_peer: PeerId, start: u64, to: u64) -> Result<()> {
        let last = to.min(self.commit);
        let max = usize::try_from(self.config.sync.batch_size.max(1)).unwrap_or(usize::MAX);
        let entries = if start >= 1 && start <= last {
            self.store.entries(start, last + 1, max)?
        } else {
            Vec::new()
        };
        let prev_term = self.term_at(start.saturating_sub(1))?.unwrap_or(0);
        let batch = SyncMessage::Batch {
            from: start,
            prev_term,
            entries,
        };
        self.send(to_peer, Message::Sync(batch));
        Ok(())
    }

    /// Sends new fetches and appends every chunk that is next in line.
    fn pump_replay(&mut self) -> Result<()> {
        let now = self.now;
        let Some(catch_up) = &mut self.replay else {
            return Ok(());
        };
        let fetches = catch_up.session.assign(now);
        let target = catch_up.session.target();
        let mut chunks = Vec::new();
        while let Some(chunk) = catch_up.session.take_next() {
            chunks.push(chunk);
        }
        let done = catch_up.session.is_done();
        for (peer, fetch) in fetches {
            self.send(peer, Message::Sync(fetch));
        }
        for chunk in chunks {
            let Some(first) = chunk.entries.first().map(|e| e.index) else {
                continue;
            };
            if self.term_at(first - 1)? != Some(chunk.prev_term) {
                return self.finish_replay(false);
            }
            let last = first + chunk.entries.len() as u64 - 1;
            self.merge_entries(chunk.entries)?;
            self.advance_commit(last.min(target))?;
        }
        if done {
            self.finish_replay(true)?;
        }
        Ok(())
    }

    pub(super) fn replay_tick(&mut self) -> Result<()> {
        let now = self.now;
        let Some(catch_up) = &mut self.replay else {
            return Ok(());
        };
        catch_up.session.expire(now);
        if catch_up.session.is_stuck(now) {
            return self.finish_replay(false);
        }
        self.pump_replay()
    }

    pub(super) fn replay_peer_removed(&mut self, peer: PeerId) {
        if let Some(catch_up) = &mut self.replay {
            catch_up.session.peer_removed(peer);
        }
    }

    /// Ends the session (completed or abandoned) and feeds the buffered
    /// appends of the current term through normal replication.
    fn finish_replay(&mut self, completed: bool) -> Result<()> {
        let Some(catch_up) = self.replay.take() else {
            return Ok(());
        };
        if !completed {
            self.replay_retry_at = self.now + self.config.sync.fetch_timeout;
        }
        let leader = catch_up.session.leader();
        let mut last_reply = None;
        for append in catch_up.buffered {
            if append.term == self.hard.term && self.leader == Some(leader) {
                let round = append.round;
                last_reply = Some((round, self.accept_append(append)?));
            }
        }
        if let Some((round, outcome)) = last_reply {
            self.reply_append(leader, round, outcome);
        }
        Ok(())
    }
}
