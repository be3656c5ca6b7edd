//! The task queue on the shared store (PostgreSQL): one queue per repository identity, so that
//! clones of a repository on several machines take work from the same queue.
//!
//! The rules are those of the SQLite queue (`tasks.rs`): priority then age, labels, needs,
//! retry backoff, path locks, leases that return the task to the queue when they run out. What
//! differs is how claims run side by side: a claim reads its candidates with
//! `FOR UPDATE SKIP LOCKED`, so that claimers never wait for each other's candidate and never
//! take the same task; a candidate that locks paths first takes the repository's
//! transaction-level advisory lock, so that two claims never lock overlapping paths. Every call
//! is one transaction that first returns the repository's ended leases to the queue.
//!
//! New needs serialise on a second advisory lock of the repository, so that two of them added
//! at once never close a cycle that neither saw; the cycle check walks every need of the
//! repository's tasks, also those `acas store migrate` copied.
//!
//! A task from a problem reads the problem from the workspace's SQLite (where problems are
//! recorded) and makes the task on the shared queue, or answers the repository's open task of
//! that problem. A queue opened with [`PgTaskQueue::audited`] appends each change it makes to
//! the workspace's hash-chained audit log once the change is committed, as the SQLite queue
//! does in the same transaction; changes made by other instances are in their own logs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::tasks::{
    Claim, ClaimRequest, DEFAULT_MAX_ATTEMPTS, Lock, MAX_NEEDS, MAX_PATHS, NewTask, Task, TaskError,
    TaskErrorKind, TaskFilter, TaskId, TaskSource, TaskState, TaskType, Unavailable, backoff_ms,
    check_labels, check_name, check_new, check_paths, check_ttl, conflict, truncate_chars, why_not_by_state,
    why_not_with_needs,
};
use super::{Clock, Tasks};
use crate::store::PgStore;
use crate::store::audit::{AuditEvent, AuditKind, AuditLog};
use crate::store::postgres::Fail;

/// How many candidates one claim looks at, and how many reasons it gives when it finds none.
const CANDIDATES: i64 = 64;
const MAX_REASONS: usize = 10;

/// The queue of one repository on the shared store.
pub struct PgTaskQueue {
    store: PgStore,
    clock: Arc<dyn Clock>,
    /// The workspace whose audit log records this queue's changes, and the log once opened.
    audit: Option<(PathBuf, Option<AuditLog>)>,
}

/// A queue answer or refusal, inside a database call that may itself fail.
type Answer<T> = Result<Result<T, TaskError>, Fail>;

impl PgTaskQueue {
    /// The queue of `store`'s repository, reading the time from `clock` (the machines of a team
    /// keep their clocks in sync, as leases compare times written by each).
    pub fn new(store: PgStore, clock: Arc<dyn Clock>) -> PgTaskQueue {
        PgTaskQueue { store, clock, audit: None }
    }

    /// [`PgTaskQueue::new`], appending each change this queue makes to the audit log of the
    /// workspace at `root`.
    pub fn audited(store: PgStore, clock: Arc<dyn Clock>, root: &Path) -> PgTaskQueue {
        PgTaskQueue { store, clock, audit: Some((root.to_owned(), None)) }
    }

    /// Appends a committed change to the workspace's audit log. The change is made already: a
    /// log that cannot be written is said in the log, not to the caller.
    fn record(
        &mut self,
        kind: AuditKind,
        actor: &str,
        id: TaskId,
        event: &str,
        mut detail: serde_json::Value,
    ) {
        let Some((root, log)) = &mut self.audit else { return };
        if log.is_none() {
            match AuditLog::open(root, Duration::from_secs(10)) {
                Ok(opened) => *log = Some(opened),
                Err(error) => {
                    tracing::warn!(%error, task = id, event, "cannot record a change of the shared queue in the audit log");
                    return;
                }
            }
        }
        detail["event"] = json!(event);
        detail["store"] = json!("shared");
        let appended = log.as_mut().map(|log| {
            log.append(&AuditEvent {
                at_ms: self.clock.now_ms(),
                kind,
                actor,
                subject: &format!("task {id}"),
                detail,
            })
        });
        if let Some(Err(error)) = appended {
            tracing::warn!(%error, task = id, event, "cannot record a change of the shared queue in the audit log");
        }
    }

