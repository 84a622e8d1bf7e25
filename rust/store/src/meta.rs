//! The `meta` file: the hard state, the log base and the index of the
//! snapshot in force, in two fixed-size slots (A at byte 0, B after it).
//!
//! Each slot is `[u64 LE sequence][u32 LE length][postcard(MetaState,
//! learner, life)][u32 LE crc32 of all before]`, zero-padded; a body
//! without the trailing learner flag and life (written before they existed)
//! reads as not a learner, life 0. Writes go in place to the
//! slot that does not hold the last synced state, so a torn write never
//! destroys it; open takes the valid slot with the highest sequence.

use std::path::Path;

use mosaik_core::{HardState, Index, LogPosition};
use serde::{Deserialize, Serialize};

use crate::dir::Missing;
use crate::error::StoreError;
use crate::file::StoreFile;

/// Bytes per slot; a state encodes to well under this.
const SLOT_LEN: usize = 128;
const SEQ_LEN: usize = 8;
const LEN_LEN: usize = 4;
const CRC_LEN: usize = 4;

/// Everything the `meta` file keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaState {
    pub hard_state: HardState,
    /// Position of the last compacted entry.
    pub base: LogPosition,
    /// Index of the snapshot file in force, if any.
    pub snapshot: Option<Index>,
}

/// The open `meta` file and the state last written to it.
#[derive(Debug)]
pub struct MetaFile {
    file: StoreFile,
    state: MetaState,
    seq: u64,
    /// Slot holding the last state known durable.
    durable_slot: Option<usize>,
    /// Slot of the last write (durable once synced).
    written_slot: Option<usize>,
}

impl MetaFile {
    /// Opens (or creates) `path` and reads the newest valid slot; a file
    /// with no valid slot yet is the default state.
    pub fn open(path: &Path) -> Result<MetaFile, StoreError> {
        let file = StoreFile::open(path.to_path_buf(), Missing::Create)?;
        let bytes = file.read_to_end()?;
        let newest = newest_slot(path, &bytes)?;
        Ok(MetaFile {
            file,
            state: newest.map_or_else(MetaState::default, |(_, _, state)| state),
            seq: newest.map_or(0, |(_, seq, _)| seq),
            durable_slot: newest.map(|(slot, _, _)| slot),
            written_slot: None,
        })
    }

    pub fn state(&self) -> &MetaState {
        &self.state
    }

    /// Writes `state` to the slot not holding the durable state; `sync` makes it durable.
    pub fn write(&mut self, state: MetaState) -> Result<(), StoreError> {
        let slot = self.durable_slot.map_or(0, |durable| 1 - durable);
        let bytes = encode_slot(self.seq + 1, &state).map_err(|reason| StoreError::Encode {
            what: "the hard state".into(),
            reason,
        })?;
        self.file.write_at(&bytes, (slot * SLOT_LEN) as u64)?;
        self.seq += 1;
        self.state = state;
        self.written_slot = Some(slot);
        Ok(())
    }

    /// Makes the last write durable (one fdatasync, if any); whether there
    /// was one to make durable.
    pub fn sync(&mut self) -> Result<bool, StoreError> {
        let synced = self.file.sync()?;
        if synced {
            self.durable_slot = self.written_slot.or(self.durable_slot);
        }
        Ok(synced)
    }
}

/// (slot, sequence, state) of the newest valid slot; `None` when nothing
/// was ever synced (only slot A can have been written then).
fn newest_slot(path: &Path, bytes: &[u8]) -> Result<Option<(usize, u64, MetaState)>, StoreError> {
    let valid = bytes
        .chunks(SLOT_LEN)
        .take(2)
        .enumerate()
        .filter_map(|(slot, raw)| decode_slot(raw).map(|(seq, state)| (slot, seq, state)));
    let newest = valid.max_by_key(|(_, seq, _)| *seq);
    if newest.is_none() && bytes.len() > SLOT_LEN {
        return Err(StoreError::Damaged {
            path: path.to_path_buf(),
            reason: "neither hard state slot is valid".into(),
        });
    }
    if newest.is_none() && !bytes.is_empty() {
        log::warn!(
            "{}: the first hard state write was torn; starting from the default hard state",
            path.display()
        );
    }
    Ok(newest)
}

