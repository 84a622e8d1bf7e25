//! The simulated cluster: nodes with in-memory stores, a virtual clock, a
//! seeded network that delays, drops, duplicates and reorders, bonds that
//! follow partitions and crashes, and clients that propose and read.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use bytes::Bytes;
use mosaik_core::rng::Rng;
use mosaik_core::{
    decode, encode, ClientEvent, ConsensusConfig, EntryKind, InMemoryLogStore,
    LeadershipPreference, LogReplaySync, LogStore, NodeConfig, PeerId, RaftNode, Role,
};

use crate::faults::Faults;
use crate::invariants::Checker;

pub const QUANTUM: Duration = Duration::from_millis(5);
const CHAOS: Duration = Duration::from_secs(6);
const LIVENESS_BOUND: Duration = Duration::from_secs(30);
/// Every node snapshots its state machine after each multiple of this index.
const SNAPSHOT_EVERY: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// min_quorum = majority of the voters; every fault.
    ConsistencyFirst,
    /// min_quorum = 1; no partitions, pauses, crashes (no lost bonds).
    AvailabilityFirst,
    /// min_quorum = 1; every fault; only log matching, apply consistency and liveness.
    AvailabilityChaos,
}

impl Mode {
    pub fn full_safety(self) -> bool {
        self != Mode::AvailabilityChaos
    }
}

pub struct SimNode {
    pub id: PeerId,
    pub raft: Option<RaftNode<InMemoryLogStore>>,
    pub parked_store: Option<InMemoryLogStore>,
    pub observer: bool,
    pub joined: bool,
    pub paused: bool,
    pub bonds: BTreeSet<usize>,
    /// Applied values by index - 1 (0 for a marker).
    pub machine: Vec<u64>,
    pub proposals: BTreeMap<u64, Vec<u64>>,
    /// Strong reads: request -> (read index once known, floor it must reach).
    pub reads: BTreeMap<u64, (Option<u64>, u64)>,
    pub restarts: u64,
    pub last_role: Option<Role>,
    pub online: bool,
}

impl SimNode {
    pub fn alive(&self) -> bool {
        self.raft.is_some() && self.joined
    }

    pub fn running(&self) -> bool {
        self.alive() && !self.paused
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
    pub replays: u64,
    pub snapshots: u64,
    pub restores: u64,
    pub converge_ms: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.faults += o.faults;
        self.elections += o.elections;
        self.acked += o.acked;
        self.reads += o.reads;
        self.rebuilds += o.rebuilds;
        self.replays += o.replays;
        self.snapshots += o.snapshots;
        self.restores += o.restores;
        self.converge_ms = self.converge_ms.max(o.converge_ms);
    }
}

pub struct Sim {
    pub stats: Stats,
    pub seed: u64,
    pub rng: Rng,
    pub now: Duration,
    pub nodes: Vec<SimNode>,
    pub faults: Faults,
    pub checker: Checker,
    net: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    next_value: u64,
    next_req: u64,
    config: ConsensusConfig,
    trace: bool,
}

