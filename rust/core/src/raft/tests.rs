//! Unit tests of the Raft rules, each named after the property it checks,
//! on a tiny cluster with instant, lossless delivery unless a test says otherwise.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::entry::EntryKind;
use crate::storage::InMemoryLogStore;
use crate::wire::{AppendEntries, AppendOutcome, AppendReply, RequestVote, Vote, VoteReply};

pub(super) fn id(n: u8) -> PeerId {
    PeerId([n; 32])
}

fn config(n: u8) -> ConsensusConfig {
    ConsensusConfig {
        heartbeat_interval: Duration::from_millis(50),
        heartbeat_jitter: Duration::from_millis(10),
        election_timeout: Duration::from_millis(300),
        election_timeout_jitter: Duration::from_millis(100),
        bootstrap_delay: Duration::from_millis(100 * u64::from(n)),
        forward_timeout: Duration::from_millis(500),
        query_timeout: Duration::from_millis(500),
        ..ConsensusConfig::default()
    }
}

fn node(n: u8) -> RaftNode<InMemoryLogStore> {
    node_with(n, |_| {})
}

pub(super) fn node_with(n: u8, adjust: impl FnOnce(&mut NodeConfig)) -> RaftNode<InMemoryLogStore> {
    node_at(n, Duration::ZERO, adjust)
}

fn node_at(
    n: u8,
    now: Duration,
    adjust: impl FnOnce(&mut NodeConfig),
) -> RaftNode<InMemoryLogStore> {
    let mut cfg = NodeConfig::new(id(n), config(n), u64::from(n));
    adjust(&mut cfg);
    RaftNode::new(cfg, InMemoryLogStore::new(), now).unwrap()
}

/// A ready as the worker handles it: the sync it asks for is done at once
/// (after the ready's contents were taken, so they show what waits for it).
pub(super) trait Driven {
    fn driven_ready(&mut self) -> Ready;
}

impl<S: LogStore> Driven for RaftNode<S> {
    fn driven_ready(&mut self) -> Ready {
        let ready = self.ready().unwrap();
        if ready.must_sync {
            self.sync_storage().unwrap();
        }
        ready
    }
}

pub(super) fn cmd(v: u8) -> Command {
    Command::from(Bytes::from(vec![v]))
}

/// Decides, for a message from one peer to another, whether to drop it.
pub(super) type Filter = Box<dyn FnMut(PeerId, PeerId, &Message) -> bool>;

/// Nodes that deliver every message instantly, in order (but for the pairs
/// cut and the messages `drop` picks).
pub(super) struct Cluster {
    pub(super) nodes: Vec<RaftNode<InMemoryLogStore>>,
    pub(super) now: Duration,
    pub(super) events: Vec<(PeerId, ClientEvent)>,
    applied: Vec<Vec<Entry>>,
    pub(super) cut: Vec<(PeerId, PeerId)>,
    /// Returns true for a message to drop (by default none).
    pub(super) drop: Filter,
    /// Log-replay batches delivered, per receiver.
    replay_batches: Vec<PeerId>,
}

impl Cluster {
    pub(super) fn new(nodes: Vec<RaftNode<InMemoryLogStore>>) -> Self {
        let applied = nodes.iter().map(|_| Vec::new()).collect();
        let mut cluster = Cluster {
            nodes,
            now: Duration::ZERO,
            events: Vec::new(),
            applied,
            cut: Vec::new(),
            drop: Box::new(|_, _, _| false),
            replay_batches: Vec::new(),
        };
        cluster.bond_all();
        cluster
    }

    pub(super) fn bond_all(&mut self) {
        let ids: Vec<PeerId> = self.nodes.iter().map(|n| n.id()).collect();
        for node in &mut self.nodes {
            for peer in &ids {
                node.add_peer(*peer);
            }
        }
    }

    /// A new node started now and bonded to everyone.
    fn join(&mut self, n: u8, adjust: impl FnOnce(&mut NodeConfig)) {
        self.nodes.push(node_at(n, self.now, adjust));
        self.applied.push(Vec::new());
        self.bond_all();
    }

    pub(super) fn at(&mut self, who: PeerId) -> &mut RaftNode<InMemoryLogStore> {
        self.nodes.iter_mut().find(|n| n.id() == who).unwrap()
    }

    /// Drains every node's ready and delivers until nothing moves.
    pub(super) fn settle(&mut self) {
        let mut queue: VecDeque<(PeerId, PeerId, Message)> = VecDeque::new();
        loop {
            // A sync may commit: the next ready hands that out.
            let mut synced = false;
            for i in 0..self.nodes.len() {
                let from = self.nodes[i].id();
                let ready = self.nodes[i].driven_ready();
                synced |= ready.must_sync;
                if ready.rebuild {
                    self.applied[i].clear();
                }
                self.applied[i].extend(ready.committed_entries);
                self.events
                    .extend(ready.events.into_iter().map(|e| (from, e)));
                for (to, m) in ready.messages.into_iter().chain(ready.persisted_messages) {
                    queue.push_back((from, to, m));
                }
            }
            if queue.is_empty() && !synced {
                return;
            }
            while let Some((from, to, m)) = queue.pop_front() {
                if let Message::Sync(crate::wire::SyncMessage::Batch { .. }) = &m {
                    self.replay_batches.push(to);
                }
                let cut = self.cut.contains(&(from, to)) || self.cut.contains(&(to, from));
                if !cut && !(self.drop)(from, to, &m) {
                    self.at(to).step(from, m).unwrap();
                }
            }
        }
    }

    pub(super) fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        while self.now < end {
            self.now += Duration::from_millis(5);
            let now = self.now;
            for node in &mut self.nodes {
                node.tick(now).unwrap();
            }
            self.settle();
        }
    }

    /// How many log-replay batches were delivered to `peer`.
    fn replay_batches_to(&self, peer: PeerId) -> usize {
        self.replay_batches.iter().filter(|p| **p == peer).count()
    }

    pub(super) fn leaders(&self) -> Vec<PeerId> {
        self.nodes
            .iter()
            .filter(|n| n.role() == Role::Leader)
            .map(|n| n.id())
            .collect()
    }
}

#[test]
fn lone_node_elects_itself_and_commits_alone() {
    let mut cluster = Cluster::new(vec![node(1)]);
    cluster.run_for(Duration::from_secs(1));
    assert_eq!(cluster.leaders(), vec![id(1)]);
    cluster.at(id(1)).propose(7, vec![cmd(1), cmd(2)]).unwrap();
    cluster.settle();
    let status = cluster.nodes[0].status();
    assert_eq!(status.committed, 3, "marker plus two commands");
    assert!(cluster.events.contains(&(
        id(1),
        ClientEvent::Committed {
            req: 7,
            first: 2,
            last: 3
        }
    )));
    assert_eq!(cluster.applied[0].len(), 3);
}

