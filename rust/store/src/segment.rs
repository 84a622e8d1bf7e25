//! One log segment file, `<first index, 20 digits>.log`: its open handle
//! and length; positioned reads, appends, truncation and sync.

use std::path::{Path, PathBuf};

use mosaik_core::Index;

use crate::dir::Missing;
use crate::error::StoreError;
use crate::file::StoreFile;

const SUFFIX: &str = ".log";
const DIGITS: usize = 20;

/// File name of the segment whose first entry is `first_index`.
pub fn file_name(first_index: Index) -> String {
    format!("{first_index:0DIGITS$}{SUFFIX}")
}

/// First index of a segment from its file name, if it is one.
pub fn parse_name(name: &str) -> Option<Index> {
    let digits = name.strip_suffix(SUFFIX)?;
    let all_digits = digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| digits.parse().ok()).flatten()
}

/// An open segment file.
#[derive(Debug)]
pub struct Segment {
    first_index: Index,
    file: StoreFile,
    len: u64,
}

impl Segment {
    /// Creates the (new) segment starting at `first_index` in `dir`.
    pub fn create(dir: &Path, first_index: Index) -> Result<Segment, StoreError> {
        let file = StoreFile::open(dir.join(file_name(first_index)), Missing::CreateNew)?;
        Ok(Segment {
            first_index,
            file,
            len: 0,
        })
    }

    /// Opens an existing segment file.
    pub fn open(path: PathBuf, first_index: Index) -> Result<Segment, StoreError> {
        let file = StoreFile::open(path, Missing::Fail)?;
        let len = file.disk_len()?;
        Ok(Segment {
            first_index,
            file,
            len,
        })
    }

    pub fn first_index(&self) -> Index {
        self.first_index
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// The `len` bytes at `offset`.
    pub fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let mut buf = vec![0; len as usize];
        self.file.read_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// The whole file.
    pub fn read_all(&self) -> Result<Vec<u8>, StoreError> {
        self.read(0, self.len)
    }

    /// Writes `bytes` at the end of the file.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file.write_at(bytes, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Cuts the file to `len` bytes.
    pub fn truncate(&mut self, len: u64) -> Result<(), StoreError> {
        self.file.set_len(len)?;
        self.len = len;
        Ok(())
    }

    /// Makes the writes since the last sync durable (one fdatasync, if
    /// any); whether there were any.
    pub fn sync(&mut self) -> Result<bool, StoreError> {
        self.file.sync()
    }

    /// Deletes the file.
    pub fn remove(self) -> Result<(), StoreError> {
        self.file.remove()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_index() {
        assert_eq!(file_name(42), "00000000000000000042.log");
        assert_eq!(parse_name(&file_name(42)), Some(42));
        assert!(file_name(9) < file_name(10));
        assert_eq!(parse_name("42.log"), None);
        assert_eq!(parse_name("snapshot-00000000000000000042.snap"), None);
    }
}
