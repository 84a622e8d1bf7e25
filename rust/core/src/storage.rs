//! Durable state of one node: the hard state (term, vote) and the log, behind
//! the `LogStore` trait, plus the in-memory implementation.
//!
//! The Raft core writes through the store as it goes; a store may buffer
//! writes, and `sync` makes everything written so far durable. The driver
//! calls `sync` whenever a `Ready` says `must_sync`, before it sends that
//! ready's `persisted_messages`.

use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Index, LogPosition, Term};
use crate::error::{Error, Result};
use crate::ids::PeerId;

/// What Raft must never forget across a restart besides the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<PeerId>,
}

/// Storage of one node's hard state and log (indices start at 1, no gaps).
pub trait LogStore {
    fn hard_state(&self) -> Result<HardState>;
    fn set_hard_state(&mut self, state: HardState) -> Result<()>;
    /// (term, index) of the last entry; (0, 0) when empty.
    fn last_position(&self) -> Result<LogPosition>;
    /// Term of the entry at `index`: `Some(0)` for index 0, `None` past the end.
    fn term_at(&self, index: Index) -> Result<Option<Term>>;
    /// Entries in `from..to` (clamped to the log), at most `max` of them.
    fn entries(&self, from: Index, to: Index, max: usize) -> Result<Vec<Entry>>;
    /// Appends entries that continue the log exactly at `last_position().index + 1`.
    fn append(&mut self, entries: &[Entry]) -> Result<()>;
    /// Removes the entry at `index` and everything after it.
    fn truncate_from(&mut self, index: Index) -> Result<()>;
    /// Makes everything written so far durable.
    fn sync(&mut self) -> Result<()>;
}

/// A `LogStore` that keeps everything in memory (the default store).
#[derive(Debug, Clone, Default)]
pub struct InMemoryLogStore {
    hard_state: HardState,
    log: Vec<Entry>,
}

impl InMemoryLogStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl LogStore for InMemoryLogStore {
    fn hard_state(&self) -> Result<HardState> {
        Ok(self.hard_state)
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<()> {
        self.hard_state = state;
        Ok(())
    }

    fn last_position(&self) -> Result<LogPosition> {
        Ok(self.log.last().map(Entry::position).unwrap_or_default())
    }

    fn term_at(&self, index: Index) -> Result<Option<Term>> {
        if index == 0 {
            return Ok(Some(0));
        }
        Ok(self.log.get(slot(index)).map(|e| e.term))
    }

    fn entries(&self, from: Index, to: Index, max: usize) -> Result<Vec<Entry>> {
        let start = slot(from.max(1)).min(self.log.len());
        let end = slot(to.max(1)).min(self.log.len()).max(start);
        let end = end.min(start.saturating_add(max));
        Ok(self.log[start..end].to_vec())
    }

    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        let first = self.log.len() as Index + 1;
        for (expected, entry) in (first..).zip(entries) {
            if entry.index != expected {
                return Err(Error::Storage(format!(
                    "append at index {} but the log continues at {expected}",
                    entry.index
                )));
            }
        }
        self.log.extend_from_slice(entries);
        Ok(())
    }

    fn truncate_from(&mut self, index: Index) -> Result<()> {
        self.log.truncate(slot(index.max(1)));
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
}

fn slot(index: Index) -> usize {
    usize::try_from(index - 1).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryKind;

    fn entry(term: Term, index: Index) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Marker,
        }
    }

    #[test]
    fn append_read_truncate() {
        let mut store = InMemoryLogStore::new();
        store
            .append(&[entry(1, 1), entry(1, 2), entry(2, 3)])
            .unwrap();
        assert_eq!(store.last_position().unwrap(), LogPosition::new(2, 3));
        assert_eq!(store.term_at(0).unwrap(), Some(0));
        assert_eq!(store.term_at(3).unwrap(), Some(2));
        assert_eq!(store.term_at(4).unwrap(), None);
        assert_eq!(store.entries(2, 10, 10).unwrap().len(), 2);
        assert_eq!(store.entries(1, 10, 1).unwrap().len(), 1);
        store.truncate_from(2).unwrap();
        assert_eq!(store.last_position().unwrap(), LogPosition::new(1, 1));
    }

    #[test]
    fn append_with_a_gap_is_refused() {
        let mut store = InMemoryLogStore::new();
        assert!(store.append(&[entry(1, 2)]).is_err());
    }
}