#[test]
fn bootstrap_delay_is_added_only_in_term_zero() {
    let mut cluster = Cluster::new(vec![node(5)]);
    cluster.run_for(Duration::from_millis(790));
    assert!(
        cluster.leaders().is_empty(),
        "300ms timeout + 500ms bootstrap delay not yet over"
    );
    cluster.run_for(Duration::from_millis(120));
    assert_eq!(cluster.leaders(), vec![id(5)]);
}

#[test]
fn reluctant_node_waits_its_factor_longer() {
    let mut cluster = Cluster::new(vec![node_with(1, |c| {
        c.preference = LeadershipPreference::Reluctant(3)
    })]);
    cluster.run_for(Duration::from_millis(1150));
    assert!(cluster.leaders().is_empty(), "(300ms + 100ms) * 3 at least");
    cluster.run_for(Duration::from_millis(500));
    assert_eq!(cluster.leaders(), vec![id(1)]);
}

#[test]
fn leader_writes_a_marker_entry_at_the_start_of_its_term() {
    let mut cluster = Cluster::new(vec![node(1), node(2), node(3)]);
    cluster.run_for(Duration::from_secs(2));
    let leader = cluster.leaders()[0];
    let store = cluster.at(leader).store();
    let last = store.last_position().unwrap();
    let entries = store.entries(1, last.index + 1, 10).unwrap();
    assert_eq!(entries.last().unwrap().kind, EntryKind::Marker);
    assert_eq!(entries.last().unwrap().term, last.term);
}

#[test]
fn exactly_one_leader_is_elected_and_late_joiners_adopt_it() {
    let mut cluster = Cluster::new(vec![node(1), node(2), node(3)]);
    cluster.run_for(Duration::from_secs(2));
    assert_eq!(cluster.leaders().len(), 1);
    let leader = cluster.leaders()[0];
    cluster.at(leader).propose(1, vec![cmd(9)]).unwrap();
    cluster.settle();
    cluster.join(4, |_| {});
    cluster.run_for(Duration::from_millis(200));
    let joiner = cluster.at(id(4)).status();
    assert_eq!(joiner.leader, Some(leader));
    assert_eq!(joiner.last, cluster.at(leader).status().last);
    assert_eq!(cluster.leaders(), vec![leader]);
}

fn vote_request(term: Term, last: LogPosition) -> Message {
    Message::RequestVote(RequestVote { term, last })
}

fn append(term: Term, prev: LogPosition, entries: Vec<Entry>, commit: Index) -> Message {
    Message::Append(AppendEntries {
        term,
        prev,
        entries,
        commit,
        first: 1,
        round: 0,
        admit: true,
    })
}

fn entry(term: Term, index: Index, v: u8) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Command(cmd(v).data),
    }
}

fn votes(ready: &Ready) -> Vec<Vote> {
    ready
        .messages
        .iter()
        .chain(&ready.persisted_messages)
        .filter_map(|(_, m)| match m {
            Message::Vote(reply) => Some(reply.vote),
            _ => None,
        })
        .collect()
}

/// A follower of peer 9 holding `entries`, bonded to peers 8 and 9.
fn follower_with(entries: Vec<Entry>) -> RaftNode<InMemoryLogStore> {
    let mut follower = node(1);
    follower.add_peer(id(8));
    follower.add_peer(id(9));
    let term = entries.last().map_or(1, |e| e.term);
    follower
        .step(id(9), append(term, LogPosition::default(), entries, 0))
        .unwrap();
    // Past the election timeout: no longer bound to peer 9 by stickiness.
    follower.tick(Duration::from_millis(350)).unwrap();
    follower.driven_ready();
    follower
}

/// Grants the pre-vote `node` just asked for (as peer `from`).
fn grant_pre_vote(node: &mut RaftNode<InMemoryLogStore>, from: PeerId) {
    let ready = node.driven_ready();
    let term = ready
        .messages
        .iter()
        .chain(&ready.persisted_messages)
        .find_map(|(_, m)| match m {
            Message::PreVote(request) => Some(request.term),
            _ => None,
        })
        .expect("a pre-vote was asked for");
    let reply = VoteReply {
        term,
        vote: Vote::Granted,
        observer: false,
        learner: false,
        life: 0,
    };
    node.step(from, Message::PreVoteReply(reply)).unwrap();
}

#[test]
fn voter_grants_a_candidate_with_the_same_log_and_only_once_per_term() {
    let mut voter = follower_with(vec![entry(1, 1, 1)]);
    voter
        .step(id(8), vote_request(5, LogPosition::new(1, 1)))
        .unwrap();
    assert_eq!(votes(&voter.driven_ready()), vec![Vote::Granted]);
    voter
        .step(id(9), vote_request(5, LogPosition::new(1, 1)))
        .unwrap();
    assert_eq!(votes(&voter.driven_ready()), vec![Vote::Denied]);
}

#[test]
fn voter_behind_the_candidate_abstains_and_binds_its_vote() {
    let mut voter = follower_with(vec![entry(1, 1, 1)]);
    voter
        .step(id(8), vote_request(5, LogPosition::new(1, 4)))
        .unwrap();
    assert_eq!(votes(&voter.driven_ready()), vec![Vote::Abstained]);
    voter
        .step(id(9), vote_request(5, LogPosition::new(1, 4)))
        .unwrap();
    assert_eq!(votes(&voter.driven_ready()), vec![Vote::Denied]);
}

#[test]
fn voter_denies_a_candidate_whose_log_is_behind() {
    let mut voter = follower_with(vec![entry(2, 1, 1), entry(2, 2, 1)]);
    voter
        .step(id(8), vote_request(5, LogPosition::new(2, 1)))
        .unwrap();
    assert_eq!(votes(&voter.driven_ready()), vec![Vote::Denied]);
    voter
        .step(id(8), vote_request(6, LogPosition::new(1, 9)))
        .unwrap();
    assert_eq!(
        votes(&voter.driven_ready()),
        vec![Vote::Denied],
        "higher index, lower last term"
    );
}

