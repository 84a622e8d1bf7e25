//! Committed entries per second of a 3-node in-memory cluster: batched
//! proposals at the leader, messages handed over directly (no encoding, no
//! I/O), every committed entry applied (counted) on all three nodes.
//!
//! `cargo bench -p mosaik-core --bench throughput` (env `MOSAIK_BENCH_ENTRIES`
//! sets how many entries to commit, default 5,000,000).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mosaik_core::{
    Command, ConsensusConfig, InMemoryLogStore, Message, NodeConfig, PeerId, RaftNode, Role,
};

const BATCH: usize = 1024;
const PROPOSALS_PER_ROUND: usize = 8;

struct Cluster {
    nodes: Vec<RaftNode<InMemoryLogStore>>,
    applied: Vec<u64>,
    queue: VecDeque<(usize, PeerId, Message)>,
}

impl Cluster {
    fn new() -> Self {
        let ids: Vec<PeerId> = (1..=3u8).map(|n| PeerId([n; 32])).collect();
        let nodes = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut config = NodeConfig::new(*id, ConsensusConfig::default(), i as u64);
                config.max_append_entries = 8192;
                let mut node =
                    RaftNode::new(config, InMemoryLogStore::new(), Duration::ZERO).expect("node");
                for peer in &ids {
                    node.add_peer(*peer);
                }
                node
            })
            .collect();
        Cluster {
            nodes,
            applied: vec![0; 3],
            queue: VecDeque::new(),
        }
    }

    fn index_of(&self, id: PeerId) -> usize {
        id.0[0] as usize - 1
    }

    fn drain(&mut self) {
        loop {
            // A sync may commit: the next ready hands that out.
            let mut synced = false;
            for i in 0..self.nodes.len() {
                let ready = self.nodes[i].ready().expect("ready");
                for (to, message) in ready.messages {
                    self.queue.push_back((i, to, message));
                }
                if ready.must_sync {
                    self.nodes[i].sync_storage().expect("sync");
                    synced = true;
                }
                self.applied[i] += ready.committed_entries.len() as u64;
                for (to, message) in ready.persisted_messages {
                    self.queue.push_back((i, to, message));
                }
            }
            if self.queue.is_empty() && !synced {
                return;
            }
            while let Some((from, to, message)) = self.queue.pop_front() {
                let from = self.nodes[from].id();
                let to = self.index_of(to);
                self.nodes[to].step(from, message).expect("step");
            }
        }
    }

    fn elect(&mut self) -> usize {
        let mut now = Duration::ZERO;
        loop {
            now += Duration::from_millis(10);
            for node in &mut self.nodes {
                node.tick(now).expect("tick");
            }
            self.drain();
            if let Some(i) = self.nodes.iter().position(|n| n.role() == Role::Leader) {
                return i;
            }
        }
    }
}

fn main() {
    let target: u64 = std::env::var("MOSAIK_BENCH_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000_000);
    let mut cluster = Cluster::new();
    let leader = cluster.elect();
    let payload = Bytes::from_static(b"0123456789abcdef");
    let start_applied = *cluster.applied.iter().min().expect("nodes");
    let started = Instant::now();
    let mut req = 0;
    while cluster.applied.iter().min().expect("nodes") - start_applied < target {
        for _ in 0..PROPOSALS_PER_ROUND {
            req += 1;
            let commands = vec![Command::from(payload.clone()); BATCH];
            cluster.nodes[leader]
                .propose(req, commands)
                .expect("propose");
        }
        cluster.drain();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let committed = cluster.applied.iter().min().expect("nodes") - start_applied;
    println!(
        "3-node in-memory cluster: {committed} entries committed and applied on every node in {elapsed:.3} s = {:.0} entries/s (batches of {BATCH}, {PROPOSALS_PER_ROUND} in flight)",
        committed as f64 / elapsed
    );
}