fn encode_slot(seq: u64, state: &MetaState) -> Result<Vec<u8>, String> {
    let hard = &state.hard_state;
    let payload =
        postcard::to_stdvec(&(state, hard.learner, hard.life)).map_err(|e| e.to_string())?;
    let mut slot = Vec::with_capacity(SLOT_LEN);
    slot.extend_from_slice(&seq.to_le_bytes());
    slot.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    slot.extend_from_slice(&payload);
    slot.extend_from_slice(&crc32fast::hash(&slot).to_le_bytes());
    if slot.len() > SLOT_LEN {
        return Err(format!("hard state needs {} bytes", slot.len()));
    }
    slot.resize(SLOT_LEN, 0);
    Ok(slot)
}

/// Sequence and state of a slot, if it is complete and its checksum holds.
fn decode_slot(raw: &[u8]) -> Option<(u64, MetaState)> {
    let seq = u64::from_le_bytes(raw.get(..SEQ_LEN)?.try_into().ok()?);
    let len_field = raw.get(SEQ_LEN..SEQ_LEN + LEN_LEN)?;
    let len = u32::from_le_bytes(len_field.try_into().ok()?) as usize;
    let body_end = (SEQ_LEN + LEN_LEN).checked_add(len)?;
    let crc = u32::from_le_bytes(raw.get(body_end..body_end + CRC_LEN)?.try_into().ok()?);
    if crc32fast::hash(&raw[..body_end]) != crc {
        return None;
    }
    let body = &raw[SEQ_LEN + LEN_LEN..body_end];
    let (mut state, learner, life) = postcard::from_bytes::<(MetaState, bool, u64)>(body)
        .or_else(|_| postcard::from_bytes::<MetaState>(body).map(|s| (s, false, 0)))
        .ok()?;
    state.hard_state.learner = learner;
    state.hard_state.life = life;
    Some((seq, state))
}

#[cfg(test)]
mod tests {
    use mosaik_core::PeerId;

    use super::*;

    fn state(term: u64) -> MetaState {
        MetaState {
            hard_state: HardState {
                term,
                vote: Some(PeerId([term as u8; 32])),
                learner: term.is_multiple_of(2),
                life: term * 7,
            },
            base: LogPosition::new(term, term * 10),
            snapshot: Some(term * 10),
        }
    }

    #[test]
    fn the_newest_synced_slot_wins_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta");
        let mut meta = MetaFile::open(&path).unwrap();
        assert_eq!(*meta.state(), MetaState::default());
        for term in 1..=5 {
            meta.write(state(term)).unwrap();
            meta.sync().unwrap();
        }
        drop(meta);
        assert_eq!(*MetaFile::open(&path).unwrap().state(), state(5));
    }

    #[test]
    fn unsynced_writes_never_overwrite_the_durable_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta");
        let mut meta = MetaFile::open(&path).unwrap();
        meta.write(state(1)).unwrap();
        meta.sync().unwrap();
        meta.write(state(2)).unwrap();
        meta.write(state(3)).unwrap();
        drop(meta);
        // Tear slot B, where both unsynced writes went.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SLOT_LEN + 3] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(*MetaFile::open(&path).unwrap().state(), state(1));
    }

    #[test]
    fn both_slots_damaged_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta");
        std::fs::write(&path, vec![7u8; 2 * SLOT_LEN]).unwrap();
        let error = MetaFile::open(&path).unwrap_err();
        assert!(matches!(error, StoreError::Damaged { .. }), "{error}");
    }
}
