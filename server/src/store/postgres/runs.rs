//! Workflow definitions, runs and their steps in the shared store, so that every clone of the
//! repository sees the runs of every other (`acas workflow status`, the editor's runs view).
//!
//! A run belongs to the process that started it: its state lives in that workspace's SQLite,
//! which is what resumes it after a crash. That process mirrors each new state here with
//! [`PgStore::publish_run`], an upsert keyed by the run's id (unique across machines) and each
//! step's id, guarded by the run's `version`: a write whose version is not above the stored
//! one changes nothing, so a late or repeated write never moves a run backwards and pushing the
//! same state twice adds nothing. Text is stored as given, NULs replaced by U+FFFD; what the
//! caller gives must already be redacted (the workflow side does it).
//!
//! Readers ([`PgStore::team_runs`], [`PgStore::team_run`]) take rows written by anyone: a row
//! they cannot read is left out (said in the log), long text is cut to [`READ_TEXT`] bytes, and
//! statuses are handed on as written, for the caller to judge.

use tokio_postgres::Row;

use super::PgStore;
use super::steps::{column, without_nul};
use crate::store::error::StoreError;

/// Characters of a step's output tail and of an error that a reader takes from a row, however
/// much another writer stored.
pub const READ_TEXT: i32 = 8 * 1024;

/// The most runs one listing reads.
pub const MAX_LISTED: usize = 500;

/// A run as the shared store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRun {
    /// Unique across machines (see `workflow::team_runs::shared_id`).
    pub id: String,
    /// The run's id in the workspace that started it.
    pub local_id: i64,
    /// Who started it: the user, the machine and the clone (the workspace's path there).
    pub user: String,
    pub host: String,
    pub clone: String,
    pub workflow: String,
    pub definition_hash: String,
    /// What started it (`manual`, `file_change`, `schedule`, ...).
    pub trigger: String,
    /// As the run's engine names it (`queued`, `running`, ...); a reader may meet others.
    pub status: String,
    pub error: Option<String>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// Grows with every change of the run or of one of its steps.
    pub version: i64,
    pub steps: Vec<SharedStep>,
}

/// A step of a [`SharedRun`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedStep {
    pub step_id: String,
    pub position: i32,
    pub status: String,
    pub attempts: i32,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// The end of its output, redacted.
    pub output_tail: Option<String>,
}

/// A workflow definition a run started from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedDefinition {
    pub name: String,
    pub hash: String,
    pub source: String,
}

