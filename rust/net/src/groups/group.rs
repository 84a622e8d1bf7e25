//! One joined group on one node: its bonds (at most one per peer), the
//! mesh as peers report it, and the loop that dials fellow members found by
//! discovery.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use mosaik_core::{ConsensusConfig, Digest, GroupId, PeerId};
use tokio::sync::{mpsc, watch};

use super::bond::{self, Outgoing};
use super::handshake;
use super::metrics::BondMetrics;
use super::wire::BondMessage;
use super::worker::{self, WorkerHandle, WorkerSetup};
use super::GroupsCtx;
use crate::close;
use crate::error::NetError;
use crate::link::{self, LinkReceiver, LinkSender};
use crate::metrics::Sample;

/// What identifies and configures a group on this node.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub group_id: GroupId,
    /// The group key's secret.
    pub secret: Digest,
    pub consensus: ConsensusConfig,
    pub handshake_timeout: Duration,
}

/// Consensus messages received on bonds, with their sender.
pub type RaftInbox = mpsc::UnboundedReceiver<(PeerId, Vec<u8>)>;

struct BondHandle {
    initiator: PeerId,
    generation: u64,
    out: mpsc::UnboundedSender<Outgoing>,
    conn: quinn::Connection,
}

#[derive(Default)]
struct GroupState {
    bonds: HashMap<PeerId, BondHandle>,
    /// Each peer's bonds as it last told us.
    mesh: HashMap<PeerId, BTreeSet<PeerId>>,
    dialing: HashSet<PeerId>,
    /// When each peer was last dialled (the endpoint's dial guard backs
    /// off from peers whose dials fail).
    last_dial: HashMap<PeerId, Instant>,
    /// Entry version of peers that said `Departure`; not redialled until
    /// they publish a newer entry.
    departed: HashMap<PeerId, u64>,
    next_generation: u64,
}

/// A bond handed over by a completed handshake.
pub struct NewBond {
    pub peer: PeerId,
    pub initiator: PeerId,
    pub conn: quinn::Connection,
    pub tx: LinkSender,
    pub rx: LinkReceiver,
    pub their_bonds: Vec<PeerId>,
}

pub struct Group {
    spec: GroupSpec,
    ctx: Arc<GroupsCtx>,
    state: Mutex<GroupState>,
    pub(crate) metrics: BondMetrics,
    changes: watch::Sender<u64>,
    left: AtomicBool,
    raft_sink: mpsc::UnboundedSender<(PeerId, Vec<u8>)>,
    raft_inbox: Mutex<Option<RaftInbox>>,
    worker: OnceLock<WorkerHandle>,
}

/// Least pause between two dials of the same peer.
fn redial_pause(spec: &GroupSpec) -> Duration {
    spec.consensus
        .heartbeat_interval
        .max(Duration::from_millis(200))
}

