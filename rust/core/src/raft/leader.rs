//! Leader duties: the term's marker entry, replication with per-peer
//! progress (pipelining, probing after a rejection), heartbeats with check
//! quorum, commit by
//! counting entries of its own term, accepting forwarded commands, and
//! confirming read indices.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use super::quorum::quorum_value;
use super::read_index::{ReadOrigin, ReadQueue};
use super::{RaftNode, RoleState};
use crate::entry::{Command, Entry, Index, LogPosition, Term};
use crate::error::Result;
use crate::ids::PeerId;
use crate::storage::{entry_cost, LogStore};
use crate::wire::{
    AppendEntries, AppendOutcome, AppendReply, Ask, Assignment, ForwardOutcome, Message, RequestId,
};

/// What the leader knows about one follower's log.
#[derive(Debug, Clone)]
pub(super) struct Progress {
    next: Index,
    matched: Index,
    acked_round: u64,
    /// After a rejection: one batch at a time until an accept.
    probing: bool,
    /// The follower catches up with log replay: no immediate re-probe.
    syncing: bool,
    /// A learner that holds an own-term commit of this leader: the round
    /// that must be confirmed, or the index that must commit, before it is
    /// told to count (0: not yet).
    admit_round: u64,
    admit_index: Index,
    /// When the follower last answered in this term (check quorum).
    last_reply: Duration,
    /// Pipelined appends not yet acknowledged: (last index, bytes) each,
    /// and their bytes in all. Pipelining pauses at `MAX_INFLIGHT_MESSAGES`
    /// messages' worth, so a peer far behind in a log of large entries is
    /// not sent the whole gap at once.
    inflight: VecDeque<(Index, usize)>,
    inflight_bytes: usize,
}

/// How many full messages' worth of bytes may be pipelined to one peer
/// before its acknowledgements.
const MAX_INFLIGHT_MESSAGES: usize = 4;

impl Progress {
    fn new(next: Index, now: Duration) -> Self {
        Progress {
            next,
            matched: 0,
            acked_round: 0,
            probing: false,
            syncing: false,
            admit_round: 0,
            admit_index: 0,
            last_reply: now,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
        }
    }

    fn sent(&mut self, last: Index, bytes: usize) {
        self.inflight.push_back((last, bytes));
        self.inflight_bytes += bytes;
    }

    /// The follower holds the log up to `last`: the appends up to it are
    /// no longer in flight.
    fn acknowledged(&mut self, last: Index) {
        while let Some(&(end, bytes)) = self.inflight.front() {
            if end > last {
                break;
            }
            self.inflight.pop_front();
            self.inflight_bytes -= bytes;
        }
    }

    fn forget_inflight(&mut self) {
        self.inflight.clear();
        self.inflight_bytes = 0;
    }
}

pub(super) struct LeaderState {
    pub(super) progress: BTreeMap<PeerId, Progress>,
    pub(super) reads: ReadQueue,
    term_start: Index,
    heartbeat_due: Duration,
    /// Highest commit index already sent to the followers; a higher one is
    /// announced at once so that they apply (and answer their clients)
    /// without waiting for the next heartbeat.
    commit_announced: Index,
    /// The highest heartbeat round a quorum acknowledged.
    confirmed_round: u64,
    /// When this node took the lead: check quorum waits an election timeout
    /// from here (its electors may still be learners that count once they
    /// hold its first entry).
    elected_at: Duration,
}

/// Most forwarded batches remembered of a term (oldest forgotten first).
const MAX_FORWARDED: usize = 65_536;

/// The forwarded batches this node took in the last term it led, kept
/// after it stepped down until it leads another: a duplicated `Forward`
/// gets the same answer instead of a second copy in the log, and a
/// refusal is only ever given when it is certain.
pub(super) struct Forwarded {
    term: Term,
    assigned: HashMap<(PeerId, Ask), Assignment>,
    order: VecDeque<(PeerId, Ask)>,
    /// Per asking node and incarnation, the highest request id forgotten
    /// (drivers number their requests upwards): a miss at or below it
    /// proves nothing.
    forgotten: HashMap<(PeerId, u64), RequestId>,
}

