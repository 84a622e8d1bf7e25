//! The native side of `mosaik.Group`: a group id on a network, resolved on
//! every call so that a handle never keeps a closed network's socket alive,
//! and the handles of its consensus worker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mosaik_core::{GroupId, LeadershipPreference, Role};
use mosaik_net::groups::{Group, GroupSpec, GroupStatus, Request, Rest, WorkerHandle, WorkerSetup};
use mosaik_net::Network;
use pyo3::prelude::*;
use tokio::sync::{oneshot, watch};

use crate::apply::PyApplier;
use crate::bridge::{spawn, Pending};
use crate::consensus::{PyConsensusConfig, PyLogReplaySync};
use crate::errors::{config_error, net_error, Failure};
use crate::ids::{PyDigest, PyPeerId};
use crate::storage::{open_store, DiskSpec};

#[pyclass(name = "NativeGroup", module = "mosaik._native", frozen)]
pub struct PyGroup {
    net: Arc<Network>,
    id: GroupId,
    worker: WorkerHandle,
}

/// What `join` needs besides the group's identity.
pub struct JoinArgs {
    pub group_id: PyDigest,
    pub secret: PyDigest,
    pub consensus: PyConsensusConfig,
    pub handshake_timeout: Duration,
    pub replica: Py<PyAny>,
    pub preference: (String, u32),
    pub sync: PyLogReplaySync,
    /// A disk store's directory and segment size; `None` keeps the log in memory.
    pub disk: Option<DiskSpec>,
    /// Snapshot after every multiple of this index (0: the machine takes none).
    pub snapshot_every: u64,
}

fn preference((kind, factor): (String, u32)) -> PyResult<LeadershipPreference> {
    match kind.as_str() {
        "normal" => Ok(LeadershipPreference::Normal),
        "observer" => Ok(LeadershipPreference::Observer),
        "reluctant" => Ok(LeadershipPreference::Reluctant(factor.max(1))),
        other => Err(config_error(format!(
            "unknown leadership preference {other:?}"
        ))),
    }
}

impl PyGroup {
    /// Joins the group and starts its worker and apply thread.
    pub fn join(net: &Arc<Network>, args: JoinArgs) -> PyResult<Self> {
        let spec = GroupSpec {
            group_id: args.group_id.0,
            secret: args.secret.0,
            consensus: args.consensus.0,
            handshake_timeout: args.handshake_timeout,
        };
        let label = spec.group_id.to_hex();
        let setup = WorkerSetup {
            preference: preference(args.preference)?,
            replay: args.sync.0,
            store: open_store(&label, args.disk)?,
            snapshot_every: args.snapshot_every,
            applier: Box::new(PyApplier {
                replica: args.replica,
            }),
        };
        let (group, worker) = net.join_consensus(spec, setup).map_err(net_error)?;
        Ok(PyGroup {
            net: net.clone(),
            id: group.id(),
            worker,
        })
    }

    fn group(&self) -> Result<Arc<Group>, Failure> {
        self.net
            .groups()
            .ok()
            .and_then(|g| g.get(&self.id))
            .filter(|g| !g.has_left())
            .ok_or(Failure::Terminated)
    }

    /// The worker's handles while the group is joined.
    fn worker(&self) -> Result<WorkerHandle, Failure> {
        self.group()?;
        Ok(self.worker.clone())
    }

    fn status(&self) -> PyResult<GroupStatus> {
        let worker = self.worker().map_err(Failure::into_err)?;
        let status = worker.status.borrow().clone();
        Ok(status)
    }
}

/// Waits until this node has applied `index`.
async fn applied(mut applied: watch::Receiver<u64>, index: u64) -> Result<(), Failure> {
    applied
        .wait_for(|a| *a >= index)
        .await
        .map(|_| ())
        .map_err(|_| Failure::Terminated)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Candidate => "candidate",
        _ => "follower",
    }
}

#[pymethods]
impl PyGroup {
    #[getter]
    fn id(&self) -> PyDigest {
        PyDigest(self.id)
    }

    #[getter]
    fn active(&self) -> bool {
        self.group().is_ok()
    }

