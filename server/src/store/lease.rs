//! The workspace lease (schema version 5): which one of the ACAS processes open on a workspace
//! runs the work they share (triggers, schedules, the outbox, the webhook server, resuming
//! interrupted runs, recording file events).
//!
//! The lease is one row of the `lease` table: the holder's id (unique per process), pid, host
//! and the time of its last heartbeat. [`Lease::try_take`] decides in one `IMMEDIATE`
//! transaction: the lease is taken when nobody holds it, when this process holds it already (the
//! heartbeat is refreshed), when the holder's heartbeat value has stayed the same for longer than
//! the expiry as measured on this process's monotonic clock (never by comparing the row's wall
//! clock time with this host's: hosts sharing a folder may disagree by hours), at once when the
//! holder is a process of this host that no longer exists, and at once when the row is damaged. [`Lease::release`] deletes
//! the row if this process still holds it, so that a waiting process takes over at its next try.
//!
//! The lease is also a fencing token ([`Fence`]): this process's holder id and the time it took
//! the lease (the lease's generation: a holder that lost the lease and took it again has a new
//! one). Writes that only the holder may make (starting a run for a trigger, recording file
//! events) check the token with [`Fence::holds`] inside their own transaction, so a holder that
//! was paused past the expiry (stopped, swapped out, suspended) and has not yet noticed that
//! another process took over cannot make them.
//!
//! This module only decides who holds the lease; when to try, and what holding it means, is the
//! caller's business. Its calls block on SQLite, so async callers run them on a blocking thread.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::error::StoreError;

/// The lease's name in the table: there is one per workspace.
const NAME: &str = "workspace";

/// How long an SQLite lock held by another connection is waited for.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Who holds, or wants, the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Unique per process: host, pid and start time.
    pub id: String,
    pub pid: u32,
    pub host: String,
}

impl Holder {
    /// This process.
    pub fn this_process() -> Holder {
        let pid = std::process::id();
        let host = host_name();
        let started =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Holder { id: format!("{host}/{pid}/{started}"), pid, host }
    }
}

/// The proof that this process holds the lease: its holder id and the generation of its
/// tenure (when it took the lease). Checked in the transaction of every write that only the
/// holder may make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub holder: String,
    pub generation: i64,
}

impl Fence {
    /// Whether the lease is still held under this token, as seen by `conn`; called inside the
    /// transaction that makes the fenced write, so that no other process takes the lease
    /// between the check and the write.
    pub fn holds(&self, conn: &Connection) -> rusqlite::Result<bool> {
        conn.prepare_cached("SELECT 1 FROM lease WHERE name = ?1 AND holder = ?2 AND acquired_ms = ?3")?
            .query_row(params![NAME, self.holder, self.generation], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
    }
}

/// The row as read: who holds the lease, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub holder: Holder,
    pub acquired_ms: i64,
    pub heartbeat_ms: i64,
}

/// One process's handle on the workspace lease, with a connection of its own.
pub struct Lease {
    conn: Connection,
    db_path: std::path::PathBuf,
    me: Holder,
    expiry: Duration,
    /// Another holder's row as last seen, and since when (this process's monotonic clock) it
    /// has not changed.
    observed: Option<(String, i64, Instant)>,
    /// The database file this handle opened (device, inode). When the path names another file
    /// (it was deleted or replaced while ACAS ran), a lease in the old one means nothing: another
    /// process may hold the lease of the new one.
    file: Option<(u64, u64)>,
    replaced_told: bool,
    /// The generation of this process's tenure, while the last try took or renewed the lease.
    tenure: Option<i64>,
}

impl Lease {
    /// Opens the lease of the database at `db_path` (creating and migrating it if needed) for
    /// `me`. A holder whose heartbeat is older than `expiry` has lost the lease.
    pub fn open(db_path: &Path, me: Holder, expiry: Duration) -> Result<Lease, StoreError> {
        let conn = super::schema::open_writer(db_path, BUSY_TIMEOUT)?;
        let file = file_id(db_path);
        Ok(Lease {
            conn,
            db_path: db_path.to_path_buf(),
            me,
            expiry,
            observed: None,
            file,
            replaced_told: false,
            tenure: None,
        })
    }

    /// Who this handle takes the lease for.
    pub fn me(&self) -> &Holder {
        &self.me
    }

    /// The fencing token of this process's tenure, when the last try took or renewed the lease.
    pub fn fence(&self) -> Option<Fence> {
        self.tenure.map(|generation| Fence { holder: self.me.id.clone(), generation })
    }

    /// Takes or renews the lease at `now_ms`; true when this process holds it afterwards.
    ///
    /// `now_ms` is a clock read at the call; the monotonic clock that measures how long another
    /// holder has been silent is read once the transaction holds the store's write lock: a try
    /// that waited for the lock (or whose process was paused while it waited) must not count
    /// that wait as the other holder's silence.
    pub fn try_take(&mut self, now_ms: i64) -> Result<bool, StoreError> {
        let called = crate::time::now_ms();
        self.take(move || {
            (now_ms.saturating_add(crate::time::now_ms().saturating_sub(called)), Instant::now())
        })
    }

