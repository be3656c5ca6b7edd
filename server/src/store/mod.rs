//! The embedded store: activity log, diagnostics history and AI escalation history in SQLite.
//!
//! The database lives at `<workspace>/.acas/state.db`, in WAL mode with `synchronous=NORMAL` and
//! incremental auto-vacuum, and its schema is brought up to date by versioned migrations
//! (`PRAGMA user_version`). A database from a newer ACAS, a file that is not a database, and a
//! database locked by someone else are refused with a [`StoreError`] that says what to do; the
//! store never deletes or overwrites such a file.
//!
//! Writes go through one writer thread that owns the write connection. [`Store::record`] puts a
//! batch of [`Record`]s on a bounded channel (blocking when it is full, never dropping); the
//! writer drains whatever is queued and commits it in one transaction. Callers are expected to
//! send batches of at most a few thousand records, so memory stays bounded by
//! [`StoreOptions::queue_batches`] batches. Reads use a separate read-only connection, which WAL
//! lets run while the writer commits.
//!
//! Editor `change` events can arrive on every keystroke: within one transaction, consecutive
//! changes of the same path (no other editor event of that path in between) are coalesced into
//! one row, with the latest time and version and the number of changes it stands for.
//!
//! Diagnostics are recorded as complete per-file sets ([`FileDiagnostics`]); the writer diffs
//! each set against what is open and keeps, per fingerprint, first and last sighting, the number
//! of appearances, and when it was resolved. A deleted or renamed-away file resolves what it had
//! open.
//!
//! For the AI escalation it keeps provider calls, the reply cache and fix outcomes. A call is
//! recorded `Reserved` with its worst-case cost before it is sent and recorded again, with the
//! same id, once it ends, which updates the row; [`Store::spend_since`] adds the actual cost of
//! ended calls and the reservations of calls still in flight, so that concurrent requests cannot
//! overrun a budget between them. [`Store::cost_report`] groups spend by UTC day, provider, model
//! and category; [`Store::fix_stats`] counts what became of each provider's fixes, and
//! [`Store::past_fixes`] returns accepted fixes of a fingerprint to show in later prompts.
//!
//! For the context builder it keeps the symbol index per file ([`SymbolFile`]), a cache the
//! reader checks against the file before use. A dry run that does not write the workspace's
//! state keeps that index in a database of the same schema in the user's cache instead
//! ([`Store::open_cache`] at [`index_cache_path`]).
//!
//! For workflows it keeps the signatures of accepted incoming webhooks, so that a replay is
//! refused across restarts ([`Store::webhook_first_seen`]), and the queue of outgoing webhooks
//! (`outbox_*`); these calls answer once their change is committed. [`Lease`] decides which one
//! process of a workspace runs the work that must happen once (see `lease.rs`).
//!
//! Every escalation request and fix outcome is also a record of the hash-chained audit log
//! (`audit`), appended in the transaction that writes it.
//!
//! Retention ([`Store::prune`]) deletes old activity, old cache entries and whole old segments
//! of the audit log (keeping their final hash); provider calls
//! and fix outcomes are kept, since monthly budgets, `acas cost` and success rates read them.
//! Diagnostics history is one row per fingerprint and is not pruned either.
//!
//! This module knows nothing of LSP or of the other ACAS modules. Its calls block (on the queue,
//! or on a transaction in [`Store::flush`]), so async callers run them on a blocking thread.

pub mod anchor;
pub mod audit;
mod budget;
mod error;
pub mod fallback;
mod hooks;
mod lease;
pub mod outbox;
pub mod postgres;
mod query;
mod read_only;
mod schema;
pub mod shared;
mod types;
mod writer;

#[cfg(test)]
mod tests;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use rusqlite::Connection;

