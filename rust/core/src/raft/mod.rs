//! The modified Raft as a deterministic state machine (`RaftNode`) and its
//! driver contract.
//!
//! The driver owns the clock, the network and the state machine:
//! - `tick(now)` with a monotonic `Duration` since any fixed epoch;
//! - `step(from, message)` for every message a bonded peer sends;
//! - `propose(req, commands)` and `read(req)` for client requests;
//! - `add_peer` / `remove_peer` when a bond forms or breaks;
//! - then `ready()`: send `messages` at once; if `must_sync`, call
//!   `sync_storage()`, then send `persisted_messages` (and call `ready()`
//!   again afterwards: the sync may commit); replace the state machine with
//!   `restore` when set (or with a fresh one when `rebuild` is set); apply
//!   `committed_entries` in order; and deliver `events` to the callers.
//! - `snapshot_taken(epoch, index, bytes)` hands the core the state
//!   machine's snapshot, taken after applying each index of the ready's
//!   `snapshots_due` (every multiple of `NodeConfig::snapshot_every`), with
//!   the ready's `epoch`: the store keeps it and compacts the log behind the previous
//!   one. A snapshot of an older epoch (the machine was rebuilt or restored
//!   since) is refused, so a discarded branch's state is never kept.
//!
//! A `ReadReady { index }` event means: answer the query on this node once
//! it has applied `index`.
//!
//! Durability: a message that reflects a write goes out only after that
//! write is synced, with one exception (Raft thesis 10.2.1): a leader whose
//! term and vote are durable sends its appends while its own copy of their
//! entries is still being synced, so its fsync runs beside the followers'.
//! It counts its own copy toward a commit only once synced.
//!
//! Who counts toward elections, commits and read confirmations, and how a
//! node that lost its store is kept from counting, is `committee`'s part;
//! `docs/consensus.md` describes the rules as a whole.

mod candidate;
mod catch_up;
mod committee;
mod follower;
mod leader;
mod log;
mod quorum;
mod read_index;
mod requests;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use crate::config::{ConsensusConfig, LeadershipPreference};
use crate::entry::{Command, Entry, Index, LogPosition, Term, MAX_REQUEST_ID};
use crate::error::Result;
use crate::ids::PeerId;
use crate::rng::Rng;
use crate::storage::{HardState, LogStore, Snapshot};
use crate::sync::LogReplaySync;
use crate::wire::{Ask, Message, RequestId};

use candidate::Campaign;
use catch_up::CatchUp;
use committee::Committees;
use leader::{Forwarded, LeaderState};
use requests::Requests;

/// Everything one node needs to run the core.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: PeerId,
    pub consensus: ConsensusConfig,
    pub preference: LeadershipPreference,
    /// How a lagging node catches up by log replay.
    pub replay: LogReplaySync,
    /// Seed of the node's random generator (election timeouts).
    pub seed: u64,
    /// Most entries in one append message.
    pub max_append_entries: usize,
    /// The state machine is snapshotted after every multiple of this index
    /// (0: never). Every member must use the same value; it belongs to the
    /// machine's signature.
    pub snapshot_every: Index,
}

