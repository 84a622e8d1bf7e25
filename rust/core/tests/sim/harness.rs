//! The simulated cluster: nodes with crash-reverting stores, skewed clocks
//! and random ids, a virtual clock, a seeded network that delays (briefly
//! or for seconds), drops, duplicates and reorders, bonds that follow
//! partitions and crashes (sometimes seen by one side only, sometimes not
//! seen at all), a driver that may sync, apply and snapshot late, and
//! clients that propose and read.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use mosaik_core::rng::Rng;
use mosaik_core::{
    decode, encode, ClientEvent, Command, ConsensusConfig, Entry, EntryKind, LeadershipPreference,
    LogReplaySync, LogStore, Message, NodeConfig, PeerId, RaftNode, RequestKey, Role, Snapshot,
    Status,
};

use crate::faults::{Families, Faults};
use crate::invariants::Checker;
use crate::store::SimStore;

pub const QUANTUM: Duration = Duration::from_millis(5);
const CHAOS: Duration = Duration::from_secs(6);
const LIVENESS_BOUND: Duration = Duration::from_secs(30);
/// A silenced leader that its peers stay bonded to is replaced within this
/// (ten election timeouts of 300 ms).
pub const FAILOVER_BOUND: Duration = Duration::from_secs(3);
/// Every node snapshots its state machine after each multiple of this index.
const SNAPSHOT_EVERY: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// min_quorum = majority of the intended voters; every fault.
    ConsistencyFirst,
    /// min_quorum = 1; only faults that keep every bond (no partitions,
    /// pauses, crashes, lost stores, one-sided or unseen bond changes).
    AvailabilityFirst,
    /// min_quorum = 1; every fault; only log matching, apply consistency and liveness.
    AvailabilityChaos,
}

impl Mode {
    pub fn full_safety(self) -> bool {
        self != Mode::AvailabilityChaos
    }
}

/// What one ready asked the driver to do, queued when the driver is slow:
/// a sync, the messages that wait for it, apply work and client events
/// (the ready's other messages went out at once).
struct ReadyWork {
    due: Duration,
    sync: bool,
    messages: Vec<(PeerId, Message)>,
    apply: ApplyWork,
    events: Vec<ClientEvent>,
    /// Observed (and checked) when the driver gets to this ready: a status
    /// the driver has not processed yet is nobody's knowledge.
    status: Option<Status>,
    commit_regressed: Option<(u64, u64)>,
}

/// State machine work of one ready, applied `due` or later, in order.
struct ApplyWork {
    due: Duration,
    /// The core's apply epoch of this work (`Ready::epoch`).
    epoch: u64,
    restore: Option<Snapshot>,
    rebuild: bool,
    entries: Vec<Entry>,
    /// The ready's `snapshots_due`.
    snapshots_due: Vec<u64>,
}

/// A snapshot the driver took and hands back to the core later.
struct PendingSnapshot {
    due: Duration,
    /// The driver's apply epoch when it was taken (bumped by rebuild/restore).
    epoch: u64,
    index: u64,
    data: Bytes,
}

pub struct SimNode {
    pub id: PeerId,
    pub raft: Option<RaftNode<SimStore>>,
    pub parked_store: Option<SimStore>,
    pub observer: bool,
    /// A voter beyond the size min_quorum was configured for.
    pub extra: bool,
    pub joined: bool,
    pub paused: bool,
    /// Restarted (or rejoined) with an empty store at some point of this run.
    pub lost_state: bool,
    pub bonds: BTreeSet<usize>,
    /// Applied values by index - 1 (0 for a marker).
    pub machine: Vec<u64>,
    pub proposals: BTreeMap<u64, Vec<u64>>,
    /// Strong reads: request -> (read index once known, floor it must reach).
    pub reads: BTreeMap<u64, (Option<u64>, u64)>,
    pub restarts: u64,
    pub last_role: Option<Role>,
    pub online: bool,
    /// Local clock: `offset + now * rate`.
    clock_rate: f64,
    clock_offset: Duration,
    work: VecDeque<ReadyWork>,
    applying: VecDeque<ApplyWork>,
    snapshots: VecDeque<PendingSnapshot>,
    epoch: u64,
}

impl SimNode {
    pub fn alive(&self) -> bool {
        self.raft.is_some() && self.joined
    }

    pub fn running(&self) -> bool {
        self.alive() && !self.paused
    }

    fn local(&self, now: Duration) -> Duration {
        self.clock_offset + now.mul_f64(self.clock_rate)
    }

    /// The driver still owes a sync of writes the core made.
    pub fn owes_sync(&self) -> bool {
        self.work.iter().any(|w| w.sync)
    }

    /// Forgets the driver's queued work (the process died).
    fn drop_driver_state(&mut self) {
        self.work.clear();
        self.applying.clear();
        self.snapshots.clear();
    }
}

