//! Adversarial review tests: each one is an interleaving that breaks a
//! promise of docs/consensus.md or the README (two leaders committing,
//! an acknowledged write lost, a group that can never elect again).
//! Each failed on the code it was written against (19902f5) and guards the
//! fix since. They run on `tests`' cluster, with its drop filter.

use std::time::Duration;

use super::tests::{cmd, id, node_with, Cluster, Driven};
use super::*;
use crate::storage::InMemoryLogStore;
use crate::wire::{Ask, ForwardOutcome, RequestVote};

fn node_q(n: u8, min_quorum: u32) -> RaftNode<InMemoryLogStore> {
    node_with(n, |c| c.consensus.min_quorum = min_quorum)
}

/// Three nodes at min_quorum 2 after their first election: the cluster,
/// its leader and the two others.
fn three_with_a_leader() -> (Cluster, PeerId, PeerId, PeerId) {
    let nodes = (1..=3).map(|n| node_q(n, 2)).collect();
    let mut net = Cluster::new(nodes);
    net.run_for(Duration::from_secs(2));
    let a = net.leaders()[0];
    let others: Vec<PeerId> = net.ids().into_iter().filter(|p| *p != a).collect();
    (net, a, others[0], others[1])
}

impl Cluster {
    fn ids(&self) -> Vec<PeerId> {
        self.nodes.iter().map(|n| n.id()).collect()
    }

    fn committed_term_at(&mut self, who: PeerId, index: Index) -> Option<Term> {
        let node = self.at(who);
        if node.status().committed < index {
            return None;
        }
        node.store().term_at(index).unwrap()
    }
}

fn is_vote_traffic(m: &Message) -> bool {
    matches!(
        m,
        Message::PreVote(_) | Message::PreVoteReply(_) | Message::RequestVote(_) | Message::Vote(_)
    )
}

/// BUG 1 (safety, no lost state): over-provisioned bootstrap.
///
/// Five fresh nodes, min_quorum 2 (the README: running more nodes than
/// 2M-1 "cannot split the group into two sides that both commit").
/// Node 1 wins the first election with the votes of 2 and 3 and writes the
/// committee {1,2,3} (quorum 2). Its appends reach only node 2 (loss), then
/// the network splits {1,2} | {3,4,5}. Node 3 voted for node 1 but holds no
/// log, so it is still "a group with no history": it wins a new first
/// election with 4 and 5 (3 of 5 bonded voters) and writes {3,4,5}. The
/// quorums {1,2} and {4,5} (or {3,4}) are disjoint: both leaders commit a
/// different entry at index 1.
#[test]
fn review_two_first_elections_both_commit_in_an_over_provisioned_group() {
    let nodes = (1..=5).map(|n| node_q(n, 2)).collect();
    let mut net = Cluster::new(nodes);
    let left = [id(1), id(2)];
    net.drop = Box::new(move |from, to, m| {
        let side = |p: PeerId| left.contains(&p);
        side(from) != side(to) && !is_vote_traffic(m)
    });
    net.run_for(Duration::from_secs(3));
    let leaders = net.leaders();
    assert!(
        leaders.contains(&id(1)),
        "node 1 leads the left side: {leaders:?}"
    );
    let right_leader = leaders
        .iter()
        .copied()
        .find(|l| !left.contains(l))
        .expect("a leader on the right side too");
    for (k, leader) in [id(1), right_leader].into_iter().enumerate() {
        net.at(leader)
            .propose(100 + k as u64, vec![cmd(k as u8)])
            .unwrap();
    }
    net.run_for(Duration::from_millis(500));
    let l = net.committed_term_at(id(1), 1);
    let r = net.committed_term_at(right_leader, 1);
    let lc = net.at(id(1)).committees.current().to_vec();
    let rc = net.at(right_leader).committees.current().to_vec();
    assert!(
        !(l.is_some() && r.is_some() && l != r),
        "two leaders committed different entries at index 1: {l:?} vs {r:?} \
         (committees {lc:?} and {rc:?})",
    );
}

