//! Opening the database file safely and bringing its schema up to date.
//!
//! The schema version is `PRAGMA user_version`. [`MIGRATIONS`] is an ordered list: migration `i`
//! takes the schema from version `i` to `i + 1`, and all pending ones run in one transaction. A
//! database from a newer ACAS is refused before anything is written to it, and so is a file that
//! is not an SQLite database or whose header or schema cannot be read. Opening reads only the
//! first pages, so it costs the same whatever the history holds; the whole file is read by
//! [`check_integrity`] (`PRAGMA quick_check`), which the store runs on a thread of its own after
//! opening and `acas check-state` runs on demand.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::error::{StoreError, StoreErrorKind};

/// Schema migrations, oldest first. Never edit a released entry; append a new one.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: activity log and diagnostics history.
    "
    CREATE TABLE activity (
        id          INTEGER PRIMARY KEY,
        at_ms       INTEGER NOT NULL,
        kind        TEXT    NOT NULL,   -- file | editor | diagnostic
        action      TEXT    NOT NULL,   -- created ... close, appeared, resolved
        path        TEXT    NOT NULL,
        to_path     TEXT,               -- file renamed
        size        INTEGER,            -- file
        version     INTEGER,            -- editor
        language    TEXT,               -- file, editor
        changes     INTEGER,            -- editor change: how many were coalesced into this row
        fingerprint TEXT,               -- diagnostic
        detail      TEXT                -- diagnostic: category: message
    );
    CREATE INDEX activity_at ON activity (at_ms);

    CREATE TABLE problem (
        fingerprint    TEXT PRIMARY KEY,
        category       TEXT    NOT NULL,
        severity       TEXT    NOT NULL,
        message        TEXT    NOT NULL,
        source         TEXT    NOT NULL,
        symbol         TEXT,
        occurrences    INTEGER NOT NULL,
        first_seen_ms  INTEGER NOT NULL,
        last_seen_ms   INTEGER NOT NULL,
        appeared_ms    INTEGER NOT NULL,
        resolved_at_ms INTEGER,
        last_path      TEXT    NOT NULL
    );

    -- The diagnostics currently open, per file and publishing source: what the next set is
    -- diffed against.
    CREATE TABLE open_diagnostic (
        path        TEXT    NOT NULL,
        source      TEXT    NOT NULL,
        fingerprint TEXT    NOT NULL,
        line        INTEGER NOT NULL,
        character   INTEGER NOT NULL,
        PRIMARY KEY (path, source, fingerprint, line, character)
    ) WITHOUT ROWID;
    CREATE INDEX open_diagnostic_fingerprint ON open_diagnostic (fingerprint);
    ",
    // 2: AI escalation: provider calls and their cost, the reply cache, fix outcomes.
    "
    -- One row per request to a provider, or refused by a budget, or served from the cache.
    -- A later record with the same id updates the row (reserved -> succeeded ...).
    CREATE TABLE provider_call (
        id                  TEXT    PRIMARY KEY,
        at_ms               INTEGER NOT NULL,   -- when the call was first recorded
        provider            TEXT    NOT NULL,
        model               TEXT    NOT NULL,
        fingerprint         TEXT,
        category            TEXT,
        status              TEXT    NOT NULL,   -- reserved | succeeded | failed | cancelled
                                                -- | refused | cached
        reserved_micros     INTEGER NOT NULL,   -- worst-case estimate, in millionths of a dollar
        input_tokens        INTEGER NOT NULL,
        output_tokens       INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL,
        cost_micros         INTEGER NOT NULL,   -- actual, from the reported usage
        latency_ms          INTEGER,
        error               TEXT
    );
    CREATE INDEX provider_call_at ON provider_call (at_ms);
    CREATE INDEX provider_call_provider_at ON provider_call (provider, at_ms);
    CREATE INDEX provider_call_fingerprint ON provider_call (fingerprint);

    CREATE TABLE cache_entry (
        key         TEXT    PRIMARY KEY,        -- hash of (fingerprint, context hash, model)
        at_ms       INTEGER NOT NULL,
        fingerprint TEXT    NOT NULL,
        model       TEXT    NOT NULL,
        provider    TEXT    NOT NULL,
        reply       TEXT    NOT NULL            -- JSON
    );
    CREATE INDEX cache_entry_at ON cache_entry (at_ms);

    -- Append-only: one row per event of an offered fix.
    CREATE TABLE fix_outcome (
        id          INTEGER PRIMARY KEY,
        fix_id      TEXT    NOT NULL,
        at_ms       INTEGER NOT NULL,
        fingerprint TEXT    NOT NULL,
        category    TEXT    NOT NULL,
        provider    TEXT    NOT NULL,
        model       TEXT    NOT NULL,
        outcome     TEXT    NOT NULL,           -- offered | applied | resolved | reverted
                                                -- | dismissed
        description TEXT,
        old         TEXT,
        new         TEXT
    );
    CREATE INDEX fix_outcome_fingerprint ON fix_outcome (fingerprint, at_ms);
    CREATE INDEX fix_outcome_fix ON fix_outcome (fix_id);
    CREATE INDEX fix_outcome_provider ON fix_outcome (provider, model, category);
    ",
    // 3: workflow runs, their steps, and the audit log of their state changes.
    "
    -- One row per run. `definition` is the workflow file's text when the run started, so that a
    -- resumed or re-run run uses the definition it started with.
    CREATE TABLE workflow_run (
        id                INTEGER PRIMARY KEY,
        workflow          TEXT    NOT NULL,
        file              TEXT    NOT NULL,
        definition_hash   TEXT    NOT NULL,   -- SHA-256 hex of `definition`
        definition        TEXT    NOT NULL,
        trigger           TEXT    NOT NULL,   -- JSON
        inputs            TEXT    NOT NULL,   -- JSON
        status            TEXT    NOT NULL,   -- queued | running | paused | succeeded | failed
                                              -- | cancelled
        control           TEXT,               -- requested by anyone: cancel | pause
        concurrency_group TEXT,
        created_ms        INTEGER NOT NULL,
        started_ms        INTEGER,
        finished_ms       INTEGER,
        error             TEXT,
        rerun_of          INTEGER,
        owner_pid         INTEGER,            -- the process running it
        heartbeat_ms      INTEGER             -- refreshed by that process while it runs
    );
    CREATE INDEX workflow_run_workflow ON workflow_run (workflow, id);
    CREATE INDEX workflow_run_status ON workflow_run (status);
    CREATE INDEX workflow_run_group ON workflow_run (concurrency_group, status);

    CREATE TABLE workflow_step (
        run_id          INTEGER NOT NULL,
        step_id         TEXT    NOT NULL,
        position        INTEGER NOT NULL,     -- index in the definition's `steps`
        status          TEXT    NOT NULL,     -- pending | running | succeeded | failed
                                              -- | skipped | cancelled
        outcome         TEXT,                 -- success | failure | skipped | cancelled
        attempts        INTEGER NOT NULL,
        output          TEXT,                 -- JSON
        error           TEXT,
        started_ms      INTEGER,
        finished_ms     INTEGER,
        next_attempt_ms INTEGER,              -- a retry waits until then
        PRIMARY KEY (run_id, step_id)
    ) WITHOUT ROWID;

    -- Append-only: one row per state change of a run or a step (deleted only with its run, by
    -- retention).
    CREATE TABLE audit (
        id      INTEGER PRIMARY KEY,
        at_ms   INTEGER NOT NULL,
        kind    TEXT    NOT NULL,             -- workflow_run | workflow_step
        run_id  INTEGER,
        step_id TEXT,
        status  TEXT    NOT NULL,
        attempt INTEGER,
        detail  TEXT
    );
    CREATE INDEX audit_run ON audit (run_id);
    ",
    // 4: webhooks: signatures already accepted (replay protection) and the outgoing queue.
    "
    -- One row per accepted incoming webhook signature, kept for the timestamp window so that a
    -- replayed request is refused, across restarts too.
    CREATE TABLE webhook_seen (
        signature TEXT    PRIMARY KEY,          -- hex HMAC-SHA256
        at_ms     INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX webhook_seen_at ON webhook_seen (at_ms);

    -- Outgoing webhooks (plan and run progress), delivered with retries.
    CREATE TABLE outbox (
        id          INTEGER PRIMARY KEY,
        created_ms  INTEGER NOT NULL,
        url         TEXT    NOT NULL,
        secret_env  TEXT,                       -- variable holding the signing secret
        event       TEXT    NOT NULL,           -- plan_generated | task_started | ...
        payload     TEXT    NOT NULL,           -- JSON body
        status      TEXT    NOT NULL,           -- pending | delivered | failed
        attempts    INTEGER NOT NULL,
        next_at_ms  INTEGER NOT NULL,           -- pending: not before
        last_error  TEXT,
        done_ms     INTEGER                     -- delivered or given up
    );
    CREATE INDEX outbox_pending ON outbox (status, next_at_ms);
    ",
    // 5: the lease that makes one process per workspace run the shared work, and the delivery
    // ids of accepted GitHub webhooks.
    "
    -- At most one row per name: the process that holds the lease, and when it last said so.
    CREATE TABLE lease (
        name         TEXT    PRIMARY KEY,       -- workspace
        holder       TEXT    NOT NULL,          -- unique per process: host, pid, start time
        pid          INTEGER NOT NULL,
        host         TEXT    NOT NULL,
        acquired_ms  INTEGER NOT NULL,
        heartbeat_ms INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- One row per accepted `X-GitHub-Delivery` id (GitHub signs no timestamp, so the delivery id
    -- is what a replay repeats).
    CREATE TABLE webhook_delivery (
        delivery TEXT    PRIMARY KEY,
        at_ms    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX webhook_delivery_at ON webhook_delivery (at_ms);
    ",
    // 6: accepted webhook requests not yet turned into runs, written with their replay record.
    "
    -- AUTOINCREMENT: an id is never given twice, so a run started for one can never be
    -- mistaken for the run of a later request.
    CREATE TABLE webhook_inbox (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        workflow TEXT    NOT NULL,
        trigger  TEXT    NOT NULL,              -- the run's trigger, JSON
        inputs   TEXT    NOT NULL,              -- the run's inputs, JSON object
        at_ms    INTEGER NOT NULL
    );
    ",
    // 7: how each fix was verified when the event happened: `parses` (applied in memory, every
    // file reparsed), `checker:NAME` (the checker that reported the error ran on a scratch copy
    // with the fix and no longer reported it), `checker-failed:NAME` (it still did, or reported
    // new errors).
    "
    ALTER TABLE fix_outcome ADD COLUMN verified TEXT;
    ",
    // The hash-chained audit log of every system event, and the agents' claimable tasks with
    // their dependencies and path locks.
    "
    -- Append-only, hash-chained (see store/audit.rs): each record's hash covers the previous
    -- record's hash and its own content. Numbered from 1 without gaps.
    CREATE TABLE audit_log (
        seq       INTEGER PRIMARY KEY,
        at_ms     INTEGER NOT NULL,
        kind      TEXT    NOT NULL,             -- escalation | fix_outcome | workflow_run | ...
        actor     TEXT    NOT NULL,             -- acas | an agent's name | user
        subject   TEXT    NOT NULL,
        detail    TEXT    NOT NULL,             -- JSON
        prev_hash TEXT    NOT NULL,             -- hex SHA-256
        hash      TEXT    NOT NULL
    );
    CREATE INDEX audit_log_at ON audit_log (at_ms);

    -- One row: the number and hash of the last record appended.
    CREATE TABLE audit_head (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        seq  INTEGER NOT NULL,
        hash TEXT    NOT NULL
    );

    -- Segments of the log removed by retention: their bounds and final hash, from which the
    -- remaining records verify.
    CREATE TABLE audit_segment (
        segment     INTEGER PRIMARY KEY,
        first_seq   INTEGER NOT NULL,
        last_seq    INTEGER NOT NULL,
        first_at_ms INTEGER NOT NULL,
        last_at_ms  INTEGER NOT NULL,
        last_hash   TEXT    NOT NULL,
        pruned_ms   INTEGER NOT NULL
    );

    CREATE TABLE task (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        title          TEXT    NOT NULL,
        description    TEXT    NOT NULL,
        type           TEXT    NOT NULL,        -- fix | feature | refactor | test | docs | chore | other
        priority       INTEGER NOT NULL,        -- higher first
        labels         TEXT    NOT NULL,        -- JSON array: what a claiming agent must offer
        paths          TEXT    NOT NULL,        -- JSON array of globs, locked while claimed
        state          TEXT    NOT NULL,        -- queued | claimed | running | blocked | done | failed
        source         TEXT    NOT NULL,        -- cli | problem | agent | plan
        fingerprint    TEXT,                    -- from a problem
        created_by     TEXT    NOT NULL,
        created_ms     INTEGER NOT NULL,
        updated_ms     INTEGER NOT NULL,
        agent          TEXT,                    -- claimed | running: the holder
        claimed_ms     INTEGER,
        heartbeat_ms   INTEGER,
        lease_until_ms INTEGER,
        attempts       INTEGER NOT NULL,        -- failures so far
        max_attempts   INTEGER NOT NULL,
        retry_at_ms    INTEGER,                 -- queued after a failure: not before
        last_error     TEXT,
        finished_ms    INTEGER
    );
    CREATE INDEX task_state ON task (state, priority);
    CREATE INDEX task_fingerprint ON task (fingerprint);

    -- Dependencies: `task` waits for `needs` to be done.
    CREATE TABLE task_need (
        task  INTEGER NOT NULL,
        needs INTEGER NOT NULL,
        PRIMARY KEY (task, needs)
    ) WITHOUT ROWID;
    CREATE INDEX task_need_needs ON task_need (needs);

    -- Path locks: globs held by a claimed task's agent until the task's lease ends.
    CREATE TABLE task_lock (
        id          INTEGER PRIMARY KEY,
        task        INTEGER NOT NULL,
        agent       TEXT    NOT NULL,
        glob        TEXT    NOT NULL,
        acquired_ms INTEGER NOT NULL
    );
    CREATE INDEX task_lock_task ON task_lock (task);
    ",
    // The symbol index of the context builder, per file, so that a restart or `acas explain`
    // re-indexes only what changed. Rows are a cache: a row that does not read back whole is
    // indexed again from the file, never used.
    "
    CREATE TABLE IF NOT EXISTS symbol_file (
        path       TEXT    PRIMARY KEY,         -- workspace-relative
        language   TEXT    NOT NULL,            -- rust | python | typescript | ...
        hash       TEXT    NOT NULL,            -- SHA-256 hex of the text that was indexed
        size       INTEGER NOT NULL,            -- bytes of the file when it was indexed
        mtime_ns   INTEGER NOT NULL,            -- its modification time, in nanoseconds
        indexed_ms INTEGER NOT NULL,
        format     INTEGER NOT NULL,            -- version of the encoding of `entries`
        entries    TEXT    NOT NULL             -- JSON: the file's definitions
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS symbol_file_language ON symbol_file (language);
    ",
    // Approvals a policy asked for: pending until a person answers (the editor, `acas approve`),
    // the wait runs out or the one waiting gives up.
    "
    CREATE TABLE policy_approval (
        id          INTEGER PRIMARY KEY,
        created_ms  INTEGER NOT NULL,
        agent       TEXT    NOT NULL,
        action      TEXT    NOT NULL,            -- what is asked for, in a few words
        rule        TEXT,                        -- file:line: text of the rule that asked
        reason      TEXT    NOT NULL,
        expires_ms  INTEGER NOT NULL,
        state       TEXT    NOT NULL,            -- pending | approved | denied | expired | cancelled
        answered_by TEXT,
        answered_ms INTEGER
    );
    CREATE INDEX policy_approval_state ON policy_approval (state);
    ",
    // Who asked for each AI call, so that per-user limits add up one user's spend. Calls
    // recorded before have none and count for the workspace only.
    "
    ALTER TABLE provider_call ADD COLUMN user_name TEXT;
    CREATE INDEX provider_call_user_at ON provider_call (user_name, at_ms);
    ",
    // The agent a provider call was made for, so that an agent's spend limit counts its own.
    "
    ALTER TABLE provider_call ADD COLUMN agent TEXT;
    CREATE INDEX provider_call_agent_at ON provider_call (agent, at_ms);
    ",
    // The definitions of texts that are not a workspace file as it is now (a file as last
    // committed, which the context builder reads when the current text is broken), by the
    // text's hash, so that each is parsed and tagged once. A cache: a row that does not read
    // back whole is tagged again.
    "
    CREATE TABLE symbol_text (
        hash      TEXT    PRIMARY KEY,          -- SHA-256 hex of the text
        language  TEXT    NOT NULL,
        size      INTEGER NOT NULL,             -- bytes of the text
        format    INTEGER NOT NULL,             -- version of the encoding of `entries`
        entries   TEXT    NOT NULL,             -- JSON: the text's definitions
        stored_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX symbol_text_stored ON symbol_text (stored_ms);
    ",
    // Team mode offline: what must reach the shared store once it can be reached again, what
    // each budget had spent there when it was last seen, and the state of the link.
    "
    -- Append-only: one row per change of an AI call or a cached reply made while the shared store
    -- could not be reached. `key` (the call's id, the cache key) is the idempotency key: the sync
    -- pushes the current local row under it, so pushing twice writes the same row twice.
    CREATE TABLE shared_outbox (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        kind      TEXT    NOT NULL,             -- call | cache
        key       TEXT    NOT NULL,
        queued_ms INTEGER NOT NULL,
        sent_ms   INTEGER,                      -- committed in the shared store, or refused
        refused   TEXT                          -- why the shared store refused it, if it did
    );
    CREATE INDEX shared_outbox_pending ON shared_outbox (seq) WHERE sent_ms IS NULL;
    CREATE INDEX shared_outbox_key ON shared_outbox (kind, key);

    -- Each limit's spend in the shared store when it was last seen (team, user:NAME,
    -- provider:NAME), in the day and month that began at the given times.
    CREATE TABLE shared_seen (
        scope          TEXT    PRIMARY KEY,
        day_start_ms   INTEGER NOT NULL,
        day_micros     INTEGER NOT NULL,
        month_start_ms INTEGER NOT NULL,
        month_micros   INTEGER NOT NULL,
        seen_ms        INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- One row: since when the shared store cannot be reached (NULL: it could, last time),
    -- when it was last reached and when the outbox was last pushed.
    CREATE TABLE shared_link (
        id               INTEGER PRIMARY KEY CHECK (id = 1),
        offline_since_ms INTEGER,
        last_seen_ms     INTEGER,
        last_sync_ms     INTEGER,
        last_error       TEXT
    );
    ",
];

/// The schema version this build writes.
pub(super) const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

/// The first bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Refuses a file that exists, is not empty, and does not start with the SQLite header, without
/// letting SQLite open it (so that no `-wal` or `-shm` file appears beside it).
///
/// Only the first time this process opens `db_path`: closing a descriptor of the file drops
/// every POSIX lock this process holds on it, including the shared locks of its open SQLite
/// connections. Another process closing its last connection would then take this process for
/// gone, checkpoint and delete the WAL this process still writes to, and those writes would be
/// lost to every other reader.
pub(super) fn check_header(db_path: &Path) -> Result<(), StoreError> {
    static CHECKED: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut checked = CHECKED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if checked.iter().any(|p| p == db_path) {
        return Ok(());
    }
    read_header(db_path)?;
    checked.push(db_path.to_path_buf());
    Ok(())
}

fn read_header(db_path: &Path) -> Result<(), StoreError> {
    let mut file = match File::open(db_path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(StoreError::io("read", db_path, &err)),
    };
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    (&mut file)
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)
        .map_err(|err| StoreError::io("read", db_path, &err))?;
    if header.is_empty() || header == SQLITE_HEADER {
        Ok(())
    } else {
        Err(StoreError::corrupt(db_path, "it is not an SQLite database"))
    }
}

/// `PRAGMA auto_vacuum`'s value for INCREMENTAL.
const AUTO_VACUUM_INCREMENTAL: i64 = 2;

/// Opens the write connection: checks the header, the schema and its version, sets the pragmas,
/// migrates. Does not read the whole file: see [`check_integrity`].
pub(super) fn open_writer(db_path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: rusqlite::Error| StoreError::sqlite(&what, db_path, busy_timeout, &e)
    };
    check_header(db_path)?;
    let conn = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err("open the database"))?;
    conn.busy_timeout(busy_timeout).map_err(err("set the busy timeout"))?;

    // Parses the schema: a damaged first page or schema table fails here, as SQLite's own
    // "malformed" or "not a database" error, which `StoreError::sqlite` reports as damaged.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get::<_, i64>(0))
        .map_err(err("read the database schema"))?;
    let version = user_version(&conn).map_err(err("read the schema version"))?;
    if version > LATEST_VERSION {
        return Err(newer_schema(db_path, version));
    }

    // `auto_vacuum` only takes effect before the first table exists, so it goes first, and
    // before `journal_mode`, which writes the database header.
    // Setting `auto_vacuum` is a write transaction (of the header page, with its syncs) even when
    // the value does not change: only a new database, or one made without it, is given it.
    let auto_vacuum: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |row| row.get(0))
        .map_err(err("read the database's settings"))?;
    if auto_vacuum != AUTO_VACUUM_INCREMENTAL {
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;").map_err(err("configure the database"))?;
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(err("configure the database"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(err("switch the database to WAL mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            path = %db_path.display(),
            mode,
            "SQLite refused WAL mode; readers will wait for the writer"
        );
    }

    migrate(&conn, db_path, busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Reads the whole database (`PRAGMA quick_check`) on a read-only connection of its own: a
/// damaged page anywhere gives [`StoreErrorKind::Corrupt`] with the way out. Takes time in
/// proportion to the file; writes nothing.
pub(super) fn check_integrity(db_path: &Path, busy_timeout: Duration) -> Result<(), StoreError> {
    check_header(db_path)?;
    let conn = open_reader(db_path, busy_timeout)?;
    let result: String = conn
        .query_row("PRAGMA quick_check(1)", [], |row| row.get(0))
        .map_err(|e| StoreError::sqlite("check the database", db_path, busy_timeout, &e))?;
    if result != "ok" {
        return Err(StoreError::corrupt(db_path, &format!("integrity check: {result}")));
    }
    Ok(())
}

/// Opens the read-only connection used for queries, once the writer has migrated the schema.
pub(super) fn open_reader(db_path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let err = |e: rusqlite::Error| StoreError::sqlite("open the database", db_path, busy_timeout, &e);
    let conn = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    conn.busy_timeout(busy_timeout).map_err(err)?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

fn migrate(conn: &Connection, db_path: &Path, busy_timeout: Duration) -> Result<(), StoreError> {
    let err =
        |e: rusqlite::Error| StoreError::sqlite("migrate the database schema", db_path, busy_timeout, &e);
    if user_version(conn).map_err(err)? == LATEST_VERSION {
        return Ok(());
    }
    // The transaction is IMMEDIATE and the version read again inside it, so two processes
    // opening the same new database do not both migrate it.
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(err)?;
    let current = user_version(&tx).map_err(err)?;
    if current > LATEST_VERSION {
        return Err(newer_schema(db_path, current));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).map_err(err)?;
        tracing::info!(path = %db_path.display(), version = index + 1, "migrated the store schema");
    }
    tx.pragma_update(None, "user_version", LATEST_VERSION).map_err(err)?;
    tx.commit().map_err(err)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

fn newer_schema(db_path: &Path, version: i64) -> StoreError {
    StoreError::new(
        StoreErrorKind::NewerSchema,
        format!(
            "the ACAS database {} has schema version {version}, newer than the {LATEST_VERSION} \
             this ACAS knows; upgrade ACAS, or move the file aside to start a new history",
            db_path.display()
        ),
    )
}