    /// [`Lease::try_take`] with this process's clocks reading `now_ms` and `now`.
    pub fn try_take_at(&mut self, now_ms: i64, now: Instant) -> Result<bool, StoreError> {
        self.take(move || (now_ms, now))
    }

    /// Takes or renews the lease, reading the clocks with `clock` once the write lock is held.
    fn take(&mut self, clock: impl FnOnce() -> (i64, Instant)) -> Result<bool, StoreError> {
        if file_id(&self.db_path) != self.file {
            self.tenure = None;
            // Whoever holds the lease of the database now at that path, it is not this handle.
            if std::mem::replace(&mut self.replaced_told, true) {
                return Ok(false);
            }
            tracing::error!(
                "{} was deleted or replaced while ACAS ran; this process no longer runs the \
                 workspace's triggers, webhooks and outbox; restart ACAS to use the new database",
                self.db_path.display()
            );
            return Ok(false);
        }
        let (expiry, me) = (self.expiry, self.me.clone());
        let observed = &mut self.observed;
        let result = (|| -> rusqlite::Result<Option<i64>> {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (now_ms, now) = clock();
            let current = read(&tx)?;
            let take = match &current {
                None | Some(Read::Malformed) => true,
                Some(Read::Row(row)) if row.holder.id == me.id => true,
                Some(Read::Row(row)) => {
                    let seen = (row.holder.id.clone(), row.heartbeat_ms);
                    let since = match observed {
                        Some((id, heartbeat, since)) if (id.clone(), *heartbeat) == seen => *since,
                        _ => {
                            *observed = Some((seen.0, seen.1, now));
                            now
                        }
                    };
                    now.saturating_duration_since(since) > expiry
                        || (row.holder.host == me.host && !process_alive(row.holder.pid))
                }
            };
            if !take {
                return Ok(None);
            }
            let acquired = match &current {
                Some(Read::Row(row)) if row.holder.id == me.id => row.acquired_ms,
                _ => now_ms,
            };
            tx.execute(
                "INSERT OR REPLACE INTO lease (name, holder, pid, host, acquired_ms, heartbeat_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![NAME, me.id, me.pid, me.host, acquired, now_ms],
            )?;
            tx.commit()?;
            Ok(Some(acquired))
        })();
        self.tenure = result.map_err(|e| self.error("take the workspace lease", &e))?;
        Ok(self.tenure.is_some())
    }

    /// Gives the lease up if this process holds it.
    pub fn release(&mut self) -> Result<(), StoreError> {
        self.tenure = None;
        self.conn
            .execute("DELETE FROM lease WHERE name = ?1 AND holder = ?2", params![NAME, self.me.id])
            .map(|_| ())
            .map_err(|e| self.error("release the workspace lease", &e))
    }

    /// The current holder, if any (a malformed row holds nothing).
    pub fn current(&self) -> Result<Option<LeaseRow>, StoreError> {
        match read(&self.conn) {
            Ok(Some(Read::Row(row))) => Ok(Some(row)),
            Ok(_) => Ok(None),
            Err(e) => Err(self.error("read the workspace lease", &e)),
        }
    }

    fn error(&self, what: &str, e: &rusqlite::Error) -> StoreError {
        StoreError::sqlite(what, &self.db_path, BUSY_TIMEOUT, e)
    }
}

/// The lease row as found: written by some ACAS process, or damaged by hand (a pid that is no
/// process id, a missing column...). A damaged row holds nothing and is taken over at once.
enum Read {
    Row(LeaseRow),
    Malformed,
}

fn read(conn: &Connection) -> rusqlite::Result<Option<Read>> {
    conn.query_row(
        "SELECT holder, pid, host, acquired_ms, heartbeat_ms FROM lease WHERE name = ?1",
        [NAME],
        |r| {
            let id = r.get::<_, Option<String>>(0).ok().flatten();
            let pid = r.get::<_, Option<i64>>(1).ok().flatten();
            let pid = pid.and_then(|p| u32::try_from(p).ok()).filter(|&p| p > 0 && p <= i32::MAX as u32);
            let host = r.get::<_, Option<String>>(2).ok().flatten();
            let acquired = r.get::<_, Option<i64>>(3).ok().flatten();
            let heartbeat = r.get::<_, Option<i64>>(4).ok().flatten().filter(|&h| h > 0);
            Ok(match (id, pid, host, acquired, heartbeat) {
                (Some(id), Some(pid), Some(host), Some(acquired_ms), Some(heartbeat_ms)) => {
                    Read::Row(LeaseRow { holder: Holder { id, pid, host }, acquired_ms, heartbeat_ms })
                }
                _ => Read::Malformed,
            })
        },
    )
    .optional()
}

/// Whether a process with this pid exists on this host (a zombie does not count: it drives
/// nothing).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let answer = unsafe { libc::kill(pid, 0) };
    let exists = answer == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

