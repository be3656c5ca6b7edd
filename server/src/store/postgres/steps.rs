//! The step queue on the shared store: attempts of workflow `run:` steps that a run hands to
//! the team's workers (`acas worker`), and the workers themselves.
//!
//! A run's driver queues an attempt (its rendered command, environment, working directory
//! relative to the workspace root, timeout and the labels it requires) under the repository's
//! identity and a key of its run; a worker claims attempts with `FOR UPDATE SKIP LOCKED`, only
//! those whose labels are a subset of its own, holds each under a lease that its heartbeats
//! extend, and reports the result. An attempt whose lease ran out is claimable again (at least
//! once); its attempt number is the driver's and does not change, only `claims` counts the
//! claims. A result is recorded only by the worker that holds the attempt, once.
//!
//! A worker is "connected" while its own lease (renewed by its heartbeats) has not run out.
//! Times are Unix milliseconds given by the caller, so that tests and benchmarks control them.
//! This module keeps the run itself nowhere: the run's state stays in its driver's store.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::Row;

use super::PgStore;
use crate::store::error::StoreError;

/// An attempt of a step, as the driver queues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepJob {
    /// Names the run across machines (its driver's host, workspace and run).
    pub run_key: String,
    pub step_id: String,
    /// The driver's attempt number (from 1).
    pub attempt: i32,
    pub argv: Vec<String>,
    /// Added to the worker's environment, as the driver would add it to its own.
    pub env: BTreeMap<String, String>,
    /// Relative to the workspace root; empty for the root itself.
    pub cwd: String,
    pub timeout_ms: Option<i64>,
    /// What the worker must have (`runs_on`).
    pub labels: Vec<String>,
    /// Who the run acts for, as policies name agents.
    pub agent: String,
    /// Whether it may run again when its worker dies (`idempotent`); when not, an ended lease
    /// fails it instead.
    pub idempotent: bool,
}

/// An attempt a worker claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedStep {
    pub id: i64,
    pub job: StepJob,
    /// How many times it was claimed, this claim included.
    pub claims: i32,
}

/// How an attempt ended, as its worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    pub succeeded: bool,
    pub exit_code: Option<i32>,
    /// The output JSON (`{stdout, stderr, exit_code}`), as text.
    pub output: Option<String>,
    /// Why it failed, in words.
    pub error: Option<String>,
}

/// Where a queued attempt is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptState {
    Queued,
    Claimed {
        worker: String,
        lease_until_ms: i64,
        claims: i32,
    },
    Done {
        result: StepResult,
        worker: String,
    },
    /// The driver gave up on it (cancel, timeout).
    Cancelled,
    /// There is no such attempt.
    Missing,
}

/// A connected worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    pub name: String,
    pub labels: Vec<String>,
    pub host: String,
    pub heartbeat_ms: i64,
    pub lease_until_ms: i64,
}

const CLAIMED_COLUMNS: &str =
    "id, run_key, step_id, attempt, argv, env, cwd, timeout_ms, labels, agent, claims, idempotent";

/// What an attempt that must not run twice says when its worker stopped answering.
const INTERRUPTED: &str = "interrupted: the worker running this step stopped answering, and the step is not run \
     again because it sets idempotent: false; check what it did, then acas workflow rerun RUN runs it again";

/// Ends an attempt as failed with the message `$3` at time `$2`: its worker stopped answering.
const FAIL_INTERRUPTED: &str = "UPDATE step_attempt SET state = 'done', succeeded = false, error = $3,
     lease_until_ms = NULL, updated_ms = $2";

/// A claimed attempt whose lease ran out by `$2` and which must not run twice.
const LEASE_ENDED_ONCE_ONLY: &str = "state = 'claimed' AND lease_until_ms <= $2 AND NOT idempotent";

