//! The single writer: a dedicated thread that owns the write connection.
//!
//! It takes commands from a bounded channel, drains whatever is queued (up to
//! [`MAX_RECORDS_PER_TRANSACTION`]) and commits it in one transaction with cached prepared
//! statements. A failing transaction is rolled back and retried once; if the retry fails too,
//! its records are dropped, the error is logged and kept for the next [`Command::Flush`], and the
//! thread goes on with the next batch.
//!
//! Besides the activity log and diagnostics history it writes the AI escalation's records:
//! provider calls (upserted by id), cache entries (replaced by key) and fix outcomes (appended),
//! each with its record in the audit log, in the same transaction.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::audit::{self, AuditEvent, AuditKind};
use super::error::{StoreError, StoreErrorKind};
use super::types::{
    AgentEvent, CacheEntry, DiagnosticRecord, EditorEvent, EditorEventKind, FileDiagnostics, FileEvent,
    FileEventKind, FixOutcome, ProviderCall, Record, SYMBOL_TEXTS_KEPT, SymbolFile, SymbolText,
};

/// A transaction stops taking queued batches once it holds this many records, so that one
/// transaction (and the WAL it writes) stays a few megabytes even when the queue is full.
const MAX_RECORDS_PER_TRANSACTION: usize = 50_000;

/// Rows deleted per transaction by [`Writer::prune`], so that pruning a large backlog does not
/// grow the WAL by the whole backlog.
const PRUNE_CHUNK: i64 = 20_000;

pub(super) enum Command {
    Records(Vec<Record>),
    /// Answered once everything queued before it is committed, with the last writer error.
    Flush(Sender<Result<(), StoreError>>),
    /// Answered once everything queued before it is committed (or dropped after a failure),
    /// leaving the last writer error for the next [`Command::Flush`].
    Sync(Sender<()>),
    /// Deletes activity rows and cache entries older than `before_ms`, then vacuums
    /// incrementally. Answers with the number of activity rows deleted.
    Prune {
        before_ms: i64,
        /// Whole audit log segments whose last record is older than this go too.
        audit_before_ms: i64,
        now_ms: i64,
        reply: Sender<Result<u64, StoreError>>,
    },
    /// Commits what is queued, answers with the last writer error and stops the thread.
    Shutdown(Sender<Result<(), StoreError>>),
    /// Runs a function on the write connection once what is queued before it is committed; the
    /// function answers through a channel of its own. For writes whose caller needs the result.
    Call(Box<dyn FnOnce(&Connection) + Send>),
}

/// Why a transaction failed.
enum Failure {
    Sqlite(rusqlite::Error),
    Panic(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Sqlite(e) => e.fmt(f),
            Failure::Panic(message) => write!(f, "panic: {message}"),
        }
    }
}

pub(super) struct Writer {
    conn: Connection,
    db_path: PathBuf,
    busy_timeout: Duration,
    /// The last failure not yet reported through a flush.
    last_error: Option<StoreError>,
}

impl Writer {
    pub(super) fn new(conn: Connection, db_path: PathBuf, busy_timeout: Duration) -> Writer {
        Writer { conn, db_path, busy_timeout, last_error: None }
    }

    /// The thread's body: runs until a [`Command::Shutdown`] or until every sender is gone.
    pub(super) fn run(mut self, commands: Receiver<Command>) {
        let mut batches: Vec<Vec<Record>> = Vec::new();
        let mut waiters: Vec<Sender<Result<(), StoreError>>> = Vec::new();
        let mut syncs: Vec<Sender<()>> = Vec::new();
        while let Ok(first) = commands.recv() {
            let mut pending = 0;
            let mut next = Some(first);
            let mut after_commit = None;
            while let Some(command) = next.take() {
                match command {
                    Command::Records(records) => {
                        pending += records.len();
                        batches.push(records);
                    }
                    Command::Flush(reply) => waiters.push(reply),
                    Command::Sync(reply) => syncs.push(reply),
                    other => {
                        after_commit = Some(other);
                        break;
                    }
                }
                if pending >= MAX_RECORDS_PER_TRANSACTION {
                    break;
                }
                next = commands.try_recv().ok();
            }

            self.commit(&batches, pending);
            batches.clear();
            if !waiters.is_empty() {
                let result = self.take_result();
                for waiter in waiters.drain(..) {
                    let _ = waiter.send(result.clone());
                }
            }
            for sync in syncs.drain(..) {
                let _ = sync.send(());
            }

            match after_commit {
                Some(Command::Prune { before_ms, audit_before_ms, now_ms, reply }) => {
                    let _ = reply.send(self.prune(before_ms, audit_before_ms, now_ms));
                }
                Some(Command::Call(call)) => call(&self.conn),
                Some(Command::Shutdown(reply)) => {
                    self.shut_down();
                    let _ = reply.send(self.take_result());
                    return;
                }
                _ => {}
            }
        }
        self.shut_down();
    }