#[test]
fn term_and_vote_are_persisted_before_the_vote_leaves() {
    let mut voter = follower_with(vec![]);
    voter
        .step(id(8), vote_request(5, LogPosition::default()))
        .unwrap();
    let ready = voter.driven_ready();
    assert!(ready.must_sync);
    let voted = |h: HardState| (h.term, h.vote);
    assert_eq!(ready.hard_state.map(voted), Some((5, Some(id(8)))));
    assert!(ready.messages.is_empty());
    assert_eq!(votes(&ready), vec![Vote::Granted]);
    assert_eq!(voted(voter.store().hard_state().unwrap()), (5, Some(id(8))));
}

#[test]
fn restart_keeps_term_vote_and_log() {
    let voter = follower_with(vec![entry(3, 1, 1)]);
    let store = voter.into_store();
    let restarted =
        RaftNode::new(NodeConfig::new(id(1), config(1), 1), store, Duration::ZERO).unwrap();
    assert_eq!(restarted.status().term, 3);
    assert_eq!(restarted.status().last, LogPosition::new(3, 1));
}

#[test]
fn follower_rejects_an_append_that_does_not_match_its_log() {
    let mut follower = follower_with(vec![entry(1, 1, 1)]);
    follower
        .step(
            id(9),
            append(2, LogPosition::new(2, 1), vec![entry(2, 2, 2)], 0),
        )
        .unwrap();
    let ready = follower.driven_ready();
    let rejected = ready
        .messages
        .iter()
        .chain(&ready.persisted_messages)
        .any(|(_, m)| {
            matches!(
                m,
                Message::AppendReply(AppendReply {
                    outcome: AppendOutcome::Rejected { hint: 1 },
                    ..
                })
            )
        });
    assert!(rejected);
    assert_eq!(follower.status().last, LogPosition::new(1, 1));
}

#[test]
fn follower_truncates_conflicting_entries_and_keeps_matching_ones() {
    let mut follower = follower_with(vec![entry(1, 1, 1), entry(1, 2, 2), entry(1, 3, 3)]);
    let entries = vec![entry(1, 2, 2), entry(2, 3, 9), entry(2, 4, 9)];
    follower
        .step(id(9), append(2, LogPosition::new(1, 1), entries, 0))
        .unwrap();
    let ready = follower.driven_ready();
    assert_eq!(ready.truncated_from, Some(3));
    assert!(!ready.rebuild, "nothing applied was cut");
    assert_eq!(follower.status().last, LogPosition::new(2, 4));
    assert_eq!(follower.store().term_at(2).unwrap(), Some(1));
}

#[test]
fn cutting_an_applied_prefix_asks_for_a_rebuild_and_reports_the_commit_regression() {
    let mut follower = follower_with(vec![entry(1, 1, 1), entry(1, 2, 2)]);
    follower
        .step(id(9), append(1, LogPosition::new(1, 2), vec![], 2))
        .unwrap();
    assert_eq!(follower.driven_ready().committed_entries.len(), 2);
    follower
        .step(
            id(8),
            append(2, LogPosition::new(1, 1), vec![entry(2, 2, 7)], 2),
        )
        .unwrap();
    let ready = follower.driven_ready();
    assert!(ready.rebuild);
    assert_eq!(ready.commit_regressed, Some((2, 1)));
    let replayed: Vec<Index> = ready.committed_entries.iter().map(|e| e.index).collect();
    assert_eq!(
        replayed,
        vec![1, 2],
        "a fresh state machine replays from index 1"
    );
}

/// A leader of term 2 at node 1 over peers 2 and 3, whose log holds `old` from term 1.
fn leader_with(old: Vec<Entry>) -> (RaftNode<InMemoryLogStore>, Term) {
    let mut leader = node(1);
    leader.add_peer(id(2));
    leader.add_peer(id(3));
    if !old.is_empty() {
        leader
            .step(id(2), append(1, LogPosition::default(), old, 0))
            .unwrap();
    }
    leader.tick(Duration::from_secs(5)).unwrap();
    grant_pre_vote(&mut leader, id(2));
    let term = leader.status().term;
    leader
        .step(
            id(2),
            Message::Vote(VoteReply {
                term,
                vote: Vote::Granted,
                observer: false,
                learner: false,
                life: 0,
            }),
        )
        .unwrap();
    assert_eq!(leader.role(), Role::Leader);
    leader.driven_ready();
    (leader, term)
}

fn accepted(term: Term, last: Index, round: u64) -> Message {
    Message::AppendReply(AppendReply {
        term,
        round,
        outcome: AppendOutcome::Accepted { last },
        observer: false,
        syncing: false,
        learner: false,
    })
}

#[test]
fn leader_commits_only_entries_of_its_own_term() {
    let (mut leader, term) = leader_with(vec![entry(1, 1, 1), entry(1, 2, 2)]);
    assert_eq!(
        leader.status().last,
        LogPosition::new(term, 3),
        "marker at 3"
    );
    leader.step(id(2), accepted(term, 2, 0)).unwrap();
    assert_eq!(
        leader.status().committed,
        0,
        "index 2 is on a quorum but of an older term"
    );
    leader.step(id(2), accepted(term, 3, 0)).unwrap();
    assert_eq!(
        leader.status().committed,
        3,
        "the marker commits everything before it"
    );
}

#[test]
fn a_quorum_is_needed_before_the_leader_commits() {
    let (mut leader, term) = leader_with(vec![]);
    leader.propose(1, vec![cmd(1)]).unwrap();
    leader.driven_ready();
    assert_eq!(leader.status().committed, 0);
    leader.step(id(3), accepted(term, 2, 0)).unwrap();
    assert_eq!(leader.status().committed, 2);
}

/// Raft thesis 10.2.1: the leader replicates while its own write is on the
/// way to disk, and counts its own copy only once it is there.
#[test]
fn the_leader_sends_appends_before_its_sync_and_counts_itself_after() {
    let (mut leader, term) = leader_with(vec![]);
    leader.propose(1, vec![cmd(1)]).unwrap();
    let ready = leader.ready().unwrap();
    assert!(ready.must_sync);
    let early: Vec<PeerId> = ready
        .messages
        .iter()
        .filter(|(_, m)| matches!(m, Message::Append(a) if a.entries.len() == 1))
        .map(|(to, _)| *to)
        .collect();
    assert_eq!(early, vec![id(2), id(3)], "the appends need no sync");
    leader.step(id(3), accepted(term, 2, 0)).unwrap();
    assert_eq!(
        leader.status().committed,
        1,
        "one durable copy of index 2 (the follower's) is not a quorum"
    );
    leader.sync_storage().unwrap();
    assert_eq!(leader.status().committed, 2, "synced, its own copy counts");
    let ready = leader.ready().unwrap();
    assert_eq!(ready.committed_entries.last().map(|e| e.index), Some(2));
}

