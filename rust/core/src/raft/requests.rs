//! Client requests that started on this node: proposals waiting for a
//! leader's assignment, assigned proposals waiting for their commit, and
//! strong reads waiting for a confirmed read index; with their time-outs.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use super::{ClientEvent, RaftNode};
use crate::entry::{Index, Term};
use crate::error::Result;
use crate::ids::PeerId;
use crate::storage::LogStore;
use crate::wire::{Assignment, Message, RequestId};

struct Forward {
    commands: Vec<Bytes>,
    deadline: Duration,
    sent_to: Option<PeerId>,
    refused_by: Option<PeerId>,
}

struct Awaiting {
    req: RequestId,
    term: Term,
    first: Index,
    commands: Vec<Bytes>,
}

struct Read {
    deadline: Duration,
    sent_to: Option<PeerId>,
    refused_by: Option<PeerId>,
}

#[derive(Default)]
pub(super) struct Requests {
    forwards: BTreeMap<RequestId, Forward>,
    /// Keyed by (last index, request): settled in log order.
    awaiting: BTreeMap<(Index, RequestId), Awaiting>,
    reads: BTreeMap<RequestId, Read>,
    /// Something may be ready to send to the leader.
    dirty: bool,
}

impl Requests {
    pub(super) fn add_forward(&mut self, req: RequestId, commands: Vec<Bytes>, deadline: Duration) {
        let forward = Forward {
            commands,
            deadline,
            sent_to: None,
            refused_by: None,
        };
        self.forwards.insert(req, forward);
        self.dirty = true;
    }

    pub(super) fn add_read(&mut self, req: RequestId, deadline: Duration) {
        self.reads.insert(
            req,
            Read {
                deadline,
                sent_to: None,
                refused_by: None,
            },
        );
        self.dirty = true;
    }

    /// Reads go again to the new leader (they are idempotent); forwards
    /// already sent wait for their answer or time-out (they are not).
    pub(super) fn leader_changed(&mut self) {
        for read in self.reads.values_mut() {
            read.sent_to = None;
        }
        self.dirty = true;
    }
}

impl<S: LogStore> RaftNode<S> {
    /// Sends or serves every request that waits for a known leader.
    pub(super) fn dispatch_requests(&mut self) -> Result<()> {
        let Some(leader) = self.leader else {
            return Ok(());
        };
        if !std::mem::take(&mut self.requests.dirty) {
            return Ok(());
        }
        self.dispatch_forwards(leader)?;
        self.dispatch_reads(leader);
        Ok(())
    }

    fn dispatch_forwards(&mut self, leader: PeerId) -> Result<()> {
        let ready: Vec<RequestId> = self
            .requests
            .forwards
            .iter()
            .filter(|(_, f)| f.sent_to.is_none() && f.refused_by != Some(leader))
            .map(|(req, _)| *req)
            .collect();
        for req in ready {
            if leader == self.id {
                let forward = self.requests.forwards.remove(&req).expect("listed above");
                self.lead_proposal(req, forward.commands)?;
            } else {
                let forward = self.requests.forwards.get_mut(&req).expect("listed above");
                forward.sent_to = Some(leader);
                let commands = forward.commands.clone();
                self.send(leader, Message::Forward { req, commands });
            }
        }
        Ok(())
    }

    fn dispatch_reads(&mut self, leader: PeerId) {
        let ready: Vec<RequestId> = self
            .requests
            .reads
            .iter()
            .filter(|(_, r)| r.sent_to != Some(leader) && r.refused_by != Some(leader))
            .map(|(req, _)| *req)
            .collect();
        for req in ready {
            if let Some(read) = self.requests.reads.get_mut(&req) {
                read.sent_to = Some(leader);
            }
            if leader == self.id {
                self.lead_read(req);
            } else {
                self.send(leader, Message::ReadIndex { req });
            }
        }
    }

    fn lead_proposal(&mut self, req: RequestId, commands: Vec<Bytes>) -> Result<()> {
        if commands.is_empty() {
            let commit = self.commit;
            self.event(ClientEvent::Committed {
                req,
                first: commit + 1,
                last: commit,
            });
            return Ok(());
        }
        let assigned = self.lead_commands(commands.clone())?;
        self.await_commit(req, assigned, commands)
    }

