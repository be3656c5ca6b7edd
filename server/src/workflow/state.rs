//! Durable workflow state: runs, step runs and the audit log in `.acas/state.db`.
//!
//! Every change is committed before the caller goes on: the engine commits a step `running`
//! (with its attempt counted) before the step's action starts, and a step's result before any
//! dependent sees it. So this module has its own write connection to the database (WAL, busy
//! timeout, the same migrations as [`crate::store`]) rather than the store's batching writer,
//! which does not say when a record is committed. Several changes that happen together (steps
//! that start at once, steps that end at once) go into one transaction; each change also
//! appends a row to `audit` and a record to the hash-chained audit log (`store::audit`).
//!
//! With WAL and `synchronous=NORMAL` a committed transaction survives the process being killed
//! at any moment; only a power loss or an operating-system crash may lose the last commits.
//!
//! Cross-process control: a run's `control` column (`cancel`, `pause`) may be set by any
//! process; the process that owns the run (`owner_pid`, refreshed `heartbeat_ms`) polls it. A
//! run whose owner is gone is *orphaned* and may be claimed by another process, atomically.
//!
//! Calls block for a transaction (microseconds, or up to the busy timeout when another process
//! holds the database).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::Value;

use super::definition::{RunStatus, StepStatus};
use super::error::{WorkflowError, WorkflowErrorKind};
use crate::store::audit::{AuditEvent, AuditKind};
use crate::store::{Fence, StoreError, connect_workspace};

/// A run's id, unique within a workspace's database.
pub type RunId = i64;

/// A heartbeat older than this means the owner is gone even if a process with its pid exists
/// (the pid was reused).
pub const STALE_HEARTBEAT: Duration = Duration::from_secs(60);

/// What someone asked a run to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Cancel,
    Pause,
}

impl Control {
    pub fn as_str(self) -> &'static str {
        match self {
            Control::Cancel => "cancel",
            Control::Pause => "pause",
        }
    }

    fn parse(s: &str) -> Option<Control> {
        match s {
            "cancel" => Some(Control::Cancel),
            "pause" => Some(Control::Pause),
            _ => None,
        }
    }
}

/// How a step ended, as conditions see it (`steps.ID.outcome`). A step that failed under
/// `continue_on_error` has the outcome `failure`, although it does not fail the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Skipped,
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Skipped => "skipped",
            Outcome::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "skipped" => Some(Outcome::Skipped),
            "cancelled" => Some(Outcome::Cancelled),
            _ => None,
        }
    }
}

/// A run as stored (without its definition text; see [`StateDb::definition`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: RunId,
    pub workflow: String,
    pub file: PathBuf,
    pub definition_hash: String,
    pub status: RunStatus,
    pub control: Option<Control>,
    pub concurrency_group: Option<String>,
    pub trigger: Value,
    pub inputs: Value,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub error: Option<String>,
    pub rerun_of: Option<RunId>,
    pub owner_pid: Option<u32>,
    pub heartbeat_ms: Option<i64>,
}

/// A step of a run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub step_id: String,
    /// Index in the definition's `steps`.
    pub position: usize,
    pub status: StepStatus,
    pub outcome: Option<Outcome>,
    /// Attempts started so far (an attempt is counted when it starts).
    pub attempts: u32,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// A failed attempt waits for its retry until then.
    pub next_attempt_ms: Option<i64>,
}

impl StepRecord {
    pub fn pending(step_id: &str, position: usize) -> StepRecord {
        StepRecord {
            step_id: step_id.to_owned(),
            position,
            status: StepStatus::Pending,
            outcome: None,
            attempts: 0,
            output: None,
            error: None,
            started_ms: None,
            finished_ms: None,
            next_attempt_ms: None,
        }
    }
}

/// A run about to be created.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub workflow: &'a str,
    pub file: &'a Path,
    pub definition_hash: &'a str,
    pub definition: &'a str,
    pub trigger: &'a Value,
    pub inputs: &'a Value,
    pub status: RunStatus,
    pub concurrency_group: Option<&'a str>,
    pub rerun_of: Option<RunId>,
    pub owner_pid: u32,
    /// Every step of the definition, in order: pending, or copied from the run re-run.
    pub steps: Vec<StepRecord>,
    /// For a run only the workspace lease's holder may start (a trigger fired): the holder's
    /// token. The run is created only if the lease is still held under it.
    pub fence: Option<&'a Fence>,
    /// For the run of an accepted webhook request: its inbox entry, taken in the same
    /// transaction. The run is not created when the entry is gone (its run was started).
    pub inbox: Option<i64>,
}