#[test]
fn a_single_node_commits_only_what_it_synced() {
    let mut solo = node_with(1, |c| c.consensus.min_quorum = 1);
    solo.tick(Duration::from_secs(5)).unwrap();
    solo.driven_ready();
    assert_eq!(solo.role(), Role::Leader);
    solo.driven_ready(); // the marker its sync committed
    let committed = solo.status().committed;
    solo.propose(1, vec![cmd(1)]).unwrap();
    let ready = solo.ready().unwrap();
    assert!(ready.must_sync && ready.committed_entries.is_empty());
    assert_eq!(solo.status().committed, committed);
    solo.sync_storage().unwrap();
    let ready = solo.ready().unwrap();
    assert_eq!(
        ready.committed_entries.last().map(|e| e.index),
        Some(committed + 1)
    );
}

/// A write still unsynced from an earlier ready holds back what a later
/// ready says, even when the later one wrote nothing: a vote granted
/// again (a duplicated request) must not leave before the vote is durable.
#[test]
fn messages_wait_for_an_earlier_unsynced_vote() {
    let mut voter = follower_with(vec![]);
    let request = vote_request(5, LogPosition::default());
    voter.step(id(8), request.clone()).unwrap();
    let first = voter.ready().unwrap();
    assert!(first.must_sync && first.messages.is_empty());
    voter.step(id(8), request).unwrap();
    let second = voter.ready().unwrap();
    assert!(second.must_sync, "the vote is still not synced");
    assert!(second.messages.is_empty());
    assert_eq!(votes(&second), vec![Vote::Granted]);
}

fn read_ready(ready: &Ready) -> Vec<(RequestId, Index)> {
    ready
        .events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::ReadReady { req, index } => Some((*req, *index)),
            _ => None,
        })
        .collect()
}

#[test]
fn strong_read_waits_for_a_quorum_round_started_after_it_arrived() {
    let (mut leader, term) = leader_with(vec![]);
    leader.step(id(2), accepted(term, 1, 0)).unwrap();
    assert_eq!(leader.status().committed, 1);
    leader.read(5).unwrap();
    let ready = leader.driven_ready();
    assert!(read_ready(&ready).is_empty());
    let round = match &ready
        .messages
        .iter()
        .chain(&ready.persisted_messages)
        .next()
        .unwrap()
        .1
    {
        Message::Append(a) => a.round,
        other => panic!("expected a heartbeat, got {other:?}"),
    };
    leader.step(id(2), accepted(term, 1, round - 1)).unwrap();
    assert!(
        read_ready(&leader.driven_ready()).is_empty(),
        "an ack of an older round does not count"
    );
    leader.step(id(3), accepted(term, 1, round)).unwrap();
    assert_eq!(read_ready(&leader.driven_ready()), vec![(5, 1)]);
}

#[test]
fn leader_answers_reads_only_after_committing_an_entry_of_its_term() {
    let (mut leader, term) = leader_with(vec![entry(1, 1, 1)]);
    leader.read(5).unwrap();
    leader.driven_ready();
    leader.step(id(2), accepted(term, 1, 9)).unwrap();
    assert!(
        read_ready(&leader.driven_ready()).is_empty(),
        "marker (index 2) not committed yet"
    );
    leader.step(id(2), accepted(term, 2, 9)).unwrap();
    assert_eq!(read_ready(&leader.driven_ready()), vec![(5, 2)]);
}

#[test]
fn deposed_leader_never_answers_a_read() {
    let (mut leader, term) = leader_with(vec![]);
    leader.step(id(2), accepted(term, 1, 0)).unwrap();
    leader.read(5).unwrap();
    leader.driven_ready();
    let newer = Message::AppendReply(AppendReply {
        term: term + (1 << 32),
        round: 99,
        outcome: AppendOutcome::Rejected { hint: 1 },
        observer: false,
        syncing: false,
        learner: false,
    });
    leader.step(id(3), newer).unwrap();
    assert_eq!(leader.role(), Role::Follower);
    leader.step(id(2), accepted(term, 1, 99)).unwrap();
    assert!(read_ready(&leader.driven_ready()).is_empty());
    leader.tick(Duration::from_secs(6)).unwrap();
    assert!(leader
        .ready()
        .unwrap()
        .events
        .contains(&ClientEvent::QueryOffline { req: 5 }));
}

#[test]
fn follower_forwards_commands_and_reads_to_the_leader() {
    let mut cluster = Cluster::new(vec![node(1), node(2), node(3)]);
    cluster.run_for(Duration::from_secs(2));
    let leader = cluster.leaders()[0];
    let follower = cluster
        .nodes
        .iter()
        .map(|n| n.id())
        .find(|p| *p != leader)
        .unwrap();
    cluster
        .at(follower)
        .propose(11, vec![cmd(1), cmd(2)])
        .unwrap();
    cluster.at(follower).read(12).unwrap();
    cluster.run_for(Duration::from_millis(100));
    let mine: Vec<&ClientEvent> = cluster
        .events
        .iter()
        .filter(|(p, _)| *p == follower)
        .map(|(_, e)| e)
        .collect();
    let assigned = mine.iter().find_map(|e| match e {
        ClientEvent::Assigned {
            req: 11,
            first,
            last,
            ..
        } => Some((*first, *last)),
        _ => None,
    });
    let (first, last) = assigned.expect("the leader assigned indices");
    assert_eq!(last, first + 1);
    assert!(mine.contains(&&ClientEvent::Committed {
        req: 11,
        first,
        last
    }));
    assert!(mine
        .iter()
        .any(|e| matches!(e, ClientEvent::ReadReady { req: 12, .. })));
}

#[test]
fn forward_without_a_leader_times_out_offline_with_the_commands_back() {
    let mut follower = follower_with(vec![]);
    follower.remove_peer(id(9)).unwrap();
    follower.propose(3, vec![cmd(4)]).unwrap();
    follower.tick(Duration::from_millis(350 + 499)).unwrap();
    assert!(follower.driven_ready().events.is_empty());
    follower.tick(Duration::from_millis(350 + 501)).unwrap();
    let events = follower.driven_ready().events;
    assert_eq!(
        events,
        vec![ClientEvent::CommandOffline {
            req: 3,
            committed: None,
            commands: vec![cmd(4)]
        }]
    );
}