impl NodeConfig {
    pub fn new(id: PeerId, consensus: ConsensusConfig, seed: u64) -> Self {
        NodeConfig {
            id,
            consensus,
            preference: LeadershipPreference::Normal,
            replay: LogReplaySync::default(),
            seed,
            max_append_entries: 4096,
            snapshot_every: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// What the driver shows as the group's status on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub role: Role,
    pub leader: Option<PeerId>,
    pub term: Term,
    pub committed: Index,
    pub last: LogPosition,
    /// The leader, or a follower with a known leader that is not catching
    /// up with log replay (a candidate is offline).
    pub online: bool,
}

/// Outcome of a client request, for the driver to hand to its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The leader gave the commands indices `first..=last` in `term`.
    Assigned {
        req: RequestId,
        term: Term,
        first: Index,
        last: Index,
    },
    /// Those indices are committed on this node with the commands given.
    Committed {
        req: RequestId,
        first: Index,
        last: Index,
    },
    /// Certainly never committed: no leader took the commands in time, every
    /// leader asked refused them, or other entries committed at their
    /// indices. `committed` is the range of the batch's leading commands
    /// that did commit (when a leader change cut the batch), `commands` the
    /// ones that did not.
    CommandOffline {
        req: RequestId,
        committed: Option<(Index, Index)>,
        commands: Vec<Command>,
    },
    /// Maybe committed, maybe not: a leader may have taken the commands but
    /// no answer came in time, or the log was compacted before it could
    /// tell. `committed` and `commands` as for `CommandOffline`.
    CommandUnknown {
        req: RequestId,
        committed: Option<(Index, Index)>,
        commands: Vec<Command>,
    },
    /// Read index confirmed: answer once this node has applied `index`.
    ReadReady { req: RequestId, index: Index },
    /// No confirmed read index within `query_timeout`.
    QueryOffline { req: RequestId },
}

/// Work for the driver, produced by [`RaftNode::ready`].
#[derive(Debug, Default)]
pub struct Ready {
    /// Messages that may go out at once, before this ready's sync and
    /// before any earlier ready's.
    pub messages: Vec<(PeerId, Message)>,
    /// Messages that may go out only after `sync_storage`.
    pub persisted_messages: Vec<(PeerId, Message)>,
    /// Writes (hard state, entries, truncation) went to the store and were
    /// not synced yet, in this ready or an earlier one.
    pub must_sync: bool,
    /// The hard state written, when it changed.
    pub hard_state: Option<HardState>,
    /// The log was cut from this index (earliest cut since the last ready).
    pub truncated_from: Option<Index>,
    /// Entries to apply, in order.
    pub committed_entries: Vec<Entry>,
    pub events: Vec<ClientEvent>,
    /// Set when the status changed.
    pub status: Option<Status>,
    /// Drop the state machine; `committed_entries` start again at index 1.
    pub rebuild: bool,
    /// Replace the state machine with this snapshot's state (`data` holds
    /// the bytes the machine's snapshot returned); `committed_entries`
    /// continue right after its position.
    pub restore: Option<Snapshot>,
    /// The commit index went back (from, to) because a winning log cut it.
    pub commit_regressed: Option<(Index, Index)>,
    /// Apply epoch of `committed_entries`: it goes up with every `rebuild`
    /// and `restore`. A snapshot is handed back with the epoch it was taken in.
    pub epoch: u64,
    /// Indices of `committed_entries`, ascending, after which the machine
    /// is snapshotted (and handed back with `snapshot_taken`).
    pub snapshots_due: Vec<Index>,
}

/// Per-bonded-peer knowledge shared by every role, from its last answers.
#[derive(Debug, Clone, Copy, Default)]
struct Peer {
    observer: bool,
    /// It started with an empty store and no leader caught it up yet.
    learner: bool,
    /// It answered at least once, so `observer` and `learner` are known.
    known: bool,
}

enum RoleState {
    Follower,
    Candidate(Campaign),
    Leader(Box<LeaderState>),
}

/// Output collected between two `ready` calls.
#[derive(Default)]
struct Outbox {
    messages: Vec<(PeerId, Message)>,
    events: Vec<ClientEvent>,
    hard_state: Option<HardState>,
    truncated_from: Option<Index>,
    rebuild: bool,
    restore: Option<Snapshot>,
    commit_regressed: Option<(Index, Index)>,
}

/// What was written to the store since the last `sync_storage`.
#[derive(Debug, Default, Clone, Copy)]
struct Unsynced {
    /// The lowest log index appended or cut: the log below it is durable.
    log_from: Option<Index>,
    /// The hard state (term, vote, learner, life) changed.
    hard: bool,
}

impl Unsynced {
    fn log_written(&mut self, from: Index) {
        self.log_from = Some(self.log_from.map_or(from, |i| i.min(from)));
    }