pub use audit::AuditLog;
pub use budget::{OfflineTotals, SeenTotals, SpendTotals, Spending};
pub use error::{StoreError, StoreErrorKind};
pub use fallback::{Fallback, Synced};
pub use hooks::{InboxEntry, OutboxRow, OutboxStatus, Replay, take_inbox_entry};
pub(crate) use lease::host_name;
pub use lease::{Fence, Holder, Lease, LeaseRow, process_alive};
pub use outbox::LinkState;
pub use postgres::{DatabaseUrl, Identity, PgOptions, PgStore, SharedStore};
pub use read_only::{FORCE_ENV as READ_ONLY_ENV, Snapshot, connect_read_only, read_only};
pub use shared::{Allow, FixLog, Ledger, RunBoard};
pub use types::{
    ActivityKind, ActivityQuery, ActivityRow, AgentEvent, CacheEntry, CallStatus, CostRow, DiagnosticRecord,
    EditorEvent, EditorEventKind, FileDiagnostics, FileEvent, FileEventKind, FixOutcome, FixStatsRow,
    Outcome, ProblemQuery, ProblemRow, ProviderCall, Record, SymbolFile, SymbolText,
};

use writer::{Command, Writer};

/// How long to keep activity, how many batches may wait for the writer, and how long to wait for
/// a lock held by another connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Activity and cache entries older than this are deleted by [`Store::prune`]. Default: 30
    /// days.
    pub retention: Duration,
    /// How many batches the queue holds before [`Store::record`] blocks. Default: 64.
    pub queue_batches: usize,
    /// How long to wait for a lock held by another connection before failing with
    /// [`StoreErrorKind::Locked`]. Default: 5 seconds.
    pub busy_timeout: Duration,
    /// Whole segments of the audit log whose last record is older than this are removed by
    /// [`Store::prune`], keeping their final hash. Default: 365 days.
    pub audit_retention: Duration,
    /// Whether opening starts the integrity check (a read of the whole file on a thread of its
    /// own). Default: yes; a short-lived command that reads a few rows (`acas explain`) leaves it
    /// to the operations that meet a damaged page, which fail with the same message.
    pub integrity_check: bool,
    /// Whether closing the last connection moves the write-ahead log into the database and
    /// removes it (with a sync of each). Default: yes; a short-lived command leaves that to the
    /// next writer's automatic checkpoint, so that it neither waits for those syncs nor makes
    /// the next process create the log again. What was committed is kept either way.
    pub checkpoint_on_close: bool,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            retention: Duration::from_secs(30 * 24 * 60 * 60),
            queue_batches: 64,
            busy_timeout: Duration::from_secs(5),
            audit_retention: Duration::from_secs(365 * 24 * 60 * 60),
            integrity_check: true,
            checkpoint_on_close: true,
        }
    }
}

/// A handle on the store. Cloning is cheap; the writer stops when the last handle is dropped
/// or closed, after committing everything queued.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db_path: PathBuf,
    options: StoreOptions,
    commands: Sender<Command>,
    reader: Mutex<Connection>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The name of the database file inside `.acas/`, and the `.gitignore` rule that covers it and
/// its `-wal` and `-shm` companions.
const DB_FILE: &str = "state.db";
const IGNORE_RULE: &str = "state.db*";

impl Store {
    /// Creates `<root>/.acas/` if needed, makes sure `<root>/.acas/.gitignore` ignores
    /// `state.db*` (creating the file or appending the rule), and opens `<root>/.acas/state.db`.
    pub fn open_workspace(root: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let dir = prepare_dir(root)?;
        Store::open(&dir.join(DB_FILE), options)
    }

