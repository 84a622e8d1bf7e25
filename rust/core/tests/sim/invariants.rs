//! Invariants checked after every step: log matching and one leader per
//! term (all modes); leader completeness, state machine safety, no lost acknowledged
//! command, linearizable strong reads, no command committed twice and no
//! command reported `CommandOffline` ever committed (full-safety modes); and
//! the final state after convergence (no command applied twice in any mode).
//! The harness adds one more: a silenced leader its peers stay bonded to is
//! replaced within `FAILOVER_BOUND` under client load.

use std::collections::{BTreeMap, HashMap};

use mosaik_core::{EntryKind, Index, LogStore, Role, Status, Term};

use crate::harness::{value_of, Mode, SimNode};

#[derive(Debug, Clone, Copy)]
struct Committed {
    term: Term,
    value: u64,
    /// Lowest term any node was in when it reported this entry committed.
    commit_term: Term,
}

pub struct Checker {
    mode: Mode,
    /// term -> the node that led it.
    leaders: HashMap<Term, usize>,
    /// (index, term) -> (value, term of the previous entry): log matching.
    seen: HashMap<(Index, Term), (u64, Term)>,
    checked_last: BTreeMap<usize, Index>,
    /// The committed log as the nodes reported it: (term, value) by index - 1.
    committed: Vec<Committed>,
    verified_commit: BTreeMap<usize, Index>,
    acked_max: Index,
    read_max: Index,
    /// Command value -> index it was committed at (markers excluded).
    committed_at: HashMap<u64, Index>,
    /// Command values some node reported `CommandOffline` -> that node.
    offline: HashMap<u64, usize>,
    pub reads_checked: u64,
    pub acks_checked: u64,
}

fn value(kind: &EntryKind) -> u64 {
    match kind {
        EntryKind::Command(bytes) | EntryKind::Request(_, bytes) => value_of(bytes),
        EntryKind::Marker | EntryKind::Committee(_) => 0,
    }
}

impl Checker {
    pub fn new(mode: Mode) -> Self {
        Checker {
            mode,
            leaders: HashMap::new(),
            seen: HashMap::new(),
            checked_last: BTreeMap::new(),
            committed: Vec::new(),
            verified_commit: BTreeMap::new(),
            acked_max: 0,
            read_max: 0,
            committed_at: HashMap::new(),
            offline: HashMap::new(),
            reads_checked: 0,
            acks_checked: 0,
        }
    }

    /// Log matching: one (index, term) always names the same entry after the same previous term.
    pub fn on_log_change(
        &mut self,
        node: usize,
        store: &impl LogStore,
        truncated_from: Option<Index>,
    ) {
        let last = store.last_position().expect("store").index;
        let checked = self.checked_last.get(&node).copied().unwrap_or(0);
        let from = truncated_from.map_or(checked, |t| checked.min(t - 1)) + 1;
        let from = from.max(store.base().index + 1);
        self.checked_last.insert(node, last);
        if from > last {
            return;
        }
        let mut prev_term = store.term_at(from - 1).expect("store").expect("present");
        for entry in store.entries(from, last + 1, usize::MAX).expect("store") {
            let fact = (value(&entry.kind), prev_term);
            let known = *self.seen.entry((entry.index, entry.term)).or_insert(fact);
            assert_eq!(
                known, fact,
                "log matching violated at node {node}, index {} term {}",
                entry.index, entry.term
            );
            prev_term = entry.term;
        }
    }

    pub fn on_status(
        &mut self,
        node: usize,
        status: &Status,
        newly_elected: bool,
        store: &impl LogStore,
        regressed: Option<(Index, Index)>,
    ) {
        if status.role == Role::Leader {
            let leader = *self.leaders.entry(status.term).or_insert(node);
            assert_eq!(leader, node, "two leaders in term {}", status.term);
        }
        if !self.mode.full_safety() {
            return;
        }
        assert!(
            regressed.is_none(),
            "node {node}: committed entries were cut: {regressed:?}"
        );
        if newly_elected {
            self.check_leader_completeness(node, status.term, store);
        }
        self.check_commit(node, status.committed, status.term, store);
    }

    /// A new leader of `term` holds every entry committed in an earlier term.
    fn check_leader_completeness(&self, node: usize, term: Term, store: &impl LogStore) {
        let Some(slot) = self
            .committed
            .iter()
            .rposition(|fact| fact.commit_term < term)
        else {
            return;
        };
        let index = slot as Index + 1;
        if index <= store.base().index {
            return;
        }
        let held = store.term_at(index).expect("store");
        assert_eq!(
            held,
            Some(self.committed[slot].term),
            "leader completeness: node {node} leads term {term} without committed index {index}"
        );
    }

    /// State machine safety: a node's committed prefix equals every other's.
    /// `term` is the reporter's current term: an upper bound of the term the
    /// entry was committed in (exact when the committing leader reports).
    fn check_commit(&mut self, node: usize, commit: Index, term: Term, store: &impl LogStore) {
        let verified = self.verified_commit.get(&node).copied().unwrap_or(0);
        if commit <= verified {
            return;
        }
        for entry in store
            .entries(verified + 1, commit + 1, usize::MAX)
            .expect("store")
        {
            let fact = Committed {
                term: entry.term,
                value: value(&entry.kind),
                commit_term: term,
            };
            let slot = entry.index as usize - 1;
            if let Some(known) = self.committed.get_mut(slot) {
                let same = (known.term, known.value) == (fact.term, fact.value);
                assert!(
                    same,
                    "node {node} committed another entry at {}: {fact:?} vs {known:?}",
                    entry.index
                );
                known.commit_term = known.commit_term.min(term);
            } else {
                assert_eq!(slot, self.committed.len(), "committed log has a gap");
                self.note_committed(node, entry.index, fact.value);
                self.committed.push(fact);
            }
        }
        self.verified_commit.insert(node, commit);
    }