impl Group {
    pub(crate) fn new(spec: GroupSpec, ctx: Arc<GroupsCtx>) -> Arc<Self> {
        let (raft_sink, raft_inbox) = mpsc::unbounded_channel();
        Arc::new(Group {
            spec,
            ctx,
            state: Mutex::new(GroupState::default()),
            metrics: BondMetrics::default(),
            changes: watch::channel(0).0,
            left: AtomicBool::new(false),
            raft_sink,
            raft_inbox: Mutex::new(Some(raft_inbox)),
            worker: OnceLock::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn spec(&self) -> &GroupSpec {
        &self.spec
    }

    pub fn id(&self) -> GroupId {
        self.spec.group_id
    }

    pub fn local(&self) -> PeerId {
        self.ctx.local
    }

    pub(crate) fn ctx(&self) -> &Arc<GroupsCtx> {
        &self.ctx
    }

    pub fn has_left(&self) -> bool {
        self.left.load(Ordering::SeqCst)
    }

    /// Peers this node is bonded with, in order.
    pub fn bond_peers(&self) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = self.state().bonds.keys().copied().collect();
        peers.sort();
        peers
    }

    pub fn is_bonded(&self, peer: &PeerId) -> bool {
        self.state().bonds.contains_key(peer)
    }

    /// The mesh as this node knows it: each peer and its bonds.
    pub fn mesh(&self) -> Vec<(PeerId, Vec<PeerId>)> {
        let state = self.state();
        let mut out: Vec<_> = state
            .mesh
            .iter()
            .map(|(p, bonds)| (*p, bonds.iter().copied().collect()))
            .collect();
        out.sort();
        out
    }

    /// Ticks whenever the set of bonds changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Starts consensus on this group (once; later calls do nothing).
    pub(crate) fn start_worker(self: &Arc<Self>, setup: WorkerSetup) -> Result<(), NetError> {
        let inbox = self
            .raft_inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(inbox) = inbox {
            let handle =
                worker::start(self, inbox, setup).map_err(|e| NetError::Config(e.to_string()))?;
            let _ = self.worker.set(handle);
        }
        Ok(())
    }

    /// The consensus worker's handles, once it runs.
    pub fn worker(&self) -> Option<&WorkerHandle> {
        self.worker.get()
    }

    pub(crate) fn deliver_raft(&self, from: PeerId, bytes: Vec<u8>) {
        let _ = self.raft_sink.send((from, bytes));
    }

    /// Queues a consensus message to `peer`; false when not bonded.
    pub fn send_raft(&self, peer: &PeerId, bytes: Vec<u8>) -> bool {
        self.send(peer, BondMessage::Raft(bytes))
    }

    fn send(&self, peer: &PeerId, msg: BondMessage) -> bool {
        self.state()
            .bonds
            .get(peer)
            .is_some_and(|b| b.out.send(Outgoing::Message(msg)).is_ok())
    }

    fn send_to_all_but(&self, except: &PeerId, msg: &BondMessage) {
        for (peer, bond) in &self.state().bonds {
            if peer != except {
                let _ = bond.out.send(Outgoing::Message(msg.clone()));
            }
        }
    }

    /// Keeps a completed handshake's bond unless one already exists; of two
    /// bonds to the same peer, both sides keep the one the lower id opened.
    pub(crate) fn install(self: &Arc<Self>, new: NewBond) {
        if self.has_left() {
            link::close_with(&new.conn, close::GRACEFUL_SHUTDOWN, "group left");
            return;
        }
        let winner = self.local().min(new.peer);
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let generation = {
            let mut state = self.state();
            if self.has_left() {
                drop(state);
                link::close_with(&new.conn, close::GRACEFUL_SHUTDOWN, "group left");
                return;
            }
            if let Some(existing) = state.bonds.get(&new.peer) {
                if existing.initiator == winner || new.initiator != winner {
                    drop(state);
                    self.metrics.reject(close::groups::ALREADY_BONDED);
                    link::close_with(&new.conn, close::groups::ALREADY_BONDED, "already bonded");
                    return;
                }
                link::close_with(&existing.conn, close::groups::ALREADY_BONDED, "replaced");
            }
            state.next_generation += 1;
            let generation = state.next_generation;
            state.bonds.insert(
                new.peer,
                BondHandle {
                    initiator: new.initiator,
                    generation,
                    out: out_tx,
                    conn: new.conn.clone(),
                },
            );
            state.departed.remove(&new.peer);
            state
                .mesh
                .insert(new.peer, new.their_bonds.iter().copied().collect());
            generation
        };
        self.ctx.tasks.spawn(bond::run(
            self.clone(),
            new.peer,
            generation,
            new.conn,
            (new.tx, new.rx),
            out_rx,
        ));
        self.announce(new.peer);
        self.dial_all(&new.their_bonds);
    }

    /// Tells the new bond who we are and the others that we bonded.
    fn announce(&self, peer: PeerId) {
        let own = self.ctx.discovery.own_entry();
        self.send(&peer, BondMessage::PeerEntryUpdate(own));
        self.send_to_all_but(&peer, &BondMessage::BondFormed { peer });
        self.changes.send_modify(|n| *n += 1);
    }

    /// Drops the bond of `generation` with `peer` if it is still the one
    /// installed.
    pub(crate) fn remove(&self, peer: &PeerId, generation: u64, departed: bool) {
        {
            let mut state = self.state();
            if state.bonds.get(peer).map(|b| b.generation) != Some(generation) {
                return;
            }
            state.bonds.remove(peer);
            state.mesh.remove(peer);
            if departed {
                let version = self.ctx.discovery.entry(peer).map_or(0, |e| e.version);
                state.departed.insert(*peer, version);
            }
        }
        self.changes.send_modify(|n| *n += 1);
    }

    pub(crate) fn record_bond_formed(self: &Arc<Self>, reporter: PeerId, peer: PeerId) {
        {
            let mut state = self.state();
            if !state.bonds.contains_key(&reporter) {
                return;
            }
            state.mesh.entry(reporter).or_default().insert(peer);
        }
        if peer != self.local() {
            self.dial_all(&[peer]);
        }
    }

    /// Dials each of `peers` that is not bonded, not being dialled, and not
    /// dialled too recently.
    fn dial_all(self: &Arc<Self>, peers: &[PeerId]) {
        let now = Instant::now();
        let pause = redial_pause(&self.spec);
        self.state()
            .last_dial
            .retain(|_, t| now.duration_since(*t) < pause);
        for peer in peers {
            let go = {
                let mut state = self.state();
                let recent = state.last_dial.contains_key(peer);
                let skip = *peer == self.local()
                    || recent
                    || state.bonds.contains_key(peer)
                    || state.dialing.contains(peer);
                if !skip {
                    state.dialing.insert(*peer);
                    state.last_dial.insert(*peer, now);
                }
                !skip
            };
            if go {
                let me = self.clone();
                let peer = *peer;
                self.ctx.tasks.spawn(async move {
                    if let Err(e) = handshake::initiate(&me, peer).await {
                        log::debug!("bond to {peer} in group {} failed: {e}", me.id());
                    }
                    me.state().dialing.remove(&peer);
                });
            }
        }
    }

    /// Fellow members in the catalog that we should be bonded with.
    fn members_to_dial(&self) -> Vec<PeerId> {
        let members = self.ctx.discovery.members_of(&self.spec.group_id);
        let mut state = self.state();
        let listed: HashSet<PeerId> = members.iter().map(|(p, _)| *p).collect();
        state.departed.retain(|p, _| listed.contains(p));
        members
            .into_iter()
            // Of two members that find each other, the lower id dials.
            .filter(|(peer, _)| self.local() < *peer)
            .filter(|(peer, version)| state.departed.get(peer).is_none_or(|v| version > v))
            .map(|(peer, _)| peer)
            .collect()
    }

    /// Dials fellow members whenever discovery learns something, and
    /// retries lost ones periodically; ends when the group is left.
    pub(crate) async fn maintain(self: Arc<Self>) {
        let mut catalog = self.ctx.discovery.subscribe();
        let retry = redial_pause(&self.spec);
        while !self.has_left() {
            let members = self.members_to_dial();
            self.dial_all(&members);
            tokio::select! {
                _ = catalog.changed() => {}
                _ = tokio::time::sleep(retry) => {}
            }
        }
    }

    /// Sends `Departure` on every bond and waits (bounded) until they close.
    pub async fn leave(&self) {
        if self.left.swap(true, Ordering::SeqCst) {
            return;
        }
        self.changes.send_modify(|n| *n += 1);
        for bond in self.state().bonds.values() {
            let _ = bond.out.send(Outgoing::Depart);
        }
        let mut changes = self.subscribe();
        let deadline = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(deadline);
        while !self.state().bonds.is_empty() {
            tokio::select! {
                _ = &mut deadline => break,
                r = changes.changed() => if r.is_err() { break },
            }
        }
        for bond in self.state().bonds.values() {
            link::close_with(&bond.conn, close::GRACEFUL_SHUTDOWN, "left");
        }
    }

    pub fn metrics(&self) -> Vec<Sample> {
        let mut out = vec![(
            "mosaik.groups.bonds.active".to_string(),
            self.state().bonds.len() as f64,
        )];
        out.extend(self.metrics.samples());
        out
    }
}
