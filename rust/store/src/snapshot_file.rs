//! Snapshot files `snapshot-<index, 20 digits>.snap`: a header (magic
//! `MOSNAP01`, u32 LE length, postcard `SnapshotMeta`, u32 LE crc32 of all
//! before) followed by the data. Written to a `.tmp` file, fsynced, renamed
//! and the directory fsynced; found again, checked and tidied at open.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use bytes::Bytes;
use mosaik_core::{Index, Snapshot, SnapshotMeta};

use crate::dir::{open_file, DataDir, Missing};
use crate::error::StoreError;

const MAGIC: &[u8; 8] = b"MOSNAP01";
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".tmp";
const DIGITS: usize = 20;

/// File name of the snapshot taken at `index`.
pub fn file_name(index: Index) -> String {
    format!("{PREFIX}{index:0DIGITS$}{SUFFIX}")
}

/// Index of a snapshot from its file name, if it is one.
fn parse_name(name: &str) -> Option<Index> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let all_digits = digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| digits.parse().ok()).flatten()
}

/// Durably writes `snapshot` as the file for its index, replacing any.
pub fn write(dir: &DataDir, snapshot: &Snapshot) -> Result<(), StoreError> {
    let name = file_name(snapshot.meta.position.index);
    let temp = dir.join(&format!("{name}{TEMP_SUFFIX}"));
    let header = encode_header(&snapshot.meta)?;
    // A temp file left by a write that failed is replaced (a link itself, not its target).
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(StoreError::io(&temp, e)),
        _ => {}
    }
    let file = open_file(&temp, Missing::CreateNew)?;
    write_synced(file, &header, &snapshot.data).map_err(|e| StoreError::io(&temp, e))?;
    let path = dir.join(&name);
    fs::rename(&temp, &path).map_err(|e| StoreError::io(&path, e))?;
    dir.sync()
}

fn write_synced(mut file: File, header: &[u8], data: &[u8]) -> io::Result<()> {
    file.write_all(header)?;
    file.write_all(data)?;
    file.sync_data()
}

fn encode_header(meta: &SnapshotMeta) -> Result<Vec<u8>, StoreError> {
    let encoded = postcard::to_stdvec(meta).map_err(|e| StoreError::Encode {
        what: "a snapshot header".into(),
        reason: e.to_string(),
    })?;
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
    header.extend_from_slice(&encoded);
    header.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
    Ok(header)
}

/// Loads the snapshot in force (`index`, as the meta file names it) and
/// removes every other snapshot and temp file.
pub fn recover(dir: &DataDir, index: Option<Index>) -> Result<Option<Snapshot>, StoreError> {
    remove_others(dir, index)?;
    index
        .map(|index| read(&dir.join(&file_name(index))))
        .transpose()
}

/// Removes every snapshot and temp file but the snapshot at `keep`.
pub fn remove_others(dir: &DataDir, keep: Option<Index>) -> Result<(), StoreError> {
    for name in dir.file_names()? {
        let stale = match parse_name(&name) {
            Some(index) => Some(index) != keep,
            None => name.ends_with(TEMP_SUFFIX),
        };
        if stale {
            dir.remove(&name)?;
        }
    }
    Ok(())
}

/// Reads and checks the snapshot file at `path`.
fn read(path: &Path) -> Result<Snapshot, StoreError> {
    let mut bytes = Vec::new();
    open_file(path, Missing::Fail)?
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(path, e))?;
    decode(Bytes::from(bytes)).map_err(|reason| StoreError::Damaged {
        path: path.to_path_buf(),
        reason,
    })
}

fn decode(bytes: Bytes) -> Result<Snapshot, String> {
    if !bytes.starts_with(MAGIC) {
        return Err("not a snapshot file (bad magic)".into());
    }
    let len_end = MAGIC.len() + 4;
    let len_field = bytes.get(MAGIC.len()..len_end).ok_or("truncated header")?;
    let meta_len = u32::from_le_bytes(len_field.try_into().map_err(|_| "truncated header")?);
    let meta_end = len_end.saturating_add(meta_len as usize);
    let crc_field = bytes
        .get(meta_end..meta_end + 4)
        .ok_or("truncated header")?;
    let crc = u32::from_le_bytes(crc_field.try_into().map_err(|_| "truncated header")?);
    if crc32fast::hash(&bytes[..meta_end]) != crc {
        return Err("header checksum mismatch".into());
    }
    let meta = postcard::from_bytes(&bytes[len_end..meta_end]).map_err(|e| e.to_string())?;
    let snapshot = Snapshot {
        meta,
        data: bytes.slice(meta_end + 4..),
    };
    if !snapshot.is_intact() {
        return Err("data does not match the digest and size in its header".into());
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use mosaik_core::LogPosition;

    use super::*;

    fn encoded(snapshot: &Snapshot) -> Vec<u8> {
        let mut bytes = encode_header(&snapshot.meta).unwrap();
        bytes.extend_from_slice(&snapshot.data);
        bytes
    }

    #[test]
    fn a_snapshot_decodes_to_itself() {
        let snapshot = Snapshot::new(LogPosition::new(2, 9), Bytes::from_static(b"state"));
        assert_eq!(decode(Bytes::from(encoded(&snapshot))), Ok(snapshot));
        assert_eq!(parse_name(&file_name(9)), Some(9));
    }

    #[test]
    fn damaged_data_or_header_is_refused() {
        let snapshot = Snapshot::new(LogPosition::new(2, 9), Bytes::from_static(b"state"));
        let mut bytes = encoded(&snapshot);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(decode(Bytes::from(bytes.clone())).is_err());
        bytes[last] ^= 1;
        bytes[MAGIC.len() + 5] ^= 1;
        assert!(decode(Bytes::from(bytes)).is_err());
    }
}