    /// A command is committed at most once, and never after (or before) it
    /// was reported `CommandOffline`.
    fn note_committed(&mut self, node: usize, index: Index, value: u64) {
        if value == 0 {
            return;
        }
        if let Some(first) = self.committed_at.insert(value, index) {
            panic!("command {value} committed twice: at {first} and at {index} (node {node})");
        }
        if let Some(reporter) = self.offline.get(&value) {
            panic!(
                "command {value} committed at {index} (node {node}) after node {reporter} reported it CommandOffline"
            );
        }
    }

    /// `CommandOffline` means certainly not committed: not now, not ever.
    pub fn on_offline(&mut self, node: usize, values: &[u64]) {
        for v in values {
            self.offline.insert(*v, node);
            if !self.mode.full_safety() {
                continue;
            }
            if let Some(index) = self.committed_at.get(v) {
                panic!(
                    "node {node} reported command {v} CommandOffline but it is committed at {index}"
                );
            }
        }
    }

    pub fn offline_count(&self) -> u64 {
        self.offline.len() as u64
    }

    /// Whether no node has reported a commit yet.
    pub fn committed_is_empty(&self) -> bool {
        self.committed.is_empty()
    }

    pub fn on_restart(&mut self, node: usize) {
        self.verified_commit.insert(node, 0);
    }

    pub fn on_rebuild(&mut self, node: usize) {
        assert!(
            !self.mode.full_safety(),
            "node {node} had to rebuild: an applied entry was cut"
        );
        self.verified_commit.insert(node, 0);
    }

    /// A restored snapshot holds exactly the committed commands.
    pub fn on_restore(&mut self, node: usize, machine: &[u64]) {
        if !self.mode.full_safety() {
            return;
        }
        for (slot, value) in machine.iter().enumerate() {
            self.on_apply(node, slot as Index + 1, *value);
        }
    }

    pub fn on_apply(&mut self, node: usize, index: Index, applied: u64) {
        if !self.mode.full_safety() {
            return;
        }
        let slot = index as usize - 1;
        assert!(
            slot < self.committed.len(),
            "node {node} applied {index} before it was committed"
        );
        assert_eq!(
            self.committed[slot].value, applied,
            "node {node} applied another command at {index}"
        );
        let offline = self.offline.get(&applied).filter(|_| applied != 0);
        if let Some(reporter) = offline {
            panic!("node {node} applied command {applied} at {index} after node {reporter} reported it CommandOffline");
        }
    }

    /// A command acknowledged as committed is in the committed log, where it was said to be.
    pub fn on_acknowledged(&mut self, first: Index, values: &[u64]) {
        if !self.mode.full_safety() {
            return;
        }
        for (k, v) in values.iter().enumerate() {
            let slot = first as usize - 1 + k;
            assert!(
                slot < self.committed.len(),
                "acknowledged index {} is not committed",
                slot + 1
            );
            assert_eq!(
                self.committed[slot].value,
                *v,
                "acknowledged command not at its index {}",
                slot + 1
            );
        }
        self.acks_checked += 1;
        self.acked_max = self.acked_max.max(first + values.len() as Index - 1);
    }

    /// What a strong read issued now must at least observe.
    pub fn read_floor(&self) -> Index {
        self.acked_max.max(self.read_max)
    }

    pub fn on_read_index(&mut self, index: Index, floor: Index) {
        if self.mode.full_safety() {
            assert!(
                index >= floor,
                "read index {index} misses writes acknowledged or read before it (floor {floor})"
            );
        }
    }

    pub fn on_read_answered(&mut self, node: usize, observed: Index, floor: Index) {
        if !self.mode.full_safety() {
            return;
        }
        assert!(
            observed >= floor,
            "node {node} answered a strong read at {observed}, below {floor}"
        );
        self.reads_checked += 1;
        self.read_max = self.read_max.max(observed);
    }

    /// After convergence: every node's state holds the committed log and every acknowledged command.
    pub fn final_check(&self, nodes: &[SimNode]) {
        for (i, node) in nodes.iter().enumerate() {
            let mut seen = HashMap::new();
            for (slot, v) in node.machine.iter().enumerate().filter(|(_, v)| **v != 0) {
                if let Some(first) = seen.insert(*v, slot + 1) {
                    panic!(
                        "node {i} ended with command {v} applied twice: at {first} and at {}",
                        slot + 1
                    );
                }
            }
        }
        if !self.mode.full_safety() {
            return;
        }
        for (value, index) in &self.committed_at {
            if let Some(reporter) = self.offline.get(value) {
                panic!("command {value} is committed at {index} but node {reporter} reported it CommandOffline");
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            assert!(
                node.machine.len() as Index >= self.acked_max,
                "node {i} lost acknowledged commands"
            );
            for (slot, fact) in self.committed.iter().enumerate().take(node.machine.len()) {
                assert_eq!(
                    node.machine[slot],
                    fact.value,
                    "node {i} ended with another command at {}",
                    slot + 1
                );
            }
        }
    }
}