/// One state change, committed with others of the same moment in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Sets `started_ms` when the run first becomes `running`, `finished_ms` and clears
    /// `control` when it becomes final.
    Run { run: RunId, status: RunStatus, error: Option<String> },
    /// Writes the step's row as given (`started_ms` is set when it becomes `running`,
    /// `finished_ms` when it becomes final).
    Step { run: RunId, step: StepRecord },
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub at_ms: i64,
    pub kind: String,
    pub run_id: Option<RunId>,
    pub step_id: Option<String>,
    pub status: String,
    pub attempt: Option<u32>,
    pub detail: Option<String>,
}

/// The workflow tables of one workspace's database.
pub struct StateDb {
    conn: Mutex<Connection>,
    path: PathBuf,
    busy_timeout: Duration,
}

const RUN_COLUMNS: &str = "id, workflow, file, definition_hash, status, control, concurrency_group, trigger, \
     inputs, created_ms, started_ms, finished_ms, error, rerun_of, owner_pid, heartbeat_ms";

const STEP_COLUMNS: &str =
    "step_id, position, status, outcome, attempts, output, error, started_ms, finished_ms, next_attempt_ms";

impl StateDb {
    /// Opens (creating if needed) `<root>/.acas/state.db` with a write connection of its own.
    pub fn open_workspace(root: &Path, busy_timeout: Duration) -> Result<StateDb, WorkflowError> {
        let (conn, path) = connect_workspace(root, busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(StateDb { conn: Mutex::new(conn), path, busy_timeout })
    }

    /// Opens `<root>/.acas/state.db` for reading only ([`crate::store::connect_read_only`]): for
    /// a workspace whose state this process cannot write. Every write fails. The note says when
    /// the write-ahead log could not be used.
    pub fn open_read_only(root: &Path) -> Result<(StateDb, Option<String>), WorkflowError> {
        let (conn, path, note) = crate::store::connect_read_only(root)?;
        Ok((StateDb { conn: Mutex::new(conn), path, busy_timeout: Duration::ZERO }, note))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn err(&self, what: &str) -> impl Fn(rusqlite::Error) -> WorkflowError + '_ {
        let what = what.to_owned();
        move |e| StoreError::sqlite(&what, &self.path, self.busy_timeout, &e).into()
    }

    /// Creates a run and its steps in one transaction and returns its id.
    pub fn create_run(&self, new: &NewRun<'_>, now_ms: i64) -> Result<RunId, WorkflowError> {
        let err = self.err("record a new workflow run");
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        if let Some(fence) = new.fence
            && !fence.holds(&tx).map_err(&err)?
        {
            return Err(WorkflowError::new(
                WorkflowErrorKind::Fenced,
                format!(
                    "workflow `{}` was not started: another ACAS process took over this workspace's \
                     triggers (this one lost the workspace lease), and runs them now",
                    new.workflow
                ),
            ));
        }
        if let Some(entry) = new.inbox
            && !crate::store::take_inbox_entry(&tx, entry).map_err(&err)?
        {
            return Err(WorkflowError::new(
                WorkflowErrorKind::Claimed,
                format!(
                    "workflow `{}` was not started for webhook request {entry}: its run was started already",
                    new.workflow
                ),
            ));
        }
        tx.prepare_cached(
            "INSERT INTO workflow_run (workflow, file, definition_hash, definition, trigger, inputs, status, \
             concurrency_group, created_ms, rerun_of, owner_pid, heartbeat_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                new.workflow,
                new.file.to_string_lossy(),
                new.definition_hash,
                new.definition,
                new.trigger.to_string(),
                new.inputs.to_string(),
                new.status.as_str(),
                new.concurrency_group,
                now_ms,
                new.rerun_of,
                new.owner_pid,
            ])
        })
        .map_err(&err)?;
        let id = tx.last_insert_rowid();
        let detail = new.rerun_of.map(|r| format!("re-run of run {r}"));
        audit(&tx, now_ms, "workflow_run", id, None, new.status.as_str(), None, detail.as_deref())
            .map_err(&err)?;
        for step in &new.steps {
            write_step(&tx, id, step, now_ms).map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(id)
    }

    /// Commits `changes` in one transaction, each with its audit row.
    pub fn apply(&self, changes: &[Change], now_ms: i64) -> Result<(), WorkflowError> {
        if changes.is_empty() {
            return Ok(());
        }
        let err = self.err("record workflow progress");
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        for change in changes {
            match change {
                Change::Run { run, status, error } => {
                    write_run_status(&tx, *run, *status, error.as_deref(), now_ms).map_err(&err)?
                }
                Change::Step { run, step } => write_step(&tx, *run, step, now_ms).map_err(&err)?,
            }
        }
        tx.commit().map_err(&err)
    }

    pub fn run(&self, id: RunId) -> Result<Option<RunRecord>, WorkflowError> {
        let conn = self.conn();
        conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM workflow_run WHERE id = ?1"))
            .and_then(|mut s| s.query_row([id], run_row).optional())
            .map_err(self.err("read a workflow run"))
    }

    /// Like [`StateDb::run`], with a `NotFound` error for an unknown id.
    pub fn existing_run(&self, id: RunId) -> Result<RunRecord, WorkflowError> {
        self.run(id)?.ok_or_else(|| {
            WorkflowError::new(
                WorkflowErrorKind::NotFound,
                format!("there is no workflow run {id}; `acas workflow history` lists the runs"),
            )
        })
    }

    /// A number that grows with every change of the run or of one of its steps (the id of its
    /// last audit row), for copies of the run elsewhere to tell a later state from an earlier.
    pub fn version(&self, id: RunId) -> Result<i64, WorkflowError> {
        let conn = self.conn();
        conn.prepare_cached("SELECT coalesce(max(id), 0) FROM audit WHERE run_id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)))
            .map_err(self.err("read a workflow run's version"))
    }

    /// The steps of a run, in definition order.
    pub fn steps(&self, id: RunId) -> Result<Vec<StepRecord>, WorkflowError> {
        let conn = self.conn();
        conn.prepare_cached(&format!(
            "SELECT {STEP_COLUMNS} FROM workflow_step WHERE run_id = ?1 ORDER BY position"
        ))
        .and_then(|mut s| s.query_map([id], step_row)?.collect())
        .map_err(self.err("read the steps of a workflow run"))
    }

    /// The file and the definition text a run started with.
    pub fn definition(&self, id: RunId) -> Result<(PathBuf, String), WorkflowError> {
        let conn = self.conn();
        let found = conn
            .query_row("SELECT file, definition FROM workflow_run WHERE id = ?1", [id], |r| {
                Ok((PathBuf::from(r.get::<_, String>(0)?), r.get::<_, String>(1)?))
            })
            .optional()
            .map_err(self.err("read a workflow run's definition"))?;
        found.ok_or_else(|| {
            WorkflowError::new(WorkflowErrorKind::NotFound, format!("there is no workflow run {id}"))
        })
    }

    /// The run's status and pending request, read fresh (another process may have changed them).
    pub fn control(&self, id: RunId) -> Result<(RunStatus, Option<Control>), WorkflowError> {
        let conn = self.conn();
        conn.prepare_cached("SELECT status, control FROM workflow_run WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok((parse_run_status(&r.get::<_, String>(0)?), r.get::<_, Option<String>>(1)?))
                })
            })
            .map(|(status, control)| (status, control.as_deref().and_then(Control::parse)))
            .map_err(self.err("read a workflow run's status"))
    }

    /// Sets (or clears) the request on a run that is not final. Returns false when the run is
    /// final or unknown.
    pub fn set_control(
        &self,
        id: RunId,
        control: Option<Control>,
        now_ms: i64,
    ) -> Result<bool, WorkflowError> {
        let err = self.err("record a request to a workflow run");
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        let changed = tx
            .execute(
                "UPDATE workflow_run SET control = ?2 \
                 WHERE id = ?1 AND status IN ('queued', 'running', 'paused')",
                params![id, control.map(Control::as_str)],
            )
            .map_err(&err)?;
        if changed > 0 {
            let status = control.map_or("continue", |c| match c {
                Control::Cancel => "cancel requested",
                Control::Pause => "pause requested",
            });
            audit(&tx, now_ms, "workflow_run", id, None, status, None, None).map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(changed > 0)
    }

    /// Makes `pid` the owner of run `id` if its owner is still the one the caller saw
    /// (`seen_pid`, `seen_heartbeat`). Returns false when someone else claimed it first.
    pub fn claim(
        &self,
        id: RunId,
        seen_pid: Option<u32>,
        seen_heartbeat: Option<i64>,
        pid: u32,
        now_ms: i64,
    ) -> Result<bool, WorkflowError> {
        let err = self.err("take over a workflow run");
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        let changed = tx
            .execute(
                "UPDATE workflow_run SET owner_pid = ?2, heartbeat_ms = ?3 \
                 WHERE id = ?1 AND owner_pid IS ?4 AND heartbeat_ms IS ?5 \
                 AND status IN ('queued', 'running', 'paused')",
                params![id, pid, now_ms, seen_pid, seen_heartbeat],
            )
            .map_err(&err)?;
        if changed > 0 {
            let detail = format!("taken over by process {pid}");
            audit(&tx, now_ms, "workflow_run", id, None, "resumed", None, Some(&detail)).map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(changed > 0)
    }

    /// Tells other processes that the owner of `id` is alive.
    pub fn heartbeat(&self, id: RunId, now_ms: i64) -> Result<(), WorkflowError> {
        let conn = self.conn();
        conn.prepare_cached("UPDATE workflow_run SET heartbeat_ms = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, now_ms]))
            .map(drop)
            .map_err(self.err("record that a workflow run is alive"))
    }

    /// Runs that are queued, running or paused, oldest first.
    pub fn unfinished(&self) -> Result<Vec<RunRecord>, WorkflowError> {
        let conn = self.conn();
        conn.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM workflow_run WHERE status IN ('queued', 'running', 'paused') ORDER BY id"
        ))
        .and_then(|mut s| s.query_map([], run_row)?.collect())
        .map_err(self.err("read unfinished workflow runs"))
    }

    /// Unfinished runs of `group`, other than `except`, oldest first.
    pub fn group_runs(&self, group: &str, except: RunId) -> Result<Vec<RunRecord>, WorkflowError> {
        let conn = self.conn();
        conn.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM workflow_run WHERE concurrency_group = ?1 AND id != ?2 \
             AND status IN ('queued', 'running', 'paused') ORDER BY id"
        ))
        .and_then(|mut s| s.query_map(params![group, except], run_row)?.collect())
        .map_err(self.err("read the runs of a concurrency group"))
    }

    /// The newest runs, of one workflow or of all, newest first.
    pub fn history(&self, workflow: Option<&str>, limit: usize) -> Result<Vec<RunRecord>, WorkflowError> {
        let conn = self.conn();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        conn.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM workflow_run WHERE ?1 IS NULL OR workflow = ?1 ORDER BY id DESC LIMIT ?2"
        ))
        .and_then(|mut s| s.query_map(params![workflow, limit], run_row)?.collect())
        .map_err(self.err("read the workflow run history"))
    }

    /// The audit rows of a run, oldest first.
    pub fn audit(&self, run: RunId) -> Result<Vec<AuditRow>, WorkflowError> {
        let conn = self.conn();
        conn.prepare_cached(
            "SELECT at_ms, kind, run_id, step_id, status, attempt, detail FROM audit WHERE run_id = ?1 ORDER BY id",
        )
        .and_then(|mut s| {
            s.query_map([run], |r| {
                Ok(AuditRow {
                    at_ms: r.get(0)?,
                    kind: r.get(1)?,
                    run_id: r.get(2)?,
                    step_id: r.get(3)?,
                    status: r.get(4)?,
                    attempt: r.get(5)?,
                    detail: r.get(6)?,
                })
            })?
            .collect()
        })
        .map_err(self.err("read the audit log"))
    }

    /// Deletes finished runs beyond the newest `keep_runs` of each workflow and finished runs
    /// that ended before `before_ms`, with their steps and audit rows, then returns the freed
    /// pages to the file system. Unfinished runs are never deleted. Returns the runs deleted.
    pub fn prune(&self, keep_runs: usize, before_ms: i64) -> Result<u64, WorkflowError> {
        let err = self.err("prune the workflow run history");
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        let keep = i64::try_from(keep_runs).unwrap_or(i64::MAX);
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS pruned_run (id INTEGER PRIMARY KEY); DELETE FROM pruned_run;",
        )
        .map_err(&err)?;
        tx.execute(
            "INSERT INTO pruned_run (id) \
             SELECT id FROM ( \
                 SELECT id, finished_ms, ROW_NUMBER() OVER (PARTITION BY workflow ORDER BY id DESC) AS n \
                 FROM workflow_run WHERE status IN ('succeeded', 'failed', 'cancelled') \
             ) WHERE n > ?1 OR finished_ms < ?2",
            params![keep, before_ms],
        )
        .map_err(&err)?;
        tx.execute_batch(
            "DELETE FROM workflow_step WHERE run_id IN (SELECT id FROM pruned_run);
             DELETE FROM audit WHERE run_id IN (SELECT id FROM pruned_run);",
        )
        .map_err(&err)?;
        let deleted = tx
            .execute("DELETE FROM workflow_run WHERE id IN (SELECT id FROM pruned_run)", [])
            .map_err(&err)?;
        tx.execute("DELETE FROM pruned_run", []).map_err(&err)?;
        tx.commit().map_err(&err)?;
        if deleted > 0 {
            let mut vacuum = conn.prepare("PRAGMA incremental_vacuum").map_err(&err)?;
            let mut rows = vacuum.query([]).map_err(&err)?;
            while rows.next().map_err(&err)?.is_some() {}
        }
        Ok(deleted as u64)
    }
}