impl Forwarded {
    pub(super) fn new(term: Term) -> Self {
        Forwarded {
            term,
            assigned: HashMap::new(),
            order: VecDeque::new(),
            forgotten: HashMap::new(),
        }
    }

    fn insert(&mut self, key: (PeerId, Ask), assignment: Assignment) {
        if self.order.len() == MAX_FORWARDED {
            if let Some((peer, ask)) = self.order.pop_front() {
                self.assigned.remove(&(peer, ask));
                let mark = self.forgotten.entry((peer, ask.incarnation)).or_default();
                *mark = (*mark).max(ask.req);
            }
        }
        self.order.push_back(key);
        self.assigned.insert(key, assignment);
    }

    /// What this node can say of `key` sent to it for `term`, not leading it now.
    fn answer(&self, key: &(PeerId, Ask), term: Term) -> ForwardOutcome {
        if self.term != term {
            return ForwardOutcome::Unknown;
        }
        let (peer, ask) = key;
        match self.assigned.get(key) {
            Some(assignment) => ForwardOutcome::Assigned(*assignment),
            None if self
                .forgotten
                .get(&(*peer, ask.incarnation))
                .is_some_and(|mark| ask.req <= *mark) =>
            {
                ForwardOutcome::Unknown
            }
            None => ForwardOutcome::Refused,
        }
    }
}

impl<S: LogStore> RaftNode<S> {
    /// Takes the lead of the current term, elected by `electors` (with the
    /// incarnation each voted from).
    pub(super) fn become_leader(&mut self, electors: &[(PeerId, u64)]) -> Result<()> {
        let next = self.last.index + 1;
        let progress = self
            .peers
            .keys()
            .map(|p| (*p, Progress::new(next, self.now)))
            .collect();
        let state = LeaderState {
            progress,
            reads: ReadQueue::default(),
            term_start: next,
            heartbeat_due: self.now,
            commit_announced: self.commit,
            confirmed_round: 0,
            elected_at: self.now,
        };
        self.forwarded = Forwarded::new(self.hard.term);
        self.role = RoleState::Leader(Box::new(state));
        self.set_leader(Some(self.id));
        self.stop_learning()?;
        let first = self.term_start_entry(electors);
        self.append_own([first])?;
        self.leader_tick()?;
        self.leader_quorum_changed()
    }

    pub(super) fn leader_peer_added(&mut self, peer: PeerId) {
        let (next, now) = (self.last.index + 1, self.now);
        if let RoleState::Leader(state) = &mut self.role {
            state.progress.insert(peer, Progress::new(next, now));
            self.send_empty_append(peer);
        }
    }

    /// Sends heartbeats (a new read round) when they are due.
    pub(super) fn leader_tick(&mut self) -> Result<()> {
        let RoleState::Leader(state) = &mut self.role else {
            return Ok(());
        };
        if self.now < state.heartbeat_due {
            return Ok(());
        }
        let consensus = &self.config.consensus;
        let interval =
            consensus.heartbeat_interval - self.rng.duration_below(consensus.heartbeat_jitter);
        state.heartbeat_due = self.now + interval;
        state.reads.start_round();
        let peers: Vec<PeerId> = state.progress.keys().copied().collect();
        if !self.quorum_heard_lately() {
            self.become_follower(None);
            return Ok(());
        }
        for peer in peers {
            self.heartbeat(peer)?;
        }
        self.leader_quorum_changed()
    }

    /// Check quorum: a quorum of voters (self included) answered within the
    /// last election timeout. A leader cut off from its quorum steps down
    /// instead of showing itself as leader and taking requests it cannot commit.
    fn quorum_heard_lately(&self) -> bool {
        let timeout = self.config.consensus.election_timeout;
        if self
            .leader_state()
            .is_some_and(|s| self.now < s.elected_at + timeout)
        {
            return true;
        }
        let since = self.now.saturating_sub(timeout);
        let heard = self.voter_values(1, |p| Index::from(p.last_reply >= since));
        heard.iter().sum::<Index>() as usize >= self.quorum()
    }

