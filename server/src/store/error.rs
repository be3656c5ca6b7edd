//! The store's error type: a kind to match on and a message that says what failed and what to do.

use std::path::Path;
use std::time::Duration;

use rusqlite::ErrorCode;

/// What went wrong, for callers that react differently (for example, offer to move a corrupt file
/// aside, or tell the user another instance holds the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// The file is not an SQLite database or fails its integrity check.
    Corrupt,
    /// Another connection held a lock for longer than the busy timeout.
    Locked,
    /// The database was written by a newer ACAS, whose schema this version does not know.
    NewerSchema,
    /// The file system refused: permissions, disk full, missing directory, I/O error.
    Io,
    /// Any other SQLite failure.
    Sqlite,
    /// The shared store's URL or settings cannot be used.
    Config,
    /// The shared store (PostgreSQL) cannot be reached: the server is down, the network is
    /// out, or it refused the connection.
    Unreachable,
    /// The shared store answered with an error.
    Database,
}

/// A failure of the store. `Display` says what failed and what to do about it.
///
/// The error is `Clone` so that one writer failure can be reported to every caller of
/// [`Store::flush`](super::Store::flush) waiting on the same transaction.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    pub(super) fn new(kind: StoreErrorKind, message: String) -> StoreError {
        StoreError { kind, message }
    }

    pub(super) fn corrupt(db_path: &Path, why: &str) -> StoreError {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!(
                "the ACAS database {} is damaged ({why}); it was left untouched: move it aside \
                 (with its -wal and -shm files) and restart, ACAS creates a new one",
                db_path.display()
            ),
        )
    }

    pub(super) fn io(what: &str, path: &Path, err: &std::io::Error) -> StoreError {
        StoreError::new(
            StoreErrorKind::Io,
            format!(
                "could not {what} {}: {err}; check that the directory exists and is writable",
                path.display()
            ),
        )
    }

    /// Classifies an SQLite error met while doing `what` on the database at `db_path`.
    pub fn sqlite(what: &str, db_path: &Path, busy_timeout: Duration, err: &rusqlite::Error) -> StoreError {
        let path = db_path.display();
        match err.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::corrupt(db_path, &err.to_string())
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::new(
                StoreErrorKind::Locked,
                format!(
                    "could not {what}: the ACAS database {path} stayed locked by another \
                     connection for {} ms; stop the other ACAS instance or tool using it and \
                     try again",
                    busy_timeout.as_millis()
                ),
            ),
            Some(
                ErrorCode::CannotOpen
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::PermissionDenied
                | ErrorCode::NoLargeFileSupport,
            ) => StoreError::new(
                StoreErrorKind::Io,
                format!(
                    "could not {what} in {path}: {err}; check free disk space and that the \
                     file and its directory are writable"
                ),
            ),
            _ => StoreError::new(
                StoreErrorKind::Sqlite,
                format!("could not {what} in {path}: {err}; if this persists, report it as a bug"),
            ),
        }
    }

    pub(super) fn writer_gone(db_path: &Path) -> StoreError {
        StoreError::new(
            StoreErrorKind::Sqlite,
            format!(
                "the writer of the ACAS database {} has stopped, so recent activity was not \
                 saved; restart ACAS and check its log for the cause",
                db_path.display()
            ),
        )
    }
}
