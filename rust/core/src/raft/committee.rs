//! Who counts: the committee of voters, learners, and the quorums built on
//! them.
//!
//! With `min_quorum = 1` every bonded voter counts (mosaik's dynamic
//! membership). With `min_quorum = M >= 2` (consistency-first) only the
//! members of the *committee* count, and the committee never holds more
//! than `2M - 1` members, so that any two sets of `M` members share one:
//! however many nodes run, two sides of a partition can never both elect
//! or commit.
//!
//! The committee is part of the log: `EntryKind::Committee` entries, the
//! latest in a node's log (committed or not) in force, as in Raft's
//! single-server membership changes. The first leader of a group writes
//! itself and the voters that elected it; later leaders add one caught-up
//! voter at a time while there is room, once the previous change and an
//! entry of their own term are committed. Members are never removed. A
//! snapshot carries the committee in force at its index (a header in front
//! of the state machine's bytes), so compaction never loses it.
//!
//! A *learner* is a node that started with an empty store: a new node, or
//! one that lost its state (in-memory store after a restart, a wiped
//! disk). It may have acknowledged writes in an earlier life that it no
//! longer holds, so in a consistency-first group it counts toward nothing
//! (no vote, no commit, no quorum floor) until a leader has brought its log
//! up to that leader's commit index. Learners elect a group's first leader
//! (a candidate with an empty log); every committee remembers the term of
//! that first election (its *origin*), and a learner that voted in it
//! counts for every candidate and leader descending from it: that lineage
//! began after the learner's earlier life ended, so nothing it forgot can
//! be in it. An
//! availability-first group (`min_quorum = 1`) counts every bonded voter,
//! learners included: that is what keeps its commits safe while no bond is
//! lost.

use bytes::{BufMut, Bytes, BytesMut};

use super::quorum::{commit_quorum, election_won};
use super::RaftNode;
use crate::entry::{Committee, Entry, EntryKind, Index, Term};
use crate::error::Result;
use crate::ids::PeerId;
use crate::storage::LogStore;

/// Marks a snapshot whose bytes start with a committee header.
const HEADER_MAGIC: &[u8; 8] = b"mosaikC1";

/// Entries read per step when looking back for the latest committee entry.
const SCAN_CHUNK: usize = 4096;

/// The committees a node's log and snapshot hold.
#[derive(Debug, Clone, Default)]
pub(super) struct Committees {
    /// The committee in force at the log's base (from the snapshot).
    base: Committee,
    /// Committee entries of the log, by index (ascending).
    entries: Vec<(Index, Committee)>,
}

impl Committees {
    fn latest(&self) -> &Committee {
        self.entries.last().map_or(&self.base, |(_, c)| c)
    }

    /// The members in force: the latest entry's, else the base's (empty: no history).
    pub(super) fn current(&self) -> &[PeerId] {
        &self.latest().members
    }

    /// The first-election term the committee in force descends from (0: none).
    pub(super) fn origin(&self) -> Term {
        self.latest().origin
    }

    /// The committee in force once the log up to `index` is applied.
    fn at(&self, index: Index) -> &Committee {
        self.entries
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or(&self.base, |(_, c)| c)
    }

    /// Index of the latest committee entry (0: none in the log).
    pub(super) fn latest_index(&self) -> Index {
        self.entries.last().map_or(0, |(i, _)| *i)
    }

    pub(super) fn appended(&mut self, entries: &[Entry]) {
        for entry in entries {
            if let EntryKind::Committee(committee) = &entry.kind {
                self.entries.push((entry.index, committee.clone()));
            }
        }
    }

    /// The log was cut from `index` on.
    pub(super) fn truncated(&mut self, index: Index) {
        self.entries.retain(|(i, _)| *i < index);
    }

    /// The log now starts after `index`, at a snapshot holding `base`.
    pub(super) fn rebased(&mut self, index: Index, base: Committee) {
        self.entries.retain(|(i, _)| *i > index);
        self.base = base;
    }

    pub(super) fn cleared(&mut self) {
        *self = Committees::default();
    }
}