    /// Opens (creating it and its directory if needed, the directory readable by its owner
    /// only) a database of the user's cache at `db_path`, from [`index_cache_path`]: where a dry
    /// run keeps the symbol index of a workspace whose own state it does not write.
    pub fn open_cache(db_path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        if let Some(dir) = db_path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| StoreError::io("create", dir, &e))?;
        }
        Store::open(db_path, options)
    }

    /// Whether anything was recorded in `<root>`: `<root>/.acas/state.db` exists. Creates
    /// nothing. Fails when the state cannot be used: `.acas` or `state.db` is something else
    /// than a directory and a file, or cannot be looked at.
    pub fn recorded(root: &Path) -> Result<bool, StoreError> {
        let dir = root.join(".acas");
        if !exists(&dir)? {
            return Ok(false);
        }
        check_dir(&dir)?;
        check_db_files(&dir)?;
        exists(&dir.join(DB_FILE))
    }

    /// Opens (creating if needed) the database at `db_path` and starts its writer thread.
    pub fn open(db_path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let busy_timeout = options.busy_timeout;
        let conn = schema::open_writer(db_path, busy_timeout)?;
        let reader = schema::open_reader(db_path, busy_timeout)?;
        if !options.checkpoint_on_close {
            for conn in [&conn, &reader] {
                // Refused only by an SQLite older than the bundled one: then it checkpoints.
                let _ =
                    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
            }
        }
        let (commands, receiver) = crossbeam_channel::bounded(options.queue_batches.max(1));
        let writer = Writer::new(conn, db_path.to_owned(), busy_timeout);
        let handle = std::thread::Builder::new()
            .name("acas-store-writer".to_owned())
            .spawn(move || writer.run(receiver))
            .map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Io,
                    format!("could not start the store's writer thread: {e}; free some memory or threads and restart ACAS"),
                )
            })?;
        if options.integrity_check {
            spawn_integrity_check(db_path, busy_timeout);
        }
        Ok(Store {
            inner: Arc::new(Inner {
                db_path: db_path.to_owned(),
                options,
                commands,
                reader: Mutex::new(reader),
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    /// [`Store::check_integrity`] of `<root>/.acas/state.db`; `Ok(false)` when nothing was
    /// recorded there. Creates nothing.
    pub fn check_workspace(root: &Path, options: &StoreOptions) -> Result<bool, StoreError> {
        if !Store::recorded(root)? {
            return Ok(false);
        }
        Store::check_integrity(&root.join(".acas").join(DB_FILE), options)?;
        Ok(true)
    }

    /// Reads the whole database at `db_path` and says whether it is sound: a damaged page gives
    /// [`StoreErrorKind::Corrupt`] with the way out. Takes time in proportion to the file, which
    /// is why [`Store::open`] leaves it to a thread of its own; writes nothing.
    pub fn check_integrity(db_path: &Path, options: &StoreOptions) -> Result<(), StoreError> {
        schema::check_integrity(db_path, options.busy_timeout)
    }

    /// Enqueues records for the writer. Blocks only while the queue is full; never drops them.
    /// Send at most a few thousand records per call.
    pub fn record(&self, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let count = records.len();
        if self.inner.commands.send(Command::Records(records)).is_err() {
            let err = StoreError::writer_gone(&self.inner.db_path);
            tracing::error!(records = count, error = %err, "records not saved");
        }
    }

    /// Waits until everything enqueued before this call is committed. Returns the last writer
    /// error since the previous flush, if any (the records of that batch were not saved).
    pub fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.inner
            .commands
            .send(Command::Flush(reply))
            .map_err(|_| StoreError::writer_gone(&self.inner.db_path))?;
        answer.recv().map_err(|_| StoreError::writer_gone(&self.inner.db_path))?
    }

    /// The newest activity rows matching `query`, newest first. Sees what is committed, so call
    /// [`Store::flush`] first to include what was just recorded.
    pub fn activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityRow>, StoreError> {
        let conn = self.inner.reader();
        query::activity(&conn, query).map_err(|e| self.inner.read_error("read the activity log", &e))
    }

    /// Per-fingerprint diagnostics history matching `query`, most recently seen first.
    pub fn problems(&self, query: &ProblemQuery) -> Result<Vec<ProblemRow>, StoreError> {
        let conn = self.inner.reader();
        query::problems(&conn, query).map_err(|e| self.inner.read_error("read the diagnostics history", &e))
    }

    /// The diagnostics open now in `path` (relative to the workspace) as `source` recorded them
    /// last, by line and column; what the problem history says of each.
    pub fn open_diagnostics(&self, path: &str, source: &str) -> Result<Vec<DiagnosticRecord>, StoreError> {
        let conn = self.inner.reader();
        query::open_diagnostics(&conn, path, source)
            .map_err(|e| self.inner.read_error("read the open diagnostics", &e))
    }

    /// The spend since `since_ms` (inclusive), in micros, for one provider or for all: the actual
    /// cost of calls that ended (succeeded, failed or cancelled) plus the reserved estimate of
    /// calls still `Reserved`. Refused and cached calls count nothing.
    ///
    /// Waits until everything recorded before this call is committed, so a reservation the
    /// caller just recorded is included. A writer failure is left for the next
    /// [`Store::flush`] to report.
    pub fn spend_since(&self, since_ms: i64, provider: Option<&str>) -> Result<u64, StoreError> {
        self.sync()?;
        let conn = self.inner.reader();
        query::spend_since(&conn, since_ms, provider)
            .map_err(|e| self.inner.read_error("read the AI spend", &e))
    }

    /// [`Store::spend_since`] of the calls made for `agent` (as policies name it).
    pub fn agent_spend_since(&self, since_ms: i64, agent: &str) -> Result<u64, StoreError> {
        self.sync()?;
        let conn = self.inner.reader();
        query::spend_since_by(&conn, since_ms, query::SpentBy::Agent(agent))
            .map_err(|e| self.inner.read_error("read the AI spend of an agent", &e))
    }

    /// The cached reply stored under `key`, if any. Sees what is committed.
    pub fn cache_get(&self, key: &str) -> Result<Option<CacheEntry>, StoreError> {
        let conn = self.inner.reader();
        query::cache_get(&conn, key).map_err(|e| self.inner.read_error("read the AI reply cache", &e))
    }

    /// Provider calls since `since_ms` (inclusive), grouped by UTC day, provider, model and
    /// category, in that order. Sees what is committed.
    pub fn cost_report(&self, since_ms: i64) -> Result<Vec<CostRow>, StoreError> {
        let conn = self.inner.reader();
        query::cost_report(&conn, since_ms).map_err(|e| self.inner.read_error("read the AI cost history", &e))
    }

    /// Per provider, model and category, how many distinct fixes were offered, applied,
    /// resolved, reverted and dismissed. Sees what is committed.
    pub fn fix_stats(&self) -> Result<Vec<FixStatsRow>, StoreError> {
        let conn = self.inner.reader();
        query::fix_stats(&conn).map_err(|e| self.inner.read_error("read the fix outcomes", &e))
    }

    /// Accepted fixes of `fingerprint`, newest first, at most `limit`: per fix, its latest
    /// `Applied` or `Resolved` event that has both `old` and `new`, unless the fix was reverted
    /// after that event. Sees what is committed.
    pub fn past_fixes(&self, fingerprint: &str, limit: usize) -> Result<Vec<FixOutcome>, StoreError> {
        let conn = self.inner.reader();
        query::past_fixes(&conn, fingerprint, limit).map_err(|e| self.inner.read_error("read past fixes", &e))
    }

    /// The stored symbols of `language`'s files ([`Record::SymbolFile`]). Sees what is
    /// committed.
    pub fn symbol_files(&self, language: &str) -> Result<Vec<SymbolFile>, StoreError> {
        let conn = self.inner.reader();
        query::symbol_files(&conn, language).map_err(|e| self.inner.read_error("read the symbol index", &e))
    }

    /// The stored symbols of the text whose SHA-256 hex is `hash` ([`Record::SymbolText`]).
    /// Sees what is committed.
    pub fn symbol_text(&self, hash: &str) -> Result<Option<SymbolText>, StoreError> {
        let conn = self.inner.reader();
        query::symbol_text(&conn, hash).map_err(|e| self.inner.read_error("read the symbol index", &e))
    }

    /// Deletes activity rows and cache entries older than `now_ms` minus the retention, after
    /// everything queued before this call is committed, then returns the freed pages to the file
    /// system with `PRAGMA incremental_vacuum`. Provider calls and fix outcomes are kept. Returns
    /// the number of activity rows deleted.
    pub fn prune(&self, now_ms: i64) -> Result<u64, StoreError> {
        let retention = i64::try_from(self.inner.options.retention.as_millis()).unwrap_or(i64::MAX);
        let audit_retention =
            i64::try_from(self.inner.options.audit_retention.as_millis()).unwrap_or(i64::MAX);
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.inner
            .commands
            .send(Command::Prune {
                before_ms: now_ms.saturating_sub(retention),
                audit_before_ms: now_ms.saturating_sub(audit_retention),
                now_ms,
                reply,
            })
            .map_err(|_| StoreError::writer_gone(&self.inner.db_path))?;
        answer.recv().map_err(|_| StoreError::writer_gone(&self.inner.db_path))?
    }

    /// Waits until everything enqueued before this call is committed (or dropped after a
    /// failure), without taking the writer error that [`Store::flush`] reports.
    fn sync(&self) -> Result<(), StoreError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.inner
            .commands
            .send(Command::Sync(reply))
            .map_err(|_| StoreError::writer_gone(&self.inner.db_path))?;
        answer.recv().map_err(|_| StoreError::writer_gone(&self.inner.db_path))
    }

    /// The size on disk of the database and its WAL, in bytes.
    pub fn size_bytes(&self) -> u64 {
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        let mut wal = self.inner.db_path.as_os_str().to_owned();
        wal.push("-wal");
        size(&self.inner.db_path) + size(Path::new(&wal))
    }

    pub fn path(&self) -> &Path {
        &self.inner.db_path
    }

    /// Flushes, and stops the writer if this is the last handle (otherwise the writer stops when
    /// the last handle is dropped). Returns any writer error not reported yet.
    pub fn close(self) -> Result<(), StoreError> {
        let flushed = self.flush();
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => flushed.and(inner.shut_down()),
            Err(_) => flushed,
        }
    }
}