    /// Runs `f` in one transaction, after returning ended leases of the repository to the queue.
    fn write<T, F>(&self, what: &str, f: F) -> Result<T, TaskError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t Transaction<'t>, String, i64) -> futures_util::future::BoxFuture<'t, Answer<T>>
            + Send
            + 'static,
    {
        let repository = self.store.identity().repository.clone();
        let now = self.clock.now_ms();
        self.store.run(what, move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            reap(&tx, &repository, now).await?;
            let answer = f(&tx, repository, now).await?;
            if answer.is_ok() {
                tx.commit().await?;
            }
            Ok(answer)
        })?
    }
}

impl Tasks for PgTaskQueue {
    fn create(&mut self, new: &NewTask) -> Result<Task, TaskError> {
        let new = check_new(new)?;
        let actor = new.created_by.clone();
        let result = self.write("create a task", move |tx, repository, now| {
            Box::pin(async move { insert(tx, &repository, &new, now).await })
        });
        if let Ok(task) = &result {
            self.record(
                AuditKind::Task,
                &actor,
                task.id,
                "created",
                json!({ "title": task.title, "state": task.state.as_str() }),
            );
        }
        result
    }

    fn get(&mut self, id: TaskId) -> Result<Task, TaskError> {
        self.write("read a task", move |tx, repository, _| {
            Box::pin(async move { load(tx, &repository, id).await })
        })
    }

