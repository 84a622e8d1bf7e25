//! Log replay inside a node: when to start a session (the leader's log is
//! more than a batch ahead of ours and committed there, or compacted past
//! our end), buffering the leader's appends meanwhile, fetching a snapshot
//! first when no peer's log reaches back far enough, appending fetched
//! chunks, resuming normal replication afterwards; and the provider side
//! every node runs.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use super::RaftNode;
use crate::error::Result;
use crate::ids::{Digest, PeerId};
use crate::storage::{LogStore, Snapshot, SnapshotMeta};
use crate::sync::{ReplaySession, SnapshotFetch, SNAPSHOT_CHUNK};
use crate::wire::{AppendEntries, AppendOutcome, Message, SyncMessage};

/// Most leader appends kept while a session runs; older ones are dropped
/// (normal replication repairs whatever they carried).
const MAX_BUFFERED_APPENDS: usize = 64;

/// How often a session that cannot go on asks the peers again what they hold.
const REASK_EVERY: Duration = Duration::from_millis(250);

/// A running session, the snapshots peers offer, the snapshot being
/// fetched, and the leader's appends that arrived meanwhile.
pub(super) struct CatchUp {
    session: ReplaySession,
    offers: BTreeMap<PeerId, SnapshotMeta>,
    snapshot: Option<SnapshotFetch>,
    /// When the peers were last asked what they hold.
    asked_at: Duration,
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
        let batch = self.config.replay.batch_size;
        let committed_ahead = append.commit.min(append.prev.index);
        let far_behind = batch > 0 && append.prev.index > self.last.index + batch;
        let compacted = append.first > self.last.index + 1;
        self.now >= self.replay_retry_at
            && (far_behind || compacted)
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
            self.config.replay,
            self.now,
        );
        for (peer, ask) in asks {
            self.send(peer, Message::Sync(ask));
        }
        self.replay = Some(CatchUp {
            session,
            offers: BTreeMap::new(),
            snapshot: None,
            asked_at: self.now,
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
                    first: self.store.base().index + 1,
                    last: self.commit,
                    snapshot: self.store.snapshot()?.map(|s| s.meta),
                };
                self.send(from, Message::Sync(reply));
                Ok(())
            }
            SyncMessage::Fetch { from: start, to } => self.provide(from, start, to),
            SyncMessage::Availability {
                first,
                last,
                snapshot,
            } => {
                if let Some(catch_up) = &mut self.replay {
                    catch_up.session.on_availability(from, first, last);
                    catch_up.on_offer(from, snapshot, self.config.replay, self.now);
                }
                self.pump_replay()
            }
            SyncMessage::SnapshotFetch {
                digest,
                offset,
                len,
            } => self.provide_piece(from, digest, offset, len),
            SyncMessage::SnapshotPiece {
                digest,
                offset,
                data,
            } => {
                if let Some(fetch) = self.replay.as_mut().and_then(|c| c.snapshot.as_mut()) {
                    fetch.on_piece(from, digest, offset, data);
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

    /// Provider side: committed entries `start..=to`, at most a batch and
    /// what fits in one message.
    fn provide(&mut self, to_peer: PeerId, start: u64, to: u64) -> Result<()> {
        let last = to.min(self.commit);
        let max = usize::try_from(self.config.replay.batch_size.max(1)).unwrap_or(usize::MAX);
        let entries = if start > self.store.base().index && start <= last {
            let budget = self.config.consensus.entry_budget();
            self.store.entries_within(start, last + 1, max, budget)?
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

    /// Provider side: a piece of the snapshot with this digest, empty if
    /// this node no longer has it.
    fn provide_piece(
        &mut self,
        to_peer: PeerId,
        digest: Digest,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let data = match self.snapshot_to_serve(digest)? {
            Some(snapshot) => {
                let start = offset.min(snapshot.meta.size);
                let end = start
                    .saturating_add(len.min(SNAPSHOT_CHUNK))
                    .min(snapshot.meta.size);
                snapshot.data.slice(start as usize..end as usize)
            }
            _ => Bytes::new(),
        };
        let piece = SyncMessage::SnapshotPiece {
            digest,
            offset,
            data,
        };
        self.send(to_peer, Message::Sync(piece));
        Ok(())
    }

    /// The snapshot with `digest`: the one being served (a fetch in progress
    /// keeps it even after this node took a newer one), or the store's.
    fn snapshot_to_serve(&mut self, digest: Digest) -> Result<Option<Snapshot>> {
        let now = self.now;
        if let Some((snapshot, served_at)) = &mut self.serving {
            if snapshot.meta.digest == digest {
                *served_at = now;
                return Ok(Some(snapshot.clone()));
            }
        }
        let current = self.store.snapshot()?.filter(|s| s.meta.digest == digest);
        if let Some(snapshot) = &current {
            self.serving = Some((snapshot.clone(), now));
        }
        Ok(current)
    }

    /// Forgets the served snapshot once no one asked for it for a fetch timeout.
    pub(super) fn expire_serving(&mut self) {
        let timeout = self.config.replay.fetch_timeout;
        if self
            .serving
            .as_ref()
            .is_some_and(|(_, at)| self.now >= *at + timeout)
        {
            self.serving = None;
        }
    }

    /// Sends new fetches and appends every chunk that is next in line; while
    /// a snapshot is fetched, only its pieces move.
    fn pump_replay(&mut self) -> Result<()> {
        let now = self.now;
        let Some(catch_up) = &mut self.replay else {
            return Ok(());
        };
        if catch_up
            .snapshot
            .as_ref()
            .is_some_and(SnapshotFetch::is_exhausted)
        {
            catch_up.snapshot = None;
            catch_up.offers.clear();
        }
        if let Some(fetch) = &mut catch_up.snapshot {
            let requests = fetch.assign(now);
            let complete = fetch.take_complete();
            for (peer, request) in requests {
                self.send(peer, Message::Sync(request));
            }
            return match complete {
                Some(snapshot) => {
                    self.install_fetched(snapshot)?;
                    self.pump_replay()
                }
                None => Ok(()),
            };
        }
        if !catch_up.session.covers_next() && now >= catch_up.asked_at + REASK_EVERY {
            // Peers compact as they go: what they said they hold may be
            // gone. Ask again; a newer snapshot may be offered.
            catch_up.asked_at = now;
            let peers: Vec<PeerId> = self.peers.keys().copied().collect();
            for peer in peers {
                self.send(peer, Message::Sync(SyncMessage::AvailabilityRequest));
            }
            return Ok(());
        }
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

    /// Replaces the log's prefix with a fetched snapshot and goes on
    /// replaying the entries after it. A snapshot of a newer term than ours raises our term to it: a leader
    /// of an older term (woken from a pause, say) can then no longer append
    /// to the log the snapshot now starts.
    pub(super) fn install_fetched(&mut self, snapshot: Snapshot) -> Result<()> {
        let position = snapshot.meta.position;
        self.observe_term(position.term)?;
        self.store.install_snapshot(snapshot.clone())?;
        self.last = self.store.last_position()?;
        if self.last.index <= position.index {
            // The log did not hold the snapshot's position and is gone.
            self.committees.truncated(position.index + 1);
        }
        let (committee, _) = super::committee::unwrap(&snapshot.data);
        self.committees.rebased(position.index, committee);
        self.snapshot_index = position.index;
        self.commit = self.commit.max(position.index);
        self.restart_machine(Some(snapshot));
        if let Some(catch_up) = &mut self.replay {
            catch_up.snapshot = None;
            catch_up.session.rebase(position.index + 1);
        }
        Ok(())
    }

    pub(super) fn replay_tick(&mut self) -> Result<()> {
        let now = self.now;
        let Some(catch_up) = &mut self.replay else {
            return Ok(());
        };
        let stuck = match &mut catch_up.snapshot {
            Some(fetch) => {
                fetch.expire(now);
                fetch.is_stuck(now)
            }
            None => {
                catch_up.session.expire(now);
                catch_up.session.is_stuck(now)
            }
        };
        if stuck {
            return self.finish_replay(false);
        }
        self.pump_replay()
    }

    pub(super) fn replay_peer_removed(&mut self, peer: PeerId) {
        if let Some(catch_up) = &mut self.replay {
            catch_up.session.peer_removed(peer);
            catch_up.offers.remove(&peer);
            if let Some(fetch) = &mut catch_up.snapshot {
                fetch.peer_removed(peer);
            }
        }
    }

    /// Ends the session (completed or abandoned) and feeds the buffered
    /// appends of the current term through normal replication.
    fn finish_replay(&mut self, completed: bool) -> Result<()> {
        let Some(catch_up) = self.replay.take() else {
            return Ok(());
        };
        if !completed {
            self.replay_retry_at = self.now + self.config.replay.fetch_timeout;
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

impl CatchUp {
    /// Notes a peer's snapshot and starts fetching the newest one offered
    /// when no peer's log reaches back to where the replay must start.
    fn on_offer(
        &mut self,
        from: PeerId,
        offer: Option<SnapshotMeta>,
        settings: crate::sync::LogReplaySync,
        now: Duration,
    ) {
        let Some(meta) = offer else {
            return;
        };
        self.offers.insert(from, meta);
        match &mut self.snapshot {
            Some(fetch) if fetch.meta() == meta => fetch.add_holder(from),
            Some(_) => {}
            None if !self.session.covers_next() => self.start_snapshot(settings, now),
            None => {}
        }
    }

    fn start_snapshot(&mut self, settings: crate::sync::LogReplaySync, now: Duration) {
        let next = self.session.next();
        let Some(best) = self
            .offers
            .values()
            .filter(|m| m.position.index >= next)
            .max_by_key(|m| m.position.index)
            .copied()
        else {
            return;
        };
        let holders = self
            .offers
            .iter()
            .filter(|(_, m)| **m == best)
            .map(|(p, _)| *p);
        self.snapshot = Some(SnapshotFetch::start(best, holders, settings, now));
    }
}
