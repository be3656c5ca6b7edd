//! Reading the state of a workspace that this process cannot write: a copy of a repository
//! owned by someone else, `.acas` on a read-only file system or bind mount, or
//! `ACAS_STATE_READ_ONLY=1` in the environment.
//!
//! [`read_only`] says whether (and why) the state must be treated as read-only;
//! [`connect_read_only`] opens the database with SQLite's `mode=ro`, and when the WAL cannot be
//! used (its `-shm` file cannot be created or mapped in a read-only directory) with
//! `immutable=1`, which reads the file as it is and notes that changes made meanwhile are not
//! seen. [`Snapshot`] answers the queries of the read-only commands on such a connection. Nothing
//! here writes, creates or migrates anything; commands that must write refuse before they start.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::error::{StoreError, StoreErrorKind};
use super::types::{ActivityQuery, ActivityRow, CostRow, FixStatsRow};
use super::{DB_FILE, query};

/// Set to anything but `0` or empty: the state is opened read-only whatever the permissions say
/// (a shared copy one must not change, or checking what the read-only mode shows).
pub const FORCE_ENV: &str = "ACAS_STATE_READ_ONLY";

/// Why the state of `root` must be read without writing, or `None` when it can be written.
pub fn read_only(root: &Path) -> Option<String> {
    if std::env::var(FORCE_ENV).is_ok_and(|v| !v.is_empty() && v != "0") {
        return Some(format!("{FORCE_ENV} is set"));
    }
    let dir = root.join(".acas");
    for path in [dir.clone(), dir.join(DB_FILE)] {
        // Only a refusal to write counts; anything else wrong with the state (a file where the
        // directory should be, a missing database) is for the usual checks to report.
        if let Err(Some(code @ (libc::EACCES | libc::EPERM | libc::EROFS))) =
            writable(&path).map_err(|e| e.raw_os_error())
        {
            let error = std::io::Error::from_raw_os_error(code);
            return Some(format!("{} is not writable ({error})", path.display()));
        }
    }
    None
}

/// `access(path, W_OK)`: answers for this process's user, and `EROFS` even for root.
fn writable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Opens `<root>/.acas/state.db` for reading only. Returns the connection, the database's path
/// and, when the WAL could not be used, a note saying that what is shown may miss changes.
pub fn connect_read_only(root: &Path) -> Result<(Connection, PathBuf, Option<String>), StoreError> {
    let db_path = root.join(".acas").join(DB_FILE);
    let err = |e: &rusqlite::Error| {
        StoreError::new(
            StoreErrorKind::Io,
            format!("cannot read {} read-only: {e}; check that you may read it", db_path.display()),
        )
    };
    let open = |extra: &str| -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            format!("file:{}?mode=ro{extra}", uri_path(&db_path)),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Reading the schema is what needs the WAL index; fail here, not in the first query.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        Ok(conn)
    };
    match open("") {
        Ok(conn) => Ok((conn, db_path, None)),
        Err(first) => {
            let conn = open("&immutable=1").map_err(|_| err(&first))?;
            let note = format!(
                "{} cannot be opened with its write-ahead log here ({first}); showing the file as last \
                 checkpointed, without changes a running ACAS has not written back yet",
                db_path.display()
            );
            Ok((conn, db_path, Some(note)))
        }
    }
}

/// `path` for an SQLite `file:` URI: `%`, `?` and `#` percent-encoded.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// The recorded state of a workspace, read-only.
pub struct Snapshot {
    conn: Connection,
    db_path: PathBuf,
    /// Said to the user along with the answer: the WAL could not be used.
    pub note: Option<String>,
}

impl Snapshot {
    pub fn open(root: &Path) -> Result<Snapshot, StoreError> {
        let (conn, db_path, note) = connect_read_only(root)?;
        Ok(Snapshot { conn, db_path, note })
    }

    fn error(&self, what: &str, e: &rusqlite::Error) -> StoreError {
        StoreError::sqlite(what, &self.db_path, std::time::Duration::ZERO, e)
    }

    pub fn activity(&self, q: &ActivityQuery) -> Result<Vec<ActivityRow>, StoreError> {
        query::activity(&self.conn, q).map_err(|e| self.error("read the activity log", &e))
    }

    pub fn cost_report(&self, since_ms: i64) -> Result<Vec<CostRow>, StoreError> {
        query::cost_report(&self.conn, since_ms).map_err(|e| self.error("read the AI cost history", &e))
    }

    pub fn fix_stats(&self) -> Result<Vec<FixStatsRow>, StoreError> {
        query::fix_stats(&self.conn).map_err(|e| self.error("read the fix outcomes", &e))
    }
}
