//! One joined group's bond mesh on one node: its bonds (at most one per
//! peer), the loop that dials fellow members found by discovery (and warns
//! of peers that hold the group's key with other settings), and the
//! consensus port it offers (see `port`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mosaik_core::{GroupId, PeerId};
use tokio::sync::{mpsc, watch};

use super::bond::{self, BondCtx, BondEvent, Outgoing};
use super::ctx::{GroupSpec, GroupsCtx};
use super::handshake::{self, NewBond};
use super::hint::HintKey;
use super::metrics::{self, BondMetrics};
use super::port::{Bonded, ConsensusPort, Outbox, RaftInbox};
use super::wire::BondMessage;
use crate::close;
use crate::discovery::GroupHint;
use crate::link;
use crate::metrics::Sample;

struct BondHandle {
    initiator: PeerId,
    generation: u64,
    out: mpsc::UnboundedSender<Outgoing>,
    conn: quinn::Connection,
}

#[derive(Default)]
struct GroupState {
    bonds: HashMap<PeerId, BondHandle>,
    dialing: HashSet<PeerId>,
    /// When each peer was last dialled (the endpoint's dial guard backs
    /// off from peers whose dials fail).
    last_dial: HashMap<PeerId, Instant>,
    /// Entry version of peers that said `Departure`; not redialled until
    /// they publish a newer entry.
    departed: HashMap<PeerId, u64>,
    /// The settings last warned of, per peer and group of theirs that
    /// holds our key under another `GroupId`.
    mismatched: HashMap<(PeerId, GroupId), [u8; 24]>,
    next_generation: u64,
    /// Where bonds report; dropped when the group is left, so that the
    /// event loop ends with the last bond.
    events: Option<mpsc::UnboundedSender<BondEvent>>,
}

pub struct Group {
    spec: GroupSpec,
    hint_key: HintKey,
    own_hint: GroupHint,
    ctx: Arc<GroupsCtx>,
    state: Mutex<GroupState>,
    pub(crate) metrics: Arc<BondMetrics>,
    bonded: watch::Sender<Bonded>,
    left: AtomicBool,
    raft_sink: mpsc::UnboundedSender<(PeerId, Vec<u8>)>,
    raft_inbox: Mutex<Option<RaftInbox>>,
    /// What bonds report, until `start` hands it to the event loop.
    events: Mutex<Option<mpsc::UnboundedReceiver<BondEvent>>>,
}

/// Least pause between two dials of the same peer.
fn redial_pause(spec: &GroupSpec) -> Duration {
    spec.consensus
        .heartbeat_interval
        .max(Duration::from_millis(200))
}

impl Group {
    /// A group with no bonds yet; `start` runs it.
    pub(crate) fn new(spec: GroupSpec, ctx: Arc<GroupsCtx>) -> Arc<Self> {
        let (raft_sink, raft_inbox) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let state = GroupState {
            events: Some(events_tx),
            ..GroupState::default()
        };
        let hint_key = HintKey::new(&spec.secret);
        let own_hint = hint_key.hint(&ctx.local, &spec.group_id, &spec.settings, rand::random());
        Arc::new(Group {
            hint_key,
            own_hint,
            spec,
            ctx,
            state: Mutex::new(state),
            events: Mutex::new(Some(events)),
            metrics: Arc::default(),
            bonded: watch::channel(Bonded::default()).0,
            left: AtomicBool::new(false),
            raft_sink,
            raft_inbox: Mutex::new(Some(raft_inbox)),
        })
    }

    /// Starts the loops that handle bond events and dial fellow members
    /// (once; later calls do nothing).
    pub(crate) fn start(self: &Arc<Self>) {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(events) = events {
            self.ctx.tasks.spawn(self.clone().handle_events(events));
            self.ctx.tasks.spawn(self.clone().maintain());
        }
    }