    fn await_commit(&mut self, req: RequestId, a: Assignment, commands: Vec<Bytes>) -> Result<()> {
        self.event(ClientEvent::Assigned {
            req,
            term: a.term,
            first: a.first,
            last: a.last,
        });
        let awaiting = Awaiting {
            req,
            term: a.term,
            first: a.first,
            commands,
        };
        self.requests.awaiting.insert((a.last, req), awaiting);
        self.settle_committed()
    }

    pub(super) fn handle_forward_reply(
        &mut self,
        from: PeerId,
        req: RequestId,
        assigned: Option<Assignment>,
    ) -> Result<()> {
        let Some(forward) = self.requests.forwards.get_mut(&req) else {
            return Ok(());
        };
        if forward.sent_to != Some(from) {
            return Ok(());
        }
        match assigned {
            Some(assignment) => {
                let forward = self.requests.forwards.remove(&req).expect("checked above");
                self.await_commit(req, assignment, forward.commands)
            }
            None => {
                forward.sent_to = None;
                forward.refused_by = Some(from);
                self.requests.dirty = true;
                Ok(())
            }
        }
    }

    pub(super) fn handle_read_index_reply(
        &mut self,
        from: PeerId,
        req: RequestId,
        index: Option<Index>,
    ) {
        let Some(read) = self.requests.reads.get_mut(&req) else {
            return;
        };
        if read.sent_to != Some(from) {
            return;
        }
        match index {
            Some(index) => self.read_confirmed(req, index),
            None => {
                read.sent_to = None;
                read.refused_by = Some(from);
                self.requests.dirty = true;
            }
        }
    }

    pub(super) fn read_confirmed(&mut self, req: RequestId, index: Index) {
        if self.requests.reads.remove(&req).is_some() {
            self.event(ClientEvent::ReadReady { req, index });
        }
    }

    /// Reads this node led and can no longer confirm go to the next leader.
    pub(super) fn requeue_leader_reads(&mut self, origins: Vec<super::read_index::ReadOrigin>) {
        for origin in origins {
            if let super::read_index::ReadOrigin::Local(req) = origin {
                if let Some(read) = self.requests.reads.get_mut(&req) {
                    read.sent_to = None;
                }
            }
        }
        self.requests.dirty = true;
    }

    /// Settles assigned proposals the commit index now covers: committed if
    /// the log still holds them, offline as soon as another entry was
    /// committed at their first index (then none of them can ever commit).
    pub(super) fn settle_committed(&mut self) -> Result<()> {
        let mut settled = Vec::new();
        for (key, awaiting) in &self.requests.awaiting {
            let (last, _) = *key;
            if awaiting.first > self.commit {
                continue;
            }
            let first_held = self.term_at(awaiting.first)? == Some(awaiting.term);
            if !first_held {
                settled.push((*key, false));
            } else if last <= self.commit {
                settled.push((*key, self.term_at(last)? == Some(awaiting.term)));
            }
        }
        for (key, committed) in settled {
            let awaiting = self.requests.awaiting.remove(&key).expect("listed above");
            let (req, last) = (awaiting.req, key.0);
            let event = if committed {
                ClientEvent::Committed {
                    req,
                    first: awaiting.first,
                    last,
                }
            } else {
                ClientEvent::CommandOffline {
                    req,
                    commands: awaiting.commands,
                }
            };
            self.event(event);
        }
        Ok(())
    }

    /// Turns requests past their deadline into offline outcomes.
    pub(super) fn expire_requests(&mut self) {
        let now = self.now;
        let expired: Vec<RequestId> = self
            .requests
            .forwards
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(req, _)| *req)
            .collect();
        for req in expired {
            let forward = self.requests.forwards.remove(&req).expect("listed above");
            self.event(ClientEvent::CommandOffline {
                req,
                commands: forward.commands,
            });
        }
        let expired: Vec<RequestId> = self
            .requests
            .reads
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(req, _)| *req)
            .collect();
        for req in expired {
            self.requests.reads.remove(&req);
            self.event(ClientEvent::QueryOffline { req });
        }
    }
}
