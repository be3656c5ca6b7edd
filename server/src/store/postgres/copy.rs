//! Copying a workspace's SQLite history into the shared store (`acas store migrate`).
//!
//! [`copy_workspace`] reads `.acas/state.db` in batches and writes each batch in one
//! transaction, keyed so that copying again adds nothing: provider calls by their id (calls
//! still `reserved` are left out: in flight, or left by a crash, they would hold spend that was
//! never made; so are calls with a negative amount, dated more than [`FUTURE_SKEW_MS`] ahead,
//! or recorded for another user than the one migrating: they would move the team's budgets), cached replies by their key (the shared store's reply wins when both have one),
//! tasks by their origin (this machine, the workspace's path and the task's local id), with
//! their path locks when the task is new and their dependencies between copied tasks. Tasks get
//! new ids in the shared queue. What the shared store has no table for is counted and named as
//! not copied ([`NOT_COPIED`]). Text PostgreSQL cannot hold (NULs, bytes that are not UTF-8)
//! is copied with U+FFFD in their place; a row the shared store still refuses is rolled back
//! alone (a savepoint per row), counted as skipped and named by its table and key. It reports progress after each batch; it never prints, and the
//! database is named only by its masked URL.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Fail, PgStore};
use crate::store::budget::FUTURE_SKEW_MS;
use crate::store::error::{StoreError, StoreErrorKind};

/// Rows read and written per transaction.
const BATCH: i64 = 500;

/// What stays in the workspace's SQLite: (table, what it holds).
pub const NOT_COPIED: &[(&str, &str)] = &[
    ("fix_outcome", "fix outcomes (the shared store has no table for them yet)"),
    ("problem", "problem history"),
    ("activity", "activity"),
    ("workflow_run", "workflow runs"),
    ("audit_log", "audit log records"),
    ("symbol_file", "symbol index files"),
    ("policy_approval", "policy approvals"),
];

/// How far a copy is: `done` of `total` rows of `table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub table: &'static str,
    pub done: u64,
    pub total: u64,
}

/// What happened to one table's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    pub table: &'static str,
    /// Rows read from the workspace.
    pub read: u64,
    /// Rows written to the shared store.
    pub copied: u64,
    /// Rows the shared store already had (copied before, or the same key from elsewhere).
    pub already: u64,
    /// Rows left out, and why: each reason with its count, joined.
    pub skipped: u64,
    pub skipped_why: Option<String>,
    /// Rows the shared store refused, each as "key: why" (the first [`FAILED_SHOWN`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

/// How many refused rows a summary names, per table.
pub const FAILED_SHOWN: usize = 20;

impl Copied {
    /// Counts rows the shared store refused, naming the first ones.
    fn refused(&mut self, failures: Vec<(String, String)>, reasons: &mut Vec<(&'static str, u64)>) {
        for (key, why) in failures {
            self.skip("refused by the shared store", reasons);
            if self.failed.len() < FAILED_SHOWN {
                let key: String = key.chars().take(120).collect();
                self.failed.push(format!("{}: {key}: {why}", self.table));
            }
        }
    }

    /// Counts one row left out for `why`.
    fn skip(&mut self, why: &'static str, reasons: &mut Vec<(&'static str, u64)>) {
        self.skipped += 1;
        match reasons.iter_mut().find(|(r, _)| *r == why) {
            Some((_, n)) => *n += 1,
            None => reasons.push((why, 1)),
        }
        let text: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        self.skipped_why = Some(text.join("; "));
    }
}

/// Why a provider call read from SQLite is not fit for the shared ledger, if it is not.
fn insane_call(row: &CallRow, user: &str, now_ms: i64) -> Option<&'static str> {
    if row.values.5 == "reserved" {
        return Some("still reserved: in flight, or left by a crash");
    }
    if row.numbers.iter().any(|n| *n < 0) || row.latency_ms.is_some_and(|n| n < 0) {
        return Some("with a negative cost, reservation or token count");
    }
    if row.values.0 < 0 || row.values.0 > now_ms + FUTURE_SKEW_MS {
        return Some("dated in the future or before 1970");
    }
    if row.user.as_deref().is_some_and(|u| u != user) {
        return Some("recorded for another user (that user's own migrate copies them)");
    }
    None
}