    fn any(&self) -> bool {
        self.hard || self.log_from.is_some()
    }
}

/// Most committed entries handed out by one ready.
const MAX_APPLY_BATCH: usize = 16_384;
/// Most bytes of committed entries handed out by one ready (after the first).
const MAX_APPLY_BYTES: usize = 64 << 20;

/// One node of the modified Raft.
pub struct RaftNode<S: LogStore> {
    id: PeerId,
    config: NodeConfig,
    store: S,
    rng: Rng,
    now: Duration,
    hard: HardState,
    last: LogPosition,
    commit: Index,
    applied: Index,
    /// Index of the store's snapshot (0: none).
    snapshot_index: Index,
    leader: Option<PeerId>,
    peers: BTreeMap<PeerId, Peer>,
    role: RoleState,
    election_deadline: Duration,
    requests: Requests,
    replay: Option<CatchUp>,
    /// No new log replay before this time (set when one was abandoned).
    replay_retry_at: Duration,
    /// The snapshot this node last served pieces of and when: it stays
    /// available to fetchers after the store moves on to a newer one.
    serving: Option<(Snapshot, Duration)>,
    out: Outbox,
    unsynced: Unsynced,
    reported: Option<Status>,
    /// Goes up whenever the state machine starts over (rebuild, restore).
    epoch: u64,
    /// Forwarded batches taken in the last term this node led.
    forwarded: Forwarded,
    committees: Committees,
    /// The pre-vote running, for the term it asks about.
    pre_vote: Option<(Term, Campaign)>,
    /// When the current leader was last heard from (leader stickiness).
    leader_heard: Duration,
    /// This start of the node, drawn at random: names its requests to
    /// peers, and its high half tags its terms, so that a node restarted
    /// without its store never stands in a term it used before.
    incarnation: u64,
}

impl<S: LogStore> RaftNode<S> {
    /// A node that resumes from whatever `store` holds, at time `now`; its
    /// first ready restores the store's snapshot, if there is one.
    pub fn new(config: NodeConfig, store: S, now: Duration) -> Result<Self> {
        config.consensus.validate()?;
        let mut hard = store.hard_state()?;
        let last = store.last_position()?;
        let snapshot = store.snapshot()?;
        let snapshot_index = snapshot.as_ref().map_or(0, |s| s.meta.position.index);
        let empty = hard.term == 0 && last.index == 0 && snapshot.is_none();
        hard.learner |= empty;
        let snapshot_data = snapshot.as_ref().map(|s| s.data.clone());
        let mut node = RaftNode {
            id: config.id,
            rng: Rng::new(config.seed),
            config,
            store,
            now,
            hard,
            last,
            commit: snapshot_index,
            applied: snapshot_index,
            snapshot_index,
            leader: None,
            peers: BTreeMap::new(),
            role: RoleState::Follower,
            election_deadline: now,
            requests: Requests::default(),
            replay: None,
            replay_retry_at: now,
            serving: None,
            out: Outbox {
                restore: snapshot.map(for_machine),
                ..Outbox::default()
            },
            unsynced: Unsynced::default(),
            reported: None,
            epoch: 0,
            forwarded: Forwarded::new(0),
            committees: Committees::default(),
            pre_vote: None,
            leader_heard: Duration::ZERO,
            incarnation: 0,
        };
        node.incarnation = node.rng.next_u64();
        if empty || node.hard.life == 0 {
            // A new life: its first hard-state write keeps it.
            node.hard.life = node.rng.next_u64() | 1;
        }
        node.load_committees(snapshot_data.as_ref())?;
        // A store whose log was synced before its hard state (power lost in
        // between) may hold entries of a term above its own: a node's term
        // never sits below the newest term its log or snapshot holds.
        let newest = node.last.term.max(node.store.base().term);
        node.raise_term_to(newest)?;
        node.reset_election_timer();
        Ok(node)
    }