impl PgStore {
    /// Queues `job` for the workers of this store's repository and returns its id. Queuing the
    /// same run, step and attempt again (a driver that restarted) returns the attempt already
    /// queued, whatever its state: a result already recorded is not run again.
    pub fn enqueue_step(&self, job: &StepJob, now_ms: i64) -> Result<i64, StoreError> {
        let repository = self.identity().repository.clone();
        let job = job.clone();
        let env = serde_json::to_string(&job.env).unwrap_or_else(|_| "{}".to_owned());
        self.run("queue a workflow step for the workers", move |pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_one(
                    "INSERT INTO step_attempt (repository, run_key, step_id, attempt, argv, env, cwd, timeout_ms,
                         labels, agent, idempotent, state, created_ms, updated_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, 'queued', $11, $11)
                     ON CONFLICT (run_key, step_id, attempt) DO UPDATE SET run_key = EXCLUDED.run_key
                     RETURNING id",
                    &[
                        &repository,
                        &job.run_key,
                        &job.step_id,
                        &job.attempt,
                        &job.argv,
                        &env,
                        &job.cwd,
                        &job.timeout_ms,
                        &job.labels,
                        &job.agent,
                        &now_ms,
                        &job.idempotent,
                    ],
                )
                .await?;
            Ok(row.get(0))
        })
    }

    /// Claims up to `limit` attempts of this repository for `worker`, oldest first: queued ones
    /// and claimed ones whose lease ran out, whose labels are all among `labels`. Each is held
    /// until `now_ms + lease`.
    pub fn claim_steps(
        &self,
        worker: &str,
        labels: &[String],
        limit: usize,
        lease: Duration,
        now_ms: i64,
    ) -> Result<Vec<ClaimedStep>, StoreError> {
        let repository = self.identity().repository.clone();
        let worker = worker.to_owned();
        let labels = labels.to_vec();
        let limit = limit.max(1) as i64;
        let until = now_ms.saturating_add(lease.as_millis() as i64);
        self.run("claim workflow steps", move |pool| async move {
            let client = pool.get().await?;
            client
                .execute(
                    &format!("{FAIL_INTERRUPTED} WHERE repository = $1 AND {LEASE_ENDED_ONCE_ONLY}"),
                    &[&repository, &now_ms, &INTERRUPTED],
                )
                .await?;
            let rows = client
                .query(
                    &format!(
                        "UPDATE step_attempt SET state = 'claimed', worker = $2, lease_until_ms = $3,
                             claims = claims + 1, updated_ms = $4
                         WHERE id IN (
                             SELECT id FROM step_attempt
                             WHERE repository = $1 AND labels <@ $5::text[]
                               AND (state = 'queued' OR (state = 'claimed' AND lease_until_ms <= $4))
                             ORDER BY id LIMIT $6
                             FOR UPDATE SKIP LOCKED)
                         RETURNING {CLAIMED_COLUMNS}"
                    ),
                    &[&repository, &worker, &until, &now_ms, &labels, &limit],
                )
                .await?;
            let mut claimed = Vec::with_capacity(rows.len());
            for row in &rows {
                match claimed_from(row) {
                    Ok(step) => claimed.push(step),
                    Err(bad) => {
                        // A row this ACAS cannot read fails as a step: it is never run, and
                        // never claimed again by anyone.
                        let id: Option<i64> = row.try_get(0).ok();
                        tracing::warn!("a queued workflow step cannot be run: {bad}");
                        client
                            .execute(
                                "UPDATE step_attempt SET state = 'done', succeeded = false, error = $3,
                                     lease_until_ms = NULL, updated_ms = $2
                                 WHERE id = $1 AND state = 'claimed'",
                                &[&id, &now_ms, &bad],
                            )
                            .await?;
                    }
                }
            }
            claimed.sort_by_key(|c| c.id);
            Ok(claimed)
        })
    }

    /// Extends `worker`'s lease on attempt `id`; `false` when it no longer holds it (the lease
    /// ran out and another worker claimed it, or the driver cancelled it).
    pub fn heartbeat_step(
        &self,
        id: i64,
        worker: &str,
        lease: Duration,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let worker = worker.to_owned();
        let until = now_ms.saturating_add(lease.as_millis() as i64);
        self.run("extend a workflow step's lease", move |pool| async move {
            let client = pool.get().await?;
            let n = client
                .execute(
                    "UPDATE step_attempt SET lease_until_ms = $3, updated_ms = $4
                     WHERE id = $1 AND worker = $2 AND state = 'claimed'",
                    &[&id, &worker, &until, &now_ms],
                )
                .await?;
            Ok(n == 1)
        })
    }

    /// Records how attempt `id` ended; `false` (and nothing recorded) when `worker` no longer
    /// holds it.
    pub fn finish_step(
        &self,
        id: i64,
        worker: &str,
        result: &StepResult,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let worker = worker.to_owned();
        // PostgreSQL's text holds no NUL: one in a message (binary on stderr) is replaced.
        let result = StepResult {
            output: result.output.as_deref().map(without_nul),
            error: result.error.as_deref().map(without_nul),
            ..result.clone()
        };
        self.run("record a workflow step's result", move |pool| async move {
            let client = pool.get().await?;
            let n = client
                .execute(
                    "UPDATE step_attempt SET state = 'done', succeeded = $3, exit_code = $4, output = $5,
                         error = $6, lease_until_ms = NULL, updated_ms = $7
                     WHERE id = $1 AND worker = $2 AND state = 'claimed'",
                    &[
                        &id,
                        &worker,
                        &result.succeeded,
                        &result.exit_code,
                        &result.output,
                        &result.error,
                        &now_ms,
                    ],
                )
                .await?;
            Ok(n == 1)
        })
    }

    /// Returns attempt `id`, held by `worker`, to the queue (a worker that stops); `false` when
    /// it did not hold it.
    pub fn release_step(&self, id: i64, worker: &str, now_ms: i64) -> Result<bool, StoreError> {
        let worker = worker.to_owned();
        self.run("release a workflow step", move |pool| async move {
            let client = pool.get().await?;
            let n = client
                .execute(
                    "UPDATE step_attempt SET state = 'queued', worker = NULL, lease_until_ms = NULL, updated_ms = $3
                     WHERE id = $1 AND worker = $2 AND state = 'claimed'",
                    &[&id, &worker, &now_ms],
                )
                .await?;
            Ok(n == 1)
        })
    }

    /// The driver gives up on attempt `id` (its run was cancelled, or its timeout fired): a
    /// worker running it hears so at its next heartbeat and stops. A recorded result stays.
    pub fn cancel_step(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        self.run("cancel a queued workflow step", move |pool| async move {
            let client = pool.get().await?;
            client
                .execute(
                    "UPDATE step_attempt SET state = 'cancelled', lease_until_ms = NULL, updated_ms = $2
                     WHERE id = $1 AND state IN ('queued', 'claimed')",
                    &[&id, &now_ms],
                )
                .await?;
            Ok(())
        })
    }

    /// Fails attempt `id` when its lease ran out and it must not run twice (`idempotent:
    /// false`); otherwise leaves it as it is.
    pub fn expire_step(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        self.run("fail an interrupted workflow step", move |pool| async move {
            let client = pool.get().await?;
            client
                .execute(
                    &format!("{FAIL_INTERRUPTED} WHERE id = $1 AND {LEASE_ENDED_ONCE_ONLY}"),
                    &[&id, &now_ms, &INTERRUPTED],
                )
                .await?;
            Ok(())
        })
    }

    /// Where attempt `id` is.
    pub fn step_state(&self, id: i64) -> Result<AttemptState, StoreError> {
        self.run("read a queued workflow step", move |pool| async move {
            let client = pool.get().await?;
            let Some(row) = client
                .query_opt(
                    "SELECT state, worker, lease_until_ms, claims, succeeded, exit_code, output, error
                     FROM step_attempt WHERE id = $1",
                    &[&id],
                )
                .await?
            else {
                return Ok(AttemptState::Missing);
            };
            let read = || -> Result<AttemptState, String> {
                let state: String = column(&row, 0, "state")?;
                let worker: Option<String> = column(&row, 1, "worker")?;
                Ok(match state.as_str() {
                    "queued" => AttemptState::Queued,
                    "claimed" => AttemptState::Claimed {
                        worker: worker.unwrap_or_default(),
                        lease_until_ms: column::<Option<i64>>(&row, 2, "lease_until_ms")?.unwrap_or(0),
                        claims: column::<Option<i32>>(&row, 3, "claims")?.unwrap_or(0),
                    },
                    "done" => AttemptState::Done {
                        result: StepResult {
                            succeeded: column::<Option<bool>>(&row, 4, "succeeded")?.unwrap_or(false),
                            exit_code: column(&row, 5, "exit_code")?,
                            output: column(&row, 6, "output")?,
                            error: column(&row, 7, "error")?,
                        },
                        worker: worker.unwrap_or_default(),
                    },
                    _ => AttemptState::Cancelled,
                })
            };
            // An unreadable row is a failed attempt, as the workers treat it.
            Ok(read().unwrap_or_else(|bad| AttemptState::Done {
                result: StepResult { succeeded: false, exit_code: None, output: None, error: Some(bad) },
                worker: String::new(),
            }))
        })
    }

    /// Registers or renews worker `name` with its labels: connected until `now_ms + lease`.
    pub fn worker_heartbeat(
        &self,
        name: &str,
        labels: &[String],
        host: &str,
        lease: Duration,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let repository = self.identity().repository.clone();
        let (name, labels, host) = (name.to_owned(), labels.to_vec(), host.to_owned());
        let until = now_ms.saturating_add(lease.as_millis() as i64);
        self.run("register a workflow worker", move |pool| async move {
            let client = pool.get().await?;
            client
                .execute(
                    "INSERT INTO step_worker (name, repository, labels, host, started_ms, heartbeat_ms, lease_until_ms)
                     VALUES ($1, $2, $3, $4, $5, $5, $6)
                     ON CONFLICT (name) DO UPDATE SET repository = EXCLUDED.repository, labels = EXCLUDED.labels,
                         host = EXCLUDED.host, heartbeat_ms = EXCLUDED.heartbeat_ms,
                         lease_until_ms = EXCLUDED.lease_until_ms",
                    &[&name, &repository, &labels, &host, &now_ms, &until],
                )
                .await?;
            Ok(())
        })
    }

    /// Worker `name` stops: it is no longer connected.
    pub fn worker_gone(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.run("unregister a workflow worker", move |pool| async move {
            let client = pool.get().await?;
            client.execute("DELETE FROM step_worker WHERE name = $1", &[&name]).await?;
            Ok(())
        })
    }

    /// The workers of this repository connected at `now_ms`, by name.
    pub fn connected_workers(&self, now_ms: i64) -> Result<Vec<WorkerInfo>, StoreError> {
        let repository = self.identity().repository.clone();
        self.run("list the connected workflow workers", move |pool| async move {
            let client = pool.get().await?;
            let rows = client
                .query(
                    "SELECT name, labels, host, heartbeat_ms, lease_until_ms FROM step_worker
                     WHERE repository = $1 AND lease_until_ms > $2 ORDER BY name",
                    &[&repository, &now_ms],
                )
                .await?;
            let read = |r: &Row| -> Result<WorkerInfo, String> {
                Ok(WorkerInfo {
                    name: column(r, 0, "name")?,
                    labels: column(r, 1, "labels")?,
                    host: column::<Option<String>>(r, 2, "host")?.unwrap_or_default(),
                    heartbeat_ms: column::<Option<i64>>(r, 3, "heartbeat_ms")?.unwrap_or(0),
                    lease_until_ms: column(r, 4, "lease_until_ms")?,
                })
            };
            let mut workers = Vec::with_capacity(rows.len());
            for r in &rows {
                match read(r) {
                    Ok(worker) => workers.push(worker),
                    // Not a worker this ACAS can hand steps to.
                    Err(bad) => tracing::warn!("a registered workflow worker is ignored: {bad}"),
                }
            }
            Ok(workers)
        })
    }
}