fn is_zombie(pid: libc::pid_t) -> bool {
    // `/proc/PID/stat` is `PID (COMM) STATE ...`; COMM may hold spaces and parentheses.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// This machine's host name (`localhost` when it cannot be read).
pub(crate) fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let answer = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if answer != 0 {
        return "localhost".to_owned();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// The device and inode of the file at `path`, if there is one.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_whose_database_was_replaced_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let expiry = Duration::from_secs(60);
        let me = std::process::id();
        let mut old = Lease::open(&db, holder("old", me, "here"), expiry).unwrap();
        assert!(old.try_take(1_000).unwrap());
        // Someone deletes the database; the next process creates a new one and takes its lease.
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("state.db{suffix}")));
        }
        assert!(!old.try_take(2_000).unwrap(), "a lease in a deleted database is no lease");
        let mut new = Lease::open(&db, holder("new", me, "here"), expiry).unwrap();
        assert!(new.try_take(3_000).unwrap());
        assert!(!old.try_take(4_000).unwrap(), "two processes would run the shared work");
        assert_eq!(new.current().unwrap().unwrap().holder.id, "new");
    }

    fn holder(id: &str, pid: u32, host: &str) -> Holder {
        Holder { id: id.to_owned(), pid, host: host.to_owned() }
    }

    #[test]
    fn one_holder_at_a_time_until_it_expires_releases_or_dies() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let expiry = Duration::from_millis(1000);
        let me = std::process::id();
        let mut a = Lease::open(&db, holder("a", me, "here"), expiry).unwrap();
        let mut b = Lease::open(&db, holder("b", me, "here"), expiry).unwrap();

        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(a.try_take_at(10_000, at(0)).unwrap());
        assert!(!b.try_take_at(10_000, at(0)).unwrap(), "a live holder keeps it");
        assert!(a.try_take_at(10_500, at(500)).unwrap(), "the holder renews");
        assert!(!b.try_take_at(11_400, at(1_400)).unwrap(), "renewed within the expiry");
        let row = b.current().unwrap().unwrap();
        assert_eq!((row.holder.id.as_str(), row.acquired_ms, row.heartbeat_ms), ("a", 10_000, 10_500));
        // b saw the renewal at 1.4 s on its clock: the expiry runs from then.
        assert!(!b.try_take_at(11_500, at(2_400)).unwrap());

        // Expired: b takes it, and a can no longer renew.
        assert!(b.try_take_at(11_501, at(2_401)).unwrap());
        assert!(!a.try_take_at(11_502, at(2_402)).unwrap());

        // Released: a takes it at once.
        b.release().unwrap();
        assert!(a.try_take(11_503).unwrap());
        // Releasing a lease one does not hold changes nothing.
        b.release().unwrap();
        assert_eq!(b.current().unwrap().unwrap().holder.id, "a");
    }

    #[test]
    fn a_dead_holder_on_this_host_loses_the_lease_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let expiry = Duration::from_secs(3600);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mut gone = Lease::open(&db, holder("gone", dead, "here"), expiry).unwrap();
        assert!(gone.try_take(1_000).unwrap());
        // Another host cannot tell whether the pid is alive there: it waits for the expiry.
        let mut far = Lease::open(&db, holder("far", std::process::id(), "elsewhere"), expiry).unwrap();
        assert!(!far.try_take(2_000).unwrap());
        let mut near = Lease::open(&db, holder("near", std::process::id(), "here"), expiry).unwrap();
        assert!(near.try_take(2_000).unwrap());
    }

    #[test]
    fn a_malformed_row_is_taken_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let expiry = Duration::from_secs(3600);
        let mut me = Lease::open(&db, holder("me", std::process::id(), "here"), expiry).unwrap();
        assert!(me.try_take(1_000).unwrap());
        let now = 10_000_i64;
        let rows: [(i64, i64); 4] = [(-1, 0), (1 << 40, now), (0, now), (i64::from(std::process::id()), 0)];
        for (pid, heartbeat) in rows {
            let raw = Connection::open(&db).unwrap();
            raw.execute(
                "INSERT OR REPLACE INTO lease (name, holder, pid, host, acquired_ms, heartbeat_ms) \
                 VALUES ('workspace', 'here/x/1', ?1, 'here', 0, ?2)",
                params![pid, heartbeat],
            )
            .unwrap();
            drop(raw);
            assert!(me.try_take(now).unwrap(), "pid {pid}, heartbeat {heartbeat}");
            assert_eq!(me.current().unwrap().unwrap().holder.id, "me");
        }
    }

    #[test]
    fn a_heartbeat_from_a_clock_far_ahead_expires_by_this_process_clock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let expiry = Duration::from_millis(1000);
        let mut far = Lease::open(&db, holder("far", 1, "elsewhere"), expiry).unwrap();
        // The other host's clock is an hour ahead, and that host stopped renewing.
        assert!(far.try_take(10_000 + 3_600_000).unwrap());
        let mut near = Lease::open(&db, holder("near", std::process::id(), "here"), expiry).unwrap();
        let t0 = Instant::now();
        assert!(!near.try_take_at(10_000, t0).unwrap());
        assert!(!near.try_take_at(10_500, t0 + Duration::from_millis(1000)).unwrap());
        assert!(near.try_take_at(11_001, t0 + Duration::from_millis(1001)).unwrap());
        assert_eq!(near.current().unwrap().unwrap().holder.id, "near");
    }
}