struct InFlight {
    at: Duration,
    seq: u64,
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What one run exercised, summed over seeds in the report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub faults: u64,
    pub elections: u64,
    pub acked: u64,
    pub reads: u64,
    pub rebuilds: u64,
    /// Times a node went offline (an election, a lost leader or a log replay).
    pub offline_spells: u64,
    pub snapshots: u64,
    pub restores: u64,
    pub converge_ms: u64,
    /// Messages held 0.2-2 s.
    pub long_delays: u64,
    /// Readies whose sync (and everything after it) the driver did late.
    pub late_syncs: u64,
    /// Crashes that threw away writes made after the last sync.
    pub unsynced_lost: u64,
    /// Restarts with an empty store under the same id.
    pub empty_restarts: u64,
    /// Nodes that left (all bonds drop) to come back empty under the same id.
    pub leaves: u64,
    /// Voters beyond the configured size that joined.
    pub extra_voters: u64,
    /// Apply work done late.
    pub late_applies: u64,
    /// Snapshots handed back late.
    pub late_snapshots: u64,
    /// Snapshots handed back after a rebuild or restore since they were
    /// taken, and how many of those the core kept.
    pub stale_offers: u64,
    pub stale_snapshots: u64,
    /// Bonds dropped on one side only.
    pub one_sided_drops: u64,
    /// Bonds that broke and re-formed unseen (messages in flight lost).
    pub unseen_blips: u64,
    /// Restarts the peers never saw as a remove_peer/add_peer pair.
    pub unseen_restarts: u64,
    /// Nodes whose clock runs at another rate and offset.
    pub skewed_clocks: u64,
    /// Commands reported CommandOffline.
    pub offline: u64,
    /// Silenced-leader failovers checked, and the slowest.
    pub failovers: u64,
    pub failover_ms: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.faults += o.faults;
        self.elections += o.elections;
        self.acked += o.acked;
        self.reads += o.reads;
        self.rebuilds += o.rebuilds;
        self.offline_spells += o.offline_spells;
        self.snapshots += o.snapshots;
        self.restores += o.restores;
        self.converge_ms = self.converge_ms.max(o.converge_ms);
        self.long_delays += o.long_delays;
        self.late_syncs += o.late_syncs;
        self.unsynced_lost += o.unsynced_lost;
        self.empty_restarts += o.empty_restarts;
        self.leaves += o.leaves;
        self.extra_voters += o.extra_voters;
        self.late_applies += o.late_applies;
        self.late_snapshots += o.late_snapshots;
        self.stale_offers += o.stale_offers;
        self.stale_snapshots += o.stale_snapshots;
        self.one_sided_drops += o.one_sided_drops;
        self.unseen_blips += o.unseen_blips;
        self.unseen_restarts += o.unseen_restarts;
        self.skewed_clocks += o.skewed_clocks;
        self.offline += o.offline;
        self.failovers += o.failovers;
        self.failover_ms = self.failover_ms.max(o.failover_ms);
    }
}

pub struct Sim {
    pub mode: Mode,
    pub stats: Stats,
    pub seed: u64,
    pub rng: Rng,
    pub now: Duration,
    pub nodes: Vec<SimNode>,
    pub faults: Faults,
    pub checker: Checker,
    /// The largest committee any node's log held so far (they only grow),
    /// committed or not: who may be a member.
    committee: Vec<PeerId>,
    /// The most members of a committee some node saw committed: how many
    /// members there surely are.
    committed_members: usize,
    ids: BTreeMap<PeerId, usize>,
    net: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    next_value: u64,
    next_req: u64,
    config: ConsensusConfig,
    trace: bool,
}

fn random_id(rng: &mut Rng) -> PeerId {
    let mut id = [0u8; 32];
    for chunk in id.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    PeerId(id)
}