/// The claimed attempt in `r`, or why it cannot be run (naming the column this ACAS cannot
/// read: a NULL, a NULL in an array, an environment that is not a JSON object of strings).
fn claimed_from(r: &Row) -> Result<ClaimedStep, String> {
    let env: String = column(r, 5, "env")?;
    let env = serde_json::from_str(&env).map_err(|e| {
        format!(
            "column env of the step_attempt row is not a JSON object of strings ({e}); queue the step again with an ACAS that writes it"
        )
    })?;
    Ok(ClaimedStep {
        id: column(r, 0, "id")?,
        job: StepJob {
            run_key: column(r, 1, "run_key")?,
            step_id: column(r, 2, "step_id")?,
            attempt: column(r, 3, "attempt")?,
            argv: column(r, 4, "argv")?,
            env,
            cwd: column(r, 6, "cwd")?,
            timeout_ms: column(r, 7, "timeout_ms")?,
            labels: column(r, 8, "labels")?,
            agent: column(r, 9, "agent")?,
            idempotent: column(r, 11, "idempotent")?,
        },
        claims: column(r, 10, "claims")?,
    })
}

/// Column `index` (called `name`) of `r`, or a message naming it when it holds what this ACAS
/// cannot read (a NULL where a value belongs, a NULL inside an array, another type).
pub(super) fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    r: &'a Row,
    index: usize,
    name: &str,
) -> Result<T, String> {
    r.try_get(index).map_err(|e| {
        let why = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.to_string());
        format!(
            "column {name} of the row holds a value this ACAS cannot read ({why}); fix or delete the row in the shared store"
        )
    })
}

/// `text` with each NUL replaced by U+FFFD, which PostgreSQL's text can hold.
pub(super) fn without_nul(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}