    /// An empty append at the peer's `next - 1` (which also uncovers lost
    /// entries: the follower rejects it), or the pending probe again.
    fn heartbeat(&mut self, peer: PeerId) -> Result<()> {
        let Some(progress) = self.progress_mut(peer) else {
            return Ok(());
        };
        if progress.probing && !progress.syncing {
            return self.send_batches(peer, true);
        }
        self.send_empty_append(peer);
        Ok(())
    }

    /// Replicates new entries and starts a read round if reads wait for one.
    pub(super) fn leader_flush(&mut self) -> Result<()> {
        let RoleState::Leader(state) = &mut self.role else {
            return Ok(());
        };
        let new_round = state.reads.needs_round();
        if new_round {
            state.reads.start_round();
        }
        let announce = self.commit > state.commit_announced;
        state.commit_announced = self.commit;
        let last = self.last.index;
        let targets: Vec<(PeerId, bool)> = state
            .progress
            .iter()
            .map(|(peer, p)| (*peer, !p.syncing && !p.probing && p.next <= last))
            .collect();
        for (peer, has_data) in targets {
            if has_data {
                self.send_batches(peer, false)?;
            } else if new_round || announce {
                self.send_empty_append(peer);
            }
        }
        if new_round {
            self.leader_quorum_changed()?;
        }
        Ok(())
    }

    fn progress_mut(&mut self, peer: PeerId) -> Option<&mut Progress> {
        match &mut self.role {
            RoleState::Leader(state) => state.progress.get_mut(&peer),
            _ => None,
        }
    }

    fn leader_state(&self) -> Option<&LeaderState> {
        match &self.role {
            RoleState::Leader(state) => Some(state),
            _ => None,
        }
    }

    fn round(&self) -> u64 {
        self.leader_state().map_or(0, |s| s.reads.round())
    }

    fn append_message(&self, peer: PeerId, next: Index, entries: Vec<Entry>) -> Result<Message> {
        let prev_index = next - 1;
        let prev_term = self.term_at(prev_index)?.unwrap_or(0);
        let commit = self.commit;
        let admit = self.leader_state().is_some_and(|s| {
            s.progress.get(&peer).is_some_and(|p| {
                p.admit_round > 0 && (s.confirmed_round >= p.admit_round || commit >= p.admit_index)
            })
        });
        Ok(Message::Append(AppendEntries {
            term: self.hard.term,
            prev: LogPosition::new(prev_term, prev_index),
            entries,
            commit: self.commit,
            first: self.store.base().index + 1,
            round: self.round(),
            admit,
        }))
    }

    fn send_empty_append(&mut self, peer: PeerId) {
        let Some(next) = self.progress_mut(peer).map(|p| p.next) else {
            return;
        };
        let next = next.max(self.store.base().index + 1);
        if let Ok(message) = self.append_message(peer, next, Vec::new()) {
            self.send(peer, message);
        }
    }

    /// Sends entries from the peer's `next` on: all there are (pipelined,
    /// `next` moves on), or one probe batch that leaves `next` until accepted.
    /// Each message holds at most `max_append_entries` entries and, past
    /// its first, the consensus config's `entry_budget` of bytes.
    /// A peer that needs compacted entries gets the log from its start (its
    /// `first` tells it to fetch a snapshot).
    fn send_batches(&mut self, peer: PeerId, only_one: bool) -> Result<()> {
        let max = self.config.max_append_entries.max(1);
        let budget = self.config.consensus.entry_budget();
        let window = budget.saturating_mul(MAX_INFLIGHT_MESSAGES);
        let last = self.last.index;
        let first = self.store.base().index + 1;
        loop {
            let Some(progress) = self.progress_mut(peer) else {
                return Ok(());
            };
            if !only_one && progress.inflight_bytes >= window {
                return Ok(());
            }
            progress.next = progress.next.clamp(first, last + 1);
            let next = progress.next;
            let entries = self.store.entries_within(next, last + 1, max, budget)?;
            let count = entries.len() as Index;
            let bytes = entries.iter().map(entry_cost).sum();
            let message = self.append_message(peer, next, entries)?;
            self.send(peer, message);
            if only_one {
                return Ok(());
            }
            if let Some(progress) = self.progress_mut(peer) {
                progress.next = next + count;
                if count > 0 {
                    progress.sent(next + count - 1, bytes);
                }
            }
            if count == 0 || next + count > last {
                return Ok(());
            }
        }
    }