    fn claim(&mut self, request: &ClaimRequest) -> Result<Claim, TaskError> {
        check_name("agent", &request.agent)?;
        let labels = check_labels(&request.labels)?;
        let ttl = check_ttl(request.ttl)?;
        let request = request.clone();
        let agent = request.agent.clone();
        let result = self.write("claim a task", move |tx, repository, now| {
            Box::pin(async move {
                if let Some(id) = request.task {
                    // The named task: wait for whoever holds its row, then judge it.
                    let rows = tx
                        .query(
                            "SELECT id FROM task WHERE id = $1 AND repository = $2 FOR UPDATE",
                            &[&id, &repository],
                        )
                        .await?;
                    if rows.is_empty() {
                        return Ok(Err(not_found(id)));
                    }
                    let task = match load(tx, &repository, id).await? {
                        Ok(task) => task,
                        Err(e) => return Ok(Err(e)),
                    };
                    let locks =
                        if task.paths.is_empty() { Vec::new() } else { lock_paths(tx, &repository).await? };
                    return Ok(match why_not(tx, &task, &request.agent, &labels, &locks, now).await? {
                        None => {
                            take(tx, &task, &request.agent, ttl, now).await?;
                            load(tx, &repository, id).await?.map(|t| Claim::Claimed(Box::new(t)))
                        }
                        Some(reason) => {
                            let kind = if task.state.is_held() || reason.contains("locked by") {
                                TaskErrorKind::Conflict
                            } else {
                                TaskErrorKind::WrongState
                            };
                            Err(TaskError::new(kind, format!("cannot claim task #{id}: {reason}")))
                        }
                    });
                }
                // Ready tasks that no other claim is looking at, best first.
                let candidates: Vec<TaskId> = tx
                    .query(
                        "SELECT id FROM task t
                         WHERE repository = $1 AND state = 'queued'
                           AND (retry_at_ms IS NULL OR retry_at_ms <= $2)
                           AND labels <@ $3::text[]
                           AND NOT EXISTS (SELECT 1 FROM task_need n JOIN task d ON d.id = n.need
                                           WHERE n.task = t.id AND d.state <> 'done')
                         ORDER BY priority DESC, id
                         LIMIT $4
                         FOR UPDATE SKIP LOCKED",
                        &[&repository, &now, &labels, &CANDIDATES],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let mut locks: Option<Vec<Lock>> = None;
                for id in candidates {
                    let task = match load(tx, &repository, id).await? {
                        Ok(task) => task,
                        Err(e) => return Ok(Err(e)),
                    };
                    if !task.paths.is_empty() {
                        if locks.is_none() {
                            locks = Some(lock_paths(tx, &repository).await?);
                        }
                        let held = locks.as_deref().unwrap_or_default();
                        if task.paths.iter().any(|p| conflict(p, &request.agent, held).is_some()) {
                            continue;
                        }
                    }
                    take(tx, &task, &request.agent, ttl, now).await?;
                    return Ok(load(tx, &repository, id).await?.map(|t| Claim::Claimed(Box::new(t))));
                }
                // Nothing: say why for the first tasks that are not finished.
                let locks = live_locks(tx, &repository).await?;
                let ids: Vec<TaskId> = tx
                    .query(
                        "SELECT id FROM task WHERE repository = $1 AND state NOT IN ('done', 'failed')
                         ORDER BY state = 'blocked', priority DESC, id LIMIT $2",
                        &[&repository, &CANDIDATES],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let mut reasons = Vec::new();
                for id in ids {
                    if reasons.len() >= MAX_REASONS {
                        break;
                    }
                    let Ok(task) = load(tx, &repository, id).await? else { continue };
                    let reason = why_not(tx, &task, &request.agent, &labels, &locks, now)
                        .await?
                        .unwrap_or_else(|| "another agent was claiming it at the same moment".to_owned());
                    reasons.push(Unavailable { task: id, title: task.title.clone(), reason });
                }
                Ok(Ok(Claim::Nothing(reasons)))
            })
        });
        if let Ok(Claim::Claimed(task)) = &result {
            self.record(
                AuditKind::Task,
                &agent,
                task.id,
                "claimed",
                json!({ "lease_until_ms": task.lease_until_ms, "paths": task.paths }),
            );
        }
        result
    }

    fn heartbeat(&mut self, id: TaskId, agent: &str, ttl: Duration) -> Result<Task, TaskError> {
        let ttl = check_ttl(ttl)?;
        let agent = agent.to_owned();
        let actor = agent.to_owned();
        let result = self.write("extend a task's lease", move |tx, repository, now| {
            Box::pin(async move {
                if let Err(e) = held_by(tx, &repository, id, &agent).await? {
                    return Ok(Err(e));
                }
                tx.execute(
                    "UPDATE task SET state = 'running', heartbeat_ms = $2, lease_until_ms = $3, updated_ms = $2
                     WHERE id = $1",
                    &[&id, &now, &now.saturating_add(ttl)],
                )
                .await?;
                load(tx, &repository, id).await
            })
        });
        if let Ok(task) = &result {
            self.record(
                AuditKind::Task,
                &actor,
                id,
                "running",
                json!({ "lease_until_ms": task.lease_until_ms }),
            );
        }
        result
    }

    fn done(&mut self, id: TaskId, agent: &str) -> Result<(Task, Vec<TaskId>), TaskError> {
        let agent = agent.to_owned();
        let actor = agent.to_owned();
        let result = self.write("finish a task", move |tx, repository, now| {
            Box::pin(async move {
                if let Err(e) = held_by(tx, &repository, id, &agent).await? {
                    return Ok(Err(e));
                }
                finish(tx, id, TaskState::Done, None, now).await?;
                let dependents: Vec<TaskId> = tx
                    .query(
                        "SELECT n.task FROM task_need n JOIN task t ON t.id = n.task
                         WHERE n.need = $1 AND t.state = 'blocked' ORDER BY n.task FOR UPDATE OF t",
                        &[&id],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let mut unblocked = Vec::new();
                for dependent in dependents {
                    if unmet_needs(tx, dependent).await?.is_empty() {
                        set_state(tx, dependent, TaskState::Queued, now).await?;
                        unblocked.push(dependent);
                    }
                }
                Ok(load(tx, &repository, id).await?.map(|task| (task, unblocked)))
            })
        });
        if let Ok((_, unblocked)) = &result {
            self.record(AuditKind::Task, &actor, id, "done", json!({}));
            for &dependent in unblocked.clone().iter() {
                self.record(AuditKind::Task, "acas", dependent, "unblocked", json!({ "by": id }));
            }
        }
        result
    }

    fn fail(&mut self, id: TaskId, agent: &str, error: &str) -> Result<Task, TaskError> {
        let error = truncate_chars(error.trim(), 4096);
        let agent = agent.to_owned();
        let actor = agent.to_owned();
        let result = self.write("record a task's failure", move |tx, repository, now| {
            Box::pin(async move {
                let task = match held_by(tx, &repository, id, &agent).await? {
                    Ok(task) => task,
                    Err(e) => return Ok(Err(e)),
                };
                let attempts = task.attempts + 1;
                if attempts >= task.max_attempts {
                    finish(tx, id, TaskState::Failed, Some(&error), now).await?;
                    tx.execute("UPDATE task SET attempts = $2 WHERE id = $1", &[&id, &(attempts as i32)])
                        .await?;
                } else {
                    let retry_at = now.saturating_add(backoff_ms(attempts));
                    unhold(tx, id, now).await?;
                    tx.execute(
                        "UPDATE task SET attempts = $2, retry_at_ms = $3, last_error = $4 WHERE id = $1",
                        &[&id, &(attempts as i32), &retry_at, &error],
                    )
                    .await?;
                }
                load(tx, &repository, id).await
            })
        });
        if let Ok(task) = &result {
            self.record(AuditKind::Task, &actor, id, if task.state == TaskState::Failed { "failed" } else { "retry" }, json!({ "attempts": task.attempts, "retry_at_ms": task.retry_at_ms, "error": task.last_error }));
        }
        result
    }

    fn release(&mut self, id: TaskId, agent: &str) -> Result<Task, TaskError> {
        let agent = agent.to_owned();
        let actor = agent.to_owned();
        let result = self.write("release a task", move |tx, repository, now| {
            Box::pin(async move {
                if let Err(e) = held_by(tx, &repository, id, &agent).await? {
                    return Ok(Err(e));
                }
                unhold(tx, id, now).await?;
                load(tx, &repository, id).await
            })
        });
        if result.is_ok() {
            self.record(AuditKind::Task, &actor, id, "released", json!({}));
        }
        result
    }

    fn list(&mut self, filter: &TaskFilter) -> Result<Vec<Task>, TaskError> {
        let filter = filter.clone();
        self.write("list tasks", move |tx, repository, _| {
            Box::pin(async move {
                let state = filter.state.map(TaskState::as_str);
                let ids: Vec<TaskId> = tx
                    .query(
                        "SELECT id FROM task WHERE repository = $1
                           AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR agent = $3)
                           AND ($4 OR $2::text IS NOT NULL OR state NOT IN ('done', 'failed'))
                         ORDER BY state IN ('done', 'failed'), priority DESC, id",
                        &[&repository, &state, &filter.agent, &filter.include_finished],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let mut tasks = Vec::with_capacity(ids.len());
                for id in ids {
                    match load(tx, &repository, id).await? {
                        Ok(task) => tasks.push(task),
                        Err(e) => return Ok(Err(e)),
                    }
                }
                Ok(Ok(tasks))
            })
        })
    }

    fn locks(&mut self) -> Result<Vec<Lock>, TaskError> {
        self.write("list path locks", move |tx, repository, _| {
            Box::pin(async move { Ok(Ok(live_locks(tx, &repository).await?)) })
        })
    }

    fn add_needs(&mut self, id: TaskId, needs: &[TaskId], actor: &str) -> Result<Task, TaskError> {
        check_name("actor", actor)?;
        let needs = needs.to_vec();
        let (actor, asked) = (actor.to_owned(), needs.to_vec());
        let result = self.write("add dependencies to a task", move |tx, repository, now| {
            Box::pin(async move {
                // One change of the repository's needs at a time: a cycle is judged on them all.
                tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))", &[&repository]).await?;
                let current = match load_for_update(tx, &repository, id).await? {
                    Ok(task) => task,
                    Err(e) => return Ok(Err(e)),
                };
                if !matches!(current.state, TaskState::Queued | TaskState::Blocked) {
                    return Ok(Err(TaskError::new(
                        TaskErrorKind::WrongState,
                        format!(
                            "task #{id} is {}: only a queued or blocked task takes new dependencies",
                            current.state.as_str()
                        ),
                    )));
                }
                if current.needs.len() + needs.len() > MAX_NEEDS {
                    return Ok(Err(TaskError::invalid(format!(
                        "task #{id} would need more than {MAX_NEEDS} tasks; split it into smaller ones"
                    ))));
                }
                for &need in &needs {
                    if need == id {
                        return Ok(Err(TaskError::new(
                            TaskErrorKind::Cycle,
                            format!("task #{id} cannot need itself"),
                        )));
                    }
                    if let Err(e) = load(tx, &repository, need).await? {
                        return Ok(Err(e));
                    }
                    if let Some(path) = need_path(tx, need, id).await? {
                        let cycle: Vec<String> =
                            std::iter::once(id).chain(path).map(|t| format!("#{t}")).collect();
                        return Ok(Err(TaskError::new(
                            TaskErrorKind::Cycle,
                            format!(
                                "task #{id} cannot need #{need}: that would make the cycle {}; drop one of these dependencies",
                                cycle.join(" -> ")
                            ),
                        )));
                    }
                    tx.execute(
                        "INSERT INTO task_need (task, need) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[&id, &need],
                    )
                    .await?;
                }
                if current.state == TaskState::Queued && !unmet_needs(tx, id).await?.is_empty() {
                    set_state(tx, id, TaskState::Blocked, now).await?;
                }
                load(tx, &repository, id).await
            })
        });
        if result.is_ok() {
            self.record(AuditKind::Task, &actor, id, "needs", json!({ "needs": asked }));
        }
        result
    }

    fn drop_need(&mut self, id: TaskId, need: TaskId, actor: &str) -> Result<Task, TaskError> {
        check_name("actor", actor)?;
        let actor = actor.to_owned();
        let result = self.write("drop a dependency", move |tx, repository, now| {
            Box::pin(async move {
                let task = match load_for_update(tx, &repository, id).await? {
                    Ok(task) => task,
                    Err(e) => return Ok(Err(e)),
                };
                if !matches!(task.state, TaskState::Queued | TaskState::Blocked) {
                    return Ok(Err(TaskError::new(
                        TaskErrorKind::WrongState,
                        format!(
                            "task #{id} is {}: only a queued or blocked task has dependencies to drop",
                            task.state.as_str()
                        ),
                    )));
                }
                let dropped =
                    tx.execute("DELETE FROM task_need WHERE task = $1 AND need = $2", &[&id, &need]).await?;
                if dropped == 0 {
                    let needs: Vec<String> = task.needs.iter().map(|n| format!("#{n}")).collect();
                    return Ok(Err(TaskError::invalid(format!(
                        "task #{id} does not need #{need}; it needs {}",
                        if needs.is_empty() { "nothing".to_owned() } else { needs.join(", ") }
                    ))));
                }
                if task.state == TaskState::Blocked && unmet_needs(tx, id).await?.is_empty() {
                    set_state(tx, id, TaskState::Queued, now).await?;
                }
                load(tx, &repository, id).await
            })
        });
        if result.is_ok() {
            self.record(AuditKind::Task, &actor, id, "dependency dropped", json!({ "needs": need }));
        }
        result
    }

    fn retry(&mut self, id: TaskId, actor: &str) -> Result<Task, TaskError> {
        check_name("actor", actor)?;
        let actor = actor.to_owned();
        let result = self.write("retry a task", move |tx, repository, now| {
            Box::pin(async move {
                let task = match load_for_update(tx, &repository, id).await? {
                    Ok(task) => task,
                    Err(e) => return Ok(Err(e)),
                };
                if task.state != TaskState::Failed {
                    return Ok(Err(TaskError::new(
                        TaskErrorKind::WrongState,
                        format!("task #{id} is {}: only a failed task can be retried", task.state.as_str()),
                    )));
                }
                tx.execute(
                    "UPDATE task SET attempts = 0, retry_at_ms = NULL, finished_ms = NULL, agent = NULL,
                     claimed_ms = NULL, heartbeat_ms = NULL, lease_until_ms = NULL WHERE id = $1",
                    &[&id],
                )
                .await?;
                let state = if unmet_needs(tx, id).await?.is_empty() {
                    TaskState::Queued
                } else {
                    TaskState::Blocked
                };
                set_state(tx, id, state, now).await?;
                load(tx, &repository, id).await
            })
        });
        if result.is_ok() {
            self.record(AuditKind::Task, &actor, id, "retried", json!({}));
        }
        result
    }

    fn lock(&mut self, id: TaskId, agent: &str, globs: &[String]) -> Result<Task, TaskError> {
        let globs = check_paths(globs)?;
        let globs_asked = globs.clone();
        let agent = agent.to_owned();
        let actor = agent.to_owned();
        let result = self.write("lock paths", move |tx, repository, now| {
            Box::pin(async move {
                // The task's row, held until the locks are in: no release or reap in between.
                let task = match load_for_update(tx, &repository, id).await? {
                    Ok(_) => held_by(tx, &repository, id, &agent).await?,
                    Err(e) => Err(e),
                };
                let task = match task {
                    Ok(task) => task,
                    Err(e) => return Ok(Err(e)),
                };
                // Serialised with the claims that lock paths: no two agents ever overlap.
                let locks = lock_paths(tx, &repository).await?;
                for glob in &globs {
                    if let Some(message) = conflict(glob, &agent, &locks) {
                        return Ok(Err(TaskError::new(TaskErrorKind::Conflict, format!("cannot lock {message}"))));
                    }
                }
                if task.locks.len() + globs.len() > MAX_PATHS {
                    return Ok(Err(TaskError::invalid(format!(
                        "task #{id} would hold more than {MAX_PATHS} locks; lock a directory instead of its files"
                    ))));
                }
                for glob in &globs {
                    if !task.locks.iter().any(|l| &l.glob == glob) {
                        tx.execute(
                            "INSERT INTO task_lock (task, agent, glob, acquired_ms) VALUES ($1, $2, $3, $4)",
                            &[&id, &agent, glob, &now],
                        )
                        .await?;
                    }
                }
                load(tx, &repository, id).await
            })
        });
        if result.is_ok() {
            self.record(AuditKind::Lock, &actor, id, "locked", json!({ "globs": globs_asked }));
        }
        result
    }

    fn task_for_problem(
        &mut self,
        fingerprint: &str,
        root: &Path,
        template: &NewTask,
    ) -> Result<(Task, bool), TaskError> {
        // Problems are recorded in the workspace's SQLite; a workspace without state has none.
        if !root.join(".acas").join("state.db").is_file() {
            return Err(TaskError::new(
                TaskErrorKind::NotFound,
                format!(
                    "no recorded problem has the fingerprint {}; problems are recorded by the editor, \
                     `acas watch` and `acas run`",
                    fingerprint.trim()
                ),
            ));
        }
        let new =
            super::TaskQueue::open(root, self.clock.clone())?.problem_task(fingerprint, root, template)?;
        let actor = new.created_by.clone();
        let result = self.write("create a task from a problem", move |tx, repository, now| {
            Box::pin(async move {
                // One task per open problem, also when two clones ask at once.
                tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 2))", &[&repository]).await?;
                let open = tx
                    .query_opt(
                        "SELECT id FROM task WHERE repository = $1 AND fingerprint = $2
                           AND state NOT IN ('done', 'failed') ORDER BY id LIMIT 1",
                        &[&repository, &new.fingerprint],
                    )
                    .await?;
                if let Some(row) = open {
                    return Ok(load(tx, &repository, row.get(0)).await?.map(|task| (task, false)));
                }
                Ok(insert(tx, &repository, &new, now).await?.map(|task| (task, true)))
            })
        });
        if let Ok((task, true)) = &result {
            self.record(
                AuditKind::Task,
                &actor,
                task.id,
                "created",
                json!({ "title": task.title, "state": task.state.as_str() }),
            );
        }
        result
    }

    fn waiting_on(&mut self, id: TaskId) -> Result<Vec<(TaskId, TaskState)>, TaskError> {
        self.write("read a task's dependencies", move |tx, repository, _| {
            Box::pin(async move {
                if let Err(e) = load(tx, &repository, id).await? {
                    return Ok(Err(e));
                }
                Ok(Ok(unmet_needs(tx, id).await?))
            })
        })
    }
}

