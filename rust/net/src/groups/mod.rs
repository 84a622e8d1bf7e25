//! Availability groups on the network layer: the registry of joined groups,
//! the bond handshake, and the bonds that mesh every group's members.

mod bond;
mod group;
pub mod handshake;
pub mod metrics;
pub mod proof;
pub mod wire;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mosaik_core::{GroupId, NetworkId, PeerId};

pub use group::{Group, GroupSpec, RaftInbox};
use metrics::BondMetrics;
pub use worker::{
    ApplyWork, GroupStatus, GroupStore, Proposed, Request, Rest, TakenSnapshot, WorkerHandle,
    WorkerSetup,
};

use crate::discovery::Discovery;
use crate::endpoint::Endpoint;
use crate::error::NetError;
use crate::metrics::Sample;
use crate::tasks::TaskSet;

/// What every group of one network shares.
pub struct GroupsCtx {
    pub local: PeerId,
    pub network_id: NetworkId,
    pub endpoint: Arc<Endpoint>,
    pub discovery: Arc<Discovery>,
    pub tasks: Arc<TaskSet>,
    pub max_frame: usize,
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

    pub(crate) fn ctx(&self) -> &GroupsCtx {
        &self.ctx
    }

    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    fn joined(&self) -> std::sync::MutexGuard<'_, HashMap<GroupId, Arc<Group>>> {
        self.joined.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &GroupId) -> Option<Arc<Group>> {
        self.joined().get(id).cloned()
    }

    /// Joins the group of `spec`, or returns the group already joined under
    /// that id. With a `setup`, a fresh group also runs consensus.
    pub fn join(
        &self,
        spec: GroupSpec,
        setup: Option<WorkerSetup>,
    ) -> Result<Arc<Group>, NetError> {
        let (group, fresh) = {
            let mut joined = self.joined();
            match joined.get(&spec.group_id) {
                Some(g) => (g.clone(), false),
                None => {
                    let g = Group::new(spec, self.ctx.clone());
                    if let Some(setup) = setup {
                        g.start_worker(setup)?;
                    }
                    joined.insert(g.id(), g.clone());
                    (g, true)
                }
            }
        };
        if fresh {
            self.publish();
            self.ctx.tasks.spawn(group.clone().maintain());
        }
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

    pub async fn leave_all(&self) {
        let ids: Vec<GroupId> = self.joined().keys().copied().collect();
        for id in ids {
            self.leave(&id).await;
        }
    }

    fn publish(&self) {
        let mut ids: Vec<GroupId> = self.joined().keys().copied().collect();
        ids.sort();
        self.ctx.discovery.set_groups(ids);
    }

    /// Serves an incoming bond connection from a known peer.
    /// Runs the acceptor's handshake; the close code if it refused.
    pub async fn accept(&self, conn: quinn::Connection, peer: PeerId) -> Option<u32> {
        handshake::accept(self, conn, peer).await
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