    pub fn id(&self) -> PeerId {
        self.id
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Makes everything written to the store durable (`LogStore::sync`);
    /// call it when a ready says `must_sync`, before sending its
    /// `persisted_messages`, and call `ready` again after: a leader's own
    /// copy of its entries counts toward a commit from now on.
    pub fn sync_storage(&mut self) -> Result<()> {
        self.store.sync()?;
        self.unsynced = Unsynced::default();
        self.leader_quorum_changed()
    }

    /// The end of the log as far as it is synced: what this node may count
    /// as its own copy toward a commit.
    fn durable_last(&self) -> Index {
        self.unsynced
            .log_from
            .map_or(self.last.index, |from| self.last.index.min(from - 1))
    }

    /// Gives the store back (a crashed node in a simulation keeps it).
    pub fn into_store(self) -> S {
        self.store
    }

    pub fn status(&self) -> Status {
        Status {
            role: self.role(),
            leader: self.leader,
            term: self.hard.term,
            committed: self.commit,
            last: self.last,
            online: self.is_online(),
        }
    }

    /// The leader, or a follower that knows a leader and is not catching up
    /// (a candidate, a follower with no leader and a catching-up node are
    /// offline).
    fn is_online(&self) -> bool {
        let following = self.role() == Role::Follower && self.leader.is_some();
        self.replay.is_none() && (self.role() == Role::Leader || following)
    }

    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    /// Voters this node counts now (itself unless an observer, plus bonded
    /// peers not known to observe): `mosaik.groups.raft.committee.voters`.
    pub fn voters(&self) -> usize {
        self.voter_count()
    }

    /// Whether this node is a learner: it started with an empty store and
    /// no leader has caught it up yet, so it counts toward nothing.
    pub fn is_learner(&self) -> bool {
        self.hard.learner
    }

    /// The committee in force in this node's log (consistency-first groups;
    /// empty before the first election or with `min_quorum = 1`).
    pub fn committee(&self) -> &[PeerId] {
        self.committees.current()
    }

    /// The committee in force at this node's commit index: one no later
    /// election can take back (`committee` may still be cut with its entry).
    pub fn committed_committee(&self) -> &[PeerId] {
        &self.committees.at(self.commit).members
    }

    /// Index up to which committed entries were handed out to apply.
    pub fn applied(&self) -> Index {
        self.applied
    }

    /// A bond to `peer` formed.
    pub fn add_peer(&mut self, peer: PeerId) {
        if peer == self.id || self.peers.contains_key(&peer) {
            return;
        }
        self.peers.insert(peer, Peer::default());
        self.leader_peer_added(peer);
    }

    /// The bond to `peer` broke.
    pub fn remove_peer(&mut self, peer: PeerId) -> Result<()> {
        if self.peers.remove(&peer).is_none() {
            return Ok(());
        }
        if self.leader == Some(peer) {
            self.leader = None;
        }
        self.replay_peer_removed(peer);
        match &mut self.role {
            RoleState::Candidate(campaign) => {
                campaign.forget(peer);
                self.check_election()
            }
            RoleState::Leader(state) => {
                state.progress.remove(&peer);
                self.leader_quorum_changed()
            }
            RoleState::Follower => Ok(()),
        }
    }

    /// Advances the clock: elections, heartbeats, request and fetch timeouts.
    pub fn tick(&mut self, now: Duration) -> Result<()> {
        self.now = self.now.max(now);
        if matches!(self.role, RoleState::Leader(_)) {
            self.leader_tick()?;
        } else if self.now >= self.election_deadline && self.may_stand() {
            self.pre_campaign()?;
        }
        self.expire_requests()?;
        self.expire_serving();
        self.replay_tick()?;
        self.dispatch_requests()
    }

    /// Handles one message from a bonded peer; others are ignored.
    pub fn step(&mut self, from: PeerId, message: Message) -> Result<()> {
        if !self.peers.contains_key(&from) {
            return Ok(());
        }
        match message {
            Message::Append(append) => self.handle_append(from, append)?,
            Message::AppendReply(reply) => self.handle_append_reply(from, reply)?,
            Message::RequestVote(request) => self.handle_request_vote(from, request)?,
            Message::Vote(reply) => self.handle_vote(from, reply)?,
            Message::PreVote(request) => self.handle_pre_vote(from, request),
            Message::PreVoteReply(reply) => self.handle_pre_vote_reply(from, reply)?,
            Message::Forward {
                ask,
                term,
                commands,
            } => self.handle_forward(from, ask, term, commands)?,
            Message::ForwardReply { ask, outcome } => {
                self.handle_forward_reply(from, ask, outcome)?
            }
            Message::ReadIndex { ask } => self.handle_read_index(from, ask),
            Message::ReadIndexReply { ask, index } => {
                self.handle_read_index_reply(from, ask, index)
            }
            Message::Sync(message) => self.handle_sync(from, message)?,
        }
        self.dispatch_requests()
    }

    /// Submits commands under the driver's request id. A command above
    /// `max_command_bytes` (or a request id above `MAX_REQUEST_ID`) could
    /// never reach a follower: the batch is offline at once.
    pub fn propose(&mut self, req: RequestId, commands: Vec<Command>) -> Result<()> {
        let limit = usize::try_from(self.config.consensus.max_command_bytes).unwrap_or(usize::MAX);
        let too_large = commands.iter().any(|c| {
            c.data.len() > limit
                || c.request
                    .as_ref()
                    .is_some_and(|k| k.id.len() > MAX_REQUEST_ID)
        });
        if too_large {
            self.event(ClientEvent::CommandOffline {
                req,
                committed: None,
                commands,
            });
            return Ok(());
        }
        let deadline = self.now + self.config.consensus.forward_timeout;
        self.requests.add_forward(req, commands, deadline);
        self.dispatch_requests()
    }

    /// The driver sees `from` part way through sending one large message
    /// (bytes arrive, the message is not whole yet). If it is the leader
    /// this node follows, that is as good as a heartbeat: the election
    /// timer starts again, so a leader busy sending a command of many
    /// megabytes is not voted out meanwhile. Only timers change.
    pub fn peer_is_sending(&mut self, from: PeerId) {
        if matches!(self.role, RoleState::Follower) && self.leader == Some(from) {
            self.leader_heard = self.now;
            self.reset_election_timer();
        }
    }

    /// Starts a strong read under the driver's request id.
    pub fn read(&mut self, req: RequestId) -> Result<()> {
        let deadline = self.now + self.config.consensus.query_timeout;
        self.requests.add_read(req, deadline);
        self.dispatch_requests()
    }

    /// Collects everything the driver has to do now.
    pub fn ready(&mut self) -> Result<Ready> {
        self.leader_flush()?;
        let committed_entries = self.take_committed_entries()?;
        let every = self.config.snapshot_every;
        let snapshots_due = committed_entries
            .iter()
            .map(|e| e.index)
            .filter(|i| every > 0 && i.is_multiple_of(every))
            .collect();
        let out = std::mem::take(&mut self.out);
        let must_sync = self.unsynced.any();
        let (messages, persisted_messages) = if !must_sync {
            (out.messages, Vec::new())
        } else if self.unsynced.hard {
            (Vec::new(), out.messages)
        } else {
            // Only the log is unsynced: appends (all of them a leader's,
            // of its durable term) need not wait for its own copy.
            out.messages
                .into_iter()
                .partition(|(_, m)| matches!(m, Message::Append(_)))
        };
        Ok(Ready {
            messages,
            persisted_messages,
            must_sync,
            hard_state: out.hard_state,
            truncated_from: out.truncated_from,
            committed_entries,
            events: out.events,
            status: self.status_change(),
            rebuild: out.rebuild,
            restore: out.restore,
            commit_regressed: out.commit_regressed,
            epoch: self.epoch,
            snapshots_due,
        })
    }

    /// The state machine's snapshot after applying `index` (at most the
    /// applied index) of a ready of apply `epoch`. The store keeps it and
    /// compacts the log up to the previous snapshot, so peers a little
    /// behind can still replay the log. Returns false (and keeps nothing)
    /// when the machine started over since (another epoch), the log no
    /// longer holds `index` or a snapshot at least as new is kept.
    pub fn snapshot_taken(&mut self, epoch: u64, index: Index, data: Bytes) -> Result<bool> {
        if epoch != self.epoch || index <= self.snapshot_index || index > self.applied {
            return Ok(false);
        }
        let Some(term) = self.term_at(index)? else {
            return Ok(false);
        };
        let compact_to = self.snapshot_index.max(self.store.base().index);
        let data = self.wrap_snapshot(index, &data);
        let snapshot = Snapshot::new(LogPosition::new(term, index), data);
        self.store.save_snapshot(snapshot, compact_to)?;
        self.snapshot_index = index;
        Ok(true)
    }

    fn take_committed_entries(&mut self) -> Result<Vec<Entry>> {
        if self.applied >= self.commit {
            return Ok(Vec::new());
        }
        let entries = self.store.entries_within(
            self.applied + 1,
            self.commit + 1,
            MAX_APPLY_BATCH,
            MAX_APPLY_BYTES,
        )?;
        self.applied += entries.len() as Index;
        Ok(entries)
    }

    /// The state machine starts over: from `snapshot`'s state, or empty.
    fn restart_machine(&mut self, snapshot: Option<Snapshot>) {
        self.applied = snapshot.as_ref().map_or(0, |s| s.meta.position.index);
        self.out.rebuild = snapshot.is_none();
        self.out.restore = snapshot.map(for_machine);
        self.epoch += 1;
    }

    fn status_change(&mut self) -> Option<Status> {
        let status = self.status();
        if self.reported == Some(status) {
            return None;
        }
        self.reported = Some(status);
        Some(status)
    }

    fn send(&mut self, to: PeerId, message: Message) {
        self.out.messages.push((to, message));
    }

    fn event(&mut self, event: ClientEvent) {
        self.out.events.push(event);
    }

    fn is_observer(&self) -> bool {
        self.config.preference.is_observer()
    }

    /// Notes what a peer's answer says about it.
    fn note_peer(&mut self, peer: PeerId, observer: bool, learner: bool) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.observer = observer;
            p.learner = learner;
            p.known = true;
        }
    }