    pub(super) fn handle_append_reply(&mut self, from: PeerId, reply: AppendReply) -> Result<()> {
        if self.observe_term(reply.term)? || reply.term != self.hard.term {
            return Ok(());
        }
        self.note_peer(from, reply.observer, reply.learner);
        let (now, base) = (self.now, self.store.base().index);
        let Some(progress) = self.progress_mut(from) else {
            return Ok(());
        };
        progress.last_reply = now;
        progress.acked_round = progress.acked_round.max(reply.round);
        progress.syncing = reply.syncing;
        let mut probe = false;
        match reply.outcome {
            AppendOutcome::Accepted { last } => {
                progress.matched = progress.matched.max(last);
                progress.next = progress.next.max(last + 1);
                progress.probing = false;
                progress.acknowledged(last);
            }
            AppendOutcome::Rejected { hint } => {
                // A follower whose log lost to another one may hold less
                // than it acknowledged before: believe the rejection.
                progress.matched = progress.matched.min(hint.saturating_sub(1));
                progress.next = hint.max(1);
                progress.probing = true;
                progress.forget_inflight();
                probe = !progress.syncing && hint > base;
            }
        }
        if probe {
            self.send_batches(from, true)?;
        }
        self.note_learner_progress(from, reply.learner)?;
        self.leader_quorum_changed()
    }

    /// A learner that now holds an entry this leader committed in its own
    /// term waits until a quorum confirms this leader again (a heartbeat
    /// round started after, or an entry appended after, commits), so that a
    /// leader deposed without knowing it never admits anyone.
    fn note_learner_progress(&mut self, peer: PeerId, learner: bool) -> Result<()> {
        let (commit, next) = (self.commit, self.last.index + 1);
        let RoleState::Leader(state) = &mut self.role else {
            return Ok(());
        };
        // The term's first entry is this leader's own; once committed, a
        // log that holds it holds every entry committed before.
        let own_commit = commit >= state.term_start;
        let (round, term_start) = (state.reads.round(), state.term_start);
        let Some(progress) = state.progress.get_mut(&peer) else {
            return Ok(());
        };
        if !learner {
            progress.admit_round = 0;
        } else if progress.admit_round == 0 && own_commit && progress.matched >= term_start {
            progress.admit_round = round + 1;
            progress.admit_index = next;
        }
        Ok(())
    }

    /// Re-evaluates commit, read confirmation and committee growth after
    /// votes of the quorum moved.
    pub(super) fn leader_quorum_changed(&mut self) -> Result<()> {
        self.maybe_commit()?;
        self.confirm_reads();
        let Some(state) = self.leader_state() else {
            return Ok(());
        };
        let term_start = state.term_start;
        let caught_up: Vec<PeerId> = state
            .progress
            .iter()
            .filter(|(_, p)| p.matched >= term_start)
            .map(|(peer, _)| *peer)
            .collect();
        self.grow_committee(term_start, &caught_up)
    }

    /// Per counted voter (self first, when it counts) a value taken from its progress.
    fn voter_values(&self, own: Index, of: impl Fn(&Progress) -> Index) -> Vec<Index> {
        let Some(state) = self.leader_state() else {
            return Vec::new();
        };
        let peers = state
            .progress
            .iter()
            .filter(|(peer, _)| self.peer_counts(peer))
            .map(|(_, p)| of(p));
        let own = self.self_counts().then_some(own);
        own.into_iter().chain(peers).collect()
    }

