//! Log entries and log positions: the data every other module passes around.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::PeerId;

/// Position of an entry in the log, counted from 1 (0 means "before the log").
pub type Index = u64;
/// A Raft term: a ballot `election round << 32 | 32-bit tag`, the tag drawn
/// by the candidate's node at each start (see `raft::candidate`). Terms
/// compare by round first; 0 is the bootstrap term before any election.
pub type Term = u64;

/// (term, index) of a log entry; ordered by term first, as Raft compares logs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct LogPosition {
    pub term: Term,
    pub index: Index,
}

impl LogPosition {
    pub fn new(term: Term, index: Index) -> Self {
        LogPosition { term, index }
    }
}

/// What an entry carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    /// Written by every new leader at the start of its term; applies nothing.
    Marker,
    /// An opaque command for the state machine.
    Command(Bytes),
    /// The voters that count from here on (consistency-first groups; see
    /// `raft::committee`); applies nothing.
    Committee(Committee),
}

/// A committee of voters: its members, and the voters of the group's first
/// election with the life each voted from (a learner among them counts for
/// this lineage; see `raft::committee`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Committee {
    pub members: Vec<PeerId>,
    pub electors: Vec<(PeerId, u64)>,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub kind: EntryKind,
}

impl Entry {
    pub fn position(&self) -> LogPosition {
        LogPosition::new(self.term, self.index)
    }

    /// The command payload, or `None` for a marker or committee entry.
    pub fn command(&self) -> Option<&Bytes> {
        match &self.kind {
            EntryKind::Command(bytes) => Some(bytes),
            EntryKind::Marker | EntryKind::Committee(_) => None,
        }
    }
}
