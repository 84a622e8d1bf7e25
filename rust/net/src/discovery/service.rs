//! The discovery service of one node: serves incoming syncs, dials syncs,
//! and runs the gossip loop. What a peer sends is bounded before it costs
//! anything: entries per exchange, new peers per exchange, and signature
//! checks only for entries that would change the catalog, made outside the
//! catalog's lock.

use std::collections::hash_map::Entry as Slot;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mosaik_core::{GroupId, NetworkId, PeerId};
use rand::seq::SliceRandom;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::catalog::{Catalog, Merge, Screen};
use super::entry::{GroupHint, PeerEntry, SignedEntry, MAX_ENTRY_GROUPS};
use super::wire::{self, DiscoveryMessage};
use crate::addr::EndpointAddr;
use crate::close;
use crate::dialing::MAX_DIALLED_ADDRS;
use crate::endpoint::{Endpoint, DIAL_TIMEOUT, DISCOVERY_ALPN};
use crate::error::NetError;
use crate::limits::Limits;
use crate::link::{self, LinkReceiver, LinkSender};
use crate::metrics::{Counter, Sample};

/// Pause that gathers several changes into one push round.
const PUSH_DELAY: Duration = Duration::from_millis(5);
/// Signatures one merge checks at most (new peers and updates together).
const MAX_VERIFIED_PER_EXCHANGE: usize = 1024;
/// Encoded bytes of entries one exchange may carry.
const MAX_EXCHANGE_BYTES: usize = 4 * 1024 * 1024;
/// Encoded bytes of entries all exchanges in progress may hold together.
const MAX_INFLIGHT_BYTES: usize = 64 * 1024 * 1024;

/// Settings of the discovery service.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Period of the own entry's refresh and of random syncs.
    pub gossip_interval: Duration,
    /// An entry not refreshed for this long is purged.
    pub entry_ttl: Duration,
    /// Random peers synced with every gossip interval.
    pub fanout: usize,
    /// Random peers told at once when this node learns something new.
    pub push_fanout: usize,
    /// Bound on waiting for the remote's message.
    pub reply_timeout: Duration,
    pub max_frame: usize,
    pub bootstrap: Vec<EndpointAddr>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            gossip_interval: Duration::from_secs(3),
            entry_ttl: Duration::from_secs(30),
            fanout: 3,
            push_fanout: 8,
            reply_timeout: Duration::from_secs(2),
            max_frame: link::DEFAULT_MAX_FRAME,
            bootstrap: Vec::new(),
        }
    }
}

#[derive(Default, Debug)]
pub struct DiscoveryMetrics {
    pub discovered: Counter,
    pub departed: Counter,
    pub syncs: Counter,
    pub rejected: Counter,
    /// Well-formed entries left out by a cap (catalog full, too many new
    /// peers in one exchange, too many entries in one exchange).
    pub dropped: Counter,
}

struct State {
    catalog: Catalog,
    own: SignedEntry,
}