    /// Stops a group that never ran consensus after all (its join failed):
    /// nothing is dialled or installed any more.
    pub(crate) fn abandon(&self) {
        self.left.store(true, Ordering::SeqCst);
        {
            let mut state = self.state();
            state.events = None;
            for bond in state.bonds.values() {
                let _ = bond.out.send(Outgoing::Depart);
            }
        }
        self.publish();
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

    /// The hint this node publishes for the group.
    pub fn own_hint(&self) -> GroupHint {
        self.own_hint
    }

    /// Each bonded peer with the newest machine version its entry says it
    /// runs (`None`: its entry gives no hint for this group).
    pub fn member_versions(&self) -> Vec<(PeerId, Option<u32>)> {
        self.bond_peers()
            .into_iter()
            .map(|peer| {
                let hint = self.ctx.discovery.hint_of(&peer, &self.spec.group_id);
                let reading = hint.and_then(|h| {
                    self.hint_key
                        .read(&peer, &self.spec.group_id, &h, &self.spec.settings)
                });
                (peer, reading.map(|r| r.machine_version))
            })
            .collect()
    }

    /// Warns once per peer, group and settings of each peer whose entry
    /// shows this group's key under another `GroupId` (and not this one),
    /// naming what differs; counted as
    /// `mosaik.groups.bonds.rejected{reason=config_mismatch}`.
    fn check_settings(&self) {
        let key = &self.hint_key;
        let found = self
            .ctx
            .discovery
            .hints_tagged(&self.spec.group_id, |peer| key.tag(peer));
        let mut state = self.state();
        let listed: HashSet<(PeerId, GroupId)> = found.iter().map(|(p, g, _)| (*p, *g)).collect();
        state.mismatched.retain(|seen, _| listed.contains(seen));
        for (peer, their_id, hint) in found {
            if state.mismatched.get(&(peer, their_id)) == Some(&hint.settings) {
                continue;
            }
            let Some(reading) = key.read(&peer, &their_id, &hint, &self.spec.settings) else {
                continue;
            };
            state.mismatched.insert((peer, their_id), hint.settings);
            self.metrics.reject_named(metrics::CONFIG_MISMATCH);
            let differs = if reading.differs.is_empty() {
                "no setting we can name (a mosaik release that derives group ids \
                 differently?)"
                    .to_string()
            } else {
                reading.differs.join(", ")
            };
            log::warn!(
                "group {}: peer {peer} holds this group's key but runs group {} \
                 (differs in: {differs}); the two never bond",
                short(&self.spec.group_id),
                short(&their_id),
            );
        }
    }

    /// The bonded peers, and whether the group was left, as they change.
    pub fn subscribe(&self) -> watch::Receiver<Bonded> {
        self.bonded.subscribe()
    }

    /// The consensus port of this mesh; only the first call gets it.
    pub(crate) fn take_port(self: &Arc<Self>) -> Option<ConsensusPort> {
        let inbox = self
            .raft_inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        Some(ConsensusPort {
            local: self.local(),
            inbox,
            outbox: self.clone(),
            bonded: self.subscribe(),
        })
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

    /// Publishes the bonded peers to the watch. The value is read and sent
    /// under the state lock, so two publishes racing on different threads
    /// can never leave an older value last.
    fn publish(&self) {
        let state = self.state();
        let peers = state.bonds.keys().copied().collect();
        self.bonded.send_replace(Bonded {
            peers,
            left: self.has_left(),
        });
    }

    /// Keeps a completed handshake's bond unless one already exists; of two
    /// bonds to the same peer, both sides keep the one the lower id opened.
    pub(crate) fn install(self: &Arc<Self>, new: NewBond) {
        let winner = self.local().min(new.peer);
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let bond = {
            let mut state = self.state();
            let events = state.events.clone().filter(|_| !self.has_left());
            let Some(events) = events else {
                drop(state);
                link::close_with(&new.conn, close::GRACEFUL_SHUTDOWN, "group left");
                return;
            };
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
            BondCtx {
                peer: new.peer,
                generation,
                consensus: self.spec.consensus.clone(),
                metrics: self.metrics.clone(),
                raft: self.raft_sink.clone(),
                events,
            }
        };
        self.ctx
            .tasks
            .spawn(bond::run(bond, new.conn, (new.tx, new.rx), out_rx));
        self.announce(new.peer);
        self.dial_all(&new.their_bonds);
    }

    /// Tells the new bond who we are and the others that we bonded.
    fn announce(&self, peer: PeerId) {
        let own = self.ctx.discovery.own_entry();
        self.send(&peer, BondMessage::PeerEntryUpdate(own));
        self.send_to_all_but(&peer, &BondMessage::BondFormed { peer });
        self.publish();
    }

    /// Drops the bond of `generation` with `peer` if it is still the one
    /// installed.
    fn remove(&self, peer: &PeerId, generation: u64, departed: bool) {
        {
            let mut state = self.state();
            if state.bonds.get(peer).map(|b| b.generation) != Some(generation) {
                return;
            }
            state.bonds.remove(peer);
            if departed {
                let version = self.ctx.discovery.entry(peer).map_or(0, |e| e.version);
                state.departed.insert(*peer, version);
            }
        }
        self.publish();
    }

    /// Handles what bonds report, until the group was left and its last
    /// bond ended.
    async fn handle_events(self: Arc<Self>, mut events: mpsc::UnboundedReceiver<BondEvent>) {
        while let Some(event) = events.recv().await {
            match event {
                BondEvent::PeerEntry { from, entry } => {
                    self.ctx.discovery.merge_all(vec![entry], Some(from));
                }
                BondEvent::Formed { reporter, peer } => {
                    if peer != self.local() && self.is_bonded(&reporter) {
                        self.dial_all(&[peer]);
                    }
                }
                BondEvent::Ended {
                    peer,
                    generation,
                    departed,
                } => self.remove(&peer, generation, departed),
            }
        }
    }

    /// Dials each of `peers` that is not bonded, not being dialled, and not
    /// dialled too recently.
    fn dial_all(self: &Arc<Self>, peers: &[PeerId]) {
        if self.has_left() {
            return;
        }
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
                    let bonds = me.bond_peers();
                    match handshake::initiate(&me.ctx, &me.spec, &me.metrics, peer, bonds).await {
                        Ok(new) => me.install(new),
                        Err(e) => log::debug!("bond to {peer} in group {} failed: {e}", me.id()),
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
    async fn maintain(self: Arc<Self>) {
        let mut catalog = self.ctx.discovery.subscribe();
        let mut bonded = self.subscribe();
        let retry = redial_pause(&self.spec);
        let mut catalog_changed = true;
        while !self.has_left() {
            if catalog_changed {
                self.check_settings();
            }
            let members = self.members_to_dial();
            self.dial_all(&members);
            catalog_changed = false;
            tokio::select! {
                _ = catalog.changed() => catalog_changed = true,
                _ = bonded.changed() => {}
                _ = tokio::time::sleep(retry) => {}
            }
        }
    }

    /// Sends `Departure` on every bond and waits (bounded) until they close.
    pub async fn leave(&self) {
        if self.left.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut bonded = self.subscribe();
        self.publish();
        let events = {
            let mut state = self.state();
            for bond in state.bonds.values() {
                let _ = bond.out.send(Outgoing::Depart);
            }
            state.events.take()
        };
        drop(events);
        let deadline = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(deadline);
        while !self.state().bonds.is_empty() {
            tokio::select! {
                _ = &mut deadline => break,
                r = bonded.changed() => if r.is_err() { break },
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

/// The first 12 hex digits of a group id, as log lines show it.
fn short(id: &GroupId) -> String {
    id.to_hex()[..12].to_string()
}

impl Outbox for Group {
    fn send(&self, peer: &PeerId, bytes: Vec<u8>) -> bool {
        Group::send(self, peer, BondMessage::Raft(bytes))
    }
}