/// The snapshot bytes the store keeps: header (the committee in force at
/// the snapshot's index) and the state machine's bytes.
fn wrap(committee: &Committee, machine: &[u8]) -> Bytes {
    let members = &committee.members;
    let mut out = BytesMut::with_capacity(20 + members.len() * 32 + machine.len());
    out.put_slice(HEADER_MAGIC);
    out.put_u64_le(committee.origin);
    out.put_u32_le(members.len() as u32);
    for member in members {
        out.put_slice(&member.0);
    }
    out.put_slice(machine);
    out.freeze()
}

/// Splits kept snapshot bytes into the committee and the machine's bytes;
/// bytes without a header (written before committees existed) are all the
/// machine's.
pub(super) fn unwrap(data: &Bytes) -> (Committee, Bytes) {
    let parsed = (|| {
        let rest = data.strip_prefix(HEADER_MAGIC.as_slice())?;
        let origin = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let count = u32::from_le_bytes(rest.get(8..12)?.try_into().ok()?) as usize;
        let ids = rest.get(12..12 + count.checked_mul(32)?)?;
        let members = ids
            .chunks_exact(32)
            .map(|c| PeerId(c.try_into().expect("32 bytes")))
            .collect();
        Some((Committee { origin, members }, 20 + count * 32))
    })();
    match parsed {
        Some((committee, start)) => (committee, data.slice(start..)),
        None => (Committee::default(), data.clone()),
    }
}

impl<S: LogStore> RaftNode<S> {
    /// Whether only committee members count (consistency-first).
    pub(super) fn committee_mode(&self) -> bool {
        self.config.consensus.min_quorum >= 2
    }

    /// Most members a committee may hold: `2 * min_quorum - 1`.
    fn committee_cap(&self) -> usize {
        2 * self.config.consensus.min_quorum as usize - 1
    }

    /// Reads the committees of the log and snapshot a node resumes from.
    pub(super) fn load_committees(&mut self, snapshot_data: Option<&Bytes>) -> Result<()> {
        let base = snapshot_data.map_or_else(Committee::default, |d| unwrap(d).0);
        self.committees.rebased(self.store.base().index, base);
        let first = self.store.base().index + 1;
        let mut end = self.last.index + 1;
        while end > first {
            let from = end.saturating_sub(SCAN_CHUNK as Index).max(first);
            let chunk = self.store.entries(from, end, SCAN_CHUNK)?;
            if let Some(entry) = chunk
                .iter()
                .rev()
                .find(|e| matches!(e.kind, EntryKind::Committee(_)))
            {
                self.committees.appended(std::slice::from_ref(entry));
                break;
            }
            end = from;
        }
        Ok(())
    }

    /// Snapshot bytes to keep for the machine's `data` after applying `index`.
    pub(super) fn wrap_snapshot(&self, index: Index, data: &[u8]) -> Bytes {
        wrap(self.committees.at(index), data)
    }

    /// Whether this node answers a candidate (or leader) of committee
    /// `origin` as a learner: started empty, not caught up, and not one of
    /// the voters of that lineage's first election.
    pub(super) fn learner_for(&self, origin: Term) -> bool {
        self.learner && (origin == 0 || !self.first_election_votes.contains(&origin))
    }

    /// A learner whose log now descends from a first election it voted in
    /// is a learner no more.
    pub(super) fn recognise_lineage(&mut self) {
        let origin = self.committees.origin();
        if self.learner && origin != 0 && self.first_election_votes.contains(&origin) {
            self.learner = false;
            self.first_election_votes.clear();
        }
    }

    /// Whether this node's own vote and log count.
    pub(super) fn self_counts(&self) -> bool {
        if !self.committee_mode() {
            return !self.is_observer();
        }
        let committee = self.committees.current();
        !self.is_observer()
            && !self.learner
            && (committee.is_empty() || committee.contains(&self.id))
    }

    /// Whether `peer`'s acknowledgements count toward commits, reads and
    /// check quorum.
    pub(super) fn peer_counts(&self, peer: &PeerId) -> bool {
        let Some(p) = self.peers.get(peer) else {
            return false;
        };
        if !self.committee_mode() {
            return !p.observer;
        }
        let committee = self.committees.current();
        !p.observer && !p.learner && (committee.is_empty() || committee.contains(peer))
    }