    fn take_result(&mut self) -> Result<(), StoreError> {
        match self.last_error.take() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn commit(&mut self, batches: &[Vec<Record>], count: usize) {
        if count == 0 {
            return;
        }
        let Err(first) = self.apply_guarded(batches) else {
            super::anchor::update(&self.conn, &self.db_path);
            return;
        };
        tracing::warn!(
            path = %self.db_path.display(),
            records = count,
            error = %first,
            "writing to the store failed; retrying once"
        );
        if let Err(second) = self.apply_guarded(batches) {
            let what = format!("save {count} records (they were dropped)");
            let err = match second {
                Failure::Sqlite(e) => StoreError::sqlite(&what, &self.db_path, self.busy_timeout, &e),
                Failure::Panic(message) => StoreError::new(
                    StoreErrorKind::Sqlite,
                    format!("could not {what}: the writer panicked ({message}); report this as a bug"),
                ),
            };
            tracing::error!(records = count, error = %err, "writing to the store failed twice");
            self.last_error = Some(err);
        }
    }

    /// [`Writer::apply`], with a panic (a bug) turned into an error so that the thread survives
    /// it. The transaction is rolled back while unwinding, so the connection stays usable.
    fn apply_guarded(&self, batches: &[Vec<Record>]) -> Result<(), Failure> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.apply(batches))) {
            Ok(result) => result.map_err(Failure::Sqlite),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".to_owned());
                Err(Failure::Panic(message))
            }
        }
    }

    /// Writes every record of `batches` in one transaction; on error it is rolled back.
    fn apply(&self, batches: &[Vec<Record>]) -> rusqlite::Result<()> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        // Editor `change` rows of this transaction that a following `change` of the same path
        // (with no other editor event of that path in between) is merged into.
        let mut open_changes: HashMap<&str, i64> = HashMap::new();
        // Whether the lease is held under each fence of this transaction, and how many file
        // events were dropped because it is not (another process records them).
        let mut fences: Vec<(&super::Fence, bool)> = Vec::new();
        let mut fenced_off = 0usize;
        for record in batches.iter().flatten() {
            match record {
                Record::File(event) => write_file_event(&tx, event)?,
                Record::FencedFile { fence, event } => {
                    let holds = match fences.iter().find(|(f, _)| *f == fence) {
                        Some(&(_, holds)) => holds,
                        None => {
                            let holds = fence.holds(&tx)?;
                            fences.push((fence, holds));
                            holds
                        }
                    };
                    if holds {
                        write_file_event(&tx, event)?;
                    } else {
                        fenced_off += 1;
                    }
                }
                Record::Editor(event) => {
                    if event.kind != EditorEventKind::Change {
                        open_changes.remove(event.path.as_str());
                        insert_editor_event(&tx, event, None)?;
                    } else if let Some(&id) = open_changes.get(event.path.as_str()) {
                        coalesce_change(&tx, id, event)?;
                    } else {
                        let id = insert_editor_event(&tx, event, Some(1))?;
                        open_changes.insert(&event.path, id);
                    }
                }
                Record::Diagnostics(set) => apply_diagnostics(&tx, set)?,
                Record::ProviderCall(call) => upsert_provider_call(&tx, call)?,
                Record::CacheEntry(entry) => put_cache_entry(&tx, entry)?,
                Record::FixOutcome(outcome) => insert_fix_outcome(&tx, outcome)?,
                Record::Agent(event) => insert_agent_event(&tx, event)?,
                Record::SymbolFile(file) => put_symbol_file(&tx, file)?,
                Record::SymbolFileGone { path } => {
                    tx.prepare_cached("DELETE FROM symbol_file WHERE path = ?1")?.execute([path])?;
                }
                Record::SymbolText(text) => put_symbol_text(&tx, text)?,
            }
        }
        if fenced_off > 0 {
            tracing::info!(
                events = fenced_off,
                "file events not recorded: another ACAS process holds the workspace lease and records them"
            );
        }
        tx.commit()
    }

    /// Deletes old activity in chunks, then returns the freed pages to the file system.
    fn prune(&mut self, before_ms: i64, audit_before_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
        let err = |e: rusqlite::Error| {
            StoreError::sqlite("prune old activity", &self.db_path, self.busy_timeout, &e)
        };
        let audit_segments = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .and_then(|tx| {
                let floor = now_ms.saturating_sub(audit::MIN_PRUNE_AGE.as_millis() as i64);
                let pruned = audit::prune(&tx, audit_before_ms.min(floor), now_ms)?;
                tx.commit().map(|()| pruned)
            })
            .map_err(err)?;
        if audit_segments > 0 {
            super::anchor::update_after_prune(&self.conn, &self.db_path, audit_segments);
        }
        let mut deleted = 0u64;
        loop {
            let n = self
                .conn
                .prepare_cached(
                    "DELETE FROM activity WHERE id IN \
                     (SELECT id FROM activity WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)",
                )
                .and_then(|mut stmt| stmt.execute(params![before_ms, PRUNE_CHUNK]))
                .map_err(err)?;
            deleted += n as u64;
            if (n as i64) < PRUNE_CHUNK {
                break;
            }
        }
        // Provider calls and fix outcomes are history that budgets and reports need: only the
        // cache expires.
        let mut cache_deleted = 0u64;
        loop {
            let n = self
                .conn
                .prepare_cached(
                    "DELETE FROM cache_entry WHERE key IN \
                     (SELECT key FROM cache_entry WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)",
                )
                .and_then(|mut stmt| stmt.execute(params![before_ms, PRUNE_CHUNK]))
                .map_err(err)?;
            cache_deleted += n as u64;
            if (n as i64) < PRUNE_CHUNK {
                break;
            }
        }
        let free_pages: i64 =
            self.conn.query_row("PRAGMA freelist_count", [], |row| row.get(0)).map_err(err)?;
        if free_pages > 0 {
            // Each freed page is one step of the statement: run it to completion.
            let mut stmt =
                self.conn.prepare(&format!("PRAGMA incremental_vacuum({free_pages})")).map_err(err)?;
            let mut rows = stmt.query([]).map_err(err)?;
            while rows.next().map_err(err)?.is_some() {}
        }
        // Give the space the WAL took for the deletions back too. A reader in the middle of a
        // query makes this a partial checkpoint, which is fine.
        if let Err(e) = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "checkpoint after pruning failed");
        }
        tracing::info!(
            path = %self.db_path.display(),
            deleted,
            cache_deleted,
            audit_segments,
            free_pages,
            "pruned old activity and cache entries"
        );
        Ok(deleted)
    }

    fn shut_down(&self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA optimize") {
            tracing::debug!(error = %e, "PRAGMA optimize failed on close");
        }
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn write_file_event(tx: &Transaction, event: &FileEvent) -> rusqlite::Result<()> {
    insert_file_event(tx, event)?;
    if matches!(event.kind, FileEventKind::Deleted | FileEventKind::Renamed) {
        clear_file_diagnostics(tx, &event.path, event.at_ms)?;
    }
    Ok(())
}