pub struct Discovery {
    endpoint: Arc<Endpoint>,
    network_id: NetworkId,
    config: DiscoveryConfig,
    /// New peers one exchange may add.
    max_new_per_exchange: usize,
    /// Entries one exchange may carry (a whole catalog and the sender's own).
    max_entries_per_exchange: usize,
    /// Bytes of entries held by exchanges in progress.
    inflight_bytes: AtomicUsize,
    state: Mutex<State>,
    metrics: DiscoveryMetrics,
    push: Notify,
    changes: watch::Sender<u64>,
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Discovery {
    pub fn new(
        endpoint: Arc<Endpoint>,
        network_id: NetworkId,
        config: DiscoveryConfig,
        limits: &Limits,
    ) -> Arc<Self> {
        let own = PeerEntry {
            peer_id: endpoint.peer_id(),
            network_id,
            addrs: endpoint.advertised().to_vec(),
            groups: Vec::new(),
            hints: Vec::new(),
            version: unix_millis(),
        }
        .sign(endpoint.identity());
        let state = State {
            catalog: Catalog::new(endpoint.peer_id(), network_id, limits.max_peers),
            own,
        };
        Arc::new(Discovery {
            endpoint,
            network_id,
            config,
            max_new_per_exchange: limits.max_new_peers_per_exchange,
            max_entries_per_exchange: limits.max_peers + 1,
            inflight_bytes: AtomicUsize::new(0),
            state: Mutex::new(state),
            metrics: DiscoveryMetrics::default(),
            push: Notify::new(),
            changes: watch::channel(0).0,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-signs the own entry with a higher version, changing its groups
    /// and their hints when given.
    fn republish(&self, groups: Option<Vec<(GroupId, GroupHint)>>) {
        let mut state = self.state();
        let mut entry = state.own.entry.clone();
        entry.version = (entry.version + 1).max(unix_millis());
        if let Some(groups) = groups {
            (entry.groups, entry.hints) = groups.into_iter().unzip();
        }
        state.own = entry.sign(self.endpoint.identity());
    }

    /// Announces the groups this node has joined, each with its hint (the
    /// first `MAX_ENTRY_GROUPS` of them: peers refuse longer entries).
    pub fn set_groups(&self, mut groups: Vec<(GroupId, GroupHint)>) {
        if groups.len() > MAX_ENTRY_GROUPS {
            log::warn!(
                "{} groups joined: only the first {MAX_ENTRY_GROUPS} are announced to peers",
                groups.len()
            );
            groups.truncate(MAX_ENTRY_GROUPS);
        }
        self.republish(Some(groups));
        self.push.notify_one();
    }

    pub fn knows(&self, peer: &PeerId) -> bool {
        self.state().catalog.contains(peer)
    }

    pub fn entry(&self, peer: &PeerId) -> Option<PeerEntry> {
        self.state().catalog.get(peer).cloned()
    }

    pub fn entries(&self) -> Vec<PeerEntry> {
        self.state().catalog.entries().cloned().collect()
    }

    /// The peers whose entry lists `group`, with their entry versions.
    pub fn members_of(&self, group: &GroupId) -> Vec<(PeerId, u64)> {
        self.state()
            .catalog
            .entries()
            .filter(|e| e.groups.contains(group))
            .map(|e| (e.peer_id, e.version))
            .collect()
    }

    /// The groups and hints of every peer whose entry does not list
    /// `group`, of the hints whose tag is `tag_of` their author.
    pub fn hints_tagged(
        &self,
        group: &GroupId,
        tag_of: impl Fn(&PeerId) -> [u8; 16],
    ) -> Vec<(PeerId, GroupId, GroupHint)> {
        let state = self.state();
        let mut found = Vec::new();
        for entry in state.catalog.entries() {
            if entry.hints.is_empty() || entry.groups.contains(group) {
                continue;
            }
            let tag = tag_of(&entry.peer_id);
            let tagged = entry
                .groups
                .iter()
                .zip(&entry.hints)
                .filter(|(_, h)| h.tag == tag);
            found.extend(tagged.map(|(g, h)| (entry.peer_id, *g, *h)));
        }
        found
    }

    /// The hint `peer`'s entry gives for `group`, if it lists the group.
    pub fn hint_of(&self, peer: &PeerId, group: &GroupId) -> Option<GroupHint> {
        self.state().catalog.get(peer)?.hint_of(group).copied()
    }

    /// Ticks once for every change of the catalog's peers or contents.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The own entry first, then every known one.
    fn all_signed(&self) -> Vec<SignedEntry> {
        let state = self.state();
        std::iter::once(state.own.clone())
            .chain(state.catalog.signed_entries().cloned())
            .collect()
    }

    /// This node's current signed entry.
    pub fn own_entry(&self) -> SignedEntry {
        self.state().own.clone()
    }

    /// Merges entries learned from one source (a sync, a bond): the newest
    /// copy of each peer only, the cheap checks under the lock, at most
    /// `max_new_peers_per_exchange` new peers, and signatures checked
    /// outside the lock, at most `MAX_VERIFIED_PER_EXCHANGE`. Honest nodes
    /// relay only entries they verified, so the first bad signature ends
    /// the merge and drops every relayed entry (the outcome never depends
    /// on the order of checks). `sender`: the authenticated peer the
    /// entries came from; its own entry is first-hand and kept if valid.
    pub fn merge_all(&self, entries: Vec<SignedEntry>, sender: Option<PeerId>) {
        let mut newest: HashMap<PeerId, SignedEntry> = HashMap::new();
        for entry in entries {
            match newest.entry(entry.entry.peer_id) {
                Slot::Occupied(o) if o.get().entry.version >= entry.entry.version => {}
                Slot::Occupied(mut o) => {
                    o.insert(entry);
                }
                Slot::Vacant(v) => {
                    v.insert(entry);
                }
            }
        }
        let mut new_left = self.max_new_per_exchange;
        let candidates: Vec<SignedEntry> = {
            let state = self.state();
            newest
                .into_values()
                .filter(|entry| match state.catalog.screen(entry) {
                    Screen::Reject => {
                        self.metrics.rejected.inc();
                        false
                    }
                    Screen::Ignore => false,
                    Screen::Candidate { new: false } => true,
                    Screen::Candidate { new: true } if new_left > 0 => {
                        new_left -= 1;
                        true
                    }
                    Screen::Candidate { new: true } => {
                        self.metrics.dropped.inc();
                        false
                    }
                })
                .collect()
        };
        if candidates.len() > MAX_VERIFIED_PER_EXCHANGE {
            self.metrics
                .dropped
                .add((candidates.len() - MAX_VERIFIED_PER_EXCHANGE) as u64);
        }
        // The sender's own entry stands on its own; the entries it relays
        // are taken all together or, after a forgery, not at all.
        let (own, relayed): (Vec<SignedEntry>, Vec<SignedEntry>) = candidates
            .into_iter()
            .take(MAX_VERIFIED_PER_EXCHANGE)
            .partition(|e| sender == Some(e.entry.peer_id));
        let mut verified: Vec<SignedEntry> = own.into_iter().filter(|e| e.verify()).collect();
        let own_count = verified.len();
        for entry in relayed {
            if !entry.verify() {
                self.metrics.rejected.inc();
                verified.truncate(own_count);
                break;
            }
            verified.push(entry);
        }
        if verified.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut news = false;
        {
            let mut state = self.state();
            for entry in verified {
                let first_hand = sender == Some(entry.entry.peer_id);
                match state.catalog.insert_verified(entry, now, first_hand) {
                    Merge::New => {
                        self.metrics.discovered.inc();
                        news = true;
                    }
                    Merge::Changed => news = true,
                    Merge::Rejected => self.metrics.rejected.inc(),
                    Merge::Full => self.metrics.dropped.inc(),
                    Merge::Refreshed | Merge::Ignored => {}
                }
            }
        }
        if news {
            self.changes.send_modify(|n| *n += 1);
            self.push.notify_one();
        }
    }

    fn purge(&self) {
        let gone = self
            .state()
            .catalog
            .purge(Instant::now(), self.config.entry_ttl);
        if !gone.is_empty() {
            self.metrics.departed.add(gone.len() as u64);
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Exchanges catalogs with `addr` now.
    pub async fn sync_with(&self, addr: &EndpointAddr) -> Result<(), NetError> {
        let conn = self
            .endpoint
            .connect(addr.peer_id, &addr.addrs, DISCOVERY_ALPN)
            .await?;
        let result = self.dial_exchange(&conn, addr.peer_id).await;
        if result.is_ok() {
            self.metrics.syncs.inc();
            link::close_with(&conn, close::SUCCESS, "synced");
        }
        result
    }

    async fn dial_exchange(&self, conn: &quinn::Connection, peer: PeerId) -> Result<(), NetError> {
        let (mut tx, mut rx) = link::open(conn, wire::MAX_FRAME).await?;
        let hello = send_entries(&mut tx, self.all_signed(), |entries| {
            DiscoveryMessage::Hello {
                network_id: self.network_id,
                entries,
            }
        });
        tokio::time::timeout(self.config.reply_timeout, hello)
            .await
            .map_err(|_| NetError::Timeout("sending the hello".into()))??;
        let mut budget = self.budget();
        let reply = tokio::time::timeout(self.config.reply_timeout, async {
            match rx.recv().await? {
                DiscoveryMessage::Catalog { entries } => {
                    let first = self.keep_well_formed(entries, &mut budget);
                    self.receive_more(&mut rx, first, &mut budget).await
                }
                _ => {
                    link::close_with(conn, close::PROTOCOL_VIOLATION, "expected a catalog");
                    Err(NetError::Protocol(
                        "peer did not answer with a catalog".into(),
                    ))
                }
            }
        })
        .await
        .map_err(|_| NetError::Timeout("waiting for the peer's catalog".into()))??;
        self.merge_all(reply, Some(peer));
        Ok(())
    }

    fn budget(&self) -> Budget<'_> {
        Budget {
            inflight: &self.inflight_bytes,
            held: 0,
        }
    }

    /// The well-formed entries of one frame that fit the exchange's caps;
    /// `None` in place of the list once a cap is reached.
    fn keep_well_formed(&self, entries: Vec<SignedEntry>, budget: &mut Budget<'_>) -> Kept {
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries {
            if !entry.well_formed() {
                self.metrics.rejected.inc();
            } else if kept.len() < self.max_entries_per_exchange
                && budget.take(entry.encoded_size_bound())
            {
                kept.push(entry);
            } else {
                self.metrics.dropped.inc();
                return Kept {
                    entries: kept,
                    full: true,
                };
            }
        }
        Kept {
            entries: kept,
            full: false,
        }
    }

    /// Reads the `More` frames that follow a first frame, until the remote
    /// finishes its side or a cap of the exchange is reached (the rest is
    /// left unread). Every frame is screened as it arrives.
    async fn receive_more(
        &self,
        rx: &mut LinkReceiver,
        first: Kept,
        budget: &mut Budget<'_>,
    ) -> Result<Vec<SignedEntry>, NetError> {
        let Kept {
            mut entries,
            mut full,
        } = first;
        while !full {
            let Some(msg) = rx.recv_or_end::<DiscoveryMessage>().await? else {
                break;
            };
            let DiscoveryMessage::More { entries: more } = msg else {
                return Err(rx.violation(close::PROTOCOL_VIOLATION, "expected more entries".into()));
            };
            let kept = self.keep_well_formed(more, budget);
            full = kept.full || entries.len() + kept.entries.len() >= self.max_entries_per_exchange;
            entries.extend(kept.entries);
        }
        Ok(entries)
    }

    /// Serves one incoming discovery connection from `peer`; returns the
    /// close code it refused with, if it did.
    pub async fn serve(&self, conn: quinn::Connection, peer: PeerId) -> Option<u32> {
        if let Err((code, e)) = self.serve_exchange(&conn, peer).await {
            log::debug!(
                "discovery sync from {:?} failed: {e}",
                conn.remote_address()
            );
            return code;
        }
        self.metrics.syncs.inc();
        let _ = tokio::time::timeout(self.config.reply_timeout, conn.closed()).await;
        None
    }

    /// Reads a hello (its first entry must be the sender's own, checked
    /// before anything else is read), merges it and answers with the
    /// catalog; each direction within the reply timeout.
    async fn serve_exchange(
        &self,
        conn: &quinn::Connection,
        peer: PeerId,
    ) -> Result<(), (Option<u32>, NetError)> {
        let refuse = |code: u32, why: &str| {
            link::close_with(conn, code, why);
            (Some(code), NetError::Protocol(why.to_string()))
        };
        let mut budget = self.budget();
        let inbound = tokio::time::timeout(self.config.reply_timeout, async {
            let (tx, mut rx) = link::accept(conn, wire::MAX_FRAME)
                .await
                .map_err(|e| (None, e))?;
            let hello = rx.recv::<DiscoveryMessage>().await.map_err(|e| (None, e))?;
            let DiscoveryMessage::Hello {
                network_id,
                entries,
            } = hello
            else {
                return Err(refuse(close::PROTOCOL_VIOLATION, "expected hello"));
            };
            if network_id != self.network_id {
                self.metrics.rejected.add(entries.len() as u64);
                return Err(refuse(close::DIFFERENT_NETWORK, "different network"));
            }
            // The catalog goes only to a peer that says who it is: its own
            // signed entry first.
            let introduced = entries
                .first()
                .is_some_and(|e| e.entry.peer_id == peer && e.well_formed() && e.verify());
            if !introduced {
                self.metrics.rejected.add(entries.len() as u64);
                return Err(refuse(
                    close::PROTOCOL_VIOLATION,
                    "hello without the sender's own entry",
                ));
            }
            self.endpoint.reached(peer, conn.remote_address());
            let first = self.keep_well_formed(entries, &mut budget);
            let entries = self
                .receive_more(&mut rx, first, &mut budget)
                .await
                .map_err(|e| (None, e))?;
            Ok((tx, entries))
        })
        .await;
        let (mut tx, entries) = match inbound {
            Ok(result) => result?,
            Err(_) => return Err(refuse(close::PROTOCOL_VIOLATION, "no hello in time")),
        };
        self.merge_all(entries, Some(peer));
        drop(budget);
        let reply = send_entries(&mut tx, self.all_signed(), |entries| {
            DiscoveryMessage::Catalog { entries }
        });
        match tokio::time::timeout(self.config.reply_timeout, reply).await {
            Ok(sent) => sent.map_err(|e| (None, e)),
            Err(_) => Err(refuse(
                close::PROTOCOL_VIOLATION,
                "catalog not read in time",
            )),
        }
    }

    /// The gossip loop; runs until its task is aborted. Refreshes and purges
    /// never wait for a round of syncs; at most one round runs at a time.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.gossip_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round: JoinSet<()> = JoinSet::new();
        let mut push_waiting = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.republish(None);
                    self.purge();
                    if round.is_empty() {
                        self.start_round(&mut round, self.periodic_targets());
                    }
                }
                _ = self.push.notified() => push_waiting = true,
                Some(_) = round.join_next(), if !round.is_empty() => {}
            }
            if push_waiting && round.is_empty() {
                push_waiting = false;
                tokio::time::sleep(PUSH_DELAY).await;
                self.start_round(&mut round, self.random_targets(self.config.push_fanout));
            }
        }
    }

    fn known_targets(&self) -> Vec<EndpointAddr> {
        self.entries()
            .into_iter()
            .map(|e| EndpointAddr {
                peer_id: e.peer_id,
                addrs: e.addrs,
            })
            .collect()
    }

    /// Up to `n` random known peers, those met first-hand first (fake
    /// identities heard of second-hand cannot crowd them out).
    fn random_targets(&self, n: usize) -> Vec<EndpointAddr> {
        let mut known = self.known_targets();
        known.shuffle(&mut rand::thread_rng());
        {
            let state = self.state();
            known.sort_by_key(|t| !state.catalog.is_first_hand(&t.peer_id));
        }
        known.truncate(n);
        known
    }

    /// A few random known peers plus every bootstrap peer not yet known.
    fn periodic_targets(&self) -> Vec<EndpointAddr> {
        let mut known = self.random_targets(self.config.fanout);
        let unknown_bootstrap = self
            .config
            .bootstrap
            .iter()
            .filter(|b| !self.knows(&b.peer_id) && b.peer_id != self.endpoint.peer_id());
        known.extend(unknown_bootstrap.cloned());
        known
    }

    /// One bounded sync per target, run concurrently in `round`.
    fn start_round(self: &Arc<Self>, round: &mut JoinSet<()>, targets: Vec<EndpointAddr>) {
        let bound = self.config.reply_timeout + DIAL_TIMEOUT * MAX_DIALLED_ADDRS as u32;
        for target in targets {
            let me = self.clone();
            round.spawn(async move {
                match tokio::time::timeout(bound, me.sync_with(&target)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log::debug!("discovery sync with {} failed: {e}", target.peer_id),
                    Err(_) => log::debug!("discovery sync with {} timed out", target.peer_id),
                }
            });
        }
    }

    pub fn metrics(&self) -> Vec<Sample> {
        let m = &self.metrics;
        vec![
            (
                "mosaik.discovery.catalog.size".into(),
                self.state().catalog.len() as f64,
            ),
            (
                "mosaik.discovery.peers.discovered".into(),
                m.discovered.get() as f64,
            ),
            (
                "mosaik.discovery.peers.departed".into(),
                m.departed.get() as f64,
            ),
            (
                "mosaik.discovery.catalog.syncs".into(),
                m.syncs.get() as f64,
            ),
            (
                "mosaik.discovery.entries.rejected".into(),
                m.rejected.get() as f64,
            ),
            (
                "mosaik.discovery.entries.dropped".into(),
                m.dropped.get() as f64,
            ),
        ]
    }
}

/// Sends `entries` as a first frame made by `first`, then `More` frames, and
/// finishes this side of the stream.
async fn send_entries(
    tx: &mut LinkSender,
    entries: Vec<SignedEntry>,
    first: impl FnOnce(Vec<SignedEntry>) -> DiscoveryMessage,
) -> Result<(), NetError> {
    let mut chunks = wire::chunks(entries).into_iter();
    tx.send(&first(chunks.next().unwrap_or_default())).await?;
    for entries in chunks {
        tx.send(&DiscoveryMessage::More { entries }).await?;
    }
    tx.finish();
    Ok(())
}

/// One frame's entries after screening; `full` once a cap of the exchange
/// is reached.
struct Kept {
    entries: Vec<SignedEntry>,
    full: bool,
}

/// The bytes of entries one exchange holds, counted against its own cap
/// and against the cap of all exchanges together; given back when dropped.
struct Budget<'a> {
    inflight: &'a AtomicUsize,
    held: usize,
}

impl Budget<'_> {
    fn take(&mut self, bytes: usize) -> bool {
        if self.held + bytes > MAX_EXCHANGE_BYTES {
            return false;
        }
        let before = self.inflight.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > MAX_INFLIGHT_BYTES {
            self.inflight.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        self.held += bytes;
        true
    }
}

impl Drop for Budget<'_> {
    fn drop(&mut self) {
        self.inflight.fetch_sub(self.held, Ordering::Relaxed);
    }
}