    /// Whether `peer`'s vote counts in this node's election. In a group
    /// with no history (this candidate's log is empty) learners count too.
    pub(super) fn peer_counts_in_election(&self, peer: &PeerId) -> bool {
        if self.peer_counts(peer) {
            return true;
        }
        let bootstrap = self.last.index == 0 && self.committees.current().is_empty();
        bootstrap && self.peers.get(peer).is_some_and(|p| !p.observer)
    }

    /// Voters this node counts now: itself and the bonded peers that count.
    pub(super) fn voter_count(&self) -> usize {
        let peers = self.peers.keys().filter(|p| self.peer_counts(p)).count();
        peers + usize::from(self.self_counts())
    }

    /// Voters that must hold an entry before it commits (and acknowledge a
    /// round before a read is confirmed, and have answered lately for a
    /// leader to stay): a majority of the committee and at least
    /// `min_quorum`; without a committee, of the voters counted now.
    pub(super) fn quorum(&self) -> usize {
        let committee = self.committees.current();
        let voters = if self.committee_mode() && !committee.is_empty() {
            committee.len()
        } else {
            self.voter_count()
        };
        commit_quorum(voters, self.config.consensus.min_quorum)
    }

    /// Whether these counted votes (self included in `granted`) win.
    pub(super) fn votes_win(&self, granted: usize, abstained: usize) -> bool {
        let committee = self.committees.current();
        if self.committee_mode() && !committee.is_empty() {
            return granted + abstained >= self.quorum();
        }
        let voters = self
            .peers
            .keys()
            .filter(|p| self.peer_counts_in_election(p))
            .count()
            + 1;
        election_won(voters, granted, abstained, self.config.consensus.min_quorum)
    }

    /// Whether this node may stand for election at all.
    pub(super) fn may_stand(&self) -> bool {
        if self.is_observer() || self.replay.is_some() {
            return false;
        }
        if self.learner && self.committee_mode() {
            // Only where nothing happened yet (a first election).
            return self.last.index == 0 && self.committees.current().is_empty();
        }
        self.self_counts()
    }

    /// The first entry of a new leader's term: in a group with no committee
    /// yet (consistency-first), the committee of itself and the voters that
    /// elected it; else a marker.
    pub(super) fn term_start_entry(&self, electors: &[PeerId]) -> EntryKind {
        if !self.committee_mode() || !self.committees.current().is_empty() {
            return EntryKind::Marker;
        }
        let mut members: Vec<PeerId> = electors.iter().copied().filter(|p| *p != self.id).collect();
        members.sort();
        members.truncate(self.committee_cap() - 1);
        members.insert(0, self.id);
        EntryKind::Committee(Committee {
            origin: self.hard.term,
            members,
        })
    }

    /// A leader adds one caught-up voter to the committee when there is
    /// room, the last change is committed and so is an entry of its term.
    pub(super) fn grow_committee(&mut self, term_start: Index, caught_up: &[PeerId]) -> Result<()> {
        let committee = self.committees.current();
        if !self.committee_mode()
            || committee.is_empty()
            || committee.len() >= self.committee_cap()
            || self.committees.latest_index() > self.commit
            || self.commit < term_start
        {
            return Ok(());
        }
        let Some(joiner) = caught_up.iter().find(|p| {
            !committee.contains(p) && self.peers.get(p).is_some_and(|x| !x.observer && !x.learner)
        }) else {
            return Ok(());
        };
        let mut members = committee.to_vec();
        members.push(*joiner);
        let origin = self.committees.origin();
        self.append_own([EntryKind::Committee(Committee { origin, members })])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_header_round_trips_and_old_snapshots_read_as_they_are() {
        let committee = Committee {
            origin: 7,
            members: vec![PeerId([1; 32]), PeerId([2; 32])],
        };
        let kept = wrap(&committee, b"state");
        assert_eq!(unwrap(&kept), (committee, Bytes::from_static(b"state")));
        let old = Bytes::from_static(b"no header here");
        assert_eq!(unwrap(&old), (Committee::default(), old.clone()));
    }
}
