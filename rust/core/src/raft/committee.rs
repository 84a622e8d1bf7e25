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
//! itself, the voters that elected it and the other bonded peers that
//! answered it as voters; later leaders add one caught-up
//! voter at a time while there is room, once the previous change and an
//! entry of their own term are committed. Members are never removed. A
//! snapshot carries the committee in force at its index (a header in front
//! of the state machine's bytes), so compaction never loses it.
//!
//! A *learner* is a node that started with an empty store: a new node, or
//! one that lost its state (in-memory store after a restart, a wiped
//! disk). It may have acknowledged writes in an earlier life that it no
//! longer holds, so in a consistency-first group it counts toward nothing
//! (no vote, no commit, no quorum floor) until a leader admits it: the
//! leader committed an entry of its own term, the learner holds it, and a
//! quorum acknowledged a heartbeat round started after that
//! (`AppendEntries::admit`). Learners elect a group's first leader (a
//! candidate with an empty log); the first committee lists the voters of
//! that election with the life (`HardState::life`) each voted from, and a
//! learner listed there counts for that lineage: it began after the
//! learner's earlier life ended, so nothing it forgot can be in it.
//!
//! Until the first committee entry is committed, a commit also needs a
//! majority of every bonded voter (members or not): a second first
//! election, among nodes that never received that entry, would need a
//! majority of them as well, and the two majorities share a node that
//! holds the entry and refuses an empty candidate. An
//! availability-first group (`min_quorum = 1`) counts every bonded voter,
//! learners included: that is what keeps its commits safe while no bond is
//! lost.

use bytes::{BufMut, Bytes, BytesMut};

use super::quorum::{commit_quorum, election_won};
use super::RaftNode;
use crate::entry::{Committee, Entry, EntryKind, Index};
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

    /// The voters of the first election the committee in force descends from.
    fn electors(&self) -> &[(PeerId, u64)] {
        &self.latest().electors
    }

    /// The committee in force once the log up to `index` is applied.
    pub(super) fn at(&self, index: Index) -> &Committee {
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
    let (members, electors) = (&committee.members, &committee.electors);
    let mut out = BytesMut::with_capacity(16 + members.len() * 32 + electors.len() * 40);
    out.put_slice(HEADER_MAGIC);
    out.put_u32_le(members.len() as u32);
    for member in members {
        out.put_slice(&member.0);
    }
    out.put_u32_le(electors.len() as u32);
    for (elector, life) in electors {
        out.put_slice(&elector.0);
        out.put_u64_le(*life);
    }
    out.put_slice(machine);
    out.freeze()
}

/// Splits kept snapshot bytes into the committee and the machine's bytes;
/// bytes without a header (written before committees existed) are all the
/// machine's.
pub(super) fn unwrap(data: &Bytes) -> (Committee, Bytes) {
    let parsed = (|| {
        let mut at = HEADER_MAGIC.len();
        data.starts_with(HEADER_MAGIC).then_some(())?;
        let mut take = |len: usize| {
            let bytes = data.get(at..at.checked_add(len)?)?;
            at += len;
            Some(bytes)
        };
        let count = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let mut members = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            members.push(PeerId(take(32)?.try_into().ok()?));
        }
        let count = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let mut electors = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let id = PeerId(take(32)?.try_into().ok()?);
            electors.push((id, u64::from_le_bytes(take(8)?.try_into().ok()?)));
        }
        Some((Committee { members, electors }, at))
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

    /// A learner whose log now descends from a first election it voted in
    /// (in this very life) is a learner no more.
    pub(super) fn recognise_lineage(&mut self) -> Result<()> {
        let me = (self.id, self.hard.life);
        if self.hard.learner && self.committees.electors().contains(&me) {
            self.stop_learning()?;
        }
        Ok(())
    }

    /// Whether this node's own vote and log count.
    pub(super) fn self_counts(&self) -> bool {
        if !self.committee_mode() {
            return !self.is_observer();
        }
        let committee = self.committees.current();
        !self.is_observer()
            && !self.hard.learner
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

    /// Whether `peer`'s vote, given in `life`, counts in this node's
    /// election. In a group with no history (this candidate's log is empty)
    /// learners count too, and so do learners that voted in that life in
    /// the first election of this candidate's lineage.
    pub(super) fn peer_counts_in_election(&self, peer: &PeerId, life: u64) -> bool {
        if self.peer_counts(peer) {
            return true;
        }
        let Some(p) = self.peers.get(peer) else {
            return false;
        };
        let bootstrap = self.last.index == 0 && self.committees.current().is_empty();
        let elector = self.committees.electors().contains(&(*peer, life));
        !p.observer && (bootstrap || (elector && self.committees.current().contains(peer)))
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
        let bootstrap = self.last.index == 0;
        let voters = self
            .peers
            .iter()
            .filter(|(p, x)| self.peer_counts(p) || (bootstrap && !x.observer))
            .count()
            + 1;
        election_won(voters, granted, abstained, self.config.consensus.min_quorum)
    }

    /// Whether this node may stand for election at all.
    pub(super) fn may_stand(&self) -> bool {
        if self.is_observer() || self.replay.is_some() {
            return false;
        }
        if self.hard.learner && self.committee_mode() {
            // Only where nothing happened yet (a first election).
            return self.last.index == 0 && self.committees.current().is_empty();
        }
        self.self_counts()
    }

    /// The first entry of a new leader's term: in a group with no committee
    /// yet (consistency-first), the committee of itself, the voters that
    /// elected it and the other bonded voters (up to `2M - 1`); else a marker.
    pub(super) fn term_start_entry(&self, electors: &[(PeerId, u64)]) -> EntryKind {
        if !self.committee_mode() || !self.committees.current().is_empty() {
            return EntryKind::Marker;
        }
        // Itself, the voters that elected it, then the other bonded peers
        // that answered as voters (they count once caught up): a committee
        // of only `M` members would tolerate no member down.
        let mut voted: Vec<PeerId> = electors
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| *p != self.id)
            .collect();
        voted.sort();
        let others = self
            .peers
            .iter()
            .filter(|(p, x)| x.known && !x.observer && !voted.contains(p))
            .map(|(p, _)| *p);
        let mut members: Vec<PeerId> = std::iter::once(self.id)
            .chain(voted.clone())
            .chain(others)
            .collect();
        members.truncate(self.committee_cap());
        let mut electors = electors.to_vec();
        electors.sort();
        EntryKind::Committee(Committee { members, electors })
    }

    /// Whether the committee in force is still the first one, not yet
    /// known committed: commits then also need a majority of every bonded
    /// voter (see the module docs).
    pub(super) fn first_committee_open(&self) -> bool {
        self.committee_mode() && self.committees.latest_index() == 1 && self.commit < 1
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
        let electors = self.committees.electors().to_vec();
        self.append_own([EntryKind::Committee(Committee { members, electors })])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_header_round_trips_and_old_snapshots_read_as_they_are() {
        let committee = Committee {
            members: vec![PeerId([1; 32]), PeerId([2; 32])],
            electors: vec![(PeerId([2; 32]), 7)],
        };
        let kept = wrap(&committee, b"state");
        assert_eq!(unwrap(&kept), (committee, Bytes::from_static(b"state")));
        let old = Bytes::from_static(b"no header here");
        assert_eq!(unwrap(&old), (Committee::default(), old.clone()));
    }
}
