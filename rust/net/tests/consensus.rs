//! The consensus worker runs without Python: three networks on loopback
//! join one group with a Rust state machine behind the apply port, commit
//! commands proposed on any member, apply them in the same order everywhere
//! and hand snapshots back at the cadence the core asks for.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mosaik_core::{
    Command, ConsensusConfig, Digest, GroupId, InMemoryLogStore, LeadershipPreference, PeerId,
    Role, MIN_MESSAGE_BYTES,
};
use mosaik_net::groups::hint::Settings;
use mosaik_net::groups::{
    Applier, ApplyWork, Group, GroupSpec, GroupStatus, Halt, Proposed, Request, Rest, WorkerHandle,
    WorkerSetup,
};
use mosaik_net::{Network, NetworkConfig};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(20);
const GROUP: GroupId = Digest([9; 32]);
const SNAPSHOT_EVERY: u64 = 4;

/// What one member's machine saw: the commands in order and the snapshots it took.
#[derive(Default)]
struct Seen {
    commands: Vec<(u64, Vec<u8>)>,
    snapshots: Vec<u64>,
    /// The index the machine stands at.
    applied: u64,
}

/// A machine that records each command; its snapshot is the count so far.
struct Recorder(Arc<Mutex<Seen>>);

impl Applier for Recorder {
    fn apply(&mut self, works: &[ApplyWork]) -> Result<Vec<Option<Bytes>>, Halt> {
        let mut seen = self.0.lock().unwrap();
        let mut taken = Vec::new();
        for work in works {
            if work.rebuild || work.restore.is_some() {
                return Err(Halt::Failed("no restart expected in this test".into()));
            }
            for committed in &work.entries {
                seen.commands
                    .push((committed.index, committed.data.to_vec()));
            }
            seen.applied = work.last_index;
            taken.push(work.take_snapshot.then(|| {
                seen.snapshots.push(work.last_index);
                Bytes::from(seen.commands.len().to_le_bytes().to_vec())
            }));
        }
        Ok(taken)
    }
}

fn spec() -> GroupSpec {
    GroupSpec {
        group_id: GROUP,
        secret: Digest([5; 32]),
        consensus: ConsensusConfig {
            heartbeat_interval: Duration::from_millis(50),
            heartbeat_jitter: Duration::from_millis(10),
            election_timeout: Duration::from_millis(300),
            election_timeout_jitter: Duration::from_millis(150),
            bootstrap_delay: Duration::from_millis(100),
            min_quorum: 2,
            ..ConsensusConfig::default()
        },
        handshake_timeout: Duration::from_millis(500),
        settings: Settings::default(),
    }
}

struct Member {
    net: Arc<Network>,
    group: Arc<Group>,
    worker: WorkerHandle,
    seen: Arc<Mutex<Seen>>,
}

fn setup(seen: &Arc<Mutex<Seen>>) -> WorkerSetup {
    WorkerSetup {
        preference: LeadershipPreference::Normal,
        replay: Default::default(),
        store: Box::new(InMemoryLogStore::new()),
        snapshot_every: SNAPSHOT_EVERY,
        applier: Box::new(Recorder(seen.clone())),
    }
}

async fn network(bootstrap: Option<&Network>) -> Arc<Network> {
    let mut config = NetworkConfig::new("worker-test");
    config.discovery.bootstrap = bootstrap
        .map(|b| b.local_addr().clone())
        .into_iter()
        .collect();
    Network::start(config).await.unwrap()
}

async fn member(bootstrap: Option<&Network>) -> Member {
    let net = network(bootstrap).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (group, worker) = net.join_consensus(spec(), setup(&seen)).unwrap();
    Member {
        net,
        group,
        worker,
        seen,
    }
}

async fn propose(worker: &WorkerHandle, commands: &[&[u8]]) -> Proposed {
    let (reply, answer) = oneshot::channel();
    let commands = commands
        .iter()
        .map(|c| Command::from(Bytes::copy_from_slice(c)))
        .collect();
    worker
        .requests
        .send(Request::Propose {
            commands,
            on_assign: false,
            reply: Box::new(move |outcome| {
                let _ = reply.send(outcome);
            }),
        })
        .unwrap();
    tokio::time::timeout(WAIT, answer)
        .await
        .expect("proposal answered")
        .unwrap()
}

