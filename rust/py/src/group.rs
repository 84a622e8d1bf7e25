//! The native side of `mosaik.Group`: a group id on a network, resolved on
//! every call so that a handle never keeps a closed network's socket alive,
//! and the handles of its consensus worker.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use mosaik_core::{Command, GroupId, LeadershipPreference, RequestKey, Role, MAX_REQUEST_ID};
use mosaik_net::groups::hint::Settings;
use mosaik_net::groups::{
    already_joined, Answer, AppliedCallback, Group, GroupSpec, GroupStatus, Proposed, Request,
    Rest, WorkerHandle, WorkerSetup,
};
use mosaik_net::Network;
use mosaik_store::{SyncTimes, SYNC_BUCKETS};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::apply::PyApplier;
use crate::bridge::{pending, spawn, Completer, Pending};
use crate::consensus::{PyConsensusConfig, PyLeadershipPreference, PyLogReplaySync};
use crate::cursor::PyCursor;
use crate::errors::{net_error, Failure};
use crate::ids::{PyDigest, PyPeerId};
use crate::storage::{open_store, DiskSpec};
use crate::values::duration;
use crate::when::Until;

/// What became of proposed commands: the first `done` of them committed
/// and are applied here (or were assigned indices, for a feed) from index
/// `first` on; the others certainly never commit, or, when `unknown`, may
/// or may not.
#[pyclass(name = "Proposal", module = "mosaik._native", frozen, get_all)]
pub struct Proposal {
    first: u64,
    done: u64,
    unknown: bool,
}

#[pymethods]
impl Proposal {
    fn __repr__(&self) -> String {
        format!(
            "Proposal(first={}, done={}, unknown={})",
            self.first,
            self.done,
            if self.unknown { "True" } else { "False" }
        )
    }
}

#[pyclass(name = "NativeGroup", module = "mosaik._native", frozen)]
pub struct PyGroup {
    net: Arc<Network>,
    /// The group this handle joined (weak: a handle keeps no socket alive);
    /// a later join of the same id is another group.
    group: Weak<Group>,
    id: GroupId,
    worker: WorkerHandle,
    /// How long the disk store's syncs take (`None`: the log is in memory).
    sync_times: Option<Arc<SyncTimes>>,
}

/// Everything joining a group needs: its identity, its settings on this
/// node and the replica its machine runs in (`NativeNetwork.join_group`).
#[pyclass(name = "GroupJoin", module = "mosaik._native", frozen)]
pub struct PyGroupJoin {
    group_id: GroupId,
    secret: mosaik_core::Digest,
    consensus: PyConsensusConfig,
    handshake_timeout: Duration,
    replica: Py<PyAny>,
    preference: LeadershipPreference,
    state_sync: PyLogReplaySync,
    /// A disk store's directory and segment size; `None` keeps the log in memory.
    disk: Option<DiskSpec>,
    /// Snapshot after every multiple of this index (0: the machine takes none).
    snapshot_every: u64,
    /// The digest of the machine's signature, for the hint peers read.
    machine_signature: mosaik_core::Digest,
    /// The newest machine version this node's code applies.
    machine_version: u32,
}

#[pymethods]
impl PyGroupJoin {
    #[new]
    #[pyo3(signature = (*, group_id, secret, consensus, handshake_timeout, replica,
        preference, state_sync, disk, snapshot_every, machine_signature, machine_version))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        group_id: PyDigest,
        secret: PyDigest,
        consensus: PyConsensusConfig,
        handshake_timeout: &Bound<'_, PyAny>,
        replica: Py<PyAny>,
        preference: &Bound<'_, PyLeadershipPreference>,
        state_sync: PyLogReplaySync,
        disk: Option<DiskSpec>,
        snapshot_every: u64,
        machine_signature: PyDigest,
        machine_version: u32,
    ) -> PyResult<Self> {
        Ok(PyGroupJoin {
            group_id: group_id.0,
            secret: secret.0,
            consensus,
            handshake_timeout: duration("handshake_timeout", handshake_timeout)?,
            replica,
            preference: preference.get().0,
            state_sync,
            disk,
            snapshot_every,
            machine_signature: machine_signature.0,
            machine_version,
        })
    }
}

impl PyGroup {
    /// Joins the group, starts its worker and enters its machine in the apply pool.
    pub fn join(net: &Arc<Network>, join: &PyGroupJoin) -> PyResult<Self> {
        let spec = GroupSpec {
            group_id: join.group_id,
            secret: join.secret,
            consensus: join.consensus.0.clone(),
            handshake_timeout: join.handshake_timeout,
            settings: Settings {
                consensus: join.consensus.0.digest(),
                machine: join.machine_signature,
                sync: join.state_sync.0.signature(),
                machine_version: join.machine_version,
            },
        };
        // Before the store is opened: a second join must not find its own
        // store locked and say so instead.
        if net.groups().map_err(net_error)?.is_joined(&spec.group_id) {
            return Err(net_error(already_joined(&spec.group_id)));
        }
        let replica = Python::attach(|py| join.replica.clone_ref(py));
        let (store, sync_times) = open_store(&spec.group_id, join.disk.clone())?;
        let setup = WorkerSetup {
            preference: join.preference,
            replay: join.state_sync.0,
            store,
            snapshot_every: join.snapshot_every,
            applier: Box::new(PyApplier { replica }),
        };
        let (group, worker) = net.join_consensus(spec, setup).map_err(net_error)?;
        Ok(PyGroup {
            net: net.clone(),
            group: Arc::downgrade(&group),
            id: group.id(),
            worker,
            sync_times,
        })
    }