/// Inserts a checked new task (blocked when it needs a task that is not done).
async fn insert(tx: &Transaction<'_>, repository: &str, new: &NewTask, now: i64) -> Answer<Task> {
    for &need in &new.needs {
        if let Err(e) = load(tx, repository, need).await? {
            return Ok(Err(e));
        }
    }
    let row = tx
        .query_one(
            "INSERT INTO task (repository, title, description, kind, priority, labels, paths, state,
                 source, fingerprint, created_by, created_ms, updated_ms, max_attempts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11, $11, $12)
             RETURNING id",
            &[
                &repository,
                &new.title,
                &new.description,
                &new.kind.as_str(),
                &new.priority,
                &new.labels,
                &new.paths,
                &new.source.as_str(),
                &new.fingerprint,
                &new.created_by,
                &now,
                &(new.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS) as i32),
            ],
        )
        .await?;
    let id: TaskId = row.get(0);
    for &need in &new.needs {
        tx.execute(
            "INSERT INTO task_need (task, need) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id, &need],
        )
        .await?;
    }
    if !unmet_needs(tx, id).await?.is_empty() {
        set_state(tx, id, TaskState::Blocked, now).await?;
    }
    load(tx, repository, id).await
}

/// Locks the row of task `id` for the rest of the transaction, then reads it.
async fn load_for_update(tx: &Transaction<'_>, repository: &str, id: TaskId) -> Answer<Task> {
    tx.query("SELECT id FROM task WHERE id = $1 AND repository = $2 FOR UPDATE", &[&id, &repository]).await?;
    load(tx, repository, id).await
}