#[test]
fn observer_never_stands_abstains_and_does_not_count() {
    let observer = || node_with(2, |c| c.preference = LeadershipPreference::Observer);
    let mut lone = Cluster::new(vec![observer()]);
    lone.run_for(Duration::from_secs(3));
    assert!(
        lone.leaders().is_empty(),
        "a group of only observers has no leader"
    );

    let mut voter = observer();
    voter.add_peer(id(8));
    voter
        .step(id(8), vote_request(5, LogPosition::default()))
        .unwrap();
    assert_eq!(votes(&voter.driven_ready()), vec![Vote::Abstained]);

    let mut cluster = Cluster::new(vec![node(1), observer()]);
    cluster.run_for(Duration::from_secs(2));
    assert_eq!(
        cluster.leaders(),
        vec![id(1)],
        "the observer leaves the voter alone in the quorum"
    );
    cluster.at(id(1)).propose(1, vec![cmd(1)]).unwrap();
    cluster.settle();
    assert_eq!(
        cluster.at(id(2)).status().committed,
        2,
        "the observer replicates and applies"
    );
}

#[test]
fn min_quorum_keeps_a_lone_node_from_leading() {
    let mut cluster = Cluster::new(vec![node_with(1, |c| c.consensus.min_quorum = 2)]);
    cluster.run_for(Duration::from_secs(3));
    assert!(cluster.leaders().is_empty());
}

#[test]
fn cut_off_leader_cannot_commit_steps_down_and_the_majority_elects_another() {
    let nodes = (1..=3)
        .map(|n| node_with(n, |c| c.consensus.min_quorum = 2))
        .collect();
    let mut cluster = Cluster::new(nodes);
    cluster.run_for(Duration::from_secs(2));
    let old = cluster.leaders()[0];
    for other in [id(1), id(2), id(3)] {
        if other != old {
            cluster.cut.push((old, other));
        }
    }
    cluster.at(old).propose(1, vec![cmd(1)]).unwrap();
    cluster.run_for(Duration::from_millis(200));
    let status = cluster.at(old).status();
    assert_eq!(status.role, Role::Leader, "check quorum has not fired yet");
    assert!(
        status.committed < status.last.index,
        "a cut-off leader cannot commit"
    );
    cluster.run_for(Duration::from_secs(3));
    let leaders = cluster.leaders();
    assert_eq!(
        leaders.len(),
        1,
        "the old leader stepped down, the majority elected another"
    );
    assert_ne!(leaders[0], old);
    assert!(cluster.at(old).status().committed < cluster.at(old).status().last.index);
}

#[test]
fn log_replay_catches_up_a_far_behind_node() {
    let small = |c: &mut NodeConfig| {
        c.replay = LogReplaySync {
            batch_size: 10,
            fetch_timeout: Duration::from_millis(200),
        };
        c.max_append_entries = 5;
    };
    let mut cluster = Cluster::new((1..=3).map(|n| node_with(n, small)).collect());
    cluster.run_for(Duration::from_secs(2));
    let leader = cluster.leaders()[0];
    for req in 0..20 {
        cluster
            .at(leader)
            .propose(req, (0..5).map(|v| cmd(v as u8)).collect())
            .unwrap();
        cluster.settle();
    }
    cluster.join(4, small);
    cluster.run_for(Duration::from_secs(1));
    let batches = cluster.replay_batches_to(id(4));
    assert!(
        batches >= 10,
        "the joiner fetched the gap in batches, got {batches}"
    );
    let joiner = cluster.at(id(4)).status();
    assert!(joiner.online);
    assert_eq!(joiner.last, cluster.at(leader).status().last);
    assert_eq!(joiner.committed, joiner.last.index);
}

/// Entries of 1.5 MiB: an append or a catch-up batch of them would pass
/// the 4 MiB frame limit after three. Every message any node sends stays
/// within `max_message_bytes`, the followers get everything, and a joiner
/// catches up from batches the providers cut short (the rest of each chunk
/// is fetched again) to the same log.
#[test]
fn appends_and_catch_up_batches_are_cut_to_fit_the_frame_limit() {
    let big = |v: u8| Command::from(Bytes::from(vec![v; 3 << 19]));
    let small = |c: &mut NodeConfig| {
        c.replay = LogReplaySync {
            batch_size: 10,
            fetch_timeout: Duration::from_millis(200),
        };
        // Messages at the 4 MiB floor: two entries each.
        c.consensus.max_command_bytes = 2 << 20;
    };
    let mut cluster = Cluster::new((1..=3).map(|n| node_with(n, small)).collect());
    let limit = cluster.nodes[0].config.consensus.max_message_bytes();
    assert_eq!(limit, crate::config::MIN_MESSAGE_BYTES);
    let largest = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = largest.clone();
    cluster.drop = Box::new(move |_, _, m| {
        seen.set(seen.get().max(crate::wire::encode(m).unwrap().len()));
        false
    });
    cluster.run_for(Duration::from_secs(2));
    let leader = cluster.leaders()[0];
    for req in 0..4 {
        let batch = (0..6).map(|v| big(v + 6 * req as u8)).collect();
        cluster.at(leader).propose(req, batch).unwrap();
        cluster.settle();
    }
    let last = cluster.at(leader).status().last;
    for n in 1..=3 {
        assert_eq!(cluster.at(id(n)).status().committed, last.index, "node {n}");
    }
    cluster.join(4, small);
    cluster.run_for(Duration::from_secs(3));
    let batches = cluster.replay_batches_to(id(4));
    assert!(
        batches >= 12,
        "25 entries in chunks of 10, two entries a batch: {batches} batches"
    );
    let joiner = cluster.at(id(4)).status();
    assert_eq!((joiner.last, joiner.committed), (last, last.index));
    let held = |c: &mut Cluster, n| c.at(id(n)).store().entries(1, last.index + 1, 100).unwrap();
    assert_eq!(held(&mut cluster, 4), held(&mut cluster, 1));
    assert!(
        largest.get() > 3 << 19,
        "messages carried the large entries"
    );
    assert!(largest.get() <= limit, "{} above {limit}", largest.get());
}

#[test]
fn a_command_above_max_command_bytes_is_offline_at_once_and_never_appended() {
    let mut cluster = Cluster::new(vec![node_with(1, |c| c.consensus.max_command_bytes = 10)]);
    cluster.run_for(Duration::from_secs(1));
    let last = cluster.at(id(1)).status().last;
    let big = Command::from(Bytes::from(vec![0; 11]));
    cluster
        .at(id(1))
        .propose(5, vec![cmd(1), big.clone()])
        .unwrap();
    cluster.settle();
    assert!(cluster.events.contains(&(
        id(1),
        ClientEvent::CommandOffline {
            req: 5,
            committed: None,
            commands: vec![cmd(1), big]
        }
    )));
    assert_eq!(cluster.at(id(1)).status().last, last, "nothing appended");
}