/// BUG 2 (safety, one lost store): a delayed first-election vote request
/// makes a restarted-empty member count for the group's own lineage.
///
/// Committee {A,B,C}, M = 2. C is cut off; A commits ten commands with B.
/// B restarts with an empty store and, before hearing anyone, receives a
/// delayed duplicate of the group's very first RequestVote (term = the
/// committee's origin, empty log). It grants, records the origin in
/// `first_election_votes`, and from then on `learner_for(origin)` is false:
/// it abstains for the lagging C *as a counted voter*, C wins and the ten
/// acknowledged commands are gone.
#[test]
fn review_a_delayed_first_vote_request_lets_an_empty_member_count() {
    let nodes = (1..=3).map(|n| node_q(n, 2)).collect();
    let mut net = Cluster::new(nodes);
    net.run_for(Duration::from_secs(2));
    let a = net.leaders()[0];
    let origin = net.at(a).store().term_at(1).unwrap().unwrap();
    let first_leader = net.at(a).committees.current()[0];
    let others: Vec<PeerId> = net.ids().into_iter().filter(|p| *p != a).collect();
    let (b, c) = (others[0], others[1]);
    net.isolate(c);
    for req in 0..10 {
        net.at(a).propose(100 + req, vec![cmd(req as u8)]).unwrap();
    }
    net.run_for(Duration::from_millis(200));
    let acked = net
        .events
        .iter()
        .filter(|(_, e)| matches!(e, ClientEvent::Committed { .. }))
        .count();
    assert_eq!(acked, 10, "A and B committed without C");
    net.restart_empty(b, 77);
    // The duplicate of the first election's RequestVote, delayed in the network.
    let delayed = Message::RequestVote(RequestVote {
        term: origin,
        last: LogPosition::default(),
    });
    net.at(b).step(first_leader, delayed).unwrap();
    net.cut.clear();
    net.isolate(a);
    net.run_for(Duration::from_secs(3));
    let usurper = net.leaders().into_iter().find(|l| *l != a);
    net.cut.clear();
    net.run_for(Duration::from_secs(3));
    for node in &net.nodes {
        let held = node.store().entries(1, 100, 100).unwrap();
        let commands = held.iter().filter(|e| e.command().is_some()).count();
        assert!(
            commands >= 10,
            "{:?} lost acknowledged writes (leader elected without them: {usurper:?})",
            node.id()
        );
    }
}

/// BUG 3 (liveness, one member down): a pre-vote never tells the asker the
/// voter's higher term, so a node with the longest log but a lower term
/// and a node with a higher term but a shorter log deny each other forever.
///
/// Committee {A,B,C}, M = 2. A commits with C while cut from B. C wins a
/// pre-vote, sends RequestVote (term round 2, high tag) that reaches B only,
/// and crashes. A (partitioned meanwhile) has stepped down. A and B meet
/// again: A's pre-vote asks about round 2 with its own tag, not above B's
/// term, and B denies; B's pre-vote is denied by A (A's log is ahead). No
/// message ever carries B's term to A: no leader, forever, with one member down.
#[test]
fn review_pre_vote_never_propagates_a_higher_term_and_the_group_deadlocks() {
    let (mut net, a, b, c) = three_with_a_leader();
    net.cut.push((a, b));
    net.at(a).propose(1, vec![cmd(1)]).unwrap();
    net.run_for(Duration::from_millis(500));
    assert!(net.at(a).status().last > net.at(b).status().last);
    // A is partitioned away and steps down; C campaigns once and crashes.
    net.isolate(a);
    net.isolate(c);
    let term = net.at(c).status().term;
    let campaign = Message::RequestVote(RequestVote {
        term: (((term >> 32) + 1) << 32) | u64::from(u32::MAX),
        last: net.at(c).status().last,
    });
    net.at(b).step(c, campaign).unwrap();
    net.run_for(Duration::from_secs(2));
    assert!(net.leaders().is_empty());
    // A and B meet again; C stays down (M - 1 = 1 member down).
    net.cut.retain(|(x, y)| *x == c || *y == c);
    net.run_for(Duration::from_secs(20));
    assert!(
        !net.leaders().is_empty(),
        "A (term {:#x}, log {:?}) and B (term {:#x}, log {:?}) never elect",
        net.at(a).status().term,
        net.at(a).status().last,
        net.at(b).status().term,
        net.at(b).status().last,
    );
}