/// A table the shared store does not hold, with its rows in this workspace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotCopied {
    pub table: &'static str,
    pub what: &'static str,
    pub rows: u64,
}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub copied: Vec<Copied>,
    pub not_copied: Vec<NotCopied>,
}

/// Copies the history of the workspace at `root` into `to`, under `to`'s repository identity;
/// see the module's doc. `progress` hears after each batch.
pub fn copy_workspace(
    root: &Path,
    to: &PgStore,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Summary, StoreError> {
    let (conn, db_path) = crate::store::connect_workspace(root, Duration::from_secs(5))?;
    let sqlite = |e: rusqlite::Error| {
        StoreError::new(
            StoreErrorKind::Database,
            format!("could not read {} to copy it: {e}; run `acas check-state` on it", db_path.display()),
        )
    };
    let origin = origin_of(root);
    let mut summary = Summary::default();
    summary.copied.push(copy_calls(&conn, to, progress).map_err(|e| e.or_sqlite(&sqlite))?);
    summary.copied.push(copy_cache(&conn, to, progress).map_err(|e| e.or_sqlite(&sqlite))?);
    let (tasks, locks, needs) = copy_tasks(&conn, to, &origin, progress).map_err(|e| e.or_sqlite(&sqlite))?;
    summary.copied.extend([tasks, locks, needs]);
    for &(table, what) in NOT_COPIED {
        let rows = count(&conn, table).map_err(sqlite)?;
        summary.not_copied.push(NotCopied { table, what, rows });
    }
    Ok(summary)
}

/// A failure of the copy: reading SQLite or writing PostgreSQL.
enum CopyError {
    Sqlite(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for CopyError {
    fn from(e: rusqlite::Error) -> CopyError {
        CopyError::Sqlite(e)
    }
}

impl From<StoreError> for CopyError {
    fn from(e: StoreError) -> CopyError {
        CopyError::Store(e)
    }
}

impl CopyError {
    fn or_sqlite(self, sqlite: &dyn Fn(rusqlite::Error) -> StoreError) -> StoreError {
        match self {
            CopyError::Sqlite(e) => sqlite(e),
            CopyError::Store(e) => e,
        }
    }
}

/// Where this workspace's tasks come from: this machine and the workspace's path, so that
/// another clone's tasks are other tasks.
fn origin_of(root: &Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    format!("{}:{}", super::identity::host(), root.display())
}

fn count(conn: &Connection, table: &str) -> rusqlite::Result<u64> {
    let exists: Option<String> = conn
        .query_row("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Ok(0);
    }
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
}

/// Text as the shared store takes it: invalid UTF-8 and NULs (PostgreSQL's text has none)
/// become U+FFFD.
fn clean(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}")
}

/// Column `i` as text, cleaned; any other type as `rusqlite` reads it (an error if it is not).
fn text(r: &Row, i: usize) -> rusqlite::Result<String> {
    match r.get_ref(i)? {
        ValueRef::Text(bytes) => Ok(clean(bytes)),
        _ => r.get(i),
    }
}

/// [`text`] of a column that may be NULL.
fn opt_text(r: &Row, i: usize) -> rusqlite::Result<Option<String>> {
    match r.get_ref(i)? {
        ValueRef::Text(bytes) => Ok(Some(clean(bytes))),
        _ => r.get(i),
    }
}

/// Runs one row's statements in a savepoint: a row the shared store refuses is rolled back and
/// named in `failures`, and the rest of the batch goes on.
macro_rules! per_row {
    ($tx:expr, $failures:expr, $key:expr, |$sp:ident| $body:expr) => {{
        let $sp = $tx.savepoint("copy_row").await?;
        let result: Result<_, tokio_postgres::Error> = async { $body }.await;
        match result {
            Ok(value) => {
                $sp.commit().await?;
                Some(value)
            }
            Err(e) => {
                $sp.rollback().await?;
                $failures
                    .push(($key, e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned())));
                None
            }
        }
    }};
}

/// One provider call as read from SQLite.
struct CallRow {
    id: String,
    user: Option<String>,
    values: (i64, String, String, Option<String>, Option<String>, String),
    numbers: [i64; 5],
    latency_ms: Option<i64>,
    error: Option<String>,
}

fn copy_calls(
    conn: &Connection,
    to: &PgStore,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Copied, CopyError> {
    let table = "provider_call";
    let total = count(conn, table)?;
    let mut done = Copied { table, ..Default::default() };
    let mut reasons = Vec::new();
    let now_ms = crate::time::now_ms();
    let mut after = 0i64;
    loop {
        let mut statement = conn.prepare(
            "SELECT id, user_name, at_ms, provider, model, fingerprint, category, status, reserved_micros,
                    input_tokens, output_tokens, cached_input_tokens, cost_micros, latency_ms, error, rowid
             FROM provider_call WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        )?;
        let rows: Vec<(i64, CallRow)> = statement
            .query_map(params![after, BATCH], |r| {
                Ok((
                    r.get(15)?,
                    CallRow {
                        id: text(r, 0)?,
                        user: opt_text(r, 1)?,
                        values: (
                            r.get(2)?,
                            text(r, 3)?,
                            text(r, 4)?,
                            opt_text(r, 5)?,
                            opt_text(r, 6)?,
                            text(r, 7)?,
                        ),
                        numbers: [r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?],
                        latency_ms: r.get(13)?,
                        error: opt_text(r, 14)?,
                    },
                ))
            })?
            .collect::<Result<_, _>>()?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        let rows: Vec<CallRow> = rows.into_iter().map(|(_, row)| row).collect();
        done.read += rows.len() as u64;
        let identity = to.identity().clone();
        let rows: Vec<CallRow> = rows
            .into_iter()
            .filter(|row| match insane_call(row, &identity.user, now_ms) {
                Some(why) => {
                    done.skip(why, &mut reasons);
                    false
                }
                None => true,
            })
            .collect();
        let (written, failures) = to.run("copy AI calls", move |pool| async move {
            let mut client = pool.get().await?;
            let mut tx = client.transaction().await?;
            let mut written = 0u64;
            let mut failures = Vec::new();
            for row in &rows {
                let (at_ms, provider, model, fingerprint, category, status) = &row.values;
                let [reserved, input, output, cached, cost] = &row.numbers;
                let user = row.user.as_deref().unwrap_or(&identity.user);
                written += per_row!(tx, failures, row.id.clone(), |sp| sp
                    .execute(
                        "INSERT INTO provider_call (id, repository, user_name, at_ms, provider, model,
                             fingerprint, category, status, reserved_micros, input_tokens, output_tokens,
                             cached_input_tokens, cost_micros, latency_ms, error)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                         ON CONFLICT (id) DO NOTHING",
                        &[
                            &row.id,
                            &identity.repository,
                            &user,
                            at_ms,
                            provider,
                            model,
                            fingerprint,
                            category,
                            status,
                            reserved,
                            input,
                            output,
                            cached,
                            cost,
                            &row.latency_ms,
                            &row.error,
                        ],
                    )
                    .await)
                .unwrap_or(0);
            }
            tx.commit().await?;
            Ok::<_, Fail>((written, failures))
        })?;
        done.copied += written;
        done.refused(failures, &mut reasons);
        done.already = done.read - done.skipped - done.copied;
        progress(&Progress { table, done: done.read, total });
    }
    Ok(done)
}

fn copy_cache(
    conn: &Connection,
    to: &PgStore,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Copied, CopyError> {
    let table = "cache_entry";
    let total = count(conn, table)?;
    let mut done = Copied { table, ..Default::default() };
    let mut reasons = Vec::new();
    let mut after = 0i64;
    loop {
        type Entry = (String, i64, String, String, String, String);
        let mut statement = conn.prepare(
            "SELECT key, at_ms, fingerprint, model, provider, reply, rowid FROM cache_entry
             WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        )?;
        let rows: Vec<(i64, Entry)> = statement
            .query_map(params![after, BATCH], |r| {
                Ok((r.get(6)?, (text(r, 0)?, r.get(1)?, text(r, 2)?, text(r, 3)?, text(r, 4)?, text(r, 5)?)))
            })?
            .collect::<Result<_, _>>()?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        let rows: Vec<Entry> = rows.into_iter().map(|(_, row)| row).collect();
        done.read += rows.len() as u64;
        let (written, failures) = to.run("copy cached AI replies", move |pool| async move {
            let mut client = pool.get().await?;
            let mut tx = client.transaction().await?;
            let mut written = 0u64;
            let mut failures = Vec::new();
            for (key, at_ms, fingerprint, model, provider, reply) in &rows {
                written += per_row!(tx, failures, key.clone(), |sp| sp
                    .execute(
                        "INSERT INTO cache_entry (key, at_ms, fingerprint, model, provider, reply)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING",
                        &[key, at_ms, fingerprint, model, provider, reply],
                    )
                    .await)
                .unwrap_or(0);
            }
            tx.commit().await?;
            Ok::<_, Fail>((written, failures))
        })?;
        done.copied += written;
        done.refused(failures, &mut reasons);
        done.already = done.read - done.copied - done.skipped;
        progress(&Progress { table, done: done.read, total });
    }
    Ok(done)
}

/// One task as read from SQLite, with its path locks.
struct TaskRow {
    id: i64,
    texts: [String; 6],
    optional: [Option<String>; 3],
    numbers: [i64; 4],
    times: [Option<i64>; 6],
    labels: Vec<String>,
    paths: Vec<String>,
    locks: Vec<(String, String, i64)>,
}

fn copy_tasks(
    conn: &Connection,
    to: &PgStore,
    origin: &str,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Copied, Copied, Copied), CopyError> {
    let table = "task";
    let total = count(conn, table)?;
    let mut tasks = Copied { table, ..Default::default() };
    let mut locks = Copied { table: "task_lock", ..Default::default() };
    let mut after = 0i64;
    let mut reasons = Vec::new();
    let json = |text: String| serde_json::from_str::<Vec<String>>(&text).unwrap_or_default();
    loop {
        let mut statement = conn.prepare(
            "SELECT id, title, description, type, state, source, created_by, fingerprint, agent, last_error,
                    priority, attempts, max_attempts, created_ms, updated_ms, claimed_ms, heartbeat_ms,
                    lease_until_ms, retry_at_ms, finished_ms, labels, paths
             FROM task WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut rows: Vec<TaskRow> = statement
            .query_map(params![after, BATCH], |r| {
                Ok(TaskRow {
                    id: r.get(0)?,
                    texts: [text(r, 1)?, text(r, 2)?, text(r, 3)?, text(r, 4)?, text(r, 5)?, text(r, 6)?],
                    optional: [opt_text(r, 7)?, opt_text(r, 8)?, opt_text(r, 9)?],
                    numbers: [r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?],
                    times: [r.get(14)?, r.get(15)?, r.get(16)?, r.get(17)?, r.get(18)?, r.get(19)?],
                    labels: json(text(r, 20)?),
                    paths: json(text(r, 21)?),
                    locks: Vec::new(),
                })
            })?
            .collect::<Result<_, _>>()?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        let mut read_locks =
            conn.prepare("SELECT agent, glob, acquired_ms FROM task_lock WHERE task = ?1 ORDER BY id")?;
        for row in &mut rows {
            row.locks = read_locks
                .query_map([row.id], |r| Ok((text(r, 0)?, text(r, 1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
        }
        tasks.read += rows.len() as u64;
        locks.read += rows.iter().map(|r| r.locks.len() as u64).sum::<u64>();
        let repository = to.identity().repository.clone();
        let origin = origin.to_owned();
        let (new_tasks, new_locks, failures) = to.run("copy tasks", move |pool| async move {
            let mut client = pool.get().await?;
            let mut tx = client.transaction().await?;
            let (mut new_tasks, mut new_locks) = (0u64, 0u64);
            let mut failures = Vec::new();
            for row in &rows {
                let [title, description, kind, state, source, created_by] = &row.texts;
                let [fingerprint, agent, last_error] = &row.optional;
                let [priority, attempts, max_attempts, created_ms] = &row.numbers;
                let [updated_ms, claimed_ms, heartbeat_ms, lease_until_ms, retry_at_ms, finished_ms] = &row.times;
                let task_origin = format!("{origin}#{}", row.id);
                let copied = per_row!(tx, failures, format!("task {}", row.id), |sp| {
                let inserted = sp
                    .query_opt(
                        "INSERT INTO task (repository, origin, title, description, kind, priority, labels, paths,
                             state, source, fingerprint, created_by, created_ms, updated_ms, agent, claimed_ms,
                             heartbeat_ms, lease_until_ms, attempts, max_attempts, retry_at_ms, last_error,
                             finished_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                             $16, $17, $18, $19, $20, $21, $22, $23)
                         ON CONFLICT (repository, origin) WHERE origin IS NOT NULL DO NOTHING
                         RETURNING id",
                        &[
                            &repository,
                            &task_origin,
                            title,
                            description,
                            kind,
                            priority,
                            &row.labels,
                            &row.paths,
                            state,
                            source,
                            fingerprint,
                            created_by,
                            created_ms,
                            &updated_ms.unwrap_or(*created_ms),
                            agent,
                            claimed_ms,
                            heartbeat_ms,
                            lease_until_ms,
                            &(*attempts as i32),
                            &(*max_attempts as i32),
                            retry_at_ms,
                            last_error,
                            finished_ms,
                        ],
                    )
                    .await?;
                let Some(inserted) = inserted else { return Ok(None) };
                let id: i64 = inserted.get(0);
                let mut added = 0u64;
                for (agent, glob, acquired_ms) in &row.locks {
                    added += sp
                        .execute(
                            "INSERT INTO task_lock (task, glob, agent, acquired_ms) VALUES ($1, $2, $3, $4)",
                            &[&id, glob, agent, acquired_ms],
                        )
                        .await?;
                }
                Ok(Some(added))
                });
                if let Some(Some(added)) = copied {
                    new_tasks += 1;
                    new_locks += added;
                }
            }
            tx.commit().await?;
            Ok::<_, Fail>((new_tasks, new_locks, failures))
        })?;
        tasks.copied += new_tasks;
        tasks.refused(failures, &mut reasons);
        tasks.already = tasks.read - tasks.copied - tasks.skipped;
        locks.copied += new_locks;
        locks.already = locks.read - locks.copied;
        progress(&Progress { table, done: tasks.read, total });
    }
    let needs = copy_needs(conn, to, origin)?;
    Ok((tasks, locks, needs))
}

/// Dependencies between this workspace's tasks, once every task is in the shared queue.
fn copy_needs(conn: &Connection, to: &PgStore, origin: &str) -> Result<Copied, CopyError> {
    let mut statement = conn.prepare("SELECT task, needs FROM task_need ORDER BY task, needs")?;
    let rows: Vec<(i64, i64)> =
        statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    let mut done = Copied { table: "task_need", read: rows.len() as u64, ..Default::default() };
    let repository = to.identity().repository.clone();
    let origin = origin.to_owned();
    let written = to.run("copy task dependencies", move |pool| async move {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let mut written = 0u64;
        for (task, need) in &rows {
            written += tx
                .execute(
                    "INSERT INTO task_need (task, need)
                     SELECT t.id, n.id FROM task t, task n
                     WHERE t.repository = $1 AND t.origin = $2 AND n.repository = $1 AND n.origin = $3
                     ON CONFLICT DO NOTHING",
                    &[&repository, &format!("{origin}#{task}"), &format!("{origin}#{need}")],
                )
                .await?;
        }
        tx.commit().await?;
        Ok::<_, Fail>(written)
    })?;
    done.copied = written;
    done.already = done.read - done.copied;
    Ok(done)
}