/// Opens a write connection of its own to `<root>/.acas/state.db` (creating `.acas/`, its
/// `.gitignore` rule and the database as [`Store::open_workspace`] does), with the schema
/// migrated, WAL and the busy timeout set. For callers that must know a write is committed
/// before they go on (workflow state), which the batching writer of [`Store`] does not tell.
pub fn connect_workspace(root: &Path, busy_timeout: Duration) -> Result<(Connection, PathBuf), StoreError> {
    let dir = prepare_dir(root)?;
    let db_path = dir.join(DB_FILE);
    let conn = schema::open_writer(&db_path, busy_timeout)?;
    Ok((conn, db_path))
}

impl Inner {
    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_error(&self, what: &str, err: &rusqlite::Error) -> StoreError {
        StoreError::sqlite(what, &self.db_path, self.options.busy_timeout, err)
    }

    /// Asks the writer to commit what is queued and stop, and waits for it. Idempotent.
    fn shut_down(&self) -> Result<(), StoreError> {
        let Some(handle) = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return Ok(());
        };
        let (reply, answer) = crossbeam_channel::bounded(1);
        let result = match self.commands.send(Command::Shutdown(reply)) {
            Ok(()) => answer.recv().unwrap_or_else(|_| Err(StoreError::writer_gone(&self.db_path))),
            Err(_) => Err(StoreError::writer_gone(&self.db_path)),
        };
        if handle.join().is_err() {
            return Err(StoreError::writer_gone(&self.db_path));
        }
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(err) = self.shut_down() {
            tracing::error!(error = %err, "closing the store");
        }
    }
}