    /// Adopts a higher term seen in a message; returns whether it was higher.
    fn observe_term(&mut self, term: Term) -> Result<bool> {
        if term <= self.hard.term {
            return Ok(false);
        }
        self.raise_term_to(term)?;
        self.pre_vote = None;
        self.become_follower(None);
        Ok(true)
    }

    /// Moves the term up to `term` (no vote in it); lower terms change nothing.
    fn raise_term_to(&mut self, term: Term) -> Result<()> {
        if term <= self.hard.term {
            return Ok(());
        }
        self.set_hard_state(HardState {
            term,
            vote: None,
            ..self.hard
        })
    }

    /// The node holds what a leader committed: it counts from now on.
    fn stop_learning(&mut self) -> Result<()> {
        self.set_hard_state(HardState {
            learner: false,
            ..self.hard
        })
    }

    /// The tag of the terms this node stands in.
    fn term_tag(&self) -> u32 {
        (self.incarnation >> 32) as u32
    }

    /// How peers name this node's request `req`.
    fn ask(&self, req: RequestId) -> Ask {
        Ask {
            incarnation: self.incarnation,
            req,
        }
    }

    fn set_hard_state(&mut self, hard: HardState) -> Result<()> {
        if hard == self.hard {
            return Ok(());
        }
        self.store.set_hard_state(hard)?;
        self.hard = hard;
        self.out.hard_state = Some(hard);
        self.unsynced.hard = true;
        Ok(())
    }