/// A chain of needs from `from` to `to` (both included), if there is one.
async fn need_path(tx: &Transaction<'_>, from: TaskId, to: TaskId) -> Result<Option<Vec<TaskId>>, Fail> {
    let mut stack = vec![vec![from]];
    let mut seen = std::collections::HashSet::from([from]);
    while let Some(path) = stack.pop() {
        let last = *path.last().unwrap_or(&from);
        if last == to {
            return Ok(Some(path));
        }
        let next: Vec<TaskId> = tx
            .query("SELECT need FROM task_need WHERE task = $1 ORDER BY need", &[&last])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for n in next {
            if seen.insert(n) || n == to {
                let mut longer = path.clone();
                longer.push(n);
                stack.push(longer);
            }
        }
    }
    Ok(None)
}

/// Serialises the claims of a repository that lock paths (for the rest of the transaction),
/// then reads the locks held: what such a claim checks its paths against.
async fn lock_paths(tx: &Transaction<'_>, repository: &str) -> Result<Vec<Lock>, Fail> {
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&repository]).await?;
    Ok(live_locks(tx, repository).await?)
}

async fn reap(tx: &Transaction<'_>, repository: &str, now: i64) -> Result<(), Fail> {
    let expired: Vec<TaskId> = tx
        .query(
            "SELECT id FROM task WHERE repository = $1 AND state IN ('claimed', 'running') AND lease_until_ms <= $2
             FOR UPDATE SKIP LOCKED",
            &[&repository, &now],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in expired {
        unhold(tx, id, now).await?;
    }
    Ok(())
}

async fn unhold(tx: &Transaction<'_>, id: TaskId, now: i64) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE task SET state = 'queued', agent = NULL, claimed_ms = NULL, heartbeat_ms = NULL,
         lease_until_ms = NULL, updated_ms = $2 WHERE id = $1",
        &[&id, &now],
    )
    .await?;
    tx.execute("DELETE FROM task_lock WHERE task = $1", &[&id]).await?;
    Ok(())
}

