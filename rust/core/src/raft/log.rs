//! Log operations of a node on top of its `LogStore`: appending, the
//! consistency check, conflict truncation (with rebuild and commit-regression
//! reports) and the up-to-date comparison of elections.

use super::RaftNode;
use crate::entry::{Command, Entry, EntryKind, Index, LogPosition, Term};
use crate::error::Result;
use crate::storage::LogStore;

impl<S: LogStore> RaftNode<S> {
    pub(super) fn term_at(&self, index: Index) -> Result<Option<Term>> {
        self.store.term_at(index)
    }

    /// Whether our log holds `position` exactly.
    pub(super) fn log_has(&self, position: LogPosition) -> Result<bool> {
        Ok(position.index <= self.last.index
            && self.term_at(position.index)? == Some(position.term))
    }

    /// Appends new entries of the current term; returns the index range.
    pub(super) fn append_own(
        &mut self,
        kinds: impl IntoIterator<Item = EntryKind>,
    ) -> Result<(Index, Index)> {
        let term = self.hard.term;
        let first = self.last.index + 1;
        let entries: Vec<Entry> = kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Entry {
                term,
                index: first + i as Index,
                kind,
            })
            .collect();
        self.write_entries(&entries)?;
        Ok((first, self.last.index))
    }

    pub(super) fn append_commands(&mut self, commands: Vec<Command>) -> Result<(Index, Index)> {
        self.append_own(commands.into_iter().map(Command::into_kind))
    }

    /// Merges a leader's entries that follow a matching position: entries we
    /// hold with the same term are kept, the first conflict cuts our log.
    pub(super) fn merge_entries(&mut self, entries: Vec<Entry>) -> Result<()> {
        let mut fresh = entries.len();
        for (i, entry) in entries.iter().enumerate() {
            match self.term_at(entry.index)? {
                Some(term) if term == entry.term => continue,
                Some(_) => self.truncate_log(entry.index)?,
                None => {}
            }
            fresh = i;
            break;
        }
        let continues = entries.get(fresh).map(|e| e.index) == Some(self.last.index + 1);
        if continues {
            self.write_entries(&entries[fresh..])?;
        }
        Ok(())
    }

    pub(super) fn write_entries(&mut self, entries: &[Entry]) -> Result<()> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        self.store.append(entries)?;
        self.unsynced.log_written(entries[0].index);
        self.committees.appended(entries);
        self.recognise_lineage()?;
        self.last = last.position();
        Ok(())
    }

    /// Cuts the log from `index`; a cut into the applied prefix asks for a
    /// rebuild (or a restore of the snapshot, when one is kept), a cut into
    /// the committed prefix is a commit regression. A
    /// cut into the snapshot drops the whole log and the snapshot: the node
    /// then catches up from its peers like a new one.
    pub(super) fn truncate_log(&mut self, index: Index) -> Result<()> {
        let index = if index <= self.snapshot_index {
            self.store.clear()?;
            self.committees.cleared();
            self.snapshot_index = 0;
            1
        } else {
            self.store.truncate_from(index)?;
            self.committees.truncated(index);
            index
        };
        self.last = self.store.last_position()?;
        self.unsynced.log_written(index);
        self.out.truncated_from = Some(self.out.truncated_from.map_or(index, |i| i.min(index)));
        if index <= self.applied {
            let snapshot = self.store.snapshot()?;
            self.restart_machine(snapshot);
        }
        if index <= self.commit {
            let from = self
                .out
                .commit_regressed
                .map_or(self.commit, |(from, _)| from);
            self.commit = index - 1;
            self.out.commit_regressed = Some((from, self.commit));
        }
        Ok(())
    }

    /// First index of the run of entries sharing the term at `index`
    /// (where a leader should retry after a term conflict there).
    pub(super) fn conflict_hint(&self, index: Index) -> Result<Index> {
        let term = self.term_at(index)?;
        let first = self.store.base().index + 1;
        let mut hint = index;
        while hint > first && self.term_at(hint - 1)? == term {
            hint -= 1;
        }
        Ok(hint)
    }

    /// Raises the commit index and settles requests that it covers.
    pub(super) fn advance_commit(&mut self, commit: Index) -> Result<()> {
        if commit <= self.commit {
            return Ok(());
        }
        self.commit = commit;
        self.settle_committed()
    }
}
