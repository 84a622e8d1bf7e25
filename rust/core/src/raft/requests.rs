//! Client requests that started on this node: proposals waiting for a
//! leader's assignment, assigned proposals waiting for their commit, and
//! strong reads waiting for a confirmed read index; with their time-outs.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ClientEvent, RaftNode};
use crate::entry::{Command, Index, Term};
use crate::error::Result;
use crate::ids::PeerId;
use crate::storage::LogStore;
use crate::wire::{Ask, Assignment, ForwardOutcome, Message, RequestId};

struct Forward {
    commands: Vec<Command>,
    deadline: Duration,
    /// The leader the commands went to and no answer came from yet: from
    /// then on the outcome is uncertain until it answers.
    sent_to: Option<PeerId>,
    refused_by: Option<PeerId>,
}

struct Awaiting {
    req: RequestId,
    term: Term,
    first: Index,
    commands: Vec<Command>,
    /// Past it, a batch not yet settled is reported unknown.
    deadline: Duration,
}

/// What became of the entry at one index of an assigned batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The batch's own entry is committed there.
    Committed,
    /// Another entry is committed there: the batch's never will be.
    Lost,
    /// Committed, but the log no longer says whose entry (compacted).
    Unknown,
    /// Not committed yet.
    Open,
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
    pub(super) fn add_forward(
        &mut self,
        req: RequestId,
        commands: Vec<Command>,
        deadline: Duration,
    ) {
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
        let term = self.hard.term;
        for req in ready {
            if leader == self.id {
                let forward = self.requests.forwards.remove(&req).expect("listed above");
                self.lead_proposal(req, forward.commands)?;
            } else {
                let forward = self.requests.forwards.get_mut(&req).expect("listed above");
                forward.sent_to = Some(leader);
                let commands = forward.commands.clone();
                let ask = self.ask(req);
                self.send(
                    leader,
                    Message::Forward {
                        ask,
                        term,
                        commands,
                    },
                );
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
                let ask = self.ask(req);
                self.send(leader, Message::ReadIndex { ask });
            }
        }
    }

    fn lead_proposal(&mut self, req: RequestId, commands: Vec<Command>) -> Result<()> {
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

    fn await_commit(
        &mut self,
        req: RequestId,
        a: Assignment,
        commands: Vec<Command>,
    ) -> Result<()> {
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
            deadline: self.now + self.config.consensus.forward_timeout,
        };
        self.requests.awaiting.insert((a.last, req), awaiting);
        self.settle_committed()
    }

    pub(super) fn handle_forward_reply(
        &mut self,
        from: PeerId,
        ask: Ask,
        outcome: ForwardOutcome,
    ) -> Result<()> {
        if ask.incarnation != self.incarnation {
            return Ok(());
        }
        let req = ask.req;
        let Some(forward) = self.requests.forwards.get_mut(&req) else {
            return Ok(());
        };
        if forward.sent_to != Some(from) {
            return Ok(());
        }
        match outcome {
            ForwardOutcome::Assigned(assignment) => {
                let forward = self.requests.forwards.remove(&req).expect("checked above");
                self.await_commit(req, assignment, forward.commands)
            }
            ForwardOutcome::Refused => {
                forward.sent_to = None;
                forward.refused_by = Some(from);
                self.requests.dirty = true;
                Ok(())
            }
            ForwardOutcome::Unknown => {
                let forward = self.requests.forwards.remove(&req).expect("checked above");
                self.event(ClientEvent::CommandUnknown {
                    req,
                    committed: None,
                    commands: forward.commands,
                });
                Ok(())
            }
        }
    }

    pub(super) fn handle_read_index_reply(&mut self, from: PeerId, ask: Ask, index: Option<Index>) {
        if ask.incarnation != self.incarnation {
            return;
        }
        let req = ask.req;
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

    /// Settles assigned proposals entry by entry as the commit index
    /// covers them: a batch whose entries all committed is committed; one
    /// where another entry committed at one of its indices is offline from
    /// there on (the entries before it committed); where the log was
    /// compacted past the batch and cannot tell, the rest is unknown.
    pub(super) fn settle_committed(&mut self) -> Result<()> {
        let mut settled = Vec::new();
        for (key, awaiting) in &self.requests.awaiting {
            if awaiting.first > self.commit {
                continue;
            }
            let (last, _) = *key;
            let (committed, fate) = self.batch_fates(awaiting.term, awaiting.first, last)?;
            if fate != Fate::Open {
                settled.push((*key, committed, fate));
            }
        }
        for (key, committed, fate) in settled {
            let awaiting = self.requests.awaiting.remove(&key).expect("listed above");
            self.settle(awaiting, key.0, committed, fate);
        }
        Ok(())
    }

    /// How many of the batch's entries `first..=last` of `term` committed,
    /// and what became of the next one (`Committed` when all did).
    fn batch_fates(&self, term: Term, first: Index, last: Index) -> Result<(u64, Fate)> {
        let base = self.store.base();
        let mut committed = 0;
        for index in first..=last {
            let fate = if index > self.commit {
                Fate::Open
            } else if index > base.index {
                match self.term_at(index)? {
                    Some(t) if t == term => Fate::Committed,
                    _ => Fate::Lost,
                }
            } else if base.term == term {
                // The committed log holds this term's entry at the base, so
                // (log matching) it holds every entry the term's leader
                // wrote before it: ours.
                Fate::Committed
            } else if base.term < term {
                // Terms never fall along a log: an entry of `term` cannot
                // sit at or before a base of an older term.
                Fate::Lost
            } else {
                Fate::Unknown
            };
            if fate != Fate::Committed {
                return Ok((committed, fate));
            }
            committed += 1;
        }
        Ok((committed, Fate::Committed))
    }

    /// Reports a batch whose fate is known (or whose deadline passed: `Open`).
    fn settle(&mut self, awaiting: Awaiting, last: Index, committed: u64, fate: Fate) {
        let Awaiting {
            req,
            first,
            mut commands,
            ..
        } = awaiting;
        if fate == Fate::Committed {
            self.event(ClientEvent::Committed { req, first, last });
            return;
        }
        let done = usize::try_from(committed).unwrap_or(usize::MAX);
        let rest = commands.split_off(done.min(commands.len()));
        let committed = (committed > 0).then(|| (first, first + committed - 1));
        let event = if fate == Fate::Lost {
            ClientEvent::CommandOffline {
                req,
                committed,
                commands: rest,
            }
        } else {
            ClientEvent::CommandUnknown {
                req,
                committed,
                commands: rest,
            }
        };
        self.event(event);
    }

    /// Turns requests past their deadline into outcomes: offline when the
    /// commands never reached a leader (or every leader refused them),
    /// unknown when a leader may have taken them.
    pub(super) fn expire_requests(&mut self) -> Result<()> {
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
            let (committed, commands) = (None, forward.commands);
            let event = if forward.sent_to.is_some() {
                ClientEvent::CommandUnknown {
                    req,
                    committed,
                    commands,
                }
            } else {
                ClientEvent::CommandOffline {
                    req,
                    committed,
                    commands,
                }
            };
            self.event(event);
        }
        let overdue: Vec<(Index, RequestId)> = self
            .requests
            .awaiting
            .iter()
            .filter(|(_, a)| a.deadline <= now)
            .map(|(key, _)| *key)
            .collect();
        for key in overdue {
            let awaiting = &self.requests.awaiting[&key];
            let (committed, fate) = self.batch_fates(awaiting.term, awaiting.first, key.0)?;
            let awaiting = self.requests.awaiting.remove(&key).expect("listed above");
            self.settle(awaiting, key.0, committed, fate);
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
        Ok(())
    }
}
