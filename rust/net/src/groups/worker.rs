//! The group worker: drives one node's consensus core with real time, the
//! mesh's consensus port and its log store, hands committed entries (and
//! snapshots to restore or take) to the group's `Applier`, keeps the
//! snapshots it takes, answers client requests and publishes status.
//!
//! Durability: a ready that wrote to the store is synced (one `sync` for
//! every append of the ready: group commit) before its client answers and
//! the messages that wait for it leave the worker. A leader's appends go
//! out first, so its fsync overlaps the followers'; the ready after the
//! sync hands out what the leader's now durable copy commits.

use std::collections::{BTreeSet, HashMap};
use std::ops::RangeInclusive;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mosaik_core::{
    ClientEvent, Command, ConsensusConfig, Entry, EntryKind, GroupId, LeadershipPreference,
    LogPosition, LogReplaySync, LogStore, Message, NodeConfig, PeerId, RaftNode, Ready, RequestKey,
    Role, Status,
};
use tokio::sync::{mpsc, watch};

use super::apply::{self, Applier, ApplyQueue, ApplyWork, Committed, OnApplied, TakenSnapshot};
use super::port::{Bonded, ConsensusPort, Outbox, RaftInbox};
use crate::error::NetError;
use crate::tasks::TaskSet;

/// What a client asks of the worker.
pub enum Request {
    Propose {
        commands: Vec<Command>,
        /// Answer when the leader assigned indices (`feed`) rather than on commit.
        on_assign: bool,
        reply: Answer<Proposed>,
    },
    /// A read index for a strong query; `None` when no leader confirmed one.
    Read { reply: Answer<Option<u64>> },
}

/// How the worker answers a request: called once, on the worker's task,
/// with the outcome (so no task has to wake up only to receive it), or
/// dropped unanswered when the worker stops.
pub type Answer<T> = Box<dyn FnOnce(T) + Send>;

/// What became of proposed commands: the first `done` of them committed
/// (or were assigned indices, for `on_assign`) from index `first` on; the
/// rest, if any, certainly never commit (`Rest::Offline`) or may or may
/// not (`Rest::Unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposed {
    /// Index of the first command (0 when none got one).
    pub first: u64,
    pub done: u64,
    pub rest: Rest,
}

/// The fate of the commands after the first `done` ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    /// There are none.
    None,
    Offline,
    Unknown,
}

/// The store a group's node keeps its term, vote, log and snapshot in.
pub type GroupStore = Box<dyn LogStore + Send>;

/// Everything the outside sees of one node's consensus state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    pub role: Role,
    pub leader: Option<PeerId>,
    pub term: u64,
    pub committed: u64,
    pub log_position: LogPosition,
    pub online: bool,
    pub elections: u64,
    pub leader_changes: u64,
    pub voters: u64,
}

impl GroupStatus {
    fn from_core(s: &Status, prev: Option<&GroupStatus>, voters: usize) -> Self {
        let (mut elections, mut leader_changes) =
            prev.map_or((0, 0), |p| (p.elections, p.leader_changes));
        if s.role == Role::Candidate
            && prev.is_none_or(|p| p.role != Role::Candidate || p.term != s.term)
        {
            elections += 1;
        }
        if s.leader.is_some() && prev.is_none_or(|p| p.leader != s.leader) {
            leader_changes += 1;
        }
        GroupStatus {
            role: s.role,
            leader: s.leader,
            term: s.term,
            committed: s.committed,
            log_position: s.last,
            online: s.online,
            elections,
            leader_changes,
            voters: voters as u64,
        }
    }
}

/// The handles a client of the worker holds.
#[derive(Clone)]
pub struct WorkerHandle {
    pub requests: mpsc::UnboundedSender<Request>,
    pub status: watch::Receiver<GroupStatus>,
    pub applied: watch::Receiver<u64>,
    pub on_applied: OnApplied,
}

