//! The store directory: creating and checking it, holding its `LOCK` for
//! the store's lifetime, opening, listing and removing its files and
//! fsyncing it.
//!
//! The log holds commands in clear, so the directory is its owner's alone:
//! created `0700`, refused if another user owns it or anyone but its owner
//! may write to it, and every file in it is opened `0600` (whatever the
//! umask) and never through a symbolic link.

use std::fs::{self, File, OpenOptions, Permissions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::StoreError;

const LOCK: &str = "LOCK";
/// Mode of every directory the store creates.
const DIR_MODE: u32 = 0o700;
/// Mode of every file in the store directory.
const FILE_MODE: u32 = 0o600;
/// Mode bits that let group or others write to a directory.
const WRITABLE_BY_OTHERS: u32 = 0o022;

/// How [`open_file`] treats a file that does not exist.
#[derive(Clone, Copy, Debug)]
pub enum Missing {
    /// It is an error.
    Fail,
    /// It is created.
    Create,
    /// It is created, and a file that exists is an error.
    CreateNew,
}

/// Opens the store file `path` for reading and writing, creating it as
/// `missing` says, and sets its mode to `0600` (whatever the umask, or an
/// older version, made it). A symbolic link at `path` is refused, never
/// followed.
pub fn open_file(path: &Path, missing: Missing) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW);
    match missing {
        Missing::Fail => {}
        Missing::Create => {
            options.create(true).truncate(false);
        }
        Missing::CreateNew => {
            options.create_new(true);
        }
    }
    let file = options.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            StoreError::Unsafe {
                path: path.to_path_buf(),
                reason: "it is a symbolic link, and the store never follows one".into(),
            }
        } else {
            StoreError::io(path, e)
        }
    })?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(|e| StoreError::io(path, e))?;
    Ok(file)
}

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

/// Creates `path` if missing, and checks that it is a directory only its
/// owner, this process's user, can write to.
fn ensure_directory(path: &Path) -> Result<(), StoreError> {
    let meta = match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_private(path)?;
            fs::metadata(path)
        }
        found => found,
    }
    .map_err(|e| unwritable(path, e))?;
    if !meta.is_dir() {
        return Err(StoreError::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    let refuse = |reason: String| {
        Err(StoreError::Unsafe {
            path: path.to_path_buf(),
            reason,
        })
    };
    let euid = effective_uid();
    if meta.uid() != euid {
        return refuse(format!(
            "the store directory is owned by uid {}, not by uid {euid} running this process",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & WRITABLE_BY_OTHERS != 0 {
        return refuse(format!(
            "the store directory has mode {mode:04o}: group or others can write to it (chmod go-w)"
        ));
    }
    Ok(())
}

/// Creates `path` and its missing parents, each `0700` whatever the umask.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let missing: Vec<&Path> = path
        .ancestors()
        .filter(|dir| !dir.as_os_str().is_empty())
        .take_while(|dir| matches!(fs::symlink_metadata(dir), Err(e) if e.kind() == io::ErrorKind::NotFound))
        .collect();
    for dir in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
            Ok(()) => fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
                .map_err(|e| unwritable(dir, e))?,
            // Made meanwhile by someone else: checked like any existing one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(unwritable(path, e)),
        }
    }
    Ok(())
}

/// The effective uid of this process.
fn effective_uid() -> u32 {
    // SAFETY: geteuid takes nothing, cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

fn lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = path.join(LOCK);
    let file = open_file(&lock_path, Missing::Create).map_err(|e| match e {
        StoreError::Io { source, .. } => unwritable(path, source),
        refused => refused,
    })?;
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
