//! A store file written in place (a log segment, the `meta` file): its
//! handle and path, positioned reads and writes, and the one `sync` of the
//! store's files, which costs an fdatasync only when something was written
//! since the last one.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::dir::{open_file, Missing};
use crate::error::StoreError;

/// An open store file that remembers whether it holds unsynced writes.
#[derive(Debug)]
pub struct StoreFile {
    path: PathBuf,
    file: File,
    dirty: bool,
}

impl StoreFile {
    /// Opens `path` as [`open_file`] does. A file that was already there
    /// counts as unsynced: a process that crashed may have left writes in
    /// the page cache that it never synced, and a power cut would undo them.
    pub fn open(path: PathBuf, missing: Missing) -> Result<StoreFile, StoreError> {
        let file = open_file(&path, missing)?;
        Ok(StoreFile {
            path,
            file,
            dirty: !matches!(missing, Missing::CreateNew),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the file on disk.
    pub fn disk_len(&self) -> Result<u64, StoreError> {
        let meta = self.file.metadata().map_err(|e| self.error(e))?;
        Ok(meta.len())
    }

    /// Fills `buf` from `offset`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), StoreError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| self.error(e))
    }

    /// The whole file as it is on disk.
    pub fn read_to_end(&self) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        (&self.file)
            .read_to_end(&mut bytes)
            .map_err(|e| self.error(e))?;
        Ok(bytes)
    }

    /// Writes `bytes` at `offset`; durable after the next [`StoreFile::sync`].
    pub fn write_at(&mut self, bytes: &[u8], offset: u64) -> Result<(), StoreError> {
        self.file
            .write_all_at(bytes, offset)
            .map_err(|e| self.error(e))?;
        self.dirty = true;
        Ok(())
    }

    /// Cuts or extends the file to `len` bytes; durable after the next sync.
    pub fn set_len(&mut self, len: u64) -> Result<(), StoreError> {
        self.file.set_len(len).map_err(|e| self.error(e))?;
        self.dirty = true;
        Ok(())
    }

    /// Makes the writes since the last sync durable with one fdatasync;
    /// returns whether there were any.
    pub fn sync(&mut self) -> Result<bool, StoreError> {
        if !self.dirty {
            return Ok(false);
        }
        self.file.sync_data().map_err(|e| self.error(e))?;
        self.dirty = false;
        Ok(true)
    }

    /// Deletes the file.
    pub fn remove(self) -> Result<(), StoreError> {
        std::fs::remove_file(&self.path).map_err(|e| StoreError::io(&self.path, e))
    }

    fn error(&self, e: std::io::Error) -> StoreError {
        StoreError::io(&self.path, e)
    }
}
