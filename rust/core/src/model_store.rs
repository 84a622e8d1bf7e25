//! `ModelLogStore`: the plainest `LogStore` there is, one `Entry` per
//! element of a deque. It is the reference that the compact
//! `InMemoryLogStore` and the `DiskLogStore` are checked against; it is
//! built for tests only (this crate's, and others' with the `model-store`
//! feature).

use std::collections::VecDeque;

use crate::entry::{Entry, Index, LogPosition, Term};
use crate::error::{Error, Result};
use crate::storage::{check_compaction, check_continues, HardState, LogStore, Snapshot};

/// The reference store: every entry as it was appended.
#[derive(Debug, Clone, Default)]
pub struct ModelLogStore {
    hard_state: HardState,
    base: LogPosition,
    log: VecDeque<Entry>,
    snapshot: Option<Snapshot>,
}

impl ModelLogStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Slot of `index` in `log`, if the log holds it.
    fn slot(&self, index: Index) -> Option<usize> {
        let offset = index.checked_sub(self.base.index + 1)?;
        usize::try_from(offset).ok().filter(|s| *s < self.log.len())
    }

    /// Slot where `index` is or would go, clamped to the log.
    fn clamped_slot(&self, index: Index) -> usize {
        let offset = index.saturating_sub(self.base.index + 1);
        usize::try_from(offset).map_or(self.log.len(), |s| s.min(self.log.len()))
    }

    fn drop_through(&mut self, index: Index) {
        let term = self.term_at(index).ok().flatten();
        let count = self.clamped_slot(index + 1);
        self.log.drain(..count);
        self.base = LogPosition::new(term.unwrap_or(self.base.term), index.max(self.base.index));
    }
}

impl LogStore for ModelLogStore {
    fn hard_state(&self) -> Result<HardState> {
        Ok(self.hard_state)
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<()> {
        self.hard_state = state;
        Ok(())
    }

    fn base(&self) -> LogPosition {
        self.base
    }

    fn last_position(&self) -> Result<LogPosition> {
        Ok(self.log.back().map_or(self.base, Entry::position))
    }

    fn term_at(&self, index: Index) -> Result<Option<Term>> {
        if index == self.base.index {
            return Ok(Some(self.base.term));
        }
        Ok(self.slot(index).map(|s| self.log[s].term))
    }

    fn entries(&self, from: Index, to: Index, max: usize) -> Result<Vec<Entry>> {
        let start = self.clamped_slot(from);
        let end = self.clamped_slot(to).max(start);
        let end = end.min(start.saturating_add(max));
        Ok(self.log.range(start..end).cloned().collect())
    }

    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        check_continues(self.last_position()?.index, entries)?;
        self.log.extend(entries.iter().cloned());
        Ok(())
    }

    fn truncate_from(&mut self, index: Index) -> Result<()> {
        if index <= self.base.index {
            return Err(Error::Storage(format!(
                "cannot cut the log at {index}: it is compacted up to {}",
                self.base.index
            )));
        }
        let keep = self.clamped_slot(index);
        self.log.truncate(keep);
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<Snapshot>> {
        Ok(self.snapshot.clone())
    }

    fn save_snapshot(&mut self, snapshot: Snapshot, compact_to: Index) -> Result<()> {
        check_compaction(self, &snapshot, compact_to)?;
        self.drop_through(compact_to);
        self.snapshot = Some(snapshot);
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let position = snapshot.meta.position;
        if self.term_at(position.index)? == Some(position.term) {
            self.drop_through(position.index);
        } else {
            self.log.clear();
        }
        self.base = position;
        self.snapshot = Some(snapshot);
        Ok(())
    }

    fn clear(&mut self) -> Result<()> {
        self.log.clear();
        self.base = LogPosition::default();
        self.snapshot = None;
        Ok(())
    }
}