impl Sim {
    pub fn new(mode: Mode, families: Families, seed: u64, trace: bool) -> Self {
        let mut rng = Rng::new(seed ^ 0x005E_ED0F_5111);
        let voters = 1 + rng.below(5) as usize;
        let observers = rng.below(2) as usize;
        let late = rng.below(3) as usize;
        let late_observer = late > 0 && rng.chance(0.3);
        // Consistency-first: min_quorum is sized for the intended voters,
        // but more voters may join later than the group was configured for
        // (only where min_quorum >= 2: at 1 the group is availability-first
        // by configuration, whatever the mode's name).
        let intended = voters + late - usize::from(late_observer);
        let extra = if mode == Mode::ConsistencyFirst
            && intended >= 2
            && rng.chance(0.3)
            && families.extra_voters
        {
            1 + rng.below(2) as usize
        } else {
            0
        };
        let total = voters + observers + late + extra;
        let mut nodes = Vec::new();
        let mut ids = BTreeMap::new();
        let skew = rng.chance(0.7) && families.skew;
        for i in 0..total {
            let observer = (i >= voters && i < voters + observers)
                || (late_observer && i == voters + observers + late - 1);
            let id = if families.random_ids {
                random_id(&mut rng)
            } else {
                PeerId([i as u8 + 1; 32])
            };
            ids.insert(id, i);
            let (clock_rate, clock_offset) = if skew {
                (
                    0.95 + rng.below(101) as f64 / 1000.0,
                    Duration::from_millis(rng.below(10_000)),
                )
            } else {
                (1.0, Duration::ZERO)
            };
            nodes.push(SimNode {
                id,
                raft: None,
                parked_store: Some(SimStore::new()),
                observer,
                extra: i >= voters + observers + late,
                joined: i < voters + observers,
                paused: false,
                lost_state: false,
                bonds: BTreeSet::new(),
                machine: Vec::new(),
                proposals: BTreeMap::new(),
                reads: BTreeMap::new(),
                restarts: 0,
                last_role: None,
                online: true,
                clock_rate,
                clock_offset,
                work: VecDeque::new(),
                applying: VecDeque::new(),
                snapshots: VecDeque::new(),
                epoch: 0,
            });
        }
        let intended_voters = nodes.iter().filter(|n| !n.observer && !n.extra).count() as u32;
        let min_quorum = match mode {
            Mode::ConsistencyFirst => intended_voters / 2 + 1,
            _ => 1,
        };
        let config = ConsensusConfig {
            heartbeat_interval: Duration::from_millis(50),
            heartbeat_jitter: Duration::from_millis(10),
            election_timeout: Duration::from_millis(300),
            election_timeout_jitter: Duration::from_millis(150),
            bootstrap_delay: Duration::from_millis(100),
            forward_timeout: Duration::from_millis(600),
            query_timeout: Duration::from_millis(600),
            min_quorum,
            ..ConsensusConfig::default()
        };
        let faults = Faults::new(mode, families, &mut rng);
        let mut sim = Sim {
            mode,
            stats: Stats::default(),
            seed,
            rng,
            now: Duration::ZERO,
            nodes,
            faults,
            checker: Checker::new(mode),
            committee: Vec::new(),
            committed_members: 0,
            ids,
            net: BinaryHeap::new(),
            seq: 0,
            next_value: 1,
            next_req: 1,
            config,
            trace,
        };
        if skew {
            sim.stats.skewed_clocks = total as u64;
        }
        for i in 0..sim.nodes.len() {
            if sim.nodes[i].joined {
                sim.start_node(i);
            }
        }
        sim.rebond();
        sim
    }

