//! The recently appended entries kept in memory, so reads of the log's
//! tail (the leader's hot path) rarely touch the disk. Always a contiguous
//! suffix of the log, bounded in count and in payload bytes.

use std::collections::VecDeque;

use mosaik_core::{Entry, Index};

/// Bytes counted for an entry besides its command payload.
const ENTRY_OVERHEAD: usize = 32;

#[derive(Debug)]
pub struct RecentEntries {
    entries: VecDeque<Entry>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl RecentEntries {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        RecentEntries {
            entries: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    /// Index of the oldest cached entry.
    pub fn first_index(&self) -> Option<Index> {
        self.entries.front().map(|entry| entry.index)
    }

    /// Adds the entry just appended to the log, evicting the oldest beyond the bounds.
    pub fn push(&mut self, entry: &Entry) {
        self.bytes += size(entry);
        self.entries.push_back(entry.clone());
        while self.entries.len() > self.max_entries || self.bytes > self.max_bytes {
            self.pop_front();
        }
    }

    /// Clones of the cached entries in `start..end` (`start` must not be
    /// below `first_index`).
    pub fn range(&self, start: Index, end: Index) -> impl Iterator<Item = Entry> + '_ {
        let first = self.first_index().unwrap_or(start);
        let skip = start.saturating_sub(first) as usize;
        let take = end.saturating_sub(start) as usize;
        self.entries.iter().skip(skip).take(take).cloned()
    }

    /// Drops the entry at `index` and everything after it.
    pub fn truncate_from(&mut self, index: Index) {
        while self
            .entries
            .back()
            .is_some_and(|entry| entry.index >= index)
        {
            self.pop_back();
        }
    }

    /// Drops the entries up to `index`.
    pub fn drop_through(&mut self, index: Index) {
        while self.first_index().is_some_and(|first| first <= index) {
            self.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    fn pop_front(&mut self) {
        if let Some(oldest) = self.entries.pop_front() {
            self.bytes -= size(&oldest);
        }
    }

    fn pop_back(&mut self) {
        if let Some(newest) = self.entries.pop_back() {
            self.bytes -= size(&newest);
        }
    }
}

fn size(entry: &Entry) -> usize {
    ENTRY_OVERHEAD + entry.command().map_or(0, |command| command.len())
}