/// Creates `<root>/.acas/` if needed and its `.gitignore` rule, after checking that neither it
/// nor the database in it is something else than a directory and a file. Links are refused, not
/// followed: a cloned repository can carry a `.acas` (or a file in it) that points elsewhere,
/// and ACAS must not write outside the workspace.
/// Where the user's cache keeps the symbol index of the workspace at `root`:
/// `$XDG_CACHE_HOME/acas/index/<first 16 hex digits of the SHA-256 of the root's path>.db`,
/// else under `~/.cache`; `None` when neither variable is set.
pub fn index_cache_path(root: &Path) -> Option<PathBuf> {
    use sha2::Digest;
    let cache =
        std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()).map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".cache"))
        })?;
    let hash = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    let name: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Some(cache.join("acas").join("index").join(format!("{name}.db")))
}

fn prepare_dir(root: &Path) -> Result<PathBuf, StoreError> {
    let dir = root.join(".acas");
    if exists(&dir)? {
        check_dir(&dir)?;
        check_db_files(&dir)?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, &e))?;
    // Created by someone else between the checks and here: check again.
    check_dir(&dir)?;
    ensure_ignored(&dir.join(".gitignore"))?;
    Ok(dir)
}

/// Whether something is at `path`; a link counts as itself, even when it points nowhere.
fn exists(path: &Path) -> Result<bool, StoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io("look at", path, &e)),
    }
}