    pub fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            println!("[{:>6}ms] {}", self.now.as_millis(), what());
        }
    }

    pub fn min_quorum(&self) -> u32 {
        self.config.min_quorum
    }

    pub fn run(mut self) -> Stats {
        while self.now < CHAOS {
            self.faults_step();
            self.client_step();
            self.quantum();
        }
        self.heal_all();
        let healed = self.now;
        self.converge();
        self.stats.converge_ms = (self.now - healed).as_millis() as u64;
        if self.faults.families.failover && self.failover_under_load() {
            self.converge();
        }
        self.checker.final_check(&self.nodes);
        self.stats.acked = self.checker.acks_checked;
        self.stats.reads = self.checker.reads_checked;
        self.stats.offline = self.checker.offline_count();
        self.stats
    }

    fn converge(&mut self) {
        let deadline = self.now + LIVENESS_BOUND;
        loop {
            self.quantum();
            if self.now.as_millis().is_multiple_of(100) {
                self.start_stopped();
                if self.converged() {
                    break;
                }
            }
            assert!(
                self.now < deadline,
                "no convergence within {LIVENESS_BOUND:?} after the faults stopped:\n{}",
                self.describe()
            );
        }
    }

    /// Silences the leader of a converged group without any peer losing
    /// its bond to it, keeps the clients busy, and requires the others to
    /// elect a new leader within `FAILOVER_BOUND`. Skipped when the others
    /// are no majority of the voters (they could not win even in Raft) or
    /// fewer than min_quorum. Returns whether it ran.
    fn failover_under_load(&mut self) -> bool {
        let Some(leader) = (0..self.nodes.len()).find(|i| {
            self.nodes[*i].alive()
                && self.nodes[*i].raft.as_ref().expect("alive").role() == Role::Leader
        }) else {
            return false;
        };
        let voters = self
            .nodes
            .iter()
            .filter(|n| n.alive() && !n.observer)
            .count() as u32;
        let others = voters - 1;
        if others == 0 || others < voters / 2 + 1 || others < self.min_quorum() {
            return false;
        }
        // In a consistency-first group only committee members that count
        // (not learners) can elect: the check needs `min_quorum` of them
        // besides the leader.
        let committee = self.nodes[leader]
            .raft
            .as_ref()
            .expect("alive")
            .committee()
            .to_vec();
        let electors = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| {
                *i != leader
                    && n.alive()
                    && committee.contains(&n.id)
                    && n.raft.as_ref().is_some_and(|r| !r.is_learner())
            })
            .count() as u32;
        if !committee.is_empty() && electors < self.min_quorum() {
            return false;
        }
        let term = self.nodes[leader]
            .raft
            .as_ref()
            .expect("alive")
            .status()
            .term;
        self.log(|| format!("failover check: silencing leader {leader} of term {term}"));
        self.nodes[leader].paused = true;
        let start = self.now;
        loop {
            self.client_step();
            self.quantum();
            let replaced = (0..self.nodes.len()).any(|i| {
                i != leader
                    && self.nodes[i].running()
                    && self.nodes[i]
                        .raft
                        .as_ref()
                        .is_some_and(|r| r.role() == Role::Leader && r.status().term > term)
            });
            if replaced {
                break;
            }
            assert!(
                self.now - start < FAILOVER_BOUND,
                "failover: no new leader within {FAILOVER_BOUND:?} after leader {leader} of term {term} went silent (still bonded)"
            );
        }
        let took = (self.now - start).as_millis() as u64;
        self.log(|| format!("failover took {took} ms"));
        self.stats.failovers += 1;
        self.stats.failover_ms = self.stats.failover_ms.max(took);
        self.nodes[leader].paused = false;
        true
    }

    /// One time quantum: deliver what is due, tick every running node.
    fn quantum(&mut self) {
        self.now += QUANTUM;
        while self.net.peek().is_some_and(|m| m.0.at <= self.now) {
            let Reverse(message) = self.net.pop().expect("peeked");
            self.deliver(message);
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].running() {
                let now = self.nodes[i].local(self.now);
                let raft = self.nodes[i].raft.as_mut().expect("running");
                raft.tick(now).expect("tick");
                self.process_ready(i);
            }
        }
    }

    fn deliver(&mut self, message: InFlight) {
        let to = message.to;
        if !self.nodes[to].alive() || !self.faults.connected(message.from, to) {
            return;
        }
        if self.nodes[to].paused {
            let later = InFlight {
                at: self.now + QUANTUM * 4,
                ..message
            };
            self.net.push(Reverse(later));
            return;
        }
        let decoded = decode(&message.bytes).expect("a message the core encoded decodes");
        let from = self.nodes[message.from].id;
        self.log(|| format!("{} -> {}: {:?}", message.from, to, short(&decoded)));
        self.nodes[to]
            .raft
            .as_mut()
            .expect("alive")
            .step(from, decoded)
            .expect("step");
        self.process_ready(to);
    }

    fn send(&mut self, from: usize, to: PeerId, message: &Message) {
        let to = self.index_of(to);
        if !self.faults.connected(from, to) || self.rng.chance(self.faults.drop) {
            return;
        }
        let bytes = encode(message).expect("encode");
        let copies = if self.rng.chance(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = Duration::from_millis(1 + self.rng.below(self.faults.max_delay_ms));
            if self.rng.chance(self.faults.long_delay) {
                delay = Duration::from_millis(200 + self.rng.below(1800));
                self.stats.long_delays += 1;
            }
            self.seq += 1;
            let flight = InFlight {
                at: self.now + delay,
                seq: self.seq,
                from,
                to,
                bytes: bytes.clone(),
            };
            self.net.push(Reverse(flight));
        }
    }

    /// Loses every message in flight between `a` and `b`, both ways: the
    /// connection broke and re-formed between two looks of the driver.
    pub fn lose_in_flight(&mut self, a: usize, b: usize) {
        let net = std::mem::take(&mut self.net);
        self.net = net
            .into_iter()
            .filter(|Reverse(m)| !((m.from == a && m.to == b) || (m.from == b && m.to == a)))
            .collect();
    }

    pub fn index_of(&self, id: PeerId) -> usize {
        self.ids[&id]
    }

    /// Hands one ready to the "driver" and checks the invariants. The
    /// driver may do the ready's sync (and, behind it, everything the
    /// ready asked) late, and its apply work later still.
    pub fn process_ready(&mut self, i: usize) {
        let ready = self.nodes[i]
            .raft
            .as_mut()
            .expect("alive")
            .ready()
            .expect("ready");
        let mut due = self.now;
        if ready.must_sync && self.rng.chance(self.faults.sync_lag) {
            due += Duration::from_millis(1 + self.rng.below(self.faults.sync_lag_ms));
            self.stats.late_syncs += 1;
        }
        let mut apply_due = due;
        let has_apply =
            !ready.committed_entries.is_empty() || ready.restore.is_some() || ready.rebuild;
        if has_apply && self.rng.chance(self.faults.apply_lag) {
            apply_due += Duration::from_millis(1 + self.rng.below(self.faults.apply_lag_ms));
            self.stats.late_applies += 1;
        }
        let raft = self.nodes[i].raft.as_ref().expect("alive");
        self.checker
            .on_log_change(i, raft.store(), ready.truncated_from);
        // Ahead of every sync still queued: the core says they need none.
        for (to, message) in &ready.messages {
            self.send(i, *to, message);
        }
        self.nodes[i].work.push_back(ReadyWork {
            due,
            sync: ready.must_sync,
            messages: ready.persisted_messages,
            apply: ApplyWork {
                due: apply_due,
                epoch: ready.epoch,
                restore: ready.restore,
                rebuild: ready.rebuild,
                entries: ready.committed_entries,
                snapshots_due: ready.snapshots_due,
            },
            events: ready.events,
            status: ready.status,
            commit_regressed: ready.commit_regressed,
        });
        self.drive(i);
    }

    /// Does the driver's queued work that is due, in order: readies (sync,
    /// send, events), then apply work, then snapshot hand-backs.
    fn drive(&mut self, i: usize) {
        if let Some(raft) = &self.nodes[i].raft {
            if raft.committee().len() > self.committee.len() {
                self.committee = raft.committee().to_vec();
            }
            self.committed_members = self.committed_members.max(raft.committed_committee().len());
        }
        while self.nodes[i]
            .work
            .front()
            .is_some_and(|w| w.due <= self.now)
        {
            let work = self.nodes[i].work.pop_front().expect("front");
            if work.sync {
                self.nodes[i]
                    .raft
                    .as_mut()
                    .expect("alive")
                    .sync_storage()
                    .expect("sync");
            }
            for (to, message) in &work.messages {
                self.send(i, *to, message);
            }
            if let Some(status) = work.status {
                self.log(|| format!("node {i} status {status:?}"));
                let newly_elected =
                    status.role == Role::Leader && self.nodes[i].last_role != Some(Role::Leader);
                self.stats.elections += u64::from(newly_elected);
                self.nodes[i].last_role = Some(status.role);
                if !status.online && self.nodes[i].online {
                    self.stats.offline_spells += 1;
                }
                self.nodes[i].online = status.online;
                let raft = self.nodes[i].raft.as_ref().expect("alive");
                self.checker.on_status(
                    i,
                    &status,
                    newly_elected,
                    raft.store(),
                    work.commit_regressed,
                );
            }

            let apply = work.apply;
            if apply.rebuild || apply.restore.is_some() || !apply.entries.is_empty() {
                self.nodes[i].applying.push_back(apply);
            }
            for event in work.events {
                self.on_event(i, event);
            }
        }
        while self.nodes[i]
            .applying
            .front()
            .is_some_and(|w| w.due <= self.now)
        {
            let apply = self.nodes[i].applying.pop_front().expect("front");
            self.apply(i, apply);
        }
        while self.nodes[i]
            .snapshots
            .front()
            .is_some_and(|s| s.due <= self.now)
        {
            let pending = self.nodes[i].snapshots.pop_front().expect("front");
            self.hand_back_snapshot(i, pending.epoch, pending.index, pending.data);
        }
        self.finish_reads(i);
    }

    fn apply(&mut self, i: usize, work: ApplyWork) {
        self.nodes[i].epoch = work.epoch;
        if let Some(snapshot) = &work.restore {
            self.stats.restores += 1;
            let position = snapshot.meta.position;
            self.log(|| format!("node {i} restores a snapshot at {position:?}"));
            self.nodes[i].machine = decode_machine(&snapshot.data);
            assert_eq!(
                self.nodes[i].machine.len() as u64,
                position.index,
                "node {i} restored a snapshot of another length"
            );
            self.checker.on_restore(i, &self.nodes[i].machine);
        } else if work.rebuild {
            self.stats.rebuilds += 1;
            self.log(|| format!("node {i} rebuilds its state machine"));
            self.nodes[i].machine.clear();
            self.checker.on_rebuild(i);
        }
        for entry in &work.entries {
            let value = match &entry.kind {
                EntryKind::Command(bytes) | EntryKind::Request(_, bytes) => value_of(bytes),
                EntryKind::Marker | EntryKind::Committee(_) => 0,
            };
            assert_eq!(
                entry.index,
                self.nodes[i].machine.len() as u64 + 1,
                "node {i} applies out of order"
            );
            self.nodes[i].machine.push(value);
            self.checker.on_apply(i, entry.index, value);
            if work.snapshots_due.contains(&entry.index) {
                self.take_snapshot(i, entry.index);
            }
        }
    }

    /// Takes the state machine's snapshot now; hands it to the core now or later.
    fn take_snapshot(&mut self, i: usize, index: u64) {
        let data = encode_machine(&self.nodes[i].machine);
        let mut due = self.now;
        if self.rng.chance(self.faults.snapshot_lag) {
            due += Duration::from_millis(1 + self.rng.below(self.faults.snapshot_lag_ms));
            self.stats.late_snapshots += 1;
        }
        let epoch = self.nodes[i].epoch;
        self.nodes[i].snapshots.push_back(PendingSnapshot {
            due,
            epoch,
            index,
            data,
        });
    }

    /// Hands a snapshot taken in apply epoch `epoch` back to the core,
    /// which refuses it when the machine started over since; a stale one
    /// it kept anyway fails the run.
    fn hand_back_snapshot(&mut self, i: usize, epoch: u64, index: u64, data: Bytes) {
        let stale = epoch != self.nodes[i].epoch;
        self.stats.stale_offers += u64::from(stale);
        let raft = self.nodes[i].raft.as_mut().expect("alive");
        if raft.snapshot_taken(epoch, index, data).expect("snapshot") {
            assert!(
                !stale,
                "node {i} kept a snapshot of a machine that started over since"
            );
            self.stats.snapshots += 1;
            self.log(|| format!("node {i} snapshots at {index} (stale epoch: {stale})"));
        }
    }

    fn on_event(&mut self, i: usize, event: ClientEvent) {
        self.log(|| format!("node {i} event {event:?}"));
        match event {
            ClientEvent::Committed { req, first, last } => {
                let values = self.nodes[i]
                    .proposals
                    .remove(&req)
                    .expect("known proposal");
                assert_eq!(
                    values.len() as u64,
                    last + 1 - first,
                    "committed range matches the batch"
                );
                self.checker.on_acknowledged(first, &values);
            }
            ClientEvent::CommandOffline {
                req,
                committed,
                commands,
            } => {
                let proposed = self.nodes[i]
                    .proposals
                    .remove(&req)
                    .expect("known proposal");
                if let Some((first, last)) = committed {
                    let done = (last + 1 - first) as usize;
                    self.checker.on_acknowledged(first, &proposed[..done]);
                }
                let values: Vec<u64> = commands.iter().map(|c| value_of(&c.data)).collect();
                self.checker.on_offline(i, &values);
            }
            ClientEvent::CommandUnknown { req, committed, .. } => {
                let proposed = self.nodes[i]
                    .proposals
                    .remove(&req)
                    .expect("known proposal");
                if let Some((first, last)) = committed {
                    let done = (last + 1 - first) as usize;
                    self.checker.on_acknowledged(first, &proposed[..done]);
                }
            }
            ClientEvent::Assigned { .. } => {}
            ClientEvent::ReadReady { req, index } => {
                if let Some(read) = self.nodes[i].reads.get_mut(&req) {
                    self.checker.on_read_index(index, read.1);
                    read.0 = Some(index);
                }
            }
            ClientEvent::QueryOffline { req } => {
                self.nodes[i].reads.remove(&req);
            }
        }
    }

    /// Answers strong reads whose read index this node has applied.
    fn finish_reads(&mut self, i: usize) {
        let applied = self.nodes[i].machine.len() as u64;
        let done: Vec<(u64, u64)> = self.nodes[i]
            .reads
            .iter()
            .filter_map(|(req, (index, floor))| {
                index.filter(|ix| *ix <= applied).map(|_| (*req, *floor))
            })
            .collect();
        for (req, floor) in done {
            self.nodes[i].reads.remove(&req);
            self.checker.on_read_answered(i, applied, floor);
        }
    }

    fn client_step(&mut self) {
        if !self.rng.chance(self.faults.client_rate) {
            return;
        }
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].running())
            .collect();
        if candidates.is_empty() {
            return;
        }
        let i = candidates[self.rng.below(candidates.len() as u64) as usize];
        let req = self.next_req;
        self.next_req += 1;
        if self.rng.chance(0.3) {
            let floor = self.checker.read_floor();
            self.nodes[i].reads.insert(req, (None, floor));
            self.nodes[i]
                .raft
                .as_mut()
                .expect("running")
                .read(req)
                .expect("read");
        } else {
            let count = 1 + self.rng.below(3);
            let values: Vec<u64> = (0..count).map(|k| self.next_value + k).collect();
            self.next_value += count;
            let commands = values
                .iter()
                .zip(0u32..)
                .map(|(v, seq)| Command {
                    data: Bytes::copy_from_slice(&v.to_le_bytes()),
                    // Every other proposal carries request keys, so that
                    // they travel the wire and the logs too.
                    request: req.is_multiple_of(2).then(|| RequestKey {
                        id: Bytes::copy_from_slice(&req.to_le_bytes()),
                        seq,
                    }),
                })
                .collect();
            self.nodes[i].proposals.insert(req, values);
            self.nodes[i]
                .raft
                .as_mut()
                .expect("running")
                .propose(req, commands)
                .expect("propose");
        }
        self.process_ready(i);
    }

    pub fn start_node(&mut self, i: usize) {
        let store = self.nodes[i].parked_store.take().expect("a parked store");
        if self.nodes[i].extra && self.nodes[i].restarts == 0 {
            self.stats.extra_voters += 1;
        }
        let mut config = NodeConfig::new(
            self.nodes[i].id,
            self.config.clone(),
            self.seed * 1000 + i as u64 * 10 + self.nodes[i].restarts,
        );
        config.max_append_entries = 8;
        config.snapshot_every = SNAPSHOT_EVERY;
        config.replay = LogReplaySync {
            batch_size: 16,
            fetch_timeout: Duration::from_millis(400),
        };
        if self.nodes[i].observer {
            config.preference = LeadershipPreference::Observer;
        } else if i % 4 == 3 {
            config.preference = LeadershipPreference::Reluctant(2);
        }
        let now = self.nodes[i].local(self.now);
        self.nodes[i].raft = Some(RaftNode::new(config, store, now).expect("valid config"));
        self.nodes[i].machine.clear();
        self.nodes[i].proposals.clear();
        self.nodes[i].reads.clear();
        self.nodes[i].bonds.clear();
        self.nodes[i].drop_driver_state();
        self.nodes[i].epoch = 0;
        self.nodes[i].last_role = None;
        self.checker.on_restart(i);
    }

    /// Stops node `i` (its process dies): the store reverts to its last
    /// sync, the driver's queued work is lost. The peers are told (their
    /// bonds drop) unless `unseen`.
    pub fn crash_node(&mut self, i: usize, unseen: bool) {
        let raft = self.nodes[i].raft.take().expect("alive");
        let mut store = raft.into_store();
        if self.faults.families.sync && store.crash() {
            self.stats.unsynced_lost += 1;
            self.log(|| format!("node {i} crashed with unsynced writes"));
        }
        self.nodes[i].parked_store = Some(store);
        self.nodes[i].drop_driver_state();
        self.nodes[i].restarts += 1;
        self.nodes[i].paused = false;
        if !unseen {
            self.rebond();
        }
    }

    /// Whether node `i` may (re)start with an empty store now. In
    /// consistency-first mode the group promises safety while fewer than
    /// `min_quorum` voters lack its history at once: voters that are
    /// learners (new, or restarted empty, and not yet caught up) and voters
    /// that will start empty when they come back. `M` of those together
    /// could elect among themselves a new history, which the README
    /// documents as outside the promise.
    pub fn may_start_empty(&self, i: usize) -> bool {
        if self.mode != Mode::ConsistencyFirst || self.nodes[i].observer {
            return true;
        }
        if !self.has_committed() {
            // Before the first committee is committed, at most `2M - 1`
            // voters take part (the README asks to add more only after the
            // first election: more could split it in two across a
            // partition that drops bonds).
            let joined = (0..self.nodes.len())
                .filter(|j| *j != i && self.nodes[*j].joined && !self.nodes[*j].observer)
                .count() as u32;
            if !self.nodes[i].joined && joined >= 2 * self.min_quorum() - 1 {
                return false;
            }
        }
        if !self.has_history() {
            return true;
        }
        self.lacking(i).len() < self.min_quorum() as usize - 1
    }

    /// Voters other than `i` that lack the group's history.
    fn lacking(&self, i: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|j| *j != i && !self.nodes[*j].observer && self.lacks_history(*j))
            .collect()
    }

    /// One line per node: its status, whether it is a learner, its committee.
    fn describe(&self) -> String {
        let line = |(i, n): (usize, &SimNode)| match &n.raft {
            Some(r) => format!(
                "node {i}{}: {:?} learner={} committee={:?}",
                if n.observer { " (observer)" } else { "" },
                r.status(),
                r.is_learner(),
                r.committee()
            ),
            None => format!("node {i}: stopped (joined={})", n.joined),
        };
        self.nodes
            .iter()
            .enumerate()
            .map(line)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Some node holds a log: there is something to lose.
    fn has_history(&self) -> bool {
        self.nodes.iter().any(|n| match (&n.raft, &n.parked_store) {
            (Some(raft), _) => raft.status().last.index > 0 || raft.applied() > 0,
            (None, Some(store)) => store.last_position().expect("store").index > 0,
            (None, None) => false,
        })
    }

    /// Whether node `i`'s store may be thrown away now: as for
    /// `may_start_empty`, and within liveness. A learner is caught up only
    /// by a leader, and a leader needs `M` members that count, so at most
    /// `members - M` members may lack the history at once; a committee
    /// entry not yet committed may still be cut, so only committed members
    /// are sure. Until a committee commits, a store holding a vote stays:
    /// the first committee may list it as an elector of that election.
    /// (Starting a node whose store is gone already never waits on this:
    /// waiting would not bring its history back.)
    pub fn may_wipe(&self, i: usize) -> bool {
        if !self.may_start_empty(i) {
            return false;
        }
        if self.mode != Mode::ConsistencyFirst || self.nodes[i].observer {
            return true;
        }
        if self.committed_members == 0 && self.voted(i) {
            return false;
        }
        if !self.has_history() {
            return true;
        }
        let member = |j: usize| self.committee.contains(&self.nodes[j].id);
        let members_lacking = self.lacking(i).iter().filter(|j| member(**j)).count();
        let sure = self
            .committed_members
            .saturating_sub(self.min_quorum() as usize);
        !member(i) || members_lacking < sure
    }

    /// Node `j`'s store holds a vote.
    fn voted(&self, j: usize) -> bool {
        let n = &self.nodes[j];
        let store = n
            .raft
            .as_ref()
            .map(|r| r.store())
            .or(n.parked_store.as_ref());
        store.is_some_and(|s| s.hard_state().expect("store").vote.is_some())
    }

    /// Some node committed an entry: the first election is over (before
    /// that, empty nodes are the group's electorate, not a fault).
    fn has_committed(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| n.raft.as_ref().is_some_and(|r| r.status().committed > 0))
            || !self.checker.committed_is_empty()
    }

    /// Node `j` is a learner, or stopped with a store it will start empty
    /// (or as a learner) from, and meant to come back.
    fn lacks_history(&self, j: usize) -> bool {
        let n = &self.nodes[j];
        match &n.raft {
            Some(raft) => n.joined && raft.is_learner(),
            None => (n.joined || n.lost_state) && self.starts_empty(j),
        }
    }

    /// A stopped node `j` would start with nothing (or as a learner).
    fn starts_empty(&self, j: usize) -> bool {
        self.nodes[j].parked_store.as_ref().is_some_and(|s| {
            let hard = s.hard_state().expect("store");
            hard.learner || (hard.term == 0 && s.last_position().expect("store").index == 0)
        })
    }

    /// Replaces node `i`'s (parked) store with an empty one, same id.
    pub fn wipe_store(&mut self, i: usize) {
        self.nodes[i].parked_store = Some(SimStore::new());
        self.nodes[i].lost_state = true;
    }

    /// Makes bonds match who is alive and (when bonds are lost) connected.
    pub fn rebond(&mut self) {
        let n = self.nodes.len();
        for i in 0..n {
            if !self.nodes[i].alive() {
                continue;
            }
            for j in 0..n {
                if i == j {
                    continue;
                }
                let want = self.nodes[j].alive() && self.faults.bonded(i, j);
                let has = self.nodes[i].bonds.contains(&j);
                let peer = self.nodes[j].id;
                let raft = self.nodes[i].raft.as_mut().expect("alive");
                if want && !has {
                    raft.add_peer(peer);
                    self.nodes[i].bonds.insert(j);
                } else if !want && has {
                    raft.remove_peer(peer).expect("remove peer");
                    self.nodes[i].bonds.remove(&j);
                }
            }
            if self.nodes[i].running() {
                self.process_ready(i);
            }
        }
    }

    /// Every live node agrees on one leader, one log, one commit, one state.
    fn converged(&self) -> bool {
        if !self.nodes.iter().all(SimNode::alive) {
            return false;
        }
        let live: Vec<&SimNode> = self.nodes.iter().collect();
        let statuses: Vec<_> = live
            .iter()
            .map(|n| n.raft.as_ref().expect("alive").status())
            .collect();
        let leaders = statuses.iter().filter(|s| s.role == Role::Leader).count();
        let any_voter = live.iter().any(|n| !n.observer);
        if any_voter && leaders != 1 {
            return false;
        }
        let first = statuses[0];
        statuses.iter().zip(&live).all(|(s, n)| {
            s.leader == first.leader
                && s.term == first.term
                && s.last == first.last
                && s.committed == s.last.index
                && s.online
                && n.machine.len() as u64 == s.committed
                && n.raft
                    .as_ref()
                    .expect("alive")
                    .store()
                    .last_position()
                    .expect("store")
                    == first.last
        }) && live.windows(2).all(|w| w[0].machine == w[1].machine)
    }

    fn heal_all(&mut self) {
        self.log(|| "healing everything".into());
        self.faults.calm();
        for node in &mut self.nodes {
            node.paused = false;
        }
        self.start_stopped();
        self.rebond();
    }

    /// Starts every stopped (or never joined) node, except that nodes which
    /// would start empty wait while the fault model allows no more of them
    /// (`may_start_empty`); `converge` tries again as the others catch up.
    fn start_stopped(&mut self) {
        let mut started = false;
        for i in 0..self.nodes.len() {
            if self.nodes[i].raft.is_some() && self.nodes[i].joined {
                continue;
            }
            // Only nodes that come back without their history wait: new
            // ones and those whose store was wiped (a crash that reverted
            // to the last sync is not a lost state).
            let fresh = !self.nodes[i].joined || self.nodes[i].lost_state;
            let empty = self.nodes[i].raft.is_none() && self.starts_empty(i);
            if fresh && empty && !self.may_start_empty(i) {
                continue;
            }
            self.nodes[i].joined = true;
            if self.nodes[i].raft.is_none() {
                self.start_node(i);
            }
            started = true;
        }
        if started {
            self.rebond();
        }
    }

    fn faults_step(&mut self) {
        if self.faults.expire_one_sided(self.now) {
            self.log(|| "one-sided bond drops end".into());
            self.rebond();
        }
        let Some(fault) = self.faults.next(&mut self.rng, self.nodes.len()) else {
            return;
        };
        self.log(|| format!("fault {fault:?}"));
        crate::faults::apply(self, fault);
    }
}

fn encode_machine(machine: &[u64]) -> Bytes {
    machine.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn decode_machine(data: &[u8]) -> Vec<u64> {
    data.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

pub fn value_of(bytes: &Bytes) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8-byte command"))
}

fn short(message: &Message) -> String {
    let text = format!("{message:?}");
    if text.len() > 200 {
        format!("{}...", &text[..200])
    } else {
        text
    }
}