fn insert_file_event(tx: &Transaction, event: &FileEvent) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO activity (at_ms, kind, action, path, to_path, size, language)
         VALUES (?1, 'file', ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        event.at_ms,
        event.kind.as_str(),
        event.path,
        event.to_path,
        event.size.map(to_i64),
        event.language,
    ])?;
    Ok(())
}

fn insert_editor_event(tx: &Transaction, event: &EditorEvent, changes: Option<i64>) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO activity (at_ms, kind, action, path, version, language, changes)
         VALUES (?1, 'editor', ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        event.at_ms,
        event.kind.as_str(),
        event.path,
        event.version,
        event.language,
        changes,
    ])?;
    Ok(tx.last_insert_rowid())
}

fn insert_agent_event(tx: &Transaction, event: &AgentEvent) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO activity (at_ms, kind, action, path, detail) VALUES (?1, 'agent', ?2, ?3, ?4)",
    )?
    .execute(params![
        event.at_ms,
        event.tool,
        event.path,
        format!("{}: {}", event.agent, event.summary)
    ])?;
    Ok(())
}

fn coalesce_change(tx: &Transaction, id: i64, event: &EditorEvent) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE activity SET at_ms = max(at_ms, ?2), version = coalesce(?3, version),
             language = coalesce(?4, language), changes = changes + 1
         WHERE id = ?1",
    )?
    .execute(params![id, event.at_ms, event.version, event.language])?;
    Ok(())
}