impl PgStore {
    /// Writes `run` (and its definition, once per hash) when its version is above the stored
    /// one; returns whether it was written. See the module's doc.
    pub fn publish_run(
        &self,
        run: &SharedRun,
        definition: Option<&SharedDefinition>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let repository = self.identity().repository.clone();
        let run = clean_run(run);
        let definition = definition.map(|d| SharedDefinition {
            name: without_nul(&d.name),
            hash: without_nul(&d.hash),
            source: without_nul(&d.source),
        });
        self.run("record a workflow run", move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            if let Some(d) = &definition {
                tx.execute(
                    "INSERT INTO workflow_definition (repository, name, hash, source, first_seen_ms)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[&repository, &d.name, &d.hash, &d.source, &now_ms],
                )
                .await?;
            }
            let written = tx
                .execute(
                    "INSERT INTO workflow_run (id, repository, local_id, user_name, host, clone, workflow,
                         definition_hash, trigger, status, error, created_ms, started_ms, finished_ms,
                         version, updated_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                     ON CONFLICT (id) DO UPDATE SET
                         workflow = EXCLUDED.workflow, definition_hash = EXCLUDED.definition_hash,
                         trigger = EXCLUDED.trigger, status = EXCLUDED.status, error = EXCLUDED.error,
                         started_ms = EXCLUDED.started_ms, finished_ms = EXCLUDED.finished_ms,
                         version = EXCLUDED.version, updated_ms = EXCLUDED.updated_ms
                     WHERE workflow_run.version < EXCLUDED.version
                       AND workflow_run.repository = EXCLUDED.repository",
                    &[
                        &run.id,
                        &repository,
                        &run.local_id,
                        &run.user,
                        &run.host,
                        &run.clone,
                        &run.workflow,
                        &run.definition_hash,
                        &run.trigger,
                        &run.status,
                        &run.error,
                        &run.created_ms,
                        &run.started_ms,
                        &run.finished_ms,
                        &run.version,
                        &now_ms,
                    ],
                )
                .await?;
            if written == 0 {
                return Ok(false);
            }
            let upsert = tx
                .prepare(
                    "INSERT INTO workflow_run_step (run_id, step_id, position, status, attempts, started_ms,
                         finished_ms, exit_code, error, output_tail, version)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                     ON CONFLICT (run_id, step_id) DO UPDATE SET
                         position = EXCLUDED.position, status = EXCLUDED.status,
                         attempts = EXCLUDED.attempts, started_ms = EXCLUDED.started_ms,
                         finished_ms = EXCLUDED.finished_ms, exit_code = EXCLUDED.exit_code,
                         error = EXCLUDED.error, output_tail = EXCLUDED.output_tail,
                         version = EXCLUDED.version
                     WHERE workflow_run_step.version < EXCLUDED.version",
                )
                .await?;
            for s in &run.steps {
                tx.execute(
                    &upsert,
                    &[
                        &run.id,
                        &s.step_id,
                        &s.position,
                        &s.status,
                        &s.attempts,
                        &s.started_ms,
                        &s.finished_ms,
                        &s.exit_code,
                        &s.error,
                        &s.output_tail,
                        &run.version,
                    ],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The repository's most recent runs (at most `limit`, and at most [`MAX_LISTED`]), newest
    /// first, with their steps.
    pub fn team_runs(&self, limit: usize) -> Result<Vec<SharedRun>, StoreError> {
        let repository = self.identity().repository.clone();
        let limit = limit.min(MAX_LISTED) as i64;
        self.run("read the team's workflow runs", move |pool| async move {
            let client = pool.get().await?;
            let rows = client
                .query(
                    &format!("SELECT {RUN_COLUMNS} FROM workflow_run WHERE repository = $1 ORDER BY created_ms DESC, id LIMIT $2"),
                    &[&repository, &limit],
                )
                .await?;
            let mut runs: Vec<SharedRun> = rows.iter().filter_map(readable_run).collect();
            let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
            let steps = client
                .query(
                    &format!(
                        "SELECT run_id, {STEP_COLUMNS} FROM (SELECT *, row_number() OVER \
                         (PARTITION BY run_id ORDER BY position, step_id) AS n FROM workflow_run_step \
                         WHERE run_id = ANY($1)) s WHERE n <= $2 ORDER BY run_id, position, step_id"
                    ),
                    &[&ids, &(MAX_LISTED_STEPS as i64)],
                )
                .await?;
            for row in &steps {
                let Ok(run_id) = column::<String>(row, 0, "run_id") else { continue };
                let Some(step) = readable_step(row) else { continue };
                if let Some(run) = runs.iter_mut().find(|r| r.id == run_id) {
                    run.steps.push(step);
                }
            }
            Ok(runs)
        })
    }

    /// The run `id` of the repository, with its steps; `None` when there is none (or its row
    /// cannot be read, said in the log).
    pub fn team_run(&self, id: &str) -> Result<Option<SharedRun>, StoreError> {
        let repository = self.identity().repository.clone();
        let id = id.to_owned();
        self.run("read a workflow run of the team", move |pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_opt(
                    &format!("SELECT {RUN_COLUMNS} FROM workflow_run WHERE repository = $1 AND id = $2"),
                    &[&repository, &id],
                )
                .await?;
            let Some(mut run) = row.as_ref().and_then(readable_run) else { return Ok(None) };
            let steps = client
                .query(
                    &format!(
                        "SELECT run_id, {STEP_COLUMNS} FROM workflow_run_step WHERE run_id = $1 \
                         ORDER BY position, step_id LIMIT $2"
                    ),
                    &[&id, &(MAX_SHOWN_STEPS as i64)],
                )
                .await?;
            run.steps = steps.iter().filter_map(readable_step).collect();
            Ok(Some(run))
        })
    }
}

const RUN_COLUMNS: &str = "id, local_id, user_name, host, clone, left(workflow, 256), definition_hash, \
     left(trigger, 64), left(status, 64), left(error, 8192), created_ms, started_ms, finished_ms, version";

/// Steps read of each run of a listing: the rows are written by anyone of the team, and a
/// listing is read by every editor of the team at each change, so a run claiming more steps than
/// a listing shows cannot make a reader hold them all (a run shown whole, by its id, has them).
pub const MAX_LISTED_STEPS: usize = 200;

/// Steps read of one run shown whole: as many as a workflow may have (`MAX_STEPS` of the
/// workflow parser).
pub const MAX_SHOWN_STEPS: usize = 20_000;

const STEP_COLUMNS: &str = "left(step_id, 256), position, left(status, 64), attempts, started_ms, finished_ms, \
     exit_code, left(error, 8192), right(output_tail, 8192)";

/// The run of `r`, or `None` (said in the log) when a column holds what this ACAS cannot read.
fn readable_run(r: &Row) -> Option<SharedRun> {
    let read = || -> Result<SharedRun, String> {
        Ok(SharedRun {
            id: column(r, 0, "id")?,
            local_id: column(r, 1, "local_id")?,
            user: column(r, 2, "user_name")?,
            host: column(r, 3, "host")?,
            clone: column(r, 4, "clone")?,
            workflow: column(r, 5, "workflow")?,
            definition_hash: column(r, 6, "definition_hash")?,
            trigger: column(r, 7, "trigger")?,
            status: column(r, 8, "status")?,
            error: column(r, 9, "error")?,
            created_ms: column(r, 10, "created_ms")?,
            started_ms: column(r, 11, "started_ms")?,
            finished_ms: column(r, 12, "finished_ms")?,
            version: column(r, 13, "version")?,
            steps: Vec::new(),
        })
    };
    read().map_err(|why| tracing::warn!("left out a workflow run of the shared store: {why}")).ok()
}

/// The step of `r` (after its `run_id`), or `None` (said in the log).
fn readable_step(r: &Row) -> Option<SharedStep> {
    let read = || -> Result<SharedStep, String> {
        Ok(SharedStep {
            step_id: column(r, 1, "step_id")?,
            position: column(r, 2, "position")?,
            status: column(r, 3, "status")?,
            attempts: column(r, 4, "attempts")?,
            started_ms: column(r, 5, "started_ms")?,
            finished_ms: column(r, 6, "finished_ms")?,
            exit_code: column(r, 7, "exit_code")?,
            error: column(r, 8, "error")?,
            output_tail: column(r, 9, "output_tail")?,
        })
    };
    read().map_err(|why| tracing::warn!("left out a workflow step of the shared store: {why}")).ok()
}

/// `run` with every NUL replaced, so that PostgreSQL takes its text.
fn clean_run(run: &SharedRun) -> SharedRun {
    let opt = |t: &Option<String>| t.as_deref().map(without_nul);
    SharedRun {
        id: without_nul(&run.id),
        user: without_nul(&run.user),
        host: without_nul(&run.host),
        clone: without_nul(&run.clone),
        workflow: without_nul(&run.workflow),
        definition_hash: without_nul(&run.definition_hash),
        trigger: without_nul(&run.trigger),
        status: without_nul(&run.status),
        error: opt(&run.error),
        steps: run
            .steps
            .iter()
            .map(|s| SharedStep {
                step_id: without_nul(&s.step_id),
                status: without_nul(&s.status),
                error: opt(&s.error),
                output_tail: opt(&s.output_tail),
                ..s.clone()
            })
            .collect(),
        ..run.clone()
    }
}