    /// Commits the highest index a quorum holds, if it is of the current term.
    fn maybe_commit(&mut self) -> Result<()> {
        let mut matched = self.voter_values(self.durable_last(), |p| p.matched);
        let Some(mut index) = quorum_value(&mut matched, self.quorum()) else {
            return Ok(());
        };
        if self.first_committee_open() {
            let Some(bonded) = self.bonded_majority_holds() else {
                return Ok(());
            };
            index = index.min(bonded);
        }
        if index > self.commit && self.term_at(index)? == Some(self.hard.term) {
            self.advance_commit(index)?;
        }
        Ok(())
    }

    /// The highest index a majority of every bonded voter (members,
    /// learners and all, observers aside) and this node hold.
    fn bonded_majority_holds(&self) -> Option<Index> {
        let state = self.leader_state()?;
        let peers = state
            .progress
            .iter()
            .filter(|(peer, _)| self.peers.get(peer).is_some_and(|p| !p.observer))
            .map(|(_, p)| p.matched);
        let mut matched: Vec<Index> = std::iter::once(self.durable_last()).chain(peers).collect();
        let majority = matched.len() / 2 + 1;
        quorum_value(&mut matched, majority)
    }

    fn confirm_reads(&mut self) {
        let Some(state) = self.leader_state() else {
            return;
        };
        let term_start = state.term_start;
        if self.commit < term_start {
            return;
        }
        let mut rounds = self.voter_values(state.reads.round(), |p| p.acked_round);
        let Some(confirmed) = quorum_value(&mut rounds, self.quorum()) else {
            return;
        };
        let RoleState::Leader(state) = &mut self.role else {
            return;
        };
        state.confirmed_round = state.confirmed_round.max(confirmed);
        for (origin, index) in state.reads.confirm(confirmed, term_start) {
            match origin {
                ReadOrigin::Local(req) => self.read_confirmed(req, index),
                ReadOrigin::Remote(peer, ask) => self.send(
                    peer,
                    Message::ReadIndexReply {
                        ask,
                        index: Some(index),
                    },
                ),
            }
        }
    }

    /// Appends commands as the leader; returns their assignment.
    pub(super) fn lead_commands(&mut self, commands: Vec<Command>) -> Result<Assignment> {
        let (first, last) = self.append_commands(commands)?;
        self.leader_quorum_changed()?;
        Ok(Assignment {
            term: self.hard.term,
            first,
            last,
        })
    }

    /// Takes forwarded commands when this node leads the term they were
    /// sent to (once per request, however often the message arrives);
    /// otherwise says whether it took them when it led that term, refused
    /// them for sure, or cannot tell (it no longer remembers that term).
    pub(super) fn handle_forward(
        &mut self,
        from: PeerId,
        ask: Ask,
        term: Term,
        commands: Vec<Command>,
    ) -> Result<()> {
        let key = (from, ask);
        let leading = matches!(self.role, RoleState::Leader(_)) && term == self.hard.term;
        let outcome = match self.forwarded.answer(&key, term) {
            ForwardOutcome::Refused if leading && !commands.is_empty() => {
                let assignment = self.lead_commands(commands)?;
                self.forwarded.insert(key, assignment);
                ForwardOutcome::Assigned(assignment)
            }
            outcome => outcome,
        };
        self.send(from, Message::ForwardReply { ask, outcome });
        Ok(())
    }

    pub(super) fn handle_read_index(&mut self, from: PeerId, ask: Ask) {
        let commit = self.commit;
        match &mut self.role {
            RoleState::Leader(state) => state.reads.push(ReadOrigin::Remote(from, ask), commit),
            _ => self.send(from, Message::ReadIndexReply { ask, index: None }),
        }
    }

    /// Queues a strong read of this node's own client.
    pub(super) fn lead_read(&mut self, req: RequestId) {
        let commit = self.commit;
        if let RoleState::Leader(state) = &mut self.role {
            state.reads.push(ReadOrigin::Local(req), commit);
        }
    }
}
