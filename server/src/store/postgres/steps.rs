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
                    "UPDATE step_attempt SET state = 'done', succeeded = false, error = $3, lease_until_ms = NULL,
                         updated_ms = $2
                     WHERE repository = $1 AND state = 'claimed' AND lease_until_ms <= $2 AND NOT idempotent",
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
            let mut claimed: Vec<ClaimedStep> = rows.iter().map(claimed_from).collect();
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
        let result = result.clone();
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
                    "UPDATE step_attempt SET state = 'done', succeeded = false, error = $3, lease_until_ms = NULL,
                         updated_ms = $2
                     WHERE id = $1 AND state = 'claimed' AND lease_until_ms <= $2 AND NOT idempotent",
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
            let state: String = row.get(0);
            let worker: Option<String> = row.get(1);
            Ok(match state.as_str() {
                "queued" => AttemptState::Queued,
                "claimed" => AttemptState::Claimed {
                    worker: worker.unwrap_or_default(),
                    lease_until_ms: row.get::<_, Option<i64>>(2).unwrap_or(0),
                    claims: row.get(3),
                },
                "done" => AttemptState::Done {
                    result: StepResult {
                        succeeded: row.get::<_, Option<bool>>(4).unwrap_or(false),
                        exit_code: row.get(5),
                        output: row.get(6),
                        error: row.get(7),
                    },
                    worker: worker.unwrap_or_default(),
                },
                _ => AttemptState::Cancelled,
            })
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
            Ok(rows
                .iter()
                .map(|r| WorkerInfo {
                    name: r.get(0),
                    labels: r.get(1),
                    host: r.get(2),
                    heartbeat_ms: r.get(3),
                    lease_until_ms: r.get(4),
                })
                .collect())
        })
    }
}

fn claimed_from(r: &Row) -> ClaimedStep {
    let env: String = r.get(5);
    ClaimedStep {
        id: r.get(0),
        job: StepJob {
            run_key: r.get(1),
            step_id: r.get(2),
            attempt: r.get(3),
            argv: r.get(4),
            env: serde_json::from_str(&env).unwrap_or_default(),
            cwd: r.get(6),
            timeout_ms: r.get(7),
            labels: r.get(8),
            agent: r.get(9),
            idempotent: r.get(11),
        },
        claims: r.get(10),
    }
}