/// BUG 4 (availability): once a leader has taken 65,536 forwarded batches
/// in one term, `Forwarded::forgot` is set and every NEW forwarded batch
/// of that term is answered `Unknown` without being appended: followers'
/// proposals never commit again until the leader changes.
#[test]
fn review_a_long_lived_leader_stops_taking_forwarded_commands() {
    let mut leader = node_q(1, 1);
    leader.add_peer(id(2));
    leader.add_peer(id(3));
    leader.campaign().unwrap();
    let term = leader.status().term;
    leader
        .step(
            id(2),
            Message::Vote(crate::wire::VoteReply {
                term,
                vote: crate::wire::Vote::Granted,
                observer: false,
                learner: false,
                life: 0,
            }),
        )
        .unwrap();
    assert_eq!(leader.role(), Role::Leader);
    leader.driven_ready();
    let forward = |req| Message::Forward {
        ask: Ask {
            incarnation: 5,
            req,
        },
        term,
        commands: vec![cmd(1)],
    };
    let total = 65_536u64 + 2; // MAX_FORWARDED + 2
    let mut last_outcome = None;
    for req in 0..total {
        leader.step(id(2), forward(req)).unwrap();
        if req % 1024 == 0 || req + 1 == total {
            let ready = leader.driven_ready();
            for (_, m) in ready.messages.into_iter().chain(ready.persisted_messages) {
                if let Message::ForwardReply { outcome, .. } = m {
                    last_outcome = Some(outcome);
                }
            }
        }
    }
    assert_eq!(leader.role(), Role::Leader);
    assert!(
        matches!(last_outcome, Some(ForwardOutcome::Assigned(_))),
        "a new forwarded batch to the current leader of its term: {last_outcome:?}"
    );
}

