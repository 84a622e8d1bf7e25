//! Waiting on a group's status: the conditions behind `Group.when()`.
//! The baseline of "changed"-style conditions is read when the call is made.

use mosaik_core::{LogPosition, PeerId, Role};
use mosaik_net::groups::{GroupStatus, WorkerHandle};
use pyo3::prelude::*;

use crate::errors::{config_error, Failure};
use crate::ids::PyPeerId;

pub enum Condition {
    LeaderElected,
    LeaderChanged(Option<PeerId>),
    LeaderIs(PeerId),
    IsLeader,
    IsFollower,
    Online,
    Offline,
    AppliedReaches(u64),
    Committed(Compare, u64),
    LogReaches(u64),
    Log(Compare, LogPosition),
}

#[derive(Clone, Copy)]
pub enum Compare {
    Advanced,
    Changed,
    Reverted,
}

impl Compare {
    fn holds<T: PartialOrd>(self, now: &T, then: &T) -> bool {
        match self {
            Compare::Advanced => now > then,
            Compare::Changed => now != then,
            Compare::Reverted => now < then,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "advanced" => Some(Compare::Advanced),
            "changed" => Some(Compare::Changed),
            "reverted" => Some(Compare::Reverted),
            _ => None,
        }
    }
}

/// What a satisfied condition resolves to.
#[derive(IntoPyObject)]
pub enum Answer {
    Peer(PyPeerId),
    Index(u64),
    Position((u64, u64)),
    Nothing(()),
}

impl Condition {
    pub fn parse(
        what: &str,
        value: Option<u64>,
        peer: Option<PeerId>,
        worker: &WorkerHandle,
    ) -> PyResult<Self> {
        let now = worker.status.borrow().clone();
        let need_value = || value.ok_or_else(|| config_error(format!("{what} needs a value")));
        let condition = match what {
            "leader_elected" => Condition::LeaderElected,
            "leader_changed" => Condition::LeaderChanged(now.leader),
            "leader_is" => {
                Condition::LeaderIs(peer.ok_or_else(|| config_error("leader_is needs a peer id"))?)
            }
            "is_leader" => Condition::IsLeader,
            "is_follower" => Condition::IsFollower,
            "online" => Condition::Online,
            "offline" => Condition::Offline,
            "committed_reaches" => Condition::AppliedReaches(need_value()?),
            "log_reaches" => Condition::LogReaches(need_value()?),
            other => match other.split_once('_') {
                Some(("committed", cmp)) if Compare::parse(cmp).is_some() => Condition::Committed(
                    Compare::parse(cmp).unwrap_or(Compare::Changed),
                    now.committed,
                ),
                Some(("log", cmp)) if Compare::parse(cmp).is_some() => Condition::Log(
                    Compare::parse(cmp).unwrap_or(Compare::Changed),
                    now.log_position,
                ),
                _ => return Err(config_error(format!("unknown condition {other:?}"))),
            },
        };
        Ok(condition)
    }

    /// The answer when `status` satisfies the condition.
    fn check(&self, s: &GroupStatus) -> Option<Answer> {
        let position = |p: LogPosition| Answer::Position((p.term, p.index));
        match self {
            Condition::LeaderElected => s.leader.map(|p| Answer::Peer(PyPeerId(p))),
            Condition::LeaderChanged(then) => s
                .leader
                .filter(|p| Some(*p) != *then)
                .map(|p| Answer::Peer(PyPeerId(p))),
            Condition::LeaderIs(peer) => {
                (s.leader == Some(*peer)).then_some(Answer::Peer(PyPeerId(*peer)))
            }
            Condition::IsLeader => (s.role == Role::Leader).then_some(Answer::Nothing(())),
            Condition::IsFollower => (s.role != Role::Leader).then_some(Answer::Nothing(())),
            Condition::Online => s.online.then_some(Answer::Nothing(())),
            Condition::Offline => (!s.online).then_some(Answer::Nothing(())),
            Condition::Committed(cmp, then) => cmp
                .holds(&s.committed, then)
                .then_some(Answer::Index(s.committed)),
            Condition::LogReaches(index) => {
                (s.log_position.index >= *index).then(|| position(s.log_position))
            }
            Condition::Log(cmp, then) => cmp
                .holds(&s.log_position, then)
                .then(|| position(s.log_position)),
            Condition::AppliedReaches(_) => None,
        }
    }
}

/// Resolves once `condition` holds.
pub async fn wait(mut worker: WorkerHandle, condition: Condition) -> Result<Answer, Failure> {
    if let Condition::AppliedReaches(index) = condition {
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
            answer = condition.check(s);
            answer.is_some()
        })
        .await
        .map_err(|_| Failure::Terminated)?;
    answer.ok_or(Failure::Terminated)
}