fn insert_diagnostic_activity(
    tx: &Transaction,
    at_ms: i64,
    action: &str,
    path: &str,
    fingerprint: &str,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO activity (at_ms, kind, action, path, fingerprint, detail)
         VALUES (?1, 'diagnostic', ?2, ?3, ?4, ?5)",
    )?
    .execute(params![at_ms, action, path, fingerprint, detail])?;
    Ok(())
}

/// Whether `fingerprint` is open in `path` from a source other than `source`.
fn open_elsewhere_in_file(
    tx: &Transaction,
    path: &str,
    source: &str,
    fingerprint: &str,
) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM open_diagnostic
                        WHERE path = ?1 AND fingerprint = ?2 AND source <> ?3)",
    )?
    .query_row(params![path, fingerprint, source], |row| row.get(0))
}

/// Diffs one file's new diagnostics set (from one source) against the open ones.
fn apply_diagnostics(tx: &Transaction, set: &FileDiagnostics) -> rusqlite::Result<()> {
    let (path, source, at_ms) = (set.path.as_str(), set.source.as_str(), set.at_ms);

    let previous: Vec<(String, u32, u32)> = tx
        .prepare_cached(
            "SELECT fingerprint, line, character FROM open_diagnostic
             WHERE path = ?1 AND source = ?2",
        )?
        .query_map(params![path, source], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let previous_locations: HashSet<(&str, u32, u32)> =
        previous.iter().map(|(fp, line, character)| (fp.as_str(), *line, *character)).collect();
    let previous_fingerprints: HashSet<&str> = previous_locations.iter().map(|l| l.0).collect();

    let current_locations: HashSet<(&str, u32, u32)> =
        set.diagnostics.iter().map(|d| (d.fingerprint.as_str(), d.line, d.character)).collect();
    // One record per fingerprint, the last one winning, in order of first appearance.
    let mut order: Vec<&str> = Vec::new();
    let mut latest: HashMap<&str, &DiagnosticRecord> = HashMap::new();
    for diagnostic in &set.diagnostics {
        if latest.insert(&diagnostic.fingerprint, diagnostic).is_none() {
            order.push(&diagnostic.fingerprint);
        }
    }

    {
        let mut delete = tx.prepare_cached(
            "DELETE FROM open_diagnostic
             WHERE path = ?1 AND source = ?2 AND fingerprint = ?3 AND line = ?4 AND character = ?5",
        )?;
        for (fp, line, character) in previous_locations.difference(&current_locations) {
            delete.execute(params![path, source, fp, line, character])?;
        }
        let mut insert = tx.prepare_cached(
            "INSERT INTO open_diagnostic (path, source, fingerprint, line, character)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (fp, line, character) in current_locations.difference(&previous_locations) {
            insert.execute(params![path, source, fp, line, character])?;
        }
    }

    for fingerprint in order {
        let d = latest[fingerprint];
        let appeared = !previous_fingerprints.contains(fingerprint)
            && !open_elsewhere_in_file(tx, path, source, fingerprint)?;
        if appeared {
            tx.prepare_cached(
                "INSERT INTO problem (fingerprint, category, severity, message, source, symbol,
                     occurrences, first_seen_ms, last_seen_ms, appeared_ms, resolved_at_ms,
                     last_path)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7, ?7, NULL, ?8)
                 ON CONFLICT (fingerprint) DO UPDATE SET
                     category = excluded.category, severity = excluded.severity,
                     message = excluded.message, source = excluded.source,
                     symbol = excluded.symbol,
                     occurrences = occurrences + 1,
                     last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),
                     appeared_ms = CASE WHEN resolved_at_ms IS NULL THEN appeared_ms
                                        ELSE excluded.appeared_ms END,
                     resolved_at_ms = NULL,
                     last_path = excluded.last_path",
            )?
            .execute(params![
                fingerprint,
                d.category,
                d.severity,
                d.message,
                d.source,
                d.symbol,
                at_ms,
                path
            ])?;
            let detail = format!("{}: {}", d.category, d.message);
            insert_diagnostic_activity(tx, at_ms, "appeared", path, fingerprint, Some(&detail))?;
        } else {
            tx.prepare_cached(
                "UPDATE problem SET category = ?2, severity = ?3, message = ?4, source = ?5,
                     symbol = ?6, last_seen_ms = max(last_seen_ms, ?7), last_path = ?8
                 WHERE fingerprint = ?1",
            )?
            .execute(params![
                fingerprint,
                d.category,
                d.severity,
                d.message,
                d.source,
                d.symbol,
                at_ms,
                path
            ])?;
        }
    }

    let mut gone: Vec<&str> =
        previous_fingerprints.into_iter().filter(|fp| !latest.contains_key(fp)).collect();
    gone.sort_unstable();
    for fingerprint in gone {
        if !open_elsewhere_in_file(tx, path, source, fingerprint)? {
            resolve_in_file(tx, path, fingerprint, at_ms)?;
        }
    }
    Ok(())
}

