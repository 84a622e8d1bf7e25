//! The record format of log segments and its parsing:
//! `[u32 LE payload length][u32 LE crc32 of payload][payload = postcard(Entry)]`.

use std::fmt;

use mosaik_core::Entry;

use crate::error::StoreError;

/// Bytes before a record's payload: its length and its checksum.
pub const HEADER_LEN: usize = 8;

/// Why the bytes at some offset are not a good record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bad {
    /// The header or the payload runs past the end of the bytes.
    Incomplete,
    /// The payload does not match its checksum; `next` is where the
    /// following record would start according to the length field.
    Checksum { next: usize },
    /// The checksum matches but the payload is not an entry.
    Undecodable(String),
    /// Zero bytes where a header should be: a file that grew but whose data
    /// never reached the disk (no record is ever empty).
    Zeroed,
}

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bad::Incomplete => f.write_str("incomplete record"),
            Bad::Checksum { .. } => f.write_str("checksum mismatch"),
            Bad::Undecodable(reason) => write!(f, "undecodable entry ({reason})"),
            Bad::Zeroed => f.write_str("zeroed bytes"),
        }
    }
}

/// Appends the record of `entry` to `out`.
pub fn encode(entry: &Entry, out: &mut Vec<u8>) -> Result<(), StoreError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    write_payload(entry, out, start).map_err(|reason| {
        out.truncate(start);
        StoreError::Encode {
            what: format!("log entry {}", entry.index),
            reason,
        }
    })
}

/// Serializes `entry` after the header reserved at `start`, then fills the header in.
fn write_payload(entry: &Entry, out: &mut Vec<u8>, start: usize) -> Result<(), String> {
    postcard::to_io(entry, &mut *out).map_err(|e| e.to_string())?;
    let payload = &out[start + HEADER_LEN..];
    let len = u32::try_from(payload.len())
        .map_err(|_| format!("{} bytes do not fit in a record", payload.len()))?;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Parses the record at `offset`; returns its entry and where the next record starts.
pub fn parse_at(bytes: &[u8], offset: usize) -> Result<(Entry, usize), Bad> {
    let header = bytes
        .get(offset..offset.saturating_add(HEADER_LEN))
        .ok_or(Bad::Incomplete)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 && crc == 0 {
        return Err(Bad::Zeroed);
    }
    let start = offset + HEADER_LEN;
    let next = start.saturating_add(len);
    let payload = bytes.get(start..next).ok_or(Bad::Incomplete)?;
    if crc32fast::hash(payload) != crc {
        return Err(Bad::Checksum { next });
    }
    let entry = postcard::from_bytes(payload).map_err(|e| Bad::Undecodable(e.to_string()))?;
    Ok((entry, next))
}

/// The first record that did not parse while scanning a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub offset: usize,
    pub reason: Bad,
    /// A good record starts where this one's length field says it ends.
    pub followed_by_valid: bool,
}

impl BadRecord {
    /// Whether this looks like a write cut short by a crash (an incomplete
    /// record, a checksum failure with nothing good after it, or zeros to
    /// the end) rather than damage in the middle of the log.
    pub fn is_torn(&self) -> bool {
        match self.reason {
            Bad::Incomplete => true,
            Bad::Checksum { .. } | Bad::Zeroed => !self.followed_by_valid,
            Bad::Undecodable(_) => false,
        }
    }
}

/// The records of a segment's bytes, in order, up to the first bad one.
#[derive(Debug, Default)]
pub struct Scan {
    /// Byte offset and entry of every good record before `bad`.
    pub records: Vec<(usize, Entry)>,
    pub bad: Option<BadRecord>,
}

/// Parses records from the start of `bytes` until the end or the first bad one.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let mut offset = 0;
    while offset < bytes.len() {
        match parse_at(bytes, offset) {
            Ok((entry, next)) => {
                scan.records.push((offset, entry));
                offset = next;
            }
            Err(reason) => {
                scan.bad = Some(bad_record(bytes, offset, reason));
                break;
            }
        }
    }
    scan
}

fn bad_record(bytes: &[u8], offset: usize, reason: Bad) -> BadRecord {
    let followed_by_valid = match reason {
        Bad::Checksum { next } => next < bytes.len() && parse_at(bytes, next).is_ok(),
        // Anything but zeros after a zeroed header is damage, not a tail.
        Bad::Zeroed => bytes[offset..].iter().any(|b| *b != 0),
        Bad::Incomplete | Bad::Undecodable(_) => false,
    };
    BadRecord {
        offset,
        reason,
        followed_by_valid,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use mosaik_core::EntryKind;

    use super::*;

    fn entry(index: u64) -> Entry {
        Entry {
            term: 3,
            index,
            kind: EntryKind::Command(Bytes::from(vec![index as u8; 10])),
        }
    }

    fn records(count: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for index in 1..=count {
            encode(&entry(index), &mut out).unwrap();
        }
        out
    }

    #[test]
    fn encoded_records_scan_back_in_order() {
        let scan = scan(&records(3));
        assert_eq!(scan.bad, None);
        let indices: Vec<u64> = scan.records.iter().map(|(_, e)| e.index).collect();
        assert_eq!(indices, vec![1, 2, 3]);
        assert_eq!(scan.records[0].0, 0);
    }

    #[test]
    fn a_cut_record_is_incomplete_and_torn() {
        let bytes = records(2);
        let scan = scan(&bytes[..bytes.len() - 3]);
        assert_eq!(scan.records.len(), 1);
        let bad = scan.bad.unwrap();
        assert_eq!(bad.reason, Bad::Incomplete);
        assert!(bad.is_torn());
    }

    #[test]
    fn a_damaged_record_before_a_good_one_is_not_torn() {
        let mut bytes = records(3);
        let second = scan(&bytes).records[1].0;
        bytes[second + HEADER_LEN + 2] ^= 0xff;
        let bad = scan(&bytes).bad.unwrap();
        assert_eq!(bad.offset, second);
        assert!(matches!(bad.reason, Bad::Checksum { .. }));
        assert!(bad.followed_by_valid);
        assert!(!bad.is_torn());
    }

    #[test]
    fn a_damaged_last_record_is_torn() {
        let mut bytes = records(2);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert!(scan(&bytes).bad.unwrap().is_torn());
    }

    #[test]
    fn zeros_after_the_last_record_are_torn_but_zeros_before_data_are_not() {
        let mut bytes = records(2);
        let end = bytes.len();
        bytes.extend_from_slice(&[0; 64]);
        let bad = scan(&bytes).bad.unwrap();
        assert_eq!((bad.offset, bad.reason.clone()), (end, Bad::Zeroed));
        assert!(bad.is_torn());
        bytes.extend_from_slice(&records(1));
        assert!(!scan(&bytes).bad.unwrap().is_torn());
    }
}