async fn finish(
    tx: &Transaction<'_>,
    id: TaskId,
    state: TaskState,
    error: Option<&str>,
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE task SET state = $2, finished_ms = $3, updated_ms = $3, lease_until_ms = NULL,
         last_error = COALESCE($4, last_error) WHERE id = $1",
        &[&id, &state.as_str(), &now, &error],
    )
    .await?;
    tx.execute("DELETE FROM task_lock WHERE task = $1", &[&id]).await?;
    Ok(())
}

async fn set_state(
    tx: &Transaction<'_>,
    id: TaskId,
    state: TaskState,
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute("UPDATE task SET state = $2, updated_ms = $3 WHERE id = $1", &[&id, &state.as_str(), &now])
        .await?;
    Ok(())
}

async fn take(
    tx: &Transaction<'_>,
    task: &Task,
    agent: &str,
    ttl: i64,
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE task SET state = 'claimed', agent = $2, claimed_ms = $3, heartbeat_ms = $3,
         lease_until_ms = $4, retry_at_ms = NULL, updated_ms = $3 WHERE id = $1",
        &[&task.id, &agent, &now, &now.saturating_add(ttl)],
    )
    .await?;
    for path in &task.paths {
        tx.execute(
            "INSERT INTO task_lock (task, agent, glob, acquired_ms) VALUES ($1, $2, $3, $4)",
            &[&task.id, &agent, path, &now],
        )
        .await?;
    }
    Ok(())
}