/// Per-node settings of the worker, and the machine it drives.
pub struct WorkerSetup {
    pub preference: LeadershipPreference,
    pub replay: LogReplaySync,
    pub store: GroupStore,
    /// Snapshot after every multiple of this index (0: never); the same on
    /// every member (it is part of the machine's signature).
    pub snapshot_every: u64,
    pub applier: Box<dyn Applier>,
}

impl Proposed {
    fn all(range: RangeInclusive<u64>) -> Self {
        Proposed {
            first: *range.start(),
            done: range.end() + 1 - range.start(),
            rest: Rest::None,
        }
    }

    fn partly(committed: Option<(u64, u64)>, rest: Rest) -> Self {
        let (first, done) = committed.map_or((0, 0), |(first, last)| (first, last + 1 - first));
        Proposed { first, done, rest }
    }
}

impl ApplyWork {
    /// Empty work that goes on from where `previous` leaves the machine.
    fn after(previous: &ApplyWork) -> Self {
        ApplyWork {
            epoch: previous.epoch,
            rebuild: false,
            restore: None,
            entries: Vec::new(),
            last_index: previous.last_index,
            take_snapshot: false,
        }
    }
}

fn push_entry(work: &mut ApplyWork, entry: &Entry) {
    let (data, request) = match &entry.kind {
        EntryKind::Command(data) => (data, None),
        EntryKind::Request(key, data) => (data, Some(RequestKey::clone(key))),
        EntryKind::Marker | EntryKind::Committee(_) => {
            work.last_index = entry.index;
            return;
        }
    };
    work.entries.push(Committed {
        index: entry.index,
        term: entry.term,
        data: data.clone(),
        request,
    });
    work.last_index = entry.index;
}

/// A client request waiting for its answer.
struct Caller {
    on_assign: bool,
    reply: Reply,
}

enum Reply {
    Propose(Answer<Proposed>),
    Read(Answer<Option<u64>>),
}

/// Most waiting requests or messages taken before one `ready`.
const BATCH: usize = 1024;

/// Process-wide time origin for the core's clock.
fn now() -> Duration {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // Offset so that the first reading is not zero.
    EPOCH.get_or_init(Instant::now).elapsed() + Duration::from_secs(1)
}

fn random_seed() -> u64 {
    let mut seed = [0u8; 8];
    let _ = getrandom::getrandom(&mut seed);
    u64::from_le_bytes(seed)
}

/// How often the core's clock moves on: a fifth of the heartbeat interval,
/// at most 100 ms (every timer is in hundreds of milliseconds at default
/// timings). Each tick wakes every group, so an idle node with many groups
/// spends its CPU here: 100 ms instead of 20 ms cut an idle node's CPU with
/// 100 groups by a third, and failover time did not move.
fn tick_every(heartbeat: Duration) -> Duration {
    (heartbeat / 5).clamp(Duration::from_millis(1), Duration::from_millis(100))
}

struct Worker {
    group: GroupId,
    outbox: Arc<dyn Outbox>,
    node: RaftNode<GroupStore>,
    peers: BTreeSet<PeerId>,
    callers: HashMap<u64, Caller>,
    next_req: u64,
    apply: ApplyQueue,
    status: watch::Sender<GroupStatus>,
}

/// Starts the consensus worker of `group` on the mesh's `port`, as one of
/// `tasks`, with its machine in the apply pool.
pub(crate) fn start(
    group: GroupId,
    consensus: &ConsensusConfig,
    port: ConsensusPort,
    setup: WorkerSetup,
    tasks: &TaskSet,
) -> Result<WorkerHandle, NetError> {
    let mut config = NodeConfig::new(port.local, consensus.clone(), random_seed());
    config.preference = setup.preference;
    config.replay = setup.replay;
    config.snapshot_every = setup.snapshot_every;
    let node =
        RaftNode::new(config, setup.store, now()).map_err(|e| NetError::Config(e.to_string()))?;
    let machine = apply::start(&group.to_hex(), setup.applier)?;
    let initial = GroupStatus::from_core(&node.status(), None, node.voters());
    let (status_tx, status_rx) = watch::channel(initial);
    let (requests_tx, requests_rx) = mpsc::unbounded_channel();
    let worker = Worker {
        group,
        outbox: port.outbox,
        node,
        peers: BTreeSet::new(),
        callers: HashMap::new(),
        next_req: 1,
        apply: machine.work,
        status: status_tx,
    };
    let tick = tick_every(consensus.heartbeat_interval);
    tasks.spawn(worker.run(
        tick,
        requests_rx,
        port.inbox,
        port.bonded,
        machine.snapshots,
    ));
    Ok(WorkerHandle {
        requests: requests_tx,
        status: status_rx,
        applied: machine.applied,
        on_applied: machine.on_applied,
    })
}

