//! One process per database file, and noticing when the file is deleted or replaced.
//!
//! SQLite lets any number of processes open one file; two engines on one database would then
//! fail each other's write transactions. A store holds an exclusive advisory lock on a lock
//! file beside the database (`<db>.lock`, not the database itself, whose own locks SQLite
//! manages) for as long as it is open, so a second one is refused at once with a message that
//! says why. The lock goes with the process, however it ends.
//!
//! A database file deleted or replaced while open (a clean-up script, a restore) is written no
//! more by anyone reading its path: the store remembers the file's identity (device and inode)
//! and [`FileGuard::check`] compares it with what the path names now.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::error::StoreError;

/// The lock held on a file database, and the identity of the file opened.
#[derive(Debug)]
pub(crate) struct FileGuard {
    path: PathBuf,
    lock: Mutex<Option<File>>,
    identity: Option<FileIdentity>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    #[cfg(unix)]
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }

    #[cfg(not(unix))]
    fn of(path: &Path) -> Option<Self> {
        std::fs::metadata(path).ok().map(|_| Self {
            device: 0,
            inode: 0,
        })
    }
}

/// The lock file of the database at `path`.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl FileGuard {
    /// Takes the lock of the database at `path`, before anything opens it.
    pub(crate) fn lock(path: &Path) -> Result<Self, StoreError> {
        let lock_path = lock_path(path);
        let open_error = |error: std::io::Error| StoreError::Open {
            path: path.display().to_string(),
            message: format!("cannot open the lock file {}: {error}", lock_path.display()),
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(open_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::InUse {
                    path: path.display().to_string(),
                    lock: lock_path.display().to_string(),
                });
            }
            Err(TryLockError::Error(error)) => return Err(open_error(error)),
        }
        Ok(Self {
            path: path.to_owned(),
            lock: Mutex::new(Some(file)),
            identity: None,
        })
    }

    /// Remembers the file as it is now: call once the database exists.
    pub(crate) fn remember_file(&mut self) {
        self.identity = FileIdentity::of(&self.path);
    }

    /// Fails when the file opened is no longer at its path.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        let what = match (self.identity, FileIdentity::of(&self.path)) {
            (_, None) => "deleted",
            (Some(opened), Some(now)) if opened != now => "replaced",
            _ => return Ok(()),
        };
        Err(StoreError::FileChanged {
            path: self.path.display().to_string(),
            what,
        })
    }

    /// Lets another store open the file. Idempotent.
    pub(crate) fn release(&self) {
        let mut lock = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = lock.take() {
            let _ = file.unlock();
        }
    }
}