async fn held_by(tx: &Transaction<'_>, repository: &str, id: TaskId, agent: &str) -> Answer<Task> {
    let task = match load(tx, repository, id).await? {
        Ok(task) => task,
        Err(e) => return Ok(Err(e)),
    };
    if task.state.is_held() && task.agent.as_deref() == Some(agent) {
        return Ok(Ok(task));
    }
    let message = if task.state.is_held() {
        format!(
            "task #{id} is held by {}, not {agent}; claim another task with `acas task claim`",
            task.agent.as_deref().unwrap_or("?")
        )
    } else {
        format!(
            "task #{id} is not held by {agent}: it is {} (a lease that ended returns the task to the queue); \
             claim it again with `acas task claim --task {id}`",
            task.state.as_str()
        )
    };
    Ok(Err(TaskError::new(TaskErrorKind::NotHolder, message)))
}

async fn why_not(
    tx: &Transaction<'_>,
    task: &Task,
    agent: &str,
    labels: &[String],
    locks: &[Lock],
    now: i64,
) -> Result<Option<String>, Fail> {
    if let Some(reason) = why_not_by_state(task) {
        return Ok(Some(reason));
    }
    let unmet = unmet_needs(tx, task.id).await?;
    Ok(why_not_with_needs(task, &unmet, agent, labels, locks, now))
}