#[test]
fn an_overwritten_proposal_goes_offline_once_another_entry_commits_at_its_index() {
    let mut follower = follower_with(vec![]);
    follower.propose(3, vec![cmd(4), cmd(5)]).unwrap();
    follower.driven_ready();
    let assigned = crate::wire::Assignment {
        term: 1,
        first: 1,
        last: 2,
    };
    follower
        .step(
            id(9),
            Message::ForwardReply {
                ask: follower.ask(3),
                outcome: crate::wire::ForwardOutcome::Assigned(assigned),
            },
        )
        .unwrap();
    let events = follower.driven_ready().events;
    assert_eq!(
        events,
        vec![ClientEvent::Assigned {
            req: 3,
            term: 1,
            first: 1,
            last: 2
        }]
    );
    follower
        .step(
            id(8),
            append(2, LogPosition::default(), vec![entry(2, 1, 7)], 1),
        )
        .unwrap();
    let events = follower.driven_ready().events;
    assert_eq!(
        events,
        vec![ClientEvent::CommandOffline {
            req: 3,
            committed: None,
            commands: vec![cmd(4), cmd(5)]
        }]
    );
}

// ---- Safety under restarts, delays, lost state and growth (round 2) ----

/// A three-node consistency-first cluster (min_quorum 2) with a leader.
fn consistent_cluster(n: u8) -> Cluster {
    let nodes = (1..=n)
        .map(|i| node_with(i, |c| c.consensus.min_quorum = u32::from(n) / 2 + 1))
        .collect();
    let mut cluster = Cluster::new(nodes);
    cluster.run_for(Duration::from_secs(2));
    assert_eq!(cluster.leaders().len(), 1, "a leader was elected");
    cluster
}

impl Cluster {
    /// Cuts every message between `a` and `b` (the bond stays up).
    fn cut_pair(&mut self, a: PeerId, b: PeerId) {
        self.cut.push((a, b));
    }

    pub(super) fn isolate(&mut self, who: PeerId) {
        let others: Vec<PeerId> = self
            .nodes
            .iter()
            .map(|n| n.id())
            .filter(|p| *p != who)
            .collect();
        for other in others {
            self.cut_pair(who, other);
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    /// Restarts `who` with an empty store (an in-memory store after a
    /// crash); its peers never see the bond drop.
    pub(super) fn restart_empty(&mut self, who: PeerId, seed: u64) {
        let slot = self.nodes.iter().position(|n| n.id() == who).unwrap();
        let min_quorum = self.nodes[slot].config.consensus.min_quorum;
        let mut cfg = NodeConfig::new(who, config(who.0[0]), seed);
        cfg.consensus.min_quorum = min_quorum;
        self.nodes[slot] = RaftNode::new(cfg, InMemoryLogStore::new(), self.now).unwrap();
        self.applied[slot].clear();
        self.bond_all();
    }

    /// Commands of every `Committed` event so far, by request.
    fn committed_reqs(&self) -> Vec<RequestId> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                ClientEvent::Committed { req, .. } => Some(*req),
                _ => None,
            })
            .collect()
    }

    fn other_than(&self, not: &[PeerId]) -> Vec<PeerId> {
        self.nodes
            .iter()
            .map(|n| n.id())
            .filter(|p| !not.contains(p))
            .collect()
    }
}

#[test]
fn a_rejected_append_of_an_older_term_acknowledges_no_read_round() {
    let mut follower = follower_with(vec![entry(1 << 32, 1, 1)]);
    follower
        .step(id(8), vote_request(3 << 32, LogPosition::new(1 << 32, 1)))
        .unwrap();
    follower.driven_ready();
    let mut stale = append(1 << 32, LogPosition::new(1 << 32, 1), vec![], 1);
    if let Message::Append(a) = &mut stale {
        a.round = 57;
    }
    follower.step(id(9), stale).unwrap();
    let rounds: Vec<u64> = follower
        .ready()
        .unwrap()
        .messages
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::AppendReply(r) => Some(r.round),
            _ => None,
        })
        .collect();
    assert_eq!(
        rounds,
        vec![0],
        "a reply under the newer term acknowledges no round"
    );
}

#[test]
fn a_snapshot_of_a_newer_term_raises_the_term_and_stale_appends_are_refused() {
    let old = 1 << 32;
    let newer = 5 << 32;
    let mut follower = follower_with(vec![entry(old, 1, 1)]);
    let snapshot = Snapshot::new(LogPosition::new(newer, 30), Bytes::from_static(b"state"));
    follower.install_fetched(snapshot).unwrap();
    assert!(
        follower.status().term >= newer,
        "term never below the log's"
    );
    follower.driven_ready();
    follower
        .step(
            id(9),
            append(
                old,
                LogPosition::new(newer, 30),
                vec![entry(old, 31, 2)],
                31,
            ),
        )
        .unwrap();
    assert_eq!(
        follower.status().last.index,
        30,
        "the stale leader's append is refused"
    );
    assert_eq!(
        follower.status().committed,
        30,
        "the commit never goes back"
    );
}

#[test]
fn a_term_below_the_last_log_term_is_raised_at_load() {
    let mut store = InMemoryLogStore::new();
    store.append(&[entry(7 << 32, 1, 1)]).unwrap();
    store
        .set_hard_state(HardState {
            term: 2 << 32,
            vote: None,
            learner: false,
            life: 0,
        })
        .unwrap();
    let node = RaftNode::new(NodeConfig::new(id(1), config(1), 1), store, Duration::ZERO).unwrap();
    assert_eq!(node.status().term, 7 << 32);
}

#[test]
fn a_forward_whose_answer_never_came_is_unknown_not_offline() {
    let mut follower = follower_with(vec![]);
    follower.propose(3, vec![cmd(4)]).unwrap();
    follower.driven_ready();
    follower.tick(Duration::from_millis(350 + 501)).unwrap();
    assert_eq!(
        follower.driven_ready().events,
        vec![ClientEvent::CommandUnknown {
            req: 3,
            committed: None,
            commands: vec![cmd(4)]
        }]
    );
}

/// A follower of peer 9 whose batch of three got indices 1..=3 in `term`.
fn follower_with_assigned_batch(term: Term) -> RaftNode<InMemoryLogStore> {
    let mut follower = follower_with(vec![]);
    follower.propose(3, vec![cmd(4), cmd(5), cmd(6)]).unwrap();
    follower.driven_ready();
    let assigned = crate::wire::Assignment {
        term,
        first: 1,
        last: 3,
    };
    follower
        .step(
            id(9),
            Message::ForwardReply {
                ask: follower.ask(3),
                outcome: crate::wire::ForwardOutcome::Assigned(assigned),
            },
        )
        .unwrap();
    follower.driven_ready();
    follower
}