/// Records that `fingerprint` left `path`, and resolves it if no file has it any more. The
/// caller has already removed the file's open rows.
fn resolve_in_file(tx: &Transaction, path: &str, fingerprint: &str, at_ms: i64) -> rusqlite::Result<()> {
    let detail: Option<String> = tx
        .prepare_cached("SELECT category || ': ' || message FROM problem WHERE fingerprint = ?1")?
        .query_row([fingerprint], |row| row.get(0))
        .optional()?;
    insert_diagnostic_activity(tx, at_ms, "resolved", path, fingerprint, detail.as_deref())?;
    tx.prepare_cached(
        "UPDATE problem SET resolved_at_ms = ?2
         WHERE fingerprint = ?1 AND resolved_at_ms IS NULL
           AND NOT EXISTS (SELECT 1 FROM open_diagnostic WHERE fingerprint = ?1)",
    )?
    .execute(params![fingerprint, at_ms])?;
    Ok(())
}

/// A deleted or renamed-away file has no diagnostics any more: resolve what it had open.
fn clear_file_diagnostics(tx: &Transaction, path: &str, at_ms: i64) -> rusqlite::Result<()> {
    let fingerprints: Vec<String> = tx
        .prepare_cached(
            "SELECT DISTINCT fingerprint FROM open_diagnostic WHERE path = ?1 ORDER BY fingerprint",
        )?
        .query_map([path], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if fingerprints.is_empty() {
        return Ok(());
    }
    tx.prepare_cached("DELETE FROM open_diagnostic WHERE path = ?1")?.execute([path])?;
    for fingerprint in &fingerprints {
        resolve_in_file(tx, path, fingerprint, at_ms)?;
    }
    Ok(())
}

pub(super) fn upsert_provider_call(tx: &Transaction, call: &ProviderCall) -> rusqlite::Result<()> {
    let changed = tx
        .prepare_cached(
            "INSERT INTO provider_call (id, at_ms, provider, model, fingerprint, category, status,
             reserved_micros, input_tokens, output_tokens, cached_input_tokens, cost_micros,
             latency_ms, error, user_name, agent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (id) DO UPDATE SET
             provider = excluded.provider, model = excluded.model,
             fingerprint = excluded.fingerprint, category = excluded.category,
             status = excluded.status, reserved_micros = excluded.reserved_micros,
             input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
             cached_input_tokens = excluded.cached_input_tokens,
             cost_micros = excluded.cost_micros, latency_ms = excluded.latency_ms,
             error = excluded.error, user_name = coalesce(provider_call.user_name, excluded.user_name),
             agent = coalesce(excluded.agent, provider_call.agent)
         WHERE provider_call.status = 'reserved' OR excluded.status <> 'reserved'",
        )?
        .execute(params![
            call.id,
            call.at_ms,
            call.provider,
            call.model,
            call.fingerprint,
            call.category,
            call.status.as_str(),
            to_i64(call.reserved_micros),
            to_i64(call.input_tokens),
            to_i64(call.output_tokens),
            to_i64(call.cached_input_tokens),
            to_i64(call.cost_micros),
            call.latency_ms.map(to_i64),
            call.error,
            call.user,
            call.agent,
        ])?;
    if changed == 0 {
        // A late `reserved` after the call ended: nothing happened.
        return Ok(());
    }
    audit::append(
        tx,
        &AuditEvent {
            at_ms: crate::time::now_ms(),
            kind: AuditKind::Escalation,
            actor: "acas",
            subject: &format!("call {}", call.id),
            detail: serde_json::json!({
                "status": call.status.as_str(),
                "provider": call.provider,
                "model": call.model,
                "fingerprint": call.fingerprint,
                "category": call.category,
                "reserved_micros": call.reserved_micros,
                "cost_micros": call.cost_micros,
                "error": call.error,
            }),
        },
    )?;
    Ok(())
}

pub(super) fn put_cache_entry(tx: &Transaction, entry: &CacheEntry) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO cache_entry (key, at_ms, fingerprint, model, provider, reply)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        entry.key,
        entry.at_ms,
        entry.fingerprint,
        entry.model,
        entry.provider,
        entry.reply
    ])?;
    Ok(())
}