impl Sim {
    pub fn new(mode: Mode, seed: u64, trace: bool) -> Self {
        let mut rng = Rng::new(seed ^ 0x005E_ED0F_5111);
        let voters = 1 + rng.below(5) as usize;
        let observers = rng.below(2) as usize;
        let late = rng.below(3) as usize;
        let total = voters + observers + late;
        let late_observer = late > 0 && rng.chance(0.3);
        let mut nodes = Vec::new();
        for i in 0..total {
            let observer =
                (i >= voters && i < voters + observers) || (late_observer && i == total - 1);
            nodes.push(SimNode {
                id: PeerId([i as u8 + 1; 32]),
                raft: None,
                parked_store: Some(InMemoryLogStore::new()),
                observer,
                joined: i < voters + observers,
                paused: false,
                bonds: BTreeSet::new(),
                machine: Vec::new(),
                proposals: BTreeMap::new(),
                reads: BTreeMap::new(),
                restarts: 0,
                last_role: None,
                online: true,
            });
        }
        let intended_voters = nodes.iter().filter(|n| !n.observer).count() as u32;
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
        let faults = Faults::new(mode, &mut rng);
        let mut sim = Sim {
            stats: Stats::default(),
            seed,
            rng,
            now: Duration::ZERO,
            nodes,
            faults,
            checker: Checker::new(mode),
            net: BinaryHeap::new(),
            seq: 0,
            next_value: 1,
            next_req: 1,
            config,
            trace,
        };
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

    pub fn run(mut self) -> Stats {
        while self.now < CHAOS {
            self.faults_step();
            self.client_step();
            self.quantum();
        }
        self.heal_all();
        let healed = self.now;
        let deadline = self.now + LIVENESS_BOUND;
        loop {
            self.quantum();
            if self.now.as_millis().is_multiple_of(100) && self.converged() {
                break;
            }
            assert!(
                self.now < deadline,
                "no convergence within {LIVENESS_BOUND:?} after the faults stopped"
            );
        }
        self.checker.final_check(&self.nodes);
        self.stats.converge_ms = (self.now - healed).as_millis() as u64;
        self.stats.acked = self.checker.acks_checked;
        self.stats.reads = self.checker.reads_checked;
        self.stats
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
                let now = self.now;
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

    fn send(&mut self, from: usize, to: PeerId, message: &mosaik_core::Message) {
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
            let delay = Duration::from_millis(1 + self.rng.below(self.faults.max_delay_ms));
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

    pub fn index_of(&self, id: PeerId) -> usize {
        id.0[0] as usize - 1
    }

    /// Hands one ready to the "driver" and checks the invariants.
    pub fn process_ready(&mut self, i: usize) {
        let ready = self.nodes[i]
            .raft
            .as_mut()
            .expect("alive")
            .ready()
            .expect("ready");
        if ready.must_sync {
            self.nodes[i]
                .raft
                .as_mut()
                .expect("alive")
                .sync_storage()
                .expect("sync");
        }
        for (to, message) in ready.messages.iter().chain(ready.persisted_messages.iter()) {
            self.send(i, *to, message);
        }
        if let Some(status) = ready.status {
            self.log(|| format!("node {i} status {status:?}"));
            let newly_elected =
                status.role == Role::Leader && self.nodes[i].last_role != Some(Role::Leader);
            self.stats.elections += u64::from(newly_elected);
            self.nodes[i].last_role = Some(status.role);
            if !status.online && self.nodes[i].online {
                self.stats.replays += 1;
            }
            self.nodes[i].online = status.online;
            let raft = self.nodes[i].raft.as_ref().expect("alive");
            self.checker.on_status(
                i,
                &status,
                newly_elected,
                raft.store(),
                ready.commit_regressed,
            );
        }
        let raft = self.nodes[i].raft.as_ref().expect("alive");
        self.checker
            .on_log_change(i, raft.store(), ready.truncated_from);
        if let Some(snapshot) = &ready.restore {
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
        } else if ready.rebuild {
            self.stats.rebuilds += 1;
            self.log(|| format!("node {i} rebuilds its state machine"));
            self.nodes[i].machine.clear();
            self.checker.on_rebuild(i);
        }
        for entry in &ready.committed_entries {
            let value = match &entry.kind {
                EntryKind::Command(bytes) => value_of(bytes),
                EntryKind::Marker | EntryKind::Committee(_) => 0,
            };
            assert_eq!(
                entry.index,
                self.nodes[i].machine.len() as u64 + 1,
                "node {i} applies out of order"
            );
            self.nodes[i].machine.push(value);
            self.checker.on_apply(i, entry.index, value);
            if entry.index.is_multiple_of(SNAPSHOT_EVERY) {
                self.take_snapshot(i, ready.epoch, entry.index);
            }
        }
        for event in ready.events {
            self.on_event(i, event);
        }
        self.finish_reads(i);
    }

    fn take_snapshot(&mut self, i: usize, epoch: u64, index: u64) {
        let data = encode_machine(&self.nodes[i].machine);
        let raft = self.nodes[i].raft.as_mut().expect("alive");
        if raft.snapshot_taken(epoch, index, data).expect("snapshot") {
            self.stats.snapshots += 1;
            self.log(|| format!("node {i} snapshots at {index}"));
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
            ClientEvent::CommandOffline { req, .. } | ClientEvent::CommandUnknown { req, .. } => {
                self.nodes[i].proposals.remove(&req);
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
                .map(|v| Bytes::copy_from_slice(&v.to_le_bytes()))
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
        let mut config = NodeConfig::new(
            self.nodes[i].id,
            self.config.clone(),
            self.seed * 1000 + i as u64 * 10 + self.nodes[i].restarts,
        );
        config.max_append_entries = 8;
        config.sync = LogReplaySync {
            batch_size: 16,
            fetch_timeout: Duration::from_millis(400),
        };
        if self.nodes[i].observer {
            config.preference = LeadershipPreference::Observer;
        } else if i % 4 == 3 {
            config.preference = LeadershipPreference::Reluctant(2);
        }
        self.nodes[i].raft = Some(RaftNode::new(config, store, self.now).expect("valid config"));
        self.nodes[i].machine.clear();
        self.nodes[i].proposals.clear();
        self.nodes[i].reads.clear();
        self.nodes[i].bonds.clear();
        self.nodes[i].last_role = None;
        self.checker.on_restart(i);
    }

    pub fn crash_node(&mut self, i: usize) {
        let raft = self.nodes[i].raft.take().expect("alive");
        self.nodes[i].parked_store = Some(raft.into_store());
        self.nodes[i].restarts += 1;
        self.nodes[i].paused = false;
        self.rebond();
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
        let live: Vec<&SimNode> = self.nodes.iter().filter(|n| n.alive()).collect();
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
        for i in 0..self.nodes.len() {
            self.nodes[i].paused = false;
            self.nodes[i].joined = true;
            if self.nodes[i].raft.is_none() {
                self.start_node(i);
            }
        }
        self.rebond();
    }

    fn faults_step(&mut self) {
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

fn short(message: &mosaik_core::Message) -> String {
    let text = format!("{message:?}");
    if text.len() > 200 {
        format!("{}...", &text[..200])
    } else {
        text
    }
}