/// Whether the process that owns a run is alive, judged from another process.
pub fn owner_alive(pid: Option<u32>, heartbeat_ms: Option<i64>, now_ms: i64) -> bool {
    let Some(pid) = pid else { return false };
    let fresh = heartbeat_ms.is_some_and(|h| now_ms.saturating_sub(h) < STALE_HEARTBEAT.as_millis() as i64);
    fresh && crate::store::process_alive(pid)
}

fn write_run_status(
    tx: &rusqlite::Transaction<'_>,
    run: RunId,
    status: RunStatus,
    error: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE workflow_run SET status = ?2, error = ?3, \
         started_ms = CASE WHEN ?2 = 'running' THEN COALESCE(started_ms, ?4) ELSE started_ms END, \
         finished_ms = CASE WHEN ?5 THEN ?4 ELSE NULL END, \
         control = CASE WHEN ?5 THEN NULL ELSE control END, \
         heartbeat_ms = ?4 \
         WHERE id = ?1",
    )?
    .execute(params![run, status.as_str(), error, now_ms, status.is_final()])?;
    audit(tx, now_ms, "workflow_run", run, None, status.as_str(), None, error)
}

fn write_step(
    tx: &rusqlite::Transaction<'_>,
    run: RunId,
    step: &StepRecord,
    now_ms: i64,
) -> rusqlite::Result<()> {
    // A new attempt sets the start time; a later change keeps it unless it brings its own
    // (a step copied from an earlier run).
    let started = match step.status {
        StepStatus::Running => Some(now_ms),
        _ => step.started_ms,
    };
    let finished = if step.status.is_final() { step.finished_ms.or(Some(now_ms)) } else { None };
    tx.prepare_cached(
        "INSERT INTO workflow_step (run_id, step_id, position, status, outcome, attempts, output, \
         error, started_ms, finished_ms, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT (run_id, step_id) DO UPDATE SET position = excluded.position, status = excluded.status, \
         outcome = excluded.outcome, attempts = excluded.attempts, output = excluded.output, \
         error = excluded.error, started_ms = COALESCE(excluded.started_ms, started_ms), \
         finished_ms = excluded.finished_ms, next_attempt_ms = excluded.next_attempt_ms",
    )?
    .execute(params![
        run,
        step.step_id,
        step.position as i64,
        step.status.as_str(),
        step.outcome.map(Outcome::as_str),
        step.attempts,
        step.output.as_ref().map(Value::to_string),
        step.error,
        started,
        finished,
        step.next_attempt_ms,
    ])?;
    let detail = match (&step.error, step.next_attempt_ms) {
        (Some(e), Some(at)) => Some(format!("{e}; retry at {}", crate::time::date_time(at))),
        (Some(e), None) => Some(e.clone()),
        _ => None,
    };
    audit(
        tx,
        now_ms,
        "workflow_step",
        run,
        Some(&step.step_id),
        step.status.as_str(),
        Some(step.attempts),
        detail.as_deref(),
    )
}