fn put_symbol_file(tx: &Transaction, file: &SymbolFile) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO symbol_file (path, language, hash, size, mtime_ns, indexed_ms, format, entries)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        file.path,
        file.language,
        file.hash,
        file.size,
        file.mtime_ns,
        file.indexed_ms,
        file.format,
        file.entries
    ])?;
    Ok(())
}

fn put_symbol_text(tx: &Transaction, text: &SymbolText) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO symbol_text (hash, language, size, format, entries, stored_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![text.hash, text.language, text.size, text.format, text.entries, text.stored_ms])?;
    tx.prepare_cached(
        "DELETE FROM symbol_text WHERE hash IN
         (SELECT hash FROM symbol_text ORDER BY stored_ms DESC, hash LIMIT -1 OFFSET ?1)",
    )?
    .execute([SYMBOL_TEXTS_KEPT])?;
    Ok(())
}

fn insert_fix_outcome(tx: &Transaction, outcome: &FixOutcome) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO fix_outcome (fix_id, at_ms, fingerprint, category, provider, model, outcome,
             description, old, new, verified)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        outcome.fix_id,
        outcome.at_ms,
        outcome.fingerprint,
        outcome.category,
        outcome.provider,
        outcome.model,
        outcome.outcome.as_str(),
        outcome.description,
        outcome.old,
        outcome.new,
        outcome.verified,
    ])?;
    audit::append(
        tx,
        &AuditEvent {
            at_ms: outcome.at_ms,
            kind: AuditKind::FixOutcome,
            actor: "acas",
            subject: &format!("fix {}", outcome.fix_id),
            detail: serde_json::json!({
                "outcome": outcome.outcome.as_str(),
                "fingerprint": outcome.fingerprint,
                "category": outcome.category,
                "provider": outcome.provider,
                "model": outcome.model,
                "verified": outcome.verified,
            }),
        },
    )?;
    Ok(())
}
