//! Durability of SQLite commits, synced by the platform instead of inside `COMMIT`.
//!
//! The write connection runs with `PRAGMA synchronous = NORMAL`: a `COMMIT` writes its frames to
//! the write-ahead log (the `-wal` file) without waiting for the disk. [`WalSync::sync`] then
//! makes every frame written so far durable with one `fdatasync` of that file. Two uses:
//! - [`crate::WriteTx::commit`] commits and syncs before it returns: the same guarantee as
//!   `synchronous = FULL` (a returned commit survives power loss), at the same cost;
//! - the donation writer commits a batch with [`crate::WriteTx::commit_before_sync`], hands the
//!   batch's answers to a task that syncs and only then replies, and starts the next batch
//!   meanwhile: the disk's latency (0.3 to 3 ms on this machine) no longer stalls the writer.
//!
//! Why that is safe: SQLite's log frames carry a running checksum, so after a crash recovery
//! keeps the longest valid prefix of the log; a sync that began after a commit returned makes
//! that commit and every earlier one part of the prefix. SQLite documents `NORMAL` in WAL mode as
//! never corrupting the database (checkpoints sync the log before copying it and the database
//! after). What is not covered until the sync: a reader on another connection can see a
//! committed batch up to one sync (milliseconds) before its writers are answered; after a power
//! loss in that window those rows are gone, and nobody had been told they were recorded.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The `-wal` file of one SQLite database, opened on first use.
#[derive(Debug)]
pub(crate) struct WalSync {
    path: PathBuf,
    dir: PathBuf,
    file: Mutex<Option<File>>,
}

impl WalSync {
    /// For the database file at `db_path`.
    pub(crate) fn new(db_path: &Path) -> WalSync {
        let mut name = db_path.as_os_str().to_owned();
        name.push("-wal");
        let dir = match db_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        WalSync {
            path: PathBuf::from(name),
            dir,
            file: Mutex::new(None),
        }
    }

    /// Makes every log frame written so far durable. Blocking: call from a blocking thread.
    ///
    /// The file is reopened when the path names another file than the one held (SQLite deletes
    /// the log when its last connection closes and creates a new one on the next open), so a
    /// sync never goes to a log that is no longer in use. When a log is first opened, its
    /// directory is synced too, so that the file itself survives a power loss.
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        let mut held = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("the log sync lock was poisoned"))?;
        let current = std::fs::metadata(&self.path)?;
        let stale = match held.as_ref() {
            Some(f) => {
                let m = f.metadata()?;
                (m.dev(), m.ino()) != (current.dev(), current.ino())
            }
            None => true,
        };
        if stale {
            let file = File::open(&self.path)?;
            File::open(&self.dir)?.sync_all()?;
            *held = Some(file);
        }
        held.as_ref().expect("opened above").sync_data()
    }

    /// The inode of the file held, if any (for tests).
    #[cfg(test)]
    fn held_inode(&self) -> Option<u64> {
        let held = self.file.lock().ok()?;
        held.as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_log_is_reopened_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let wal = WalSync::new(&db);
        assert!(wal.sync().is_err(), "no log yet");
        let log = dir.path().join("x.db-wal");
        std::fs::write(&log, b"first").unwrap();
        wal.sync().unwrap();
        let first = wal.held_inode().unwrap();
        assert_eq!(first, std::fs::metadata(&log).unwrap().ino());
        // SQLite deletes the log when its last connection closes and makes a new one later.
        std::fs::remove_file(&log).unwrap();
        // (The old inode cannot be reused: the handle still holds it.)
        std::fs::write(&log, b"second").unwrap();
        wal.sync().unwrap();
        let second = wal.held_inode().unwrap();
        assert_eq!(second, std::fs::metadata(&log).unwrap().ino());
        assert_ne!(first, second);
    }
}
