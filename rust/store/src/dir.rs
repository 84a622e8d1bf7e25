//! The store directory: creating and checking it, holding its `LOCK` for
//! the store's lifetime, listing its files, removing them and fsyncing it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::StoreError;

const LOCK: &str = "LOCK";

/// An open, exclusively locked store directory.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Held open so the lock lasts as long as the store.
    _lock: File,
}

impl DataDir {
    /// Creates `path` if missing, checks it is a writable directory and takes its lock.
    pub fn open(path: &Path) -> Result<DataDir, StoreError> {
        ensure_directory(path)?;
        let lock = lock(path)?;
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Names of the files in the directory (names that are not UTF-8 are left out).
    pub fn file_names(&self) -> Result<Vec<String>, StoreError> {
        let io_error = |e| StoreError::io(&self.path, e);
        let mut names = Vec::new();
        for item in fs::read_dir(&self.path).map_err(io_error)? {
            if let Ok(name) = item.map_err(io_error)?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Removes the file `name` from the directory.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        let path = self.join(name);
        fs::remove_file(&path).map_err(|e| StoreError::io(path, e))
    }

    /// Makes the directory's entries (files created, renamed, removed) durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        File::open(&self.path)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| StoreError::io(&self.path, e))
    }
}

fn ensure_directory(path: &Path) -> Result<(), StoreError> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(StoreError::NotADirectory {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(path).map_err(|e| unwritable(path, e))
        }
        Err(e) => Err(unwritable(path, e)),
    }
}

fn lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = path.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| unwritable(path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(StoreError::io(lock_path, e)),
    }
}

/// The directory cannot be created, opened or written: a setting to fix.
fn unwritable(path: &Path, error: io::Error) -> StoreError {
    StoreError::NotWritable {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}