async fn unmet_needs(
    tx: &Transaction<'_>,
    id: TaskId,
) -> Result<Vec<(TaskId, TaskState)>, tokio_postgres::Error> {
    Ok(tx
        .query(
            "SELECT t.id, t.state FROM task_need n JOIN task t ON t.id = n.need
             WHERE n.task = $1 AND t.state <> 'done' ORDER BY t.id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), TaskState::parse(r.get(1)).unwrap_or(TaskState::Blocked)))
        .collect())
}

fn not_found(id: TaskId) -> TaskError {
    TaskError::new(
        TaskErrorKind::NotFound,
        format!("there is no task #{id} in this repository; `acas task list --all` lists them"),
    )
}

const TASK_COLUMNS: &str = "id, title, description, kind, priority, labels, paths, state, source, fingerprint, \
     created_by, created_ms, updated_ms, agent, claimed_ms, heartbeat_ms, lease_until_ms, attempts, max_attempts, \
     retry_at_ms, last_error, finished_ms";

async fn load(tx: &Transaction<'_>, repository: &str, id: TaskId) -> Answer<Task> {
    let Some(row) = tx
        .query_opt(
            &format!("SELECT {TASK_COLUMNS} FROM task WHERE id = $1 AND repository = $2"),
            &[&id, &repository],
        )
        .await?
    else {
        return Ok(Err(not_found(id)));
    };
    let mut task = task_from(&row);
    task.needs = tx
        .query("SELECT need FROM task_need WHERE task = $1 ORDER BY need", &[&id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    task.locks = locks_where(tx, repository, Some(id)).await?;
    Ok(Ok(task))
}

fn task_from(r: &Row) -> Task {
    Task {
        id: r.get(0),
        title: r.get(1),
        description: r.get(2),
        kind: TaskType::parse(r.get(3)).unwrap_or(TaskType::Other),
        priority: r.get(4),
        labels: r.get(5),
        paths: r.get(6),
        needs: Vec::new(),
        state: TaskState::parse(r.get(7)).unwrap_or(TaskState::Blocked),
        source: TaskSource::parse(r.get(8)),
        fingerprint: r.get(9),
        created_by: r.get(10),
        created_ms: r.get(11),
        updated_ms: r.get(12),
        agent: r.get(13),
        claimed_ms: r.get(14),
        heartbeat_ms: r.get(15),
        lease_until_ms: r.get(16),
        attempts: r.get::<_, i32>(17).max(0) as u32,
        max_attempts: r.get::<_, i32>(18).max(0) as u32,
        retry_at_ms: r.get(19),
        last_error: r.get(20),
        finished_ms: r.get(21),
        locks: Vec::new(),
    }
}

async fn live_locks(tx: &Transaction<'_>, repository: &str) -> Result<Vec<Lock>, tokio_postgres::Error> {
    locks_where(tx, repository, None).await
}

async fn locks_where(
    client: &impl GenericClient,
    repository: &str,
    task: Option<TaskId>,
) -> Result<Vec<Lock>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT l.glob, l.agent, l.task, t.title, l.acquired_ms, COALESCE(t.lease_until_ms, 0)
             FROM task_lock l JOIN task t ON t.id = l.task
             WHERE t.repository = $1 AND t.state IN ('claimed', 'running') AND ($2::bigint IS NULL OR l.task = $2)
             ORDER BY l.glob, l.task",
            &[&repository, &task],
        )
        .await?
        .iter()
        .map(|r| Lock {
            glob: r.get(0),
            agent: r.get(1),
            task: r.get(2),
            task_title: r.get(3),
            acquired_ms: r.get(4),
            lease_until_ms: r.get(5),
        })
        .collect())
}
