//! A test-only `LogStore` that models a disk: writes go to a volatile copy
//! the core reads from; `sync` makes them durable; a crash throws away
//! everything written after the last sync (hard state, appends,
//! truncations, `clear`).
//!
//! Snapshot calls are durable on return (the trait's promise):
//! `save_snapshot` behaves like `DiskLogStore`'s, which syncs everything
//! first ("the snapshot must never be ahead of the durable log"), so it
//! makes the whole volatile state durable; `install_snapshot` is applied to
//! the durable copy on its own, so unsynced appends and truncations before
//! it are still lost by a crash. `clear` is an ordinary buffered write.

use mosaik_core::{
    Entry, HardState, InMemoryLogStore, Index, LogPosition, LogStore, Snapshot, Term,
};

type Result<T> = mosaik_core::Result<T>;

#[derive(Debug, Clone, Default)]
pub struct SimStore {
    live: InMemoryLogStore,
    durable: InMemoryLogStore,
    /// Writes since the last sync (what a crash would lose).
    dirty: bool,
}

impl SimStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The store as a restarted process finds it: whatever was durable.
    /// Returns whether the crash lost unsynced writes.
    pub fn crash(&mut self) -> bool {
        let lost = self.dirty;
        self.live = self.durable.clone();
        self.dirty = false;
        lost
    }
}

impl LogStore for SimStore {
    fn hard_state(&self) -> Result<HardState> {
        self.live.hard_state()
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<()> {
        self.dirty = true;
        self.live.set_hard_state(state)
    }

    fn base(&self) -> LogPosition {
        self.live.base()
    }

    fn last_position(&self) -> Result<LogPosition> {
        self.live.last_position()
    }

    fn term_at(&self, index: Index) -> Result<Option<Term>> {
        self.live.term_at(index)
    }

    fn entries(&self, from: Index, to: Index, max: usize) -> Result<Vec<Entry>> {
        self.live.entries(from, to, max)
    }

    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.dirty = true;
        self.live.append(entries)
    }

    fn truncate_from(&mut self, index: Index) -> Result<()> {
        self.dirty = true;
        self.live.truncate_from(index)
    }

    fn sync(&mut self) -> Result<()> {
        self.live.sync()?;
        self.durable = self.live.clone();
        self.dirty = false;
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<Snapshot>> {
        self.live.snapshot()
    }

    fn save_snapshot(&mut self, snapshot: Snapshot, compact_to: Index) -> Result<()> {
        self.live.save_snapshot(snapshot, compact_to)?;
        self.sync()
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        self.live.install_snapshot(snapshot.clone())?;
        self.durable.install_snapshot(snapshot)
    }

    fn clear(&mut self) -> Result<()> {
        self.dirty = true;
        self.live.clear()
    }
}