#[allow(clippy::too_many_arguments)]
fn audit(
    tx: &rusqlite::Transaction<'_>,
    now_ms: i64,
    kind: &str,
    run: RunId,
    step: Option<&str>,
    status: &str,
    attempt: Option<u32>,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (at_ms, kind, run_id, step_id, status, attempt, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![now_ms, kind, run, step, status, attempt, detail])?;
    let (chained, subject) = match step {
        Some(step) => (AuditKind::WorkflowStep, format!("run {run} step {step}")),
        None => (AuditKind::WorkflowRun, format!("run {run}")),
    };
    crate::store::audit::append(
        tx,
        &AuditEvent {
            at_ms: now_ms,
            kind: chained,
            actor: "acas",
            subject: &subject,
            detail: serde_json::json!({ "status": status, "attempt": attempt, "detail": detail }),
        },
    )
    .map(drop)
}

fn json_column(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: r.get(0)?,
        workflow: r.get(1)?,
        file: PathBuf::from(r.get::<_, String>(2)?),
        definition_hash: r.get(3)?,
        status: parse_run_status(&r.get::<_, String>(4)?),
        control: r.get::<_, Option<String>>(5)?.as_deref().and_then(Control::parse),
        concurrency_group: r.get(6)?,
        trigger: json_column(r.get(7)?).unwrap_or(Value::Null),
        inputs: json_column(r.get(8)?).unwrap_or(Value::Null),
        created_ms: r.get(9)?,
        started_ms: r.get(10)?,
        finished_ms: r.get(11)?,
        error: r.get(12)?,
        rerun_of: r.get(13)?,
        owner_pid: r.get(14)?,
        heartbeat_ms: r.get(15)?,
    })
}

