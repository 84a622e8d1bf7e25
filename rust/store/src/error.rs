//! The crate's error type and its mapping onto `mosaik_core::Error`.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong opening or using a [`DiskLogStore`](crate::DiskLogStore).
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another open store (in this or another process) holds the directory's `LOCK`.
    #[error("store directory {} is in use by another process (its LOCK file is held)", path.display())]
    Locked { path: PathBuf },
    /// The store path exists but is not a directory.
    #[error("store path {} exists but is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    /// The store directory cannot be created or written to.
    #[error("store directory {} is not writable: {reason}", path.display())]
    NotWritable { path: PathBuf, reason: String },
    /// The store directory, or a file in it, is not private to this
    /// process's user: another user owns the directory, group or others can
    /// write to it, or a file in it is a symbolic link.
    #[error("refusing {}: {reason}", path.display())]
    Unsafe { path: PathBuf, reason: String },
    /// A log segment holds a damaged record that is not a torn tail.
    #[error(
        "log segment {} is corrupt at byte {offset}: {reason}; refusing to start on a damaged log",
        segment.display()
    )]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A record read back from a segment while running is damaged.
    #[error("log segment {} holds a bad record at byte {offset}: {reason}", segment.display())]
    BadRecord {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The hard state file or the snapshot it names cannot be read back.
    #[error("{} is damaged: {reason}; refusing to start on damaged state", path.display())]
    Damaged { path: PathBuf, reason: String },
    /// The directory holds the log of another group than the one opening it.
    #[error(
        "store directory {} holds the log of group {found}, not of group {expected}; \
         give each group a directory of its own",
        path.display()
    )]
    OtherGroup {
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// A log entry or the hard state cannot be serialized.
    #[error("cannot encode {what}: {reason}")]
    Encode { what: String, reason: String },
    /// An operating system call on `path` failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<StoreError> for mosaik_core::Error {
    fn from(error: StoreError) -> Self {
        mosaik_core::Error::Storage(error.to_string())
    }
}