/// Whether `path` is a symbolic link.
fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

fn link_refused(path: &Path) -> StoreError {
    StoreError::new(
        StoreErrorKind::Io,
        format!(
            "{} is a symbolic link: ACAS does not follow links for its state, so that it never \
             writes outside the workspace; replace the link with a real directory or file (or \
             remove it) and run ACAS again",
            path.display()
        ),
    )
}

fn check_dir(dir: &Path) -> Result<(), StoreError> {
    if is_link(dir) {
        return Err(link_refused(dir));
    }
    if dir.is_dir() {
        return Ok(());
    }
    Err(StoreError::new(
        StoreErrorKind::Io,
        format!(
            "{} is not a directory: ACAS keeps its state (configuration, workflows, state.db) in a \
             directory of that name; move the file aside and run ACAS again",
            dir.display()
        ),
    ))
}

/// Checks the database and the companions SQLite writes next to it: none may be a link, and
/// the database, when present, must be a file.
fn check_db_files(dir: &Path) -> Result<(), StoreError> {
    for companion in ["-wal", "-shm", "-journal"] {
        let path = dir.join(format!("{DB_FILE}{companion}"));
        if is_link(&path) {
            return Err(link_refused(&path));
        }
    }
    let db = dir.join(DB_FILE);
    if exists(&db)? {
        check_file(&db)?;
    }
    Ok(())
}

fn check_file(db: &Path) -> Result<(), StoreError> {
    if is_link(db) {
        return Err(link_refused(db));
    }
    if db.is_file() {
        return Ok(());
    }
    Err(StoreError::new(
        StoreErrorKind::Io,
        format!(
            "{} is not a file: it should be the ACAS database; move it aside and run ACAS again, \
             which creates a new one",
            db.display()
        ),
    ))
}

/// Makes sure the `.gitignore` at `path` contains [`IGNORE_RULE`], creating the file or
/// appending the rule, and never duplicating it.
fn ensure_ignored(path: &Path) -> Result<(), StoreError> {
    if is_link(path) {
        return Err(link_refused(path));
    }
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(StoreError::io("read", path, &e)),
    };
    let addition = match &existing {
        Some(text) if text.lines().any(|line| line.trim() == IGNORE_RULE) => return Ok(()),
        Some(text) if !text.is_empty() && !text.ends_with('\n') => format!("\n{IGNORE_RULE}\n"),
        _ => format!("{IGNORE_RULE}\n"),
    };
    // A link put there since the check above is not followed either.
    OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .and_then(|mut file| file.write_all(addition.as_bytes()))
        .map_err(|e| StoreError::io("write", path, &e))
}

/// Runs the integrity check of the database at `db_path` on a thread of its own, so that opening
/// does not wait for a read of the whole file; a damaged database is logged as an error with the
/// way out. The operations that meet a damaged page fail with the same message.
fn spawn_integrity_check(db_path: &Path, busy_timeout: Duration) {
    let path = db_path.to_owned();
    let spawned = std::thread::Builder::new().name("acas-store-check".to_owned()).spawn(move || {
        match schema::check_integrity(&path, busy_timeout) {
            Ok(()) => tracing::debug!(path = %path.display(), "the store passed its integrity check"),
            Err(error) if error.kind() == StoreErrorKind::Corrupt => {
                tracing::error!(%error, "the store failed its integrity check")
            }
            Err(error) => tracing::warn!(%error, "the store's integrity check did not run to the end"),
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start the store's integrity check");
    }
}