#[test]
fn a_batch_whose_prefix_survived_a_leader_change_settles_entry_by_entry() {
    let (t1, t2) = (1 << 32, 2 << 32);
    let mut follower = follower_with_assigned_batch(t1);
    let entries = vec![
        Entry {
            term: t1,
            index: 1,
            kind: EntryKind::Command(cmd(4).data),
        },
        entry(t2, 2, 9),
    ];
    follower
        .step(id(8), append(t2, LogPosition::default(), entries, 2))
        .unwrap();
    assert_eq!(
        follower.driven_ready().events,
        vec![ClientEvent::CommandOffline {
            req: 3,
            committed: Some((1, 1)),
            commands: vec![cmd(5), cmd(6)]
        }]
    );
}

#[test]
fn a_batch_compacted_into_a_snapshot_of_its_own_term_is_committed() {
    let t1 = 1 << 32;
    let mut follower = follower_with_assigned_batch(t1);
    let snapshot = Snapshot::new(LogPosition::new(t1, 10), Bytes::from_static(b"state"));
    follower.install_fetched(snapshot).unwrap();
    follower.settle_committed().unwrap();
    assert_eq!(
        follower.driven_ready().events,
        vec![ClientEvent::Committed {
            req: 3,
            first: 1,
            last: 3
        }]
    );
}

#[test]
fn a_batch_compacted_into_a_snapshot_of_a_later_term_is_unknown() {
    let mut follower = follower_with_assigned_batch(1 << 32);
    let snapshot = Snapshot::new(LogPosition::new(3 << 32, 10), Bytes::from_static(b"state"));
    follower.install_fetched(snapshot).unwrap();
    follower.settle_committed().unwrap();
    assert!(matches!(
        follower.driven_ready().events.as_slice(),
        [ClientEvent::CommandUnknown {
            req: 3,
            committed: None,
            ..
        }]
    ));
}

#[test]
fn an_assigned_proposal_that_never_commits_times_out_unknown() {
    let mut follower = follower_with_assigned_batch(1 << 32);
    follower.tick(Duration::from_millis(350 + 501)).unwrap();
    assert!(matches!(
        follower.driven_ready().events.as_slice(),
        [ClientEvent::CommandUnknown { req: 3, .. }]
    ));
}

fn forward_outcomes(ready: &Ready) -> Vec<crate::wire::ForwardOutcome> {
    ready
        .messages
        .iter()
        .chain(&ready.persisted_messages)
        .filter_map(|(_, m)| match m {
            Message::ForwardReply { outcome, .. } => Some(*outcome),
            _ => None,
        })
        .collect()
}

#[test]
fn a_duplicated_forward_is_appended_once_and_a_refusal_is_certain() {
    let (mut leader, term) = leader_with(vec![]);
    let asker = |req| crate::wire::Ask {
        incarnation: 5,
        req,
    };
    let forward = Message::Forward {
        ask: asker(9),
        term,
        commands: vec![cmd(1)],
    };
    leader.step(id(2), forward.clone()).unwrap();
    leader.step(id(2), forward.clone()).unwrap();
    let outcomes = forward_outcomes(&leader.driven_ready());
    assert_eq!(outcomes.len(), 2);
    assert_eq!(
        outcomes[0], outcomes[1],
        "the duplicate gets the same indices"
    );
    assert_eq!(leader.status().last.index, 2, "marker and one copy");
    let older = Message::Forward {
        ask: asker(10),
        term: term - 1,
        commands: vec![cmd(2)],
    };
    leader.step(id(2), older).unwrap();
    assert_eq!(
        forward_outcomes(&leader.driven_ready()),
        vec![crate::wire::ForwardOutcome::Unknown],
        "a term it does not remember: it cannot promise a refusal"
    );
    let newer = Message::AppendReply(AppendReply {
        term: term + (1 << 32),
        round: 0,
        outcome: AppendOutcome::Rejected { hint: 1 },
        observer: false,
        syncing: false,
        learner: false,
    });
    leader.step(id(3), newer).unwrap();
    leader
        .step(
            id(2),
            Message::Forward {
                ask: asker(11),
                term,
                commands: vec![cmd(3)],
            },
        )
        .unwrap();
    leader.step(id(2), forward).unwrap();
    let outcomes = forward_outcomes(&leader.driven_ready());
    assert_eq!(
        outcomes[0],
        crate::wire::ForwardOutcome::Refused,
        "never taken in its term"
    );
    assert!(matches!(
        outcomes[1],
        crate::wire::ForwardOutcome::Assigned(_)
    ));
}

#[test]
fn a_node_restarted_without_its_store_never_stands_in_a_term_it_used() {
    let mut cluster = Cluster::new(vec![node(1)]);
    cluster.run_for(Duration::from_secs(1));
    let used = cluster.nodes[0].status().term;
    cluster.restart_empty(id(1), 99);
    cluster.run_for(Duration::from_secs(1));
    let now = cluster.nodes[0].status().term;
    assert_eq!(cluster.leaders(), vec![id(1)]);
    assert_ne!(
        now, used,
        "same round, another tag: (term, index) names one entry"
    );
}

#[test]
fn an_acknowledged_write_survives_a_member_restarting_empty_and_the_leader_being_cut_off() {
    let mut cluster = consistent_cluster(3);
    let a = cluster.leaders()[0];
    let others = cluster.other_than(&[a]);
    let (b, c) = (others[0], others[1]);
    cluster.isolate(c);
    for req in 0..10 {
        cluster
            .at(a)
            .propose(100 + req, vec![cmd(req as u8)])
            .unwrap();
    }
    cluster.run_for(Duration::from_millis(200));
    let acked = cluster.committed_reqs();
    assert_eq!(acked.len(), 10, "A and B commit without C");
    cluster.restart_empty(b, 77);
    cluster.heal();
    cluster.isolate(a);
    cluster.run_for(Duration::from_secs(3));
    let lost = cluster.leaders().iter().any(|l| *l != a);
    assert!(
        !lost,
        "B (empty) and C (behind) must not elect a leader: {:?}",
        cluster.leaders()
    );
    cluster.heal();
    cluster.run_for(Duration::from_secs(3));
    for node in &cluster.nodes {
        let held = node.store().entries(1, 100, 100).unwrap();
        let commands = held.iter().filter(|e| e.command().is_some()).count();
        assert!(commands >= 10, "{:?} lost acknowledged writes", node.id());
    }
}