impl Worker {
    async fn run(
        mut self,
        tick: Duration,
        mut requests: mpsc::UnboundedReceiver<Request>,
        mut inbox: RaftInbox,
        mut bonded: watch::Receiver<Bonded>,
        mut snapshots: mpsc::UnboundedReceiver<TakenSnapshot>,
    ) {
        bonded.mark_changed();
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Runs while the group is joined, whether or not clients still hold
        // a handle to send requests with.
        let mut clients = true;
        loop {
            let outcome = tokio::select! {
                req = requests.recv(), if clients => match req {
                    Some(req) => self.request(req).and_then(|()| self.more_requests(&mut requests)),
                    None => {
                        clients = false;
                        Ok(())
                    }
                },
                msg = inbox.recv() => match msg {
                    Some((from, bytes)) => self.message(from, &bytes).and_then(|()| self.more_messages(&mut inbox)),
                    None => return,
                },
                changed = bonded.changed() => {
                    let now = bonded.borrow_and_update().clone();
                    match changed {
                        Ok(()) if !now.left => self.sync_peers(now.peers),
                        _ => return,
                    }
                },
                Some((epoch, index, data)) = snapshots.recv() => self.keep_snapshot(epoch, index, data),
                _ = ticker.tick() => self.node.tick(now()),
            };
            if let Err(e) = outcome.and_then(|()| self.process_ready()) {
                log::error!("group {}: consensus stopped: {e}", self.group);
                return;
            }
        }
    }

    fn request(&mut self, req: Request) -> mosaik_core::Result<()> {
        let id = self.next_req;
        self.next_req += 1;
        match req {
            Request::Propose {
                commands,
                on_assign,
                reply,
            } => {
                self.callers.insert(
                    id,
                    Caller {
                        on_assign,
                        reply: Reply::Propose(reply),
                    },
                );
                self.node.propose(id, commands)
            }
            Request::Read { reply } => {
                self.callers.insert(
                    id,
                    Caller {
                        on_assign: false,
                        reply: Reply::Read(reply),
                    },
                );
                self.node.read(id)
            }
        }
    }

    /// Takes requests already waiting, so one `ready` serves them all.
    fn more_requests(
        &mut self,
        requests: &mut mpsc::UnboundedReceiver<Request>,
    ) -> mosaik_core::Result<()> {
        for _ in 0..BATCH {
            let Ok(req) = requests.try_recv() else { break };
            self.request(req)?;
        }
        Ok(())
    }

    /// Steps messages already waiting before the next `ready`.
    fn more_messages(&mut self, inbox: &mut RaftInbox) -> mosaik_core::Result<()> {
        for _ in 0..BATCH {
            let Ok((from, bytes)) = inbox.try_recv() else {
                break;
            };
            self.message(from, &bytes)?;
        }
        Ok(())
    }

    fn message(&mut self, from: PeerId, bytes: &[u8]) -> mosaik_core::Result<()> {
        if bytes.is_empty() {
            self.node.peer_is_sending(from);
            return Ok(());
        }
        match mosaik_core::decode(bytes) {
            Ok(msg) => self.node.step(from, msg),
            Err(e) => {
                log::warn!(
                    "group {}: undecodable consensus message from {from}: {e}",
                    self.group
                );
                Ok(())
            }
        }
    }

