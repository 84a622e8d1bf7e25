//! The in-memory index of the log past its base: the base position and,
//! for every entry after it, its term and byte offset in its segment.

use std::collections::VecDeque;

use mosaik_core::{Index, LogPosition, Term};

/// Term and segment offset of one entry.
#[derive(Debug, Clone, Copy)]
struct Slot {
    term: Term,
    offset: u64,
}

/// Where the entries `base.index + 1..=last` are.
#[derive(Debug, Default)]
pub struct EntryIndex {
    base: LogPosition,
    slots: VecDeque<Slot>,
}

impl EntryIndex {
    /// An empty log starting after `base`.
    pub fn new(base: LogPosition) -> Self {
        EntryIndex {
            base,
            slots: VecDeque::new(),
        }
    }

    pub fn base(&self) -> LogPosition {
        self.base
    }

    pub fn len(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Position of the last entry, or the base when there is none.
    pub fn last(&self) -> LogPosition {
        self.slots.back().map_or(self.base, |slot| {
            LogPosition::new(slot.term, self.base.index + self.len())
        })
    }

    /// The base term at the base index, the entry's term within the log, else `None`.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        self.slot(index).map(|slot| slot.term)
    }

    /// Segment byte offset of the entry at `index`, which the log must hold.
    pub fn offset(&self, index: Index) -> u64 {
        self.slot(index)
            .map(|slot| slot.offset)
            .unwrap_or_else(|| panic!("the log does not hold entry {index}"))
    }

    /// `from..to` clamped to the log, at most `max` long.
    pub fn clamp(&self, from: Index, to: Index, max: usize) -> (Index, Index) {
        let (first, next) = (self.base.index + 1, self.last().index + 1);
        let start = from.clamp(first, next);
        let end = to.clamp(first, next).max(start);
        (start, end.min(start.saturating_add(max as u64)))
    }

    /// Records the next entry.
    pub fn push(&mut self, term: Term, offset: u64) {
        self.slots.push_back(Slot { term, offset });
    }

    /// Forgets the entry at `index` and everything after it.
    pub fn truncate_from(&mut self, index: Index) {
        let keep = index.saturating_sub(self.base.index + 1);
        self.slots
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }

    /// Forgets the entries up to `base.index` and makes `base` the base.
    pub fn compact(&mut self, base: LogPosition) {
        let dropped = base.index.saturating_sub(self.base.index).min(self.len());
        self.slots.drain(..dropped as usize);
        self.base = base;
    }

    /// Forgets every entry and starts after `base`.
    pub fn reset(&mut self, base: LogPosition) {
        *self = EntryIndex::new(base);
    }

    fn slot(&self, index: Index) -> Option<&Slot> {
        let position = index.checked_sub(self.base.index + 1)?;
        self.slots.get(usize::try_from(position).ok()?)
    }
}