/// BUG 5 (safety, one lost store): a learner is cleared against the
/// sender's commit index, which may lag the group's.
///
/// Five members, M = 3. A commits X (indices c0+1..c0+5) with C and D;
/// the commit announcement to C is lost, so C knows only c0. D restarts
/// empty (a learner). A pauses. C wins with B's and E's abstentions (D does
/// not count) and, as leader with commit c0, sends D its first batch
/// 1..=c0: `matched >= append.commit`, D is a learner no more although it
/// lacks X, which its earlier life acknowledged. C crashes before the next
/// batch. B, D and E (all at c0) elect B, which commits its own entry at
/// c0+1 over the acknowledged X. Down at once: A and C (M - 1); lost: D only.
#[test]
fn review_a_learner_caught_up_to_a_lagging_leader_commit_counts_too_early() {
    let nodes = (1..=5).map(|n| node_q(n, 3)).collect();
    let mut net = Cluster::new(nodes);
    net.run_for(Duration::from_secs(3));
    let leaders = net.leaders();
    assert_eq!(leaders.len(), 1);
    let a = leaders[0];
    assert_eq!(
        net.at(a).committees.current().len(),
        5,
        "the committee grew to 5"
    );
    let o: Vec<PeerId> = net.ids().into_iter().filter(|p| *p != a).collect();
    let (b, c, d, e) = (o[0], o[1], o[2], o[3]);
    let c0 = net.at(a).status().committed;
    assert_eq!(net.at(c).status().committed, c0);
    assert_eq!(net.at(b).status().last.index, c0);
    for node in &mut net.nodes {
        node.config.max_append_entries = c0 as usize;
    }
    net.cut.push((a, b));
    net.cut.push((a, e));
    // A's announcements of a commit above c0 never reach C.
    net.drop = Box::new(move |from, to, m| {
        from == a && to == c && matches!(m, Message::Append(x) if x.commit > c0)
    });
    net.at(a)
        .propose(7, vec![cmd(1), cmd(2), cmd(3), cmd(4), cmd(5)])
        .unwrap();
    net.settle();
    let x_term = net.at(a).status().term;
    assert_eq!(
        net.at(a).status().committed,
        c0 + 5,
        "A committed X with C and D"
    );
    assert!(net
        .events
        .iter()
        .any(|(_, ev)| matches!(ev, ClientEvent::Committed { req: 7, .. })));
    assert_eq!(
        net.at(c).status().committed,
        c0,
        "C never heard of the commit"
    );
    net.isolate(a); // A pauses.
    net.restart_empty(d, 99); // D loses its store.
                              // C's appends reach D only up to index c0; B and E get none from C.
    net.drop = Box::new(move |from, to, m| match m {
        Message::Append(x) if from == c && (to == b || to == e) => {
            let _ = x;
            true
        }
        Message::Append(x) if from == c && to == d => {
            x.prev.index + x.entries.len() as u64 > c0 && !x.entries.is_empty()
        }
        _ => false,
    });
    let mut c_led = false;
    for _ in 0..400 {
        net.run_for(Duration::from_millis(5));
        if net.at(c).role() == Role::Leader && net.at(d).status().last.index == c0 {
            c_led = true;
            break;
        }
    }
    assert!(c_led, "C leads and D holds 1..=c0");
    net.run_for(Duration::from_millis(20));
    net.isolate(c); // C crashes.
    net.drop = Box::new(|_, _, _| false);
    net.run_for(Duration::from_secs(3));
    for who in [b, d, e] {
        if let Some(t) = net.committed_term_at(who, c0 + 1) {
            assert_eq!(
                t,
                x_term,
                "{who:?} committed another entry at {} over acknowledged X (leaders {:?})",
                c0 + 1,
                net.leaders()
            );
        }
    }
}

/// BUG 6 (safety, one lost store): the learner flag is not durable. A
/// member whose disk was wiped restarts as a learner, writes a term to its
/// (new, empty) store on the first message it sees, and crashes again
/// before any leader caught it up. Restarted with that disk, `hard.term != 0`
/// so `RaftNode::new` no longer makes it a learner: with an empty log it
/// abstains for the lagging C as a counted voter and the acknowledged
/// writes are lost.
#[test]
fn review_the_learner_flag_does_not_survive_a_second_restart_with_disk() {
    let (mut net, a, b, c) = three_with_a_leader();
    net.isolate(c);
    for req in 0..10 {
        net.at(a).propose(100 + req, vec![cmd(req as u8)]).unwrap();
    }
    net.run_for(Duration::from_millis(200));
    net.restart_empty(b, 77); // wiped disk
                              // A's next heartbeat reaches the new B (raising its stored term), then A pauses.
    let status = net.at(a).status();
    let heartbeat = Message::Append(crate::wire::AppendEntries {
        term: status.term,
        prev: status.last,
        entries: vec![],
        commit: status.committed,
        first: 1,
        round: 0,
        admit: true,
    });
    net.at(b).step(a, heartbeat).unwrap();
    net.at(b).driven_ready();
    assert!(net.at(b).status().term > 0);
    // B crashes again and restarts with the disk it has now.
    let slot = net.nodes.iter().position(|n| n.id() == b).unwrap();
    let cfg = net.nodes[slot].config.clone();
    let restarted = {
        let old = std::mem::replace(&mut net.nodes[slot], node_q(9, 2));
        RaftNode::new(cfg, old.into_store(), net.now).unwrap()
    };
    net.nodes[slot] = restarted;
    net.bond_all();
    net.cut.clear();
    net.isolate(a);
    net.run_for(Duration::from_secs(3));
    let usurper = net.leaders().into_iter().find(|l| *l != a);
    assert!(
        usurper.is_none(),
        "{usurper:?} was elected without the ten writes A and B acknowledged"
    );
}