    /// Tells the core about bonds that formed or went away.
    fn sync_peers(&mut self, now: BTreeSet<PeerId>) -> mosaik_core::Result<()> {
        for gone in self.peers.difference(&now) {
            self.node.remove_peer(*gone)?;
        }
        for new in now.difference(&self.peers) {
            self.node.add_peer(*new);
        }
        self.peers = now;
        Ok(())
    }

    /// Handles readies until one needs no sync (a sync may commit).
    fn process_ready(&mut self) -> mosaik_core::Result<()> {
        loop {
            let ready = self.node.ready()?;
            // The status first: whatever a peer learns from this ready's
            // messages (that this node leads, say) is already visible here.
            if let Some(status) = ready.status {
                let voters = self.node.voters();
                self.status
                    .send_modify(|s| *s = GroupStatus::from_core(&status, Some(s), voters));
            }
            self.send(&ready.messages);
            if ready.must_sync {
                self.node.sync_storage()?;
            }
            self.send(&ready.persisted_messages);
            self.apply(&ready);
            for event in ready.events {
                self.event(event);
            }
            if !ready.must_sync {
                return Ok(());
            }
        }
    }

    fn send(&self, messages: &[(PeerId, Message)]) {
        for (peer, msg) in messages {
            match mosaik_core::encode(msg) {
                Ok(bytes) => {
                    self.outbox.send(peer, bytes);
                }
                Err(e) => log::error!("group {}: cannot encode a message: {e}", self.group),
            }
        }
    }

    /// A snapshot the apply side took: the store keeps it and compacts.
    fn keep_snapshot(&mut self, epoch: u64, index: u64, data: Bytes) -> mosaik_core::Result<()> {
        let size = data.len();
        if self.node.snapshot_taken(epoch, index, data)? {
            log::debug!(
                "group {}: kept a snapshot at index {index} ({size} bytes)",
                self.group
            );
        }
        Ok(())
    }

    /// Hands the ready's restore or rebuild and committed entries to the
    /// machine, cut after every index where the core asks for a snapshot.
    fn apply(&self, ready: &Ready) {
        let restore = ready.restore.as_ref();
        let mut work = ApplyWork {
            epoch: ready.epoch,
            rebuild: ready.rebuild && restore.is_none(),
            restore: restore.map(|s| s.data.clone()),
            entries: Vec::new(),
            last_index: restore.map_or(0, |s| s.meta.position.index),
            take_snapshot: false,
        };
        let mut pending = work.rebuild || work.restore.is_some();
        let mut due = ready.snapshots_due.iter().peekable();
        for entry in &ready.committed_entries {
            push_entry(&mut work, entry);
            pending = true;
            if due.next_if_eq(&&entry.index).is_some() {
                work.take_snapshot = true;
                let next = ApplyWork::after(&work);
                self.apply.send(std::mem::replace(&mut work, next));
                pending = false;
            }
        }
        if pending {
            self.apply.send(work);
        }
    }

    fn event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Assigned {
                req, first, last, ..
            } => {
                if self.callers.get(&req).is_some_and(|p| p.on_assign) {
                    self.resolve(req, Proposed::all(first..=last));
                }
            }
            ClientEvent::Committed { req, first, last } => {
                self.resolve(req, Proposed::all(first..=last))
            }
            ClientEvent::CommandOffline { req, committed, .. } => {
                self.resolve(req, Proposed::partly(committed, Rest::Offline))
            }
            ClientEvent::CommandUnknown { req, committed, .. } => {
                self.resolve(req, Proposed::partly(committed, Rest::Unknown))
            }
            ClientEvent::ReadReady { req, index } => self.resolve_read(req, Some(index)),
            ClientEvent::QueryOffline { req } => self.resolve_read(req, None),
        }
    }

    fn resolve(&mut self, req: u64, outcome: Proposed) {
        if let Some(Caller {
            reply: Reply::Propose(reply),
            ..
        }) = self.callers.remove(&req)
        {
            reply(outcome);
        }
    }

    fn resolve_read(&mut self, req: u64, index: Option<u64>) {
        if let Some(Caller {
            reply: Reply::Read(reply),
            ..
        }) = self.callers.remove(&req)
        {
            reply(index);
        }
    }
}
