//! Availability groups on the network layer: the registry of joined groups
//! (this module), the bond handshake, each group's bond mesh and the bonds
//! in it, and the consensus worker that runs on a mesh's consensus port and
//! drives the group's state machine through the apply port.
//!
//! Imports run one way: the registry uses the mesh and the handshake; the
//! mesh uses bonds, the handshake, the port and hints; the worker knows
//! only the port and the apply port.

mod apply;
mod bond;
mod ctx;
mod group;
pub mod handshake;
pub mod hint;
pub mod metrics;
mod port;
pub mod proof;
pub mod wire;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mosaik_core::{GroupId, PeerId};

pub use apply::{AppliedCallback, Applier, ApplyWork, Committed, Halt, OnApplied, TakenSnapshot};
pub use ctx::{GroupSpec, GroupsCtx};
pub use group::Group;
use metrics::BondMetrics;
pub use port::{Bonded, ConsensusPort, Outbox, RaftInbox};
pub use worker::{
    Answer, GroupStatus, GroupStore, Proposed, Request, Rest, WorkerHandle, WorkerSetup,
};

use crate::close;
use crate::error::NetError;
use crate::link;
use crate::metrics::Sample;

/// The refusal of a second join of one group id.
pub fn already_joined(id: &GroupId) -> NetError {
    NetError::Config(format!("group {id} is joined already"))
}

/// The groups of one `Network`.
pub struct Groups {
    ctx: Arc<GroupsCtx>,
    handshake_timeout: Duration,
    joined: Mutex<HashMap<GroupId, Arc<Group>>>,
    /// Refusals of handshakes that named no joined group.
    metrics: BondMetrics,
}

impl Groups {
    pub fn new(ctx: GroupsCtx, handshake_timeout: Duration) -> Self {
        Groups {
            ctx: Arc::new(ctx),
            handshake_timeout,
            joined: Mutex::new(HashMap::new()),
            metrics: BondMetrics::default(),
        }
    }

    fn joined(&self) -> std::sync::MutexGuard<'_, HashMap<GroupId, Arc<Group>>> {
        self.joined.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &GroupId) -> Option<Arc<Group>> {
        self.joined().get(id).cloned()
    }

    /// Joins the group of `spec`: its mesh forms in the background. A group
    /// id can be joined once at a time (`NetError::Config` otherwise).
    pub fn join(&self, spec: GroupSpec) -> Result<Arc<Group>, NetError> {
        let group = self.register(spec)?;
        group.start();
        Ok(group)
    }

    /// Joins the group of `spec` and runs consensus on it, driving
    /// `setup`'s state machine. The mesh starts only once the worker runs,
    /// so a failed start leaves nothing behind.
    pub fn join_consensus(
        &self,
        spec: GroupSpec,
        setup: WorkerSetup,
    ) -> Result<(Arc<Group>, WorkerHandle), NetError> {
        let group = self.register(spec)?;
        let port = group.take_port().expect("a fresh group has its port");
        let spec = group.spec();
        match worker::start(spec.group_id, &spec.consensus, port, setup, &self.ctx.tasks) {
            Ok(worker) => {
                group.start();
                Ok((group, worker))
            }
            Err(e) => {
                group.abandon();
                self.joined().remove(&group.id());
                self.publish();
                Err(e)
            }
        }
    }

    /// Whether a group of this id is joined now.
    pub fn is_joined(&self, id: &GroupId) -> bool {
        self.joined().contains_key(id)
    }

    /// Enters a new group in the registry and the discovery entry.
    fn register(&self, spec: GroupSpec) -> Result<Arc<Group>, NetError> {
        let group = {
            let mut joined = self.joined();
            if joined.contains_key(&spec.group_id) {
                return Err(already_joined(&spec.group_id));
            }
            let group = Group::new(spec, self.ctx.clone());
            joined.insert(group.id(), group.clone());
            group
        };
        self.publish();
        Ok(group)
    }

    /// Leaves the group: departure on every bond, then the id leaves the
    /// discovery entry.
    pub async fn leave(&self, id: &GroupId) {
        let Some(group) = self.joined().remove(id) else {
            return;
        };
        self.publish();
        group.leave().await;
    }

    /// Leaves `group` if it is still the one joined under its id (a handle
    /// of a group left earlier never leaves the group joined since).
    pub async fn leave_group(&self, group: &Arc<Group>) {
        let removed = {
            let mut joined = self.joined();
            let current = joined
                .get(&group.id())
                .is_some_and(|g| Arc::ptr_eq(g, group));
            current && joined.remove(&group.id()).is_some()
        };
        if removed {
            self.publish();
            group.leave().await;
        }
    }

    pub async fn leave_all(&self) {
        let ids: Vec<GroupId> = self.joined().keys().copied().collect();
        for id in ids {
            self.leave(&id).await;
        }
    }

    /// Announces the joined groups, each with its hint.
    fn publish(&self) {
        let mut groups: Vec<_> = self
            .joined()
            .values()
            .map(|g| (g.id(), g.own_hint()))
            .collect();
        groups.sort_by_key(|(id, _)| *id);
        self.ctx.discovery.set_groups(groups);
    }

    /// Serves an incoming bond connection from a known peer: runs the
    /// acceptor's handshake and hands the bond to its group; the close code
    /// if it refused.
    pub async fn accept(&self, conn: quinn::Connection, peer: PeerId) -> Option<u32> {
        let checked = match handshake::read_start(&conn, peer, self.handshake_timeout).await {
            Ok(start) => self.check_start(&conn, peer, &start).map(|g| (g, start)),
            Err(None) => return None,
            Err(Some(code)) => Err(code),
        };
        match checked {
            Ok((group, start)) => {
                let bonds = group.bond_peers();
                let new = handshake::answer(&self.ctx, group.spec(), conn, peer, start, bonds);
                if let Some(new) = new.await {
                    group.install(new);
                }
                None
            }
            Err(code) => {
                self.metrics.reject(code);
                link::close_with(&conn, code, metrics::reason_name(code));
                Some(code)
            }
        }
    }

    /// The acceptor's checks of a `HandshakeStart`; the close code on refusal.
    fn check_start(
        &self,
        conn: &quinn::Connection,
        peer: PeerId,
        start: &handshake::Start,
    ) -> Result<Arc<Group>, u32> {
        if start.network_id != self.ctx.network_id {
            return Err(close::DIFFERENT_NETWORK);
        }
        let group = self
            .get(&start.group_id)
            .filter(|g| !g.has_left())
            .ok_or(close::groups::GROUP_NOT_FOUND)?;
        if group.is_bonded(&peer) {
            return Err(close::groups::ALREADY_BONDED);
        }
        if !handshake::start_proves(conn, group.spec(), peer, start) {
            return Err(close::groups::INVALID_PROOF);
        }
        self.ctx.endpoint.reached(peer, conn.remote_address());
        Ok(group)
    }

    /// Counts a refusal made before the handshake reached a group.
    pub fn reject(&self, code: u32) {
        self.metrics.reject(code);
    }

    pub fn metrics(&self) -> Vec<Sample> {
        let groups: Vec<Arc<Group>> = self.joined().values().cloned().collect();
        let mut totals: HashMap<String, f64> = HashMap::new();
        for sample in groups
            .iter()
            .flat_map(|g| g.metrics())
            .chain(self.metrics.samples())
        {
            *totals.entry(sample.0).or_default() += sample.1;
        }
        totals.insert("mosaik.groups.active".into(), groups.len() as f64);
        let mut out: Vec<Sample> = totals.into_iter().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