fn step_row(r: &Row<'_>) -> rusqlite::Result<StepRecord> {
    Ok(StepRecord {
        step_id: r.get(0)?,
        position: r.get::<_, i64>(1)? as usize,
        status: parse_step_status(&r.get::<_, String>(2)?),
        outcome: r.get::<_, Option<String>>(3)?.as_deref().and_then(Outcome::parse),
        attempts: r.get(4)?,
        output: json_column(r.get(5)?),
        error: r.get(6)?,
        started_ms: r.get(7)?,
        finished_ms: r.get(8)?,
        next_attempt_ms: r.get(9)?,
    })
}

fn parse_run_status(s: &str) -> RunStatus {
    match s {
        "queued" => RunStatus::Queued,
        "running" => RunStatus::Running,
        "paused" => RunStatus::Paused,
        "succeeded" => RunStatus::Succeeded,
        "cancelled" => RunStatus::Cancelled,
        _ => RunStatus::Failed,
    }
}

fn parse_step_status(s: &str) -> StepStatus {
    match s {
        "pending" => StepStatus::Pending,
        "running" => StepStatus::Running,
        "succeeded" => StepStatus::Succeeded,
        "skipped" => StepStatus::Skipped,
        "cancelled" => StepStatus::Cancelled,
        _ => StepStatus::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new_run<'a>(workflow: &'a str, trigger: &'a Value, steps: &[&str]) -> NewRun<'a> {
        NewRun {
            workflow,
            file: Path::new("/w/.acas/workflows/a.yaml"),
            definition_hash: "abc",
            definition: "name: a",
            trigger,
            inputs: trigger,
            status: RunStatus::Queued,
            concurrency_group: None,
            rerun_of: None,
            owner_pid: 1,
            steps: steps.iter().enumerate().map(|(i, s)| StepRecord::pending(s, i)).collect(),
            fence: None,
            inbox: None,
        }
    }

    #[test]
    fn runs_and_steps_round_trip_with_an_audit_trail() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open_workspace(dir.path(), Duration::from_secs(1)).unwrap();
        let trigger = json!({"type": "manual"});
        let id = db.create_run(&new_run("a", &trigger, &["x", "y"]), 10).unwrap();
        let mut x = StepRecord::pending("x", 0);
        x.status = StepStatus::Running;
        x.attempts = 1;
        db.apply(
            &[
                Change::Run { run: id, status: RunStatus::Running, error: None },
                Change::Step { run: id, step: x.clone() },
            ],
            20,
        )
        .unwrap();
        x.status = StepStatus::Succeeded;
        x.outcome = Some(Outcome::Success);
        x.output = Some(json!({"exit_code": 0}));
        db.apply(&[Change::Step { run: id, step: x }], 30).unwrap();

        let run = db.existing_run(id).unwrap();
        assert_eq!((run.status, run.started_ms, run.finished_ms), (RunStatus::Running, Some(20), None));
        assert_eq!(run.trigger, trigger);
        let steps = db.steps(id).unwrap();
        assert_eq!(steps[0].status, StepStatus::Succeeded);
        assert_eq!((steps[0].started_ms, steps[0].finished_ms), (Some(20), Some(30)));
        assert_eq!(steps[0].output, Some(json!({"exit_code": 0})));
        assert_eq!(steps[1], StepRecord::pending("y", 1));
        assert_eq!(db.definition(id).unwrap().1, "name: a");

        assert!(db.set_control(id, Some(Control::Cancel), 40).unwrap());
        assert_eq!(db.control(id).unwrap(), (RunStatus::Running, Some(Control::Cancel)));
        db.apply(&[Change::Run { run: id, status: RunStatus::Cancelled, error: None }], 50).unwrap();
        assert_eq!(db.control(id).unwrap(), (RunStatus::Cancelled, None));
        assert!(!db.set_control(id, Some(Control::Pause), 60).unwrap(), "a final run takes no requests");

        let trail: Vec<String> = db
            .audit(id)
            .unwrap()
            .iter()
            .map(|a| format!("{} {} {}", a.at_ms, a.step_id.as_deref().unwrap_or("-"), a.status))
            .collect();
        assert_eq!(
            trail,
            [
                "10 - queued",
                "10 x pending",
                "10 y pending",
                "20 - running",
                "20 x running",
                "30 x succeeded",
                "40 - cancel requested",
                "50 - cancelled"
            ]
        );

        // The same changes, in order, are records of the hash-chained audit log.
        let mut log = crate::store::AuditLog::open(dir.path(), Duration::from_secs(1)).unwrap();
        let chained: Vec<String> = log
            .records(&crate::store::audit::AuditQuery::default())
            .unwrap()
            .iter()
            .map(|r| format!("{} {} {}", r.at_ms, r.kind, r.subject))
            .collect();
        assert_eq!(chained.len(), trail.len());
        assert_eq!(chained[2], format!("10 workflow_step run {id} step y"));
        assert_eq!(chained[7], format!("50 workflow_run run {id}"));
        assert_eq!(log.verify(None).unwrap().0.first_break, None);
    }

    #[test]
    fn claims_are_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open_workspace(dir.path(), Duration::from_secs(1)).unwrap();
        let trigger = json!({});
        let id = db.create_run(&new_run("a", &trigger, &["x"]), 10).unwrap();
        let seen = db.existing_run(id).unwrap();
        assert_eq!((seen.owner_pid, seen.heartbeat_ms), (Some(1), Some(10)));
        assert!(db.claim(id, seen.owner_pid, seen.heartbeat_ms, 2, 20).unwrap());
        assert!(!db.claim(id, seen.owner_pid, seen.heartbeat_ms, 3, 30).unwrap(), "the second claim loses");
        assert_eq!(db.existing_run(id).unwrap().owner_pid, Some(2));
        assert!(owner_alive(Some(std::process::id()), Some(100), 200));
        assert!(!owner_alive(Some(std::process::id()), Some(0), STALE_HEARTBEAT.as_millis() as i64 + 1));
        assert!(!owner_alive(None, Some(100), 200));
    }

    #[test]
    fn prune_keeps_the_newest_runs_and_unfinished_ones() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open_workspace(dir.path(), Duration::from_secs(1)).unwrap();
        let trigger = json!({});
        let mut ids = Vec::new();
        for (i, workflow) in ["a", "a", "a", "b", "a"].iter().enumerate() {
            let id = db.create_run(&new_run(workflow, &trigger, &["x"]), i as i64).unwrap();
            if i != 4 {
                db.apply(
                    &[Change::Run { run: id, status: RunStatus::Succeeded, error: None }],
                    1000 + i as i64,
                )
                .unwrap();
            }
            ids.push(id);
        }
        // Keep 2 finished runs per workflow: `a`'s oldest (0) goes; the unfinished run 4 stays and
        // is not counted.
        assert_eq!(db.prune(2, 0).unwrap(), 1);
        let left: Vec<RunId> = db.history(None, 10).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(left, [ids[4], ids[3], ids[2], ids[1]]);
        assert!(db.steps(ids[0]).unwrap().is_empty() && db.audit(ids[0]).unwrap().is_empty());
        // By age: everything finished before 1002 goes; the unfinished run stays.
        assert_eq!(db.prune(100, 1002).unwrap(), 1);
        let left: Vec<RunId> = db.history(None, 10).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(left, [ids[4], ids[3], ids[2]]);
        assert_eq!(db.history(Some("b"), 10).unwrap().len(), 1);
    }

    #[test]
    fn a_run_is_started_only_under_the_current_lease_token() {
        use crate::store::{Holder, Lease};
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open_workspace(dir.path(), Duration::from_secs(5)).unwrap();
        let holder =
            |id: &str| Holder { id: id.to_owned(), pid: std::process::id(), host: "here".to_owned() };
        let expiry = Duration::from_millis(1000);
        let mut paused = Lease::open(db.path(), holder("paused"), expiry).unwrap();
        let mut other = Lease::open(db.path(), holder("other"), expiry).unwrap();
        let t0 = std::time::Instant::now();
        assert!(paused.try_take_at(1_000, t0).unwrap());
        let stale = paused.fence().unwrap();
        assert!(!other.try_take_at(1_100, t0).unwrap());
        assert!(other.try_take_at(2_200, t0 + Duration::from_millis(1_100)).unwrap());
        let current = other.fence().unwrap();

        let trigger = json!({"kind": "file_change"});
        let mut new = new_run("a", &trigger, &["x"]);
        new.fence = Some(&stale);
        let error = db.create_run(&new, 10).unwrap_err();
        assert_eq!(error.kind, WorkflowErrorKind::Fenced, "{error}");
        assert!(db.history(None, 10).unwrap().is_empty(), "the paused holder started a run");
        new.fence = Some(&current);
        let id = db.create_run(&new, 20).unwrap();
        assert_eq!(db.history(None, 10).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
    }

    /// The run of an accepted webhook request takes its inbox entry as it is created: tried again
    /// (by the same process or another), it is not created a second time, and a try refused for
    /// a lost lease leaves the entry for the holder.
    #[test]
    fn a_webhook_request_starts_one_run_however_many_try() {
        use crate::store::{Holder, InboxEntry, Lease, Replay, Store, StoreOptions};
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open_workspace(dir.path(), Duration::from_secs(5)).unwrap();
        let store = Store::open(db.path(), StoreOptions::default()).unwrap();
        let entry = InboxEntry { workflow: "a".into(), trigger: "{}".into(), inputs: "{}".into() };
        let id =
            store.webhook_accept(Replay::Signature("sig".into()), 1_000, 60_000, entry).unwrap().unwrap();
        let holder =
            |id: &str| Holder { id: id.to_owned(), pid: std::process::id(), host: "here".to_owned() };
        let expiry = Duration::from_millis(1000);
        let mut paused = Lease::open(db.path(), holder("paused"), expiry).unwrap();
        let mut other = Lease::open(db.path(), holder("other"), expiry).unwrap();
        let t0 = std::time::Instant::now();
        assert!(paused.try_take_at(1_000, t0).unwrap());
        let stale = paused.fence().unwrap();
        assert!(!other.try_take_at(1_100, t0).unwrap());
        assert!(other.try_take_at(2_200, t0 + Duration::from_millis(1_100)).unwrap());
        let current = other.fence().unwrap();

        let trigger = json!({"kind": "webhook"});
        let mut new = new_run("a", &trigger, &["x"]);
        new.inbox = Some(id);
        new.fence = Some(&stale);
        assert_eq!(db.create_run(&new, 10).unwrap_err().kind, WorkflowErrorKind::Fenced);
        assert_eq!(store.webhook_inbox().unwrap().len(), 1, "a refused try took the entry");
        new.fence = Some(&current);
        db.create_run(&new, 20).unwrap();
        assert!(store.webhook_inbox().unwrap().is_empty());
        let again = db.create_run(&new, 30).unwrap_err();
        assert_eq!(again.kind, WorkflowErrorKind::Claimed, "{again}");
        assert_eq!(db.history(None, 10).unwrap().len(), 1);
    }
}