/// Three members bonded through the first, once all three follow one
/// leader and are online (the first member alone knowing a leader is not
/// enough: the third may still be joining, and an election follow).
async fn three_with_a_leader() -> (Member, [Member; 2], PeerId) {
    let first = member(None).await;
    let others = [
        member(Some(&first.net)).await,
        member(Some(&first.net)).await,
    ];
    let settled = || {
        let statuses: Vec<GroupStatus> = std::iter::once(&first)
            .chain(&others)
            .map(|m| m.worker.status.borrow().clone())
            .collect();
        let leader = statuses[0].leader?;
        let agreed = statuses
            .iter()
            .all(|s| s.leader == Some(leader) && s.online);
        let leads = statuses.iter().filter(|s| s.role == Role::Leader).count() == 1;
        (agreed && leads).then_some(leader)
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let leader = loop {
        if let Some(leader) = settled() {
            break leader;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "one leader for all three within the wait"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    (first, others, leader)
}

/// A bond pings only in an interval in which it sent nothing else, so the
/// bond between two followers, which no consensus message crosses, lives
/// on pings and pongs alone: an idle group keeps every bond through 40
/// heartbeat intervals (a bond ends after 11 silent ones).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_group_keeps_every_bond_between_its_followers() {
    let (first, others, _) = three_with_a_leader().await;
    let members: Vec<&Member> = std::iter::once(&first).chain(&others).collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !members.iter().all(|m| m.group.bond_peers().len() == 2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a full mesh within the wait"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut watches: Vec<_> = members
        .iter()
        .map(|m| {
            let mut bonds = m.group.subscribe();
            bonds.mark_unchanged();
            bonds
        })
        .collect();
    // The idle time is what is tested: nothing to wait for but the clock.
    tokio::time::sleep(spec().consensus.heartbeat_interval * 40).await;
    for (i, bonds) in watches.iter_mut().enumerate() {
        assert!(
            !bonds.has_changed().unwrap(),
            "member {i}: a bond ended or formed while the group was idle"
        );
    }
    for m in members {
        m.net.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_machine_applies_the_same_commands_everywhere() {
    let (first, others, _) = three_with_a_leader().await;
    let members: Vec<&Member> = std::iter::once(&first).chain(&others).collect();

    let mut last = 0;
    for (i, m) in members.iter().enumerate() {
        let payload = format!("from member {i}");
        let outcome = propose(&m.worker, &[payload.as_bytes(), b"and another"]).await;
        assert_eq!((outcome.done, outcome.rest), (2, Rest::None), "member {i}");
        last = last.max(outcome.first + 1);
    }
    for m in &members {
        let mut applied = m.worker.applied.clone();
        tokio::time::timeout(WAIT, applied.wait_for(|a| *a >= last))
            .await
            .expect("applied everywhere within the wait")
            .unwrap();
    }

    let reference = first.seen.lock().unwrap().commands.clone();
    assert_eq!(reference.len(), 6, "six commands applied");
    for m in &others {
        assert_eq!(m.seen.lock().unwrap().commands, reference);
    }
    for m in &members {
        // Up to where this machine stands: a new term's marker (after an
        // election) may follow the commands.
        let seen = m.seen.lock().unwrap();
        let due: Vec<u64> = (1..=seen.applied)
            .filter(|i| i % SNAPSHOT_EVERY == 0)
            .collect();
        assert_eq!(
            seen.snapshots, due,
            "a snapshot after every multiple of {SNAPSHOT_EVERY}"
        );
    }
    for m in members {
        m.net.close().await;
    }
}

/// Three commands of 7 MiB each (21 MiB in all, five times the smallest
/// frame limit) proposed as one batch on the leader, and one forwarded by
/// a follower: the appends are cut to fit the frame limit, and every
/// member applies all four, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_larger_than_the_base_frame_limit_replicate_whole() {
    let (first, others, leader) = three_with_a_leader().await;
    let members: Vec<&Member> = std::iter::once(&first).chain(&others).collect();
    let (on_leader, follower) = {
        let at = |m: &&&Member| m.net.peer_id() == leader;
        let on_leader = members.iter().find(at).unwrap();
        let follower = members.iter().find(|m| !at(m)).unwrap();
        (on_leader.worker.clone(), follower.worker.clone())
    };
    let big = |fill: u8| vec![fill; 7 << 20];
    let (a, b, c, d) = (big(1), big(2), big(3), big(4));
    assert!(a.len() > MIN_MESSAGE_BYTES);
    let batch = propose(&on_leader, &[&a, &b, &c]).await;
    assert_eq!((batch.done, batch.rest), (3, Rest::None));
    let forwarded = propose(&follower, &[&d]).await;
    assert_eq!((forwarded.done, forwarded.rest), (1, Rest::None));
    let last = forwarded.first;
    for m in &members {
        let mut applied = m.worker.applied.clone();
        tokio::time::timeout(WAIT, applied.wait_for(|i| *i >= last))
            .await
            .expect("applied everywhere within the wait")
            .unwrap();
        let seen = m.seen.lock().unwrap();
        let sizes: Vec<(usize, u8)> = seen.commands.iter().map(|(_, c)| (c.len(), c[0])).collect();
        assert_eq!(
            sizes,
            [(7 << 20, 1), (7 << 20, 2), (7 << 20, 3), (7 << 20, 4)]
        );
    }
    for m in members {
        m.net.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consensus_join_that_fails_leaves_nothing_behind() {
    let first = member(None).await;
    let net = network(Some(&first.net)).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut bad = spec();
    bad.consensus.heartbeat_interval = Duration::ZERO;
    assert!(net.join_consensus(bad, setup(&seen)).is_err());
    assert!(
        net.groups().unwrap().get(&GROUP).is_none(),
        "no group left registered"
    );

    let (group, worker) = net.join_consensus(spec(), setup(&seen)).unwrap();
    let bonded = async {
        while !group.is_bonded(&first.net.peer_id()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, bonded)
        .await
        .expect("the second join bonds");
    let outcome = propose(&worker, &[b"after a failed join"]).await;
    assert_eq!((outcome.done, outcome.rest), (1, Rest::None));
    assert!(net.join(spec()).is_err(), "a joined id is not joined twice");
    net.close().await;
    first.net.close().await;
}