    /// Only a deposed leader restarts its election timer here: a follower
    /// that merely sees a higher term keeps its deadline, or repeated
    /// elections that cannot win would starve the one node that can.
    fn become_follower(&mut self, leader: Option<PeerId>) {
        if let RoleState::Leader(state) = &mut self.role {
            let reads = state.reads.drain();
            self.requeue_leader_reads(reads);
            self.reset_election_timer();
        }
        self.role = RoleState::Follower;
        self.set_leader(leader);
    }

    fn set_leader(&mut self, leader: Option<PeerId>) {
        if self.leader != leader {
            self.leader = leader;
            self.requests.leader_changed();
        }
    }

    /// election_timeout + jitter (+ bootstrap_delay in term 0), times the leadership factor.
    fn reset_election_timer(&mut self) {
        let consensus = &self.config.consensus;
        let mut timeout =
            consensus.election_timeout + self.rng.duration_below(consensus.election_timeout_jitter);
        if self.hard.term == 0 {
            timeout += consensus.bootstrap_delay;
        }
        let factor = consensus.leadership.factor() * self.config.preference.factor();
        self.election_deadline = self.now + timeout * factor;
    }
}

/// A kept snapshot as the state machine restores it: its own bytes only.
fn for_machine(snapshot: Snapshot) -> Snapshot {
    let (_, data) = committee::unwrap(&snapshot.data);
    Snapshot {
        meta: snapshot.meta,
        data,
    }
}

#[cfg(test)]
mod review_tests;
#[cfg(test)]
mod tests;