#[test]
fn a_fourth_voter_never_lets_both_halves_of_a_split_commit() {
    let nodes = (1..=4)
        .map(|i| node_with(i, |c| c.consensus.min_quorum = 2))
        .collect();
    let mut cluster = Cluster::new(nodes);
    cluster.run_for(Duration::from_secs(3));
    for node in &cluster.nodes {
        assert!(
            node.committees.current().len() <= 3,
            "at most 2 * min_quorum - 1 members"
        );
    }
    let ids = cluster.other_than(&[]);
    for (left, right) in [([0, 1], [2, 3]), ([0, 2], [1, 3]), ([0, 3], [1, 2])] {
        cluster.heal();
        cluster.run_for(Duration::from_secs(1));
        for l in left {
            for r in right {
                cluster.cut_pair(ids[l], ids[r]);
            }
        }
        let before: Vec<Index> = cluster.nodes.iter().map(|n| n.status().committed).collect();
        for (k, i) in left.iter().chain(&right).enumerate() {
            cluster
                .at(ids[*i])
                .propose(200 + k as u64, vec![cmd(k as u8)])
                .unwrap();
        }
        cluster.run_for(Duration::from_secs(3));
        let moved = |side: [usize; 2]| {
            side.iter()
                .any(|i| cluster.nodes[*i].status().committed > before[*i])
        };
        assert!(
            !(moved(left) && moved(right)),
            "both halves committed: {left:?} | {right:?}"
        );
    }
}

#[test]
fn a_snapshot_taken_before_the_machine_started_over_is_refused() {
    let mut follower = follower_with(vec![entry(1 << 32, 1, 1), entry(1 << 32, 2, 2)]);
    follower
        .step(
            id(9),
            append(1 << 32, LogPosition::new(1 << 32, 2), vec![], 2),
        )
        .unwrap();
    let ready = follower.driven_ready();
    assert_eq!(ready.committed_entries.len(), 2);
    let epoch = ready.epoch;
    follower
        .step(
            id(8),
            append(
                2 << 32,
                LogPosition::default(),
                vec![entry(2 << 32, 1, 7)],
                0,
            ),
        )
        .unwrap();
    let ready = follower.driven_ready();
    assert!(ready.rebuild && ready.epoch > epoch);
    assert!(!follower
        .snapshot_taken(epoch, 1, Bytes::from_static(b"old branch"))
        .unwrap());
}

#[test]
fn failover_does_not_wait_for_the_dead_leaders_bond() {
    let mut cluster = consistent_cluster(3);
    let a = cluster.leaders()[0];
    let others = cluster.other_than(&[a]);
    let (b, c) = (others[0], others[1]);
    cluster.cut_pair(a, c);
    cluster.at(a).propose(1, vec![cmd(1)]).unwrap();
    cluster.run_for(Duration::from_millis(100));
    assert!(
        cluster.at(b).status().last > cluster.at(c).status().last,
        "B holds more than C"
    );
    cluster.cut_pair(a, b);
    cluster.run_for(Duration::from_millis(1500));
    let leaders: Vec<PeerId> = cluster.leaders().into_iter().filter(|l| *l != a).collect();
    assert_eq!(
        leaders,
        vec![b],
        "B wins while A is silent but still bonded"
    );
}

#[test]
fn a_catching_up_joiner_does_not_raise_the_commit_quorum() {
    let mut cluster = consistent_cluster(3);
    let a = cluster.leaders()[0];
    for req in 0..50 {
        cluster
            .at(a)
            .propose(300 + req, vec![cmd(req as u8)])
            .unwrap();
    }
    cluster.run_for(Duration::from_millis(200));
    cluster.join(4, |c| c.consensus.min_quorum = 2);
    let d = id(4);
    cluster.cut_pair(a, d);
    let slow = cluster.other_than(&[a, d])[0];
    cluster.cut_pair(a, slow);
    let before = cluster.at(a).status().committed;
    cluster.at(a).propose(400, vec![cmd(1)]).unwrap();
    cluster.run_for(Duration::from_millis(150));
    assert!(
        cluster.at(a).status().committed > before,
        "two of the three committee members commit; the joiner is not counted"
    );
}

#[test]
fn a_node_back_from_a_partition_does_not_depose_a_healthy_leader() {
    let mut cluster = consistent_cluster(3);
    let a = cluster.leaders()[0];
    let term = cluster.at(a).status().term;
    let c = cluster.other_than(&[a])[1];
    cluster.isolate(c);
    cluster.run_for(Duration::from_secs(3));
    cluster.heal();
    cluster.run_for(Duration::from_secs(1));
    assert_eq!(cluster.leaders(), vec![a]);
    assert_eq!(cluster.at(a).status().term, term, "no new term was started");
}

#[test]
fn a_restarted_follower_counting_its_requests_from_one_again_is_not_answered_from_its_earlier_life()
{
    let (mut leader, term) = leader_with(vec![]);
    for incarnation in [5, 6] {
        let forward = Message::Forward {
            ask: crate::wire::Ask {
                incarnation,
                req: 1,
            },
            term,
            commands: vec![cmd(incarnation as u8)],
        };
        leader.step(id(2), forward).unwrap();
    }
    let outcomes = forward_outcomes(&leader.driven_ready());
    assert_ne!(
        outcomes[0], outcomes[1],
        "request 1 of another life is another request"
    );
    assert_eq!(leader.status().last.index, 3, "marker and both commands");
}

#[test]
fn a_late_voter_is_admitted_and_joins_the_committee() {
    let nodes = (1..=2)
        .map(|i| node_with(i, |c| c.consensus.min_quorum = 2))
        .collect();
    let mut cluster = Cluster::new(nodes);
    cluster.run_for(Duration::from_secs(2));
    assert_eq!(cluster.leaders().len(), 1);
    cluster.join(3, |c| c.consensus.min_quorum = 2);
    let leader = cluster.leaders()[0];
    for req in 0..20 {
        cluster
            .at(leader)
            .propose(500 + req, vec![cmd(req as u8)])
            .unwrap();
        cluster.run_for(Duration::from_millis(20));
    }
    cluster.run_for(Duration::from_millis(500));
    let late = cluster.at(id(3));
    assert!(!late.is_learner(), "the late voter was admitted");
    assert_eq!(
        cluster.at(leader).committee().len(),
        3,
        "and joined the committee"
    );
}