    /// Peers bonded with this node in this group.
    fn bonds(&self) -> PyResult<Vec<PyPeerId>> {
        let group = self.group().map_err(Failure::into_err)?;
        Ok(group.bond_peers().into_iter().map(PyPeerId).collect())
    }

    /// Proposes encoded commands; resolves to `(first, done, unknown)`
    /// once settled: the first `done` commands committed and are applied
    /// here (or were assigned indices, with `on_assign`) from index `first`
    /// on; the others certainly never commit, or (`unknown`) may or may not.
    fn propose(&self, commands: Vec<Vec<u8>>, on_assign: bool) -> PyResult<Pending> {
        let worker = self.worker().map_err(Failure::into_err)?;
        let (reply, answer) = oneshot::channel();
        let commands = commands.into_iter().map(Bytes::from).collect();
        worker
            .requests
            .send(Request::Propose {
                commands,
                on_assign,
                reply,
            })
            .map_err(|_| Failure::Terminated.into_err())?;
        Ok(spawn(async move {
            let Ok(outcome) = answer.await else {
                return Err(Failure::Terminated);
            };
            if !on_assign && outcome.done > 0 {
                applied(worker.applied, outcome.first + outcome.done - 1).await?;
            }
            Ok((outcome.first, outcome.done, outcome.rest == Rest::Unknown))
        }))
    }

    /// A confirmed read index, once applied here; `None` when no leader
    /// confirmed one in time.
    fn read(&self) -> PyResult<Pending> {
        let worker = self.worker().map_err(Failure::into_err)?;
        let (reply, answer) = oneshot::channel();
        worker
            .requests
            .send(Request::Read { reply })
            .map_err(|_| Failure::Terminated.into_err())?;
        Ok(spawn(async move {
            let Ok(index) = answer.await else {
                return Err(Failure::Terminated);
            };
            let Some(index) = index else { return Ok(None) };
            applied(worker.applied, index).await?;
            Ok(Some(index))
        }))
    }

    fn leader(&self) -> PyResult<Option<PyPeerId>> {
        Ok(self.status()?.leader.map(PyPeerId))
    }

    fn role(&self) -> PyResult<&'static str> {
        Ok(role_name(self.status()?.role))
    }

    fn committed(&self) -> PyResult<u64> {
        Ok(self.status()?.committed)
    }

    fn log_position(&self) -> PyResult<(u64, u64)> {
        let p = self.status()?.log_position;
        Ok((p.term, p.index))
    }

    fn online(&self) -> PyResult<bool> {
        Ok(self.status()?.online)
    }

    /// Resolves when the status satisfies `what` (see `mosaik/when.py`).
    #[pyo3(signature = (what, value = None, peer = None))]
    fn wait_for(
        &self,
        what: &str,
        value: Option<u64>,
        peer: Option<PyPeerId>,
    ) -> PyResult<Pending> {
        let worker = self.worker().map_err(Failure::into_err)?;
        let condition = crate::when::Condition::parse(what, value, peer.map(|p| p.0), &worker)?;
        Ok(spawn(crate::when::wait(worker, condition)))
    }

    fn metrics(&self, py: Python<'_>) -> PyResult<HashMap<String, f64>> {
        let group = self.group().map_err(Failure::into_err)?;
        let mut out: HashMap<String, f64> = py.detach(|| group.metrics()).into_iter().collect();
        let s = self.worker.status.borrow();
        out.insert("mosaik.groups.raft.elections".into(), s.elections as f64);
        out.insert(
            "mosaik.groups.raft.leader.changes".into(),
            s.leader_changes as f64,
        );
        out.insert("mosaik.groups.raft.committed".into(), s.committed as f64);
        out.insert(
            "mosaik.groups.raft.committee.voters".into(),
            s.voters as f64,
        );
        Ok(out)
    }

    /// Departs from every bond and stops the group.
    fn leave(&self) -> Pending {
        let net = self.net.clone();
        let id = self.id;
        spawn(async move {
            if let Ok(groups) = net.groups() {
                groups.leave(&id).await;
            }
            Ok(())
        })
    }
}
