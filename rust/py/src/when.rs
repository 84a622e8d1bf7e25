//! Waiting on a group's status: the conditions behind `Group.when()`, as a
//! native `Until` value. The baseline of a change (`committed`, `log`,
//! `leader_changed`) is read when the wait starts, not when it is awaited.

use mosaik_core::{LogPosition, PeerId, Role};
use mosaik_net::groups::{GroupStatus, WorkerHandle};
use pyo3::prelude::*;

use crate::cursor::PyCursor;
use crate::errors::Failure;
use crate::ids::PyPeerId;

/// How a watched value must move from where it stood when the wait began.
#[pyclass(
    name = "Change",
    module = "mosaik._native",
    frozen,
    eq,
    eq_int,
    from_py_object
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    #[pyo3(name = "ADVANCED")]
    Advanced,
    #[pyo3(name = "CHANGED")]
    Changed,
    #[pyo3(name = "REVERTED")]
    Reverted,
}

impl Change {
    fn holds<T: PartialOrd>(self, now: &T, then: &T) -> bool {
        match self {
            Change::Advanced => now > then,
            Change::Changed => now != then,
            Change::Reverted => now < then,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Condition {
    LeaderElected,
    LeaderChanged,
    LeaderIs(PeerId),
    IsLeader,
    IsFollower,
    Online,
    Offline,
    Applied(u64),
    Committed(Change),
    LogReaches(u64),
    Log(Change),
}

/// A condition on a group's status to wait for (`NativeGroup.wait_for`).
#[pyclass(name = "Until", module = "mosaik._native", frozen)]
pub struct Until(Condition);

#[pymethods]
impl Until {
    /// Some leader is known; resolves to its `PeerId`.
    #[staticmethod]
    fn leader_elected() -> Self {
        Until(Condition::LeaderElected)
    }

    /// A leader other than the one known at the start; its `PeerId`.
    #[staticmethod]
    fn leader_changed() -> Self {
        Until(Condition::LeaderChanged)
    }

    /// `peer` leads; its `PeerId`.
    #[staticmethod]
    fn leader_is(peer: PyPeerId) -> Self {
        Until(Condition::LeaderIs(peer.0))
    }

    /// This node leads.
    #[staticmethod]
    fn is_leader() -> Self {
        Until(Condition::IsLeader)
    }

    /// This node does not lead.
    #[staticmethod]
    fn is_follower() -> Self {
        Until(Condition::IsFollower)
    }

    #[staticmethod]
    fn online() -> Self {
        Until(Condition::Online)
    }

    #[staticmethod]
    fn offline() -> Self {
        Until(Condition::Offline)
    }

    /// This node's machine applied `index`; the index it stands at.
    #[staticmethod]
    fn applied(index: u64) -> Self {
        Until(Condition::Applied(index))
    }

    /// The committed index moved as `change` says; the new index.
    #[staticmethod]
    fn committed(change: Change) -> Self {
        Until(Condition::Committed(change))
    }

    /// The log holds `index`; the log's last position as a `Cursor`.
    #[staticmethod]
    fn log_reaches(index: u64) -> Self {
        Until(Condition::LogReaches(index))
    }

    /// The log's last position moved as `change` says; the new `Cursor`.
    #[staticmethod]
    fn log(change: Change) -> Self {
        Until(Condition::Log(change))
    }

    fn __repr__(&self) -> String {
        format!("Until({:?})", self.0)
    }
}

/// What a satisfied condition resolves to.
#[derive(IntoPyObject)]
pub enum Answer {
    Peer(PyPeerId),
    Index(u64),
    Position(PyCursor),
    Nothing(()),
}

/// A condition with the status it started from.
pub struct Wait {
    condition: Condition,
    start: GroupStatus,
}

impl Until {
    /// The wait for this condition, starting from `worker`'s status now.
    pub fn start(&self, worker: &WorkerHandle) -> Wait {
        Wait {
            condition: self.0,
            start: worker.status.borrow().clone(),
        }
    }
}

fn position(p: LogPosition) -> Answer {
    Answer::Position(PyCursor::at(p.term, p.index))
}

impl Wait {
    /// The answer when `s` satisfies the condition.
    fn check(&self, s: &GroupStatus) -> Option<Answer> {
        let then = &self.start;
        let peer = |p: PeerId| Answer::Peer(PyPeerId(p));
        match self.condition {
            Condition::LeaderElected => s.leader.map(peer),
            Condition::LeaderChanged => s.leader.filter(|p| Some(*p) != then.leader).map(peer),
            Condition::LeaderIs(want) => (s.leader == Some(want)).then(|| peer(want)),
            Condition::IsLeader => (s.role == Role::Leader).then_some(Answer::Nothing(())),
            Condition::IsFollower => (s.role != Role::Leader).then_some(Answer::Nothing(())),
            Condition::Online => s.online.then_some(Answer::Nothing(())),
            Condition::Offline => (!s.online).then_some(Answer::Nothing(())),
            Condition::Committed(change) => change
                .holds(&s.committed, &then.committed)
                .then_some(Answer::Index(s.committed)),
            Condition::LogReaches(index) => {
                (s.log_position.index >= index).then(|| position(s.log_position))
            }
            Condition::Log(change) => change
                .holds(&s.log_position, &then.log_position)
                .then(|| position(s.log_position)),
            Condition::Applied(_) => None,
        }
    }

    /// Resolves once the condition holds.
    pub async fn run(self, mut worker: WorkerHandle) -> Result<Answer, Failure> {
        if let Condition::Applied(index) = self.condition {
            let reached = worker
                .applied
                .wait_for(|a| *a >= index)
                .await
                .map_err(|_| Failure::Terminated)?;
            return Ok(Answer::Index(*reached));
        }
        let mut answer = None;
        worker
            .status
            .wait_for(|s| {
                answer = self.check(s);
                answer.is_some()
            })
            .await
            .map_err(|_| Failure::Terminated)?;
        answer.ok_or(Failure::Terminated)
    }
}
