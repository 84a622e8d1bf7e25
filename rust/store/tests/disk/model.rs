//! `DiskLogStore` behaves like the reference `ModelLogStore` under a seeded random
//! sequence of appends, truncations, snapshots, syncs and reopens.

use std::path::Path;

use bytes::Bytes;
use mosaik_core::model_store::ModelLogStore;
use mosaik_core::{Entry, EntryKind, HardState, LogPosition, LogStore, PeerId, Snapshot};
use mosaik_store::DiskLogStore;

use crate::common::*;

/// xorshift64: deterministic and good enough to pick operations.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// True about once in `n` calls.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    /// Uniform-ish in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

struct Harness<'a> {
    rng: XorShift,
    path: &'a Path,
    disk: Option<DiskLogStore>,
    model: ModelLogStore,
    term: u64,
}

impl Harness<'_> {
    fn disk(&mut self) -> &mut DiskLogStore {
        self.disk.as_mut().unwrap()
    }

    fn both(&mut self, op: impl Fn(&mut dyn LogStore) -> mosaik_core::Result<()>) {
        let on_disk = op(self.disk());
        let in_memory = op(&mut self.model);
        assert_eq!(
            on_disk.is_ok(),
            in_memory.is_ok(),
            "{on_disk:?} vs {in_memory:?}"
        );
    }

    fn step(&mut self) {
        let last = self.model.last_position().unwrap();
        let base = self.model.base();
        match self.rng.between(0, 99) {
            0..=39 => self.append(last),
            40..=51 if last.index > base.index => {
                let index = self.rng.between(base.index + 1, last.index + 1);
                self.both(|store| store.truncate_from(index));
            }
            52..=61 => {
                let index = self.rng.between(base.index, last.index);
                let term = self.model.term_at(index).unwrap().unwrap();
                let compact_to = self.rng.between(base.index, index);
                let snapshot = self.snapshot(term, index);
                self.both(|store| store.save_snapshot(snapshot.clone(), compact_to));
            }
            62..=67 => {
                let snapshot = self.install_target(base, last);
                self.both(|store| store.install_snapshot(snapshot.clone()));
                self.term = self.term.max(snapshot.meta.position.term);
            }
            68..=75 => {
                let state = HardState {
                    term: self.rng.between(0, 50),
                    vote: self
                        .rng
                        .one_in(2)
                        .then(|| PeerId([self.rng.next() as u8; 32])),
                    learner: self.rng.one_in(2),
                    life: 0,
                };
                self.both(|store| store.set_hard_state(state));
            }
            76..=85 => self.disk().sync().unwrap(),
            86..=97 => self.reopen(),
            98..=99 => self.both(|store| store.clear()),
            _ => self.append(last),
        }
    }

    fn append(&mut self, last: LogPosition) {
        if self.rng.one_in(4) {
            self.term += 1;
        }
        let count = self.rng.between(1, 6);
        let batch: Vec<Entry> = (last.index + 1..=last.index + count)
            .map(|index| Entry {
                term: self.term.max(last.term),
                index,
                kind: match self.rng.next() % 5 {
                    0 => EntryKind::Marker,
                    len => EntryKind::Command(Bytes::from(vec![index as u8; len as usize * 9])),
                },
            })
            .collect();
        self.both(|store| store.append(&batch));
    }

    fn snapshot(&mut self, term: u64, index: u64) -> Snapshot {
        let data = Bytes::from(format!("{term}/{index}/{}", self.rng.next()));
        Snapshot::new(LogPosition::new(term, index), data)
    }

    /// A snapshot at a position the log holds, or at one it does not.
    fn install_target(&mut self, base: LogPosition, last: LogPosition) -> Snapshot {
        let index = self.rng.between(base.index, last.index + 8);
        let held = self.model.term_at(index).unwrap();
        let term = match (held, self.rng.next() % 2) {
            (Some(term), 0) => term,
            _ => last.term + self.rng.between(1, 3),
        };
        self.snapshot(term, index)
    }

    fn reopen(&mut self) {
        self.disk = None;
        self.disk = Some(DiskLogStore::open(self.path, tiny()).unwrap().0);
    }

    fn check(&mut self) {
        let model = &self.model;
        let disk = self.disk.as_ref().unwrap();
        let last = model.last_position().unwrap();
        assert_eq!(disk.base(), model.base());
        assert_eq!(disk.last_position().unwrap(), last);
        assert_eq!(disk.hard_state().unwrap(), model.hard_state().unwrap());
        assert_eq!(disk.snapshot().unwrap(), model.snapshot().unwrap());
        for index in 0..=last.index + 2 {
            assert_eq!(disk.term_at(index).unwrap(), model.term_at(index).unwrap());
        }
        assert_eq!(all_entries(disk), all_entries(model));
        let from = self.rng.between(0, last.index + 2);
        let to = self.rng.between(0, last.index + 2);
        let max = self.rng.between(0, 8) as usize;
        assert_eq!(
            disk.entries(from, to, max).unwrap(),
            model.entries(from, to, max).unwrap()
        );
    }
}

#[test]
fn disk_store_matches_the_model_store_on_random_operations() {
    for seed in [1u64, 0x9e37_79b9_7f4a_7c15, 0xdead_beef] {
        let dir = tempfile::tempdir().unwrap();
        let mut harness = Harness {
            rng: XorShift(seed),
            path: dir.path(),
            disk: Some(open(dir.path())),
            model: ModelLogStore::new(),
            term: 1,
        };
        for _ in 0..600 {
            harness.step();
            harness.check();
        }
    }
}