    /// The group while it is joined and its network open.
    fn group(&self) -> Result<Arc<Group>, Failure> {
        self.net.groups().map_err(|_| Failure::Terminated)?;
        self.group
            .upgrade()
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

/// What completes an operation with `value` once the machine applied the
/// index it waits for, or with `GroupTerminated` if the machine stopped.
fn applied_then<T>(done: Completer, value: T) -> AppliedCallback
where
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    Box::new(move |applied| {
        done.complete(if applied {
            Ok(value)
        } else {
            Err(Failure::Terminated)
        })
    })
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

    /// Each bonded peer with the newest machine version it says it runs
    /// (`None` when its entry gives no hint for this group).
    fn member_versions(&self) -> PyResult<Vec<(PyPeerId, Option<u32>)>> {
        let group = self.group().map_err(Failure::into_err)?;
        Ok(group
            .member_versions()
            .into_iter()
            .map(|(peer, version)| (PyPeerId(peer), version))
            .collect())
    }

    /// Proposes encoded commands, each with its `(request id, seq)` when
    /// `requests` gives one; resolves to a `Proposal` once settled.
    #[pyo3(signature = (commands, on_assign, requests=None))]
    fn propose(
        &self,
        commands: Vec<Vec<u8>>,
        on_assign: bool,
        requests: Option<Vec<Option<PyRequestKey>>>,
    ) -> PyResult<Pending> {
        let worker = self.worker().map_err(Failure::into_err)?;
        let commands = with_requests(commands, requests)?;
        let (operation, done) = pending();
        let on_applied = worker.on_applied.clone();
        let reply: Answer<Proposed> = Box::new(move |outcome| {
            let proposal = Proposal {
                first: outcome.first,
                done: outcome.done,
                unknown: outcome.rest == Rest::Unknown,
            };
            if on_assign || outcome.done == 0 {
                return done.complete(Ok(proposal));
            }
            // The thread that applies the last command answers the caller.
            let last = outcome.first + outcome.done - 1;
            on_applied.then(last, applied_then(done, proposal));
        });
        worker
            .requests
            .send(Request::Propose {
                commands,
                on_assign,
                reply,
            })
            .map_err(|_| Failure::Terminated.into_err())?;
        Ok(operation)
    }

    /// A confirmed read index, once applied here; `None` when no leader
    /// confirmed one in time.
    fn read(&self) -> PyResult<Pending> {
        let worker = self.worker().map_err(Failure::into_err)?;
        let (operation, done) = pending();
        let on_applied = worker.on_applied.clone();
        let reply: Answer<Option<u64>> = Box::new(move |index| match index {
            None => done.complete(Ok(None::<u64>)),
            Some(index) => on_applied.then(index, applied_then(done, Some(index))),
        });
        worker
            .requests
            .send(Request::Read { reply })
            .map_err(|_| Failure::Terminated.into_err())?;
        Ok(operation)
    }

    fn leader(&self) -> PyResult<Option<PyPeerId>> {
        Ok(self.status()?.leader.map(PyPeerId))
    }

    fn is_leader(&self) -> PyResult<bool> {
        Ok(self.status()?.role == Role::Leader)
    }

    fn committed(&self) -> PyResult<u64> {
        Ok(self.status()?.committed)
    }

    fn log_position(&self) -> PyResult<PyCursor> {
        let p = self.status()?.log_position;
        Ok(PyCursor::at(p.term, p.index))
    }

    fn online(&self) -> PyResult<bool> {
        Ok(self.status()?.online)
    }

    /// Resolves when the status satisfies `until` (see `mosaik/when.py`).
    fn wait_for(&self, until: &Until) -> PyResult<Pending> {
        let worker = self.worker().map_err(Failure::into_err)?;
        let wait = until.start(&worker);
        Ok(spawn(wait.run(worker)))
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

    /// The disk store's syncs: bucket bounds in seconds, syncs per bucket
    /// (the last above every bound), their count and total seconds; `None`
    /// for a log in memory.
    #[allow(clippy::type_complexity)]
    fn sync_times(&self) -> Option<(Vec<f64>, Vec<u64>, u64, f64)> {
        self.sync_times.as_ref().map(|times| {
            let (buckets, count, total) = times.read();
            (SYNC_BUCKETS.to_vec(), buckets, count, total)
        })
    }

    /// Departs from every bond and stops the group.
    fn leave(&self) -> Pending {
        let net = self.net.clone();
        let group = self.group.upgrade();
        spawn(async move {
            if let (Ok(groups), Some(group)) = (net.groups(), group) {
                groups.leave_group(&group).await;
            }
            Ok(())
        })
    }
}

/// A request key as Python gives it: `(request id, place in the batch)`.
type PyRequestKey = (Vec<u8>, u32);

/// The commands to propose, each with its request key when one is given.
fn with_requests(
    commands: Vec<Vec<u8>>,
    requests: Option<Vec<Option<PyRequestKey>>>,
) -> PyResult<Vec<Command>> {
    let Some(requests) = requests else {
        return Ok(commands
            .into_iter()
            .map(|c| Command::from(Bytes::from(c)))
            .collect());
    };
    if requests.len() != commands.len() {
        return Err(PyValueError::new_err(
            "requests must give one entry per command",
        ));
    }
    commands
        .into_iter()
        .zip(requests)
        .map(|(data, request)| {
            let request = match request {
                Some((id, _)) if id.len() > MAX_REQUEST_ID => {
                    return Err(PyValueError::new_err(format!(
                        "a request id is at most {MAX_REQUEST_ID} bytes, not {}",
                        id.len()
                    )))
                }
                Some((id, seq)) => Some(RequestKey {
                    id: Bytes::from(id),
                    seq,
                }),
                None => None,
            };
            Ok(Command {
                data: Bytes::from(data),
                request,
            })
        })
        .collect()
}
