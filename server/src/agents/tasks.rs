//! Claimable tasks: a queue that several agents take work from, with leases, dependencies,
//! retries and the path locks a claim holds.
//!
//! A task has a title, a description, a type, a priority (higher first), labels, the tasks it
//! needs (a DAG: a dependency that would close a cycle is refused, the cycle named), the path
//! globs it will touch, and a state:
//!
//! ```text
//! blocked ──(every need done)──► queued ──claim──► claimed ──heartbeat──► running ──► done
//!                                  ▲                  │                     │    └──► failed
//!                                  └──── release, lease expired, failure with attempts left
//! ```
//!
//! [`TaskQueue::claim`] gives an agent the best task it may take: queued, out of its retry
//! backoff, every need done, every label of the task among the agent's labels, and no path glob
//! overlapping a lock another agent holds ([`super::globs::overlap`]); the highest priority
//! first, then the oldest. The claim locks the task's paths and holds a lease of the TTL asked
//! for; each heartbeat extends it (the first one moves the task to `running`). A lease that ends
//! returns the task to the queue and frees its locks, without counting an attempt. A failure
//! counts one: the task is queued again after a backoff (30 s, doubling, at most 30 min) until
//! it has failed `max_attempts` times, then it is `failed`. A task that is done unblocks the
//! tasks that needed it.
//!
//! Every call is one `IMMEDIATE` transaction on this handle's own connection, which first
//! returns expired leases to the queue: several processes may call at once, and no task or path
//! is ever given to two agents. Every change is a record of the audit log (`store::audit`) in
//! the same transaction; heartbeats that only extend a lease are not recorded.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;
use serde_json::json;

use super::Clock;
use super::globs;
use crate::store::StoreError;
use crate::store::audit::{self, AuditEvent, AuditKind};

/// A task's id, unique within a workspace and never given twice.
pub type TaskId = i64;

/// The shortest lease a claim or heartbeat may ask for.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest lease a claim or heartbeat may ask for.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Failures a task may have before it is `failed`, unless its creator said otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The most failures a task may be given.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;
/// The wait before the first retry; it doubles with each failure, up to [`MAX_BACKOFF`].
pub const BASE_BACKOFF: Duration = Duration::from_secs(30);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
/// Limits on what a task holds.
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_DESCRIPTION_BYTES: usize = 64 * 1024;
pub const MAX_LABELS: usize = 32;
pub const MAX_PATHS: usize = 64;
pub const MAX_NEEDS: usize = 64;
pub const MAX_NAME_CHARS: usize = 128;
/// How many reasons a claim that found nothing gives.
const MAX_REASONS: usize = 10;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Claimed,
    Running,
    /// Waits for tasks it needs.
    Blocked,
    Done,
    Failed,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Claimed => "claimed",
            TaskState::Running => "running",
            TaskState::Blocked => "blocked",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<TaskState> {
        [
            TaskState::Queued,
            TaskState::Claimed,
            TaskState::Running,
            TaskState::Blocked,
            TaskState::Done,
            TaskState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Claimed or running: an agent holds it under a lease.
    pub fn is_held(self) -> bool {
        matches!(self, TaskState::Claimed | TaskState::Running)
    }

    pub fn is_final(self) -> bool {
        matches!(self, TaskState::Done | TaskState::Failed)
    }
}

/// What kind of work a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    Fix,
    Feature,
    Refactor,
    Test,
    Docs,
    Chore,
    Other,
}

impl TaskType {
    pub const ALL: [TaskType; 7] = [
        TaskType::Fix,
        TaskType::Feature,
        TaskType::Refactor,
        TaskType::Test,
        TaskType::Docs,
        TaskType::Chore,
        TaskType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Fix => "fix",
            TaskType::Feature => "feature",
            TaskType::Refactor => "refactor",
            TaskType::Test => "test",
            TaskType::Docs => "docs",
            TaskType::Chore => "chore",
            TaskType::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<TaskType> {
        TaskType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// Where a task came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSource {
    /// `acas task create`.
    Cli,
    /// A recorded problem (`acas task from-problem`).
    Problem,
    /// An agent, through the MCP server.
    Agent,
    /// An approved plan.
    Plan,
}

impl TaskSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskSource::Cli => "cli",
            TaskSource::Problem => "problem",
            TaskSource::Agent => "agent",
            TaskSource::Plan => "plan",
        }
    }

    pub(super) fn parse(text: &str) -> TaskSource {
        match text {
            "problem" => TaskSource::Problem,
            "agent" => TaskSource::Agent,
            "plan" => TaskSource::Plan,
            _ => TaskSource::Cli,
        }
    }
}

/// A task to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    pub title: String,
    pub description: String,
    pub kind: TaskType,
    pub priority: i64,
    pub labels: Vec<String>,
    /// Globs relative to the workspace root.
    pub paths: Vec<String>,
    pub needs: Vec<TaskId>,
    /// `None`: [`DEFAULT_MAX_ATTEMPTS`].
    pub max_attempts: Option<u32>,
    pub source: TaskSource,
    pub fingerprint: Option<String>,
    /// Who asked for it: `user`, an agent's name.
    pub created_by: String,
}

impl NewTask {
    /// A task with this title and every other field at its default.
    pub fn titled(title: &str) -> NewTask {
        NewTask {
            title: title.to_owned(),
            description: String::new(),
            kind: TaskType::Other,
            priority: 0,
            labels: Vec::new(),
            paths: Vec::new(),
            needs: Vec::new(),
            max_attempts: None,
            source: TaskSource::Cli,
            fingerprint: None,
            created_by: "user".to_owned(),
        }
    }
}

/// A path lock: a glob held by an agent for a task it holds, until the task's lease ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    pub glob: String,
    pub agent: String,
    pub task: TaskId,
    pub task_title: String,
    pub acquired_ms: i64,
    pub lease_until_ms: i64,
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    pub id: TaskId,
    pub title: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: TaskType,
    pub priority: i64,
    pub labels: Vec<String>,
    pub paths: Vec<String>,
    pub needs: Vec<TaskId>,
    pub state: TaskState,
    pub source: TaskSource,
    pub fingerprint: Option<String>,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The holder while claimed or running; afterwards, the last one.
    pub agent: Option<String>,
    pub claimed_ms: Option<i64>,
    pub heartbeat_ms: Option<i64>,
    pub lease_until_ms: Option<i64>,
    /// Failures so far.
    pub attempts: u32,
    pub max_attempts: u32,
    /// Queued after a failure: not claimable before this.
    pub retry_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub finished_ms: Option<i64>,
    /// The locks it holds now.
    pub locks: Vec<Lock>,
}

/// What an agent asks for when it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    pub agent: String,
    /// The agent's labels: a task is given only when each of its labels is among them.
    pub labels: Vec<String>,
    pub ttl: Duration,
    /// This task only, instead of the best available one.
    pub task: Option<TaskId>,
}

/// Why a task that is not done was not given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    pub task: TaskId,
    pub title: String,
    pub reason: String,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Claimed(Box<Task>),
    /// Nothing could be given; why, for the first tasks in priority order.
    Nothing(Vec<Unavailable>),
}

/// What [`TaskQueue::version`] reads: sums of the tasks' update times and lease ends and the
/// lock table's size and last id, so that two reads are equal when nothing changed between
/// them and differ, but for a coincidence of those sums, when something did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueVersion {
    tasks: i64,
    updated: i64,
    leases: i64,
    locks: i64,
    last_lock: i64,
    /// When the first lease of a held task ends.
    pub next_lease_end_ms: Option<i64>,
}

/// Which tasks to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub state: Option<TaskState>,
    pub agent: Option<String>,
    /// Done and failed tasks too (implied by `state`).
    pub include_finished: bool,
}

/// What went wrong, for callers that react differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskErrorKind {
    /// No task (or problem) of that id.
    NotFound,
    /// The input breaks a rule or a limit.
    Invalid,
    /// The dependency would close a cycle.
    Cycle,
    /// Another agent holds the task or an overlapping path.
    Conflict,
    /// The agent does not hold the task (any more).
    NotHolder,
    /// The task is not in a state that allows this.
    WrongState,
    /// The database failed.
    Store,
}

/// A failure of the task queue. `Display` says what failed and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    pub kind: TaskErrorKind,
    pub message: String,
}

impl TaskError {
    pub(super) fn new(kind: TaskErrorKind, message: String) -> TaskError {
        TaskError { kind, message }
    }

    pub(super) fn invalid(message: String) -> TaskError {
        TaskError::new(TaskErrorKind::Invalid, message)
    }
}

impl From<StoreError> for TaskError {
    fn from(e: StoreError) -> TaskError {
        TaskError::new(TaskErrorKind::Store, e.to_string())
    }
}

/// A failure inside a transaction: SQLite's, or the queue's own.
enum Fail {
    Sql(rusqlite::Error),
    Task(TaskError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Fail {
        Fail::Sql(e)
    }
}

impl From<TaskError> for Fail {
    fn from(e: TaskError) -> Fail {
        Fail::Task(e)
    }
}

/// The task queue of one workspace, on a connection of its own.
pub struct TaskQueue {
    conn: Connection,
    db_path: PathBuf,
    busy_timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl TaskQueue {
    /// Opens the queue in `<root>/.acas/state.db` (creating and migrating the database as the
    /// store does), reading the time from `clock`.
    pub fn open(root: &Path, clock: Arc<dyn Clock>) -> Result<TaskQueue, TaskError> {
        let busy_timeout = Duration::from_secs(10);
        let (conn, db_path) = crate::store::connect_workspace(root, busy_timeout)?;
        Ok(TaskQueue { conn, db_path, busy_timeout, clock })
    }

    /// Runs `f` in one `IMMEDIATE` transaction, after returning expired leases to the queue;
    /// the time is read once the write lock is held.
    fn write<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&Transaction<'_>, i64) -> Result<T, Fail>,
    ) -> Result<T, TaskError> {
        let result = (|| {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = self.clock.now_ms();
            reap(&tx, now)?;
            let value = f(&tx, now)?;
            tx.commit()?;
            crate::store::anchor::update(&self.conn, &self.db_path);
            Ok(value)
        })();
        result.map_err(|fail| match fail {
            Fail::Task(e) => e,
            Fail::Sql(e) => StoreError::sqlite(what, &self.db_path, self.busy_timeout, &e).into(),
        })
    }

    /// Creates a task: `blocked` when it needs a task that is not done, else `queued`.
    pub fn create(&mut self, new: &NewTask) -> Result<Task, TaskError> {
        let new = check_new(new)?;
        self.write("create a task", |tx, now| insert_task(tx, &new, now))
    }

    /// Makes `task` need each of `needs`. Refuses a need that would close a cycle, naming it.
    /// Only a queued or blocked task takes new needs; one that is not done blocks it.
    pub fn add_needs(&mut self, task: TaskId, needs: &[TaskId], actor: &str) -> Result<Task, TaskError> {
        check_name("actor", actor)?;
        self.write("add dependencies to a task", |tx, now| {
            let current = load(tx, task)?;
            if !matches!(current.state, TaskState::Queued | TaskState::Blocked) {
                return Err(TaskError::new(
                    TaskErrorKind::WrongState,
                    format!(
                        "task #{task} is {}: only a queued or blocked task takes new dependencies",
                        current.state.as_str()
                    ),
                )
                .into());
            }
            if current.needs.len() + needs.len() > MAX_NEEDS {
                return Err(TaskError::invalid(format!(
                    "task #{task} would need more than {MAX_NEEDS} tasks; split it into smaller ones"
                ))
                .into());
            }
            for &need in needs {
                add_need(tx, task, need)?;
            }
            let blocked = unmet_needs(tx, task)?;
            if !blocked.is_empty() && current.state == TaskState::Queued {
                set_state(tx, task, TaskState::Blocked, now)?;
            }
            record(tx, now, actor, task, "needs", json!({ "needs": needs }))?;
            load(tx, task)
        })
    }

    /// Creates a fix task for a recorded problem, by its fingerprint or a unique prefix of at
    /// least 6 characters. Returns the open task of that problem instead when there is one
    /// (the flag says whether the task is new).
    pub fn from_problem(
        &mut self,
        fingerprint: &str,
        root: &Path,
        template: &NewTask,
    ) -> Result<(Task, bool), TaskError> {
        let fingerprint = check_fingerprint(fingerprint)?;
        self.write("create a task from a problem", |tx, now| {
            let problem = find_problem(tx, fingerprint)?;
            if let Some(id) = tx
                .prepare_cached(
                    "SELECT id FROM task WHERE fingerprint = ?1 AND state NOT IN ('done', 'failed') \
                     ORDER BY id LIMIT 1",
                )?
                .query_row([&problem.fingerprint], |r| r.get::<_, i64>(0))
                .optional()?
            {
                return Ok((load(tx, id)?, false));
            }
            let new = problem_task(&problem, root, template)?;
            Ok((insert_task(tx, &new, now)?, true))
        })
    }

    /// The new task `from_problem` would make for a recorded problem (checked), without making
    /// it: for a queue elsewhere (the shared store) that makes it.
    pub fn problem_task(
        &mut self,
        fingerprint: &str,
        root: &Path,
        template: &NewTask,
    ) -> Result<NewTask, TaskError> {
        let fingerprint = check_fingerprint(fingerprint)?;
        self.write("read a problem", |tx, _| problem_task(&find_problem(tx, fingerprint)?, root, template))
    }

    /// One task, with its needs and locks.
    pub fn get(&mut self, id: TaskId) -> Result<Task, TaskError> {
        self.write("read a task", |tx, _| load(tx, id))
    }

    /// Tasks matching `filter`: those not finished first, by priority then id.
    pub fn list(&mut self, filter: &TaskFilter) -> Result<Vec<Task>, TaskError> {
        let filter = filter.clone();
        self.write("list tasks", |tx, _| {
            let ids: Vec<TaskId> = tx
                .prepare_cached(
                    "SELECT id FROM task WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR agent = ?2) \
                     AND (?3 OR ?1 IS NOT NULL OR state NOT IN ('done', 'failed')) \
                     ORDER BY state IN ('done', 'failed'), priority DESC, id",
                )?
                .query_map(
                    params![filter.state.map(TaskState::as_str), filter.agent, filter.include_finished],
                    |r| r.get(0),
                )?
                .collect::<rusqlite::Result<_>>()?;
            let mut tasks = Vec::with_capacity(ids.len());
            for id in ids {
                tasks.push(load(tx, id)?);
            }
            Ok(tasks)
        })
    }

    /// Gives `request.agent` the best task it may take (or the one it names), locks the task's
    /// paths and starts its lease.
    pub fn claim(&mut self, request: &ClaimRequest) -> Result<Claim, TaskError> {
        check_name("agent", &request.agent)?;
        let labels = check_labels(&request.labels)?;
        let ttl = check_ttl(request.ttl)?;
        let request = request.clone();
        self.write("claim a task", |tx, now| {
            let locks = live_locks(tx)?;
            let candidates: Vec<TaskId> = match request.task {
                Some(id) => vec![load(tx, id)?.id],
                None => tx
                    .prepare_cached(
                        "SELECT id FROM task WHERE state IN ('queued', 'blocked') \
                         ORDER BY state = 'blocked', priority DESC, id",
                    )?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?,
            };
            let mut reasons = Vec::new();
            for id in candidates {
                let task = load(tx, id)?;
                match why_not(tx, &task, &request.agent, &labels, &locks, now)? {
                    None => {
                        take(tx, &task, &request.agent, ttl, now)?;
                        return Ok(Claim::Claimed(Box::new(load(tx, id)?)));
                    }
                    Some(reason) if request.task.is_some() => {
                        let kind = if task.state.is_held() || reason.contains("locked by") {
                            TaskErrorKind::Conflict
                        } else {
                            TaskErrorKind::WrongState
                        };
                        return Err(TaskError::new(kind, format!("cannot claim task #{id}: {reason}")).into());
                    }
                    Some(reason) => {
                        if reasons.len() < MAX_REASONS {
                            reasons.push(Unavailable { task: id, title: task.title.clone(), reason });
                        }
                    }
                }
            }
            Ok(Claim::Nothing(reasons))
        })
    }

    /// Extends the lease of a task `agent` holds by `ttl` from now; the first heartbeat moves it
    /// from `claimed` to `running`.
    pub fn heartbeat(&mut self, id: TaskId, agent: &str, ttl: Duration) -> Result<Task, TaskError> {
        let ttl = check_ttl(ttl)?;
        self.write("extend a task's lease", |tx, now| {
            let task = held_by(tx, id, agent)?;
            tx.prepare_cached(
                "UPDATE task SET state = 'running', heartbeat_ms = ?2, lease_until_ms = ?3, updated_ms = ?2 \
                 WHERE id = ?1",
            )?
            .execute(params![id, now, now.saturating_add(ttl)])?;
            if task.state == TaskState::Claimed {
                record(tx, now, agent, id, "running", json!({ "lease_until_ms": now.saturating_add(ttl) }))?;
            }
            load(tx, id)
        })
    }

    /// Marks a task `agent` holds done, frees its locks, and queues each blocked task whose
    /// needs are now all done; returns the task and the ids of the tasks it unblocked.
    pub fn done(&mut self, id: TaskId, agent: &str) -> Result<(Task, Vec<TaskId>), TaskError> {
        self.write("finish a task", |tx, now| {
            held_by(tx, id, agent)?;
            finish(tx, id, TaskState::Done, None, now)?;
            record(tx, now, agent, id, "done", json!({}))?;
            let dependents: Vec<TaskId> = tx
                .prepare_cached(
                    "SELECT n.task FROM task_need n JOIN task t ON t.id = n.task \
                     WHERE n.needs = ?1 AND t.state = 'blocked' ORDER BY n.task",
                )?
                .query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut unblocked = Vec::new();
            for dependent in dependents {
                if unmet_needs(tx, dependent)?.is_empty() {
                    set_state(tx, dependent, TaskState::Queued, now)?;
                    record(tx, now, "acas", dependent, "unblocked", json!({ "by": id }))?;
                    unblocked.push(dependent);
                }
            }
            Ok((load(tx, id)?, unblocked))
        })
    }

    /// Records a failure of a task `agent` holds: queued again after a backoff while it has
    /// attempts left, else `failed`. Frees its locks.
    pub fn fail(&mut self, id: TaskId, agent: &str, error: &str) -> Result<Task, TaskError> {
        let error = truncate_chars(error.trim(), 4096);
        self.write("record a task's failure", |tx, now| {
            let task = held_by(tx, id, agent)?;
            let attempts = task.attempts + 1;
            if attempts >= task.max_attempts {
                finish(tx, id, TaskState::Failed, Some(&error), now)?;
                tx.prepare_cached("UPDATE task SET attempts = ?2 WHERE id = ?1")?
                    .execute(params![id, attempts])?;
                record(tx, now, agent, id, "failed", json!({ "attempts": attempts, "error": error }))?;
            } else {
                let retry_at = now.saturating_add(backoff_ms(attempts));
                unhold(tx, id, now)?;
                tx.prepare_cached(
                    "UPDATE task SET attempts = ?2, retry_at_ms = ?3, last_error = ?4 WHERE id = ?1",
                )?
                .execute(params![id, attempts, retry_at, error])?;
                record(
                    tx,
                    now,
                    agent,
                    id,
                    "retry",
                    json!({ "attempts": attempts, "retry_at_ms": retry_at, "error": error }),
                )?;
            }
            load(tx, id)
        })
    }

    /// Puts a failed task back in the queue with its attempts counted afresh (its last error is
    /// kept), for a person who has dealt with why it failed; `blocked` again when it needs a task
    /// that is not done.
    pub fn retry(&mut self, id: TaskId, actor: &str) -> Result<Task, TaskError> {
        check_name("actor", actor)?;
        self.write("retry a task", |tx, now| {
            let task = load(tx, id)?;
            if task.state != TaskState::Failed {
                return Err(TaskError::new(
                    TaskErrorKind::WrongState,
                    format!("task #{id} is {}: only a failed task can be retried", task.state.as_str()),
                )
                .into());
            }
            tx.prepare_cached(
                "UPDATE task SET attempts = 0, retry_at_ms = NULL, finished_ms = NULL, agent = NULL, \
                 claimed_ms = NULL, heartbeat_ms = NULL, lease_until_ms = NULL WHERE id = ?1",
            )?
            .execute([id])?;
            let state = if unmet_needs(tx, id)?.is_empty() { TaskState::Queued } else { TaskState::Blocked };
            set_state(tx, id, state, now)?;
            record(tx, now, actor, id, "retried", json!({ "after_attempts": task.attempts }))?;
            load(tx, id)
        })
    }

    /// Makes a queued or blocked task no longer need `dep`, and queues it when nothing else it
    /// needs is unfinished: for a dependency that failed for good or will not be done.
    pub fn drop_need(&mut self, id: TaskId, dep: TaskId, actor: &str) -> Result<Task, TaskError> {
        check_name("actor", actor)?;
        self.write("drop a dependency", |tx, now| {
            let task = load(tx, id)?;
            if !matches!(task.state, TaskState::Queued | TaskState::Blocked) {
                return Err(TaskError::new(
                    TaskErrorKind::WrongState,
                    format!(
                        "task #{id} is {}: only a queued or blocked task has dependencies to drop",
                        task.state.as_str()
                    ),
                )
                .into());
            }
            let dropped = tx
                .prepare_cached("DELETE FROM task_need WHERE task = ?1 AND needs = ?2")?
                .execute(params![id, dep])?;
            if dropped == 0 {
                let needs: Vec<String> = task.needs.iter().map(|n| format!("#{n}")).collect();
                return Err(TaskError::invalid(format!(
                    "task #{id} does not need #{dep}; it needs {}",
                    if needs.is_empty() { "nothing".to_owned() } else { needs.join(", ") }
                ))
                .into());
            }
            if task.state == TaskState::Blocked && unmet_needs(tx, id)?.is_empty() {
                set_state(tx, id, TaskState::Queued, now)?;
            }
            record(tx, now, actor, id, "dependency dropped", json!({ "needs": dep }))?;
            load(tx, id)
        })
    }

    /// The tasks `id` needs that are not done, with their state: why a blocked task waits.
    pub fn waiting_on(&mut self, id: TaskId) -> Result<Vec<(TaskId, TaskState)>, TaskError> {
        self.write("read a task's dependencies", |tx, _| Ok(unmet_needs(tx, id)?))
    }

    /// Gives a task `agent` holds back to the queue, freeing its locks; no attempt is counted.
    pub fn release(&mut self, id: TaskId, agent: &str) -> Result<Task, TaskError> {
        self.write("release a task", |tx, now| {
            held_by(tx, id, agent)?;
            unhold(tx, id, now)?;
            record(tx, now, agent, id, "released", json!({}))?;
            load(tx, id)
        })
    }

    /// Adds path locks to a task `agent` holds, all or none: a glob that overlaps a lock of
    /// another agent is refused, naming that agent, its task and when its lease ends.
    pub fn lock(&mut self, id: TaskId, agent: &str, globs_asked: &[String]) -> Result<Task, TaskError> {
        let globs = check_paths(globs_asked)?;
        self.write("lock paths", |tx, now| {
            let task = held_by(tx, id, agent)?;
            let locks = live_locks(tx)?;
            for glob in &globs {
                if let Some(message) = conflict(glob, agent, &locks) {
                    return Err(
                        TaskError::new(TaskErrorKind::Conflict, format!("cannot lock {message}")).into()
                    );
                }
            }
            if task.locks.len() + globs.len() > MAX_PATHS {
                return Err(TaskError::invalid(format!(
                    "task #{id} would hold more than {MAX_PATHS} locks; lock a directory instead of its files"
                ))
                .into());
            }
            for glob in &globs {
                if !task.locks.iter().any(|l| &l.glob == glob) {
                    insert_lock(tx, id, agent, glob, now)?;
                }
            }
            audit::append(
                tx,
                &AuditEvent {
                    at_ms: now,
                    kind: AuditKind::Lock,
                    actor: agent,
                    subject: &format!("task {id}"),
                    detail: json!({ "event": "locked", "globs": globs }),
                },
            )?;
            load(tx, id)
        })
    }

    /// Every lock held now, by glob.
    pub fn locks(&mut self) -> Result<Vec<Lock>, TaskError> {
        self.write("list path locks", |tx, _| Ok(live_locks(tx)?))
    }

    /// Returns the tasks whose lease ended to the queue now (every other call does it first).
    pub fn reap(&mut self) -> Result<(), TaskError> {
        self.write("return ended leases to the queue", |_, _| Ok(()))
    }

    /// A cheap read that changes whenever a task or a lock changes, with the next lease end
    /// (after which [`TaskQueue::reap`] changes it): for front ends that tell of changes made
    /// by other processes. Takes no write lock.
    pub fn version(&mut self) -> Result<QueueVersion, TaskError> {
        let read = |conn: &Connection| -> rusqlite::Result<QueueVersion> {
            let (tasks, updated, leases, next_lease_end_ms) = conn
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(updated_ms % 1000000007), 0), \
                     COALESCE(SUM(lease_until_ms % 1000000007), 0), \
                     MIN(CASE WHEN state IN ('claimed', 'running') THEN lease_until_ms END) FROM task",
                )?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            let (locks, last_lock) = conn
                .prepare_cached("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM task_lock")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(QueueVersion { tasks, updated, leases, locks, last_lock, next_lease_end_ms })
        };
        read(&self.conn).map_err(|e| {
            StoreError::sqlite("read the task queue's version", &self.db_path, self.busy_timeout, &e).into()
        })
    }
}

/// The task if `agent` holds it now, else why not.
fn held_by(tx: &Transaction<'_>, id: TaskId, agent: &str) -> Result<Task, Fail> {
    let task = load(tx, id)?;
    if task.state.is_held() && task.agent.as_deref() == Some(agent) {
        return Ok(task);
    }
    let message = if task.state.is_held() {
        format!(
            "task #{id} is held by {}, not {agent} (its lease ends {}); claim another task",
            task.agent.as_deref().unwrap_or("?"),
            at(task.lease_until_ms.unwrap_or(0))
        )
    } else {
        format!(
            "task #{id} is not held by {agent}: it is {} (a lease that ended returns the task to the queue); \
             claim it again with `acas task claim --task {id}`",
            task.state.as_str()
        )
    };
    Err(TaskError::new(TaskErrorKind::NotHolder, message).into())
}

/// Why `agent` may not take `task` now, or `None` when it may.
fn why_not(
    tx: &Transaction<'_>,
    task: &Task,
    agent: &str,
    labels: &[String],
    locks: &[Lock],
    now: i64,
) -> rusqlite::Result<Option<String>> {
    if let Some(reason) = why_not_by_state(task) {
        return Ok(Some(reason));
    }
    let unmet = unmet_needs(tx, task.id)?;
    Ok(why_not_with_needs(task, &unmet, agent, labels, locks, now))
}

/// Why a task in its state cannot be taken by anyone (held, or no longer waiting), or `None`:
/// the first half of [`why_not`], shared by both engines.
pub(super) fn why_not_by_state(task: &Task) -> Option<String> {
    if task.state.is_held() {
        return Some(format!(
            "it is held by {} until {}",
            task.agent.as_deref().unwrap_or("?"),
            at(task.lease_until_ms.unwrap_or(0))
        ));
    }
    if task.state != TaskState::Queued && task.state != TaskState::Blocked {
        return Some(format!("it is {}", task.state.as_str()));
    }
    None
}

/// Why `agent` may not take a waiting `task` whose unfinished dependencies are `unmet`, or
/// `None` when it may: the second half of [`why_not`], shared by both engines.
pub(super) fn why_not_with_needs(
    task: &Task,
    unmet: &[(TaskId, TaskState)],
    agent: &str,
    labels: &[String],
    locks: &[Lock],
    now: i64,
) -> Option<String> {
    if !unmet.is_empty() {
        let list: Vec<String> =
            unmet.iter().map(|(id, state)| format!("#{id} ({})", state.as_str())).collect();
        return Some(format!("it waits for {}", list.join(", ")));
    }
    if let Some(retry_at) = task.retry_at_ms.filter(|&r| r > now) {
        return Some(format!(
            "it retries after {} (failed {} of {} times: {})",
            at(retry_at),
            task.attempts,
            task.max_attempts,
            task.last_error.as_deref().unwrap_or("no message")
        ));
    }
    let missing: Vec<&str> = task.labels.iter().filter(|l| !labels.contains(l)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Some(format!("it needs an agent with the labels {}", missing.join(", ")));
    }
    task.paths
        .iter()
        .find_map(|path| conflict(path, agent, locks).map(|message| format!("its path {message}")))
}

/// The first lock of another agent that `glob` overlaps, as a message naming it.
pub(super) fn conflict(glob: &str, agent: &str, locks: &[Lock]) -> Option<String> {
    locks.iter().find(|l| l.agent != agent && globs::overlap(glob, &l.glob)).map(|l| {
        format!(
            "{glob}: it overlaps {}, locked by {} for task #{} \"{}\" until {}; wait for that task to end or \
             its lease to run out, or work on other paths",
            l.glob,
            l.agent,
            l.task,
            l.task_title,
            at(l.lease_until_ms)
        )
    })
}

/// Claims `task` for `agent`: state, lease, and a lock on each of its paths.
fn take(tx: &Transaction<'_>, task: &Task, agent: &str, ttl: i64, now: i64) -> rusqlite::Result<()> {
    let lease_until = now.saturating_add(ttl);
    tx.prepare_cached(
        "UPDATE task SET state = 'claimed', agent = ?2, claimed_ms = ?3, heartbeat_ms = ?3, \
         lease_until_ms = ?4, retry_at_ms = NULL, updated_ms = ?3 WHERE id = ?1",
    )?
    .execute(params![task.id, agent, now, lease_until])?;
    for path in &task.paths {
        insert_lock(tx, task.id, agent, path, now)?;
    }
    record(tx, now, agent, task.id, "claimed", json!({ "lease_until_ms": lease_until, "paths": task.paths }))
}

fn insert_lock(
    tx: &Transaction<'_>,
    task: TaskId,
    agent: &str,
    glob: &str,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO task_lock (task, agent, glob, acquired_ms) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![task, agent, glob, now])
        .map(drop)
}

/// Returns every task whose lease ended by `now` to the queue and frees its locks.
fn reap(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
    let expired: Vec<(TaskId, Option<String>, i64)> = tx
        .prepare_cached(
            "SELECT id, agent, lease_until_ms FROM task \
             WHERE state IN ('claimed', 'running') AND lease_until_ms <= ?1",
        )?
        .query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<i64>>(2)?.unwrap_or(0))))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, agent, until) in expired {
        unhold(tx, id, now)?;
        record(tx, now, "acas", id, "lease_expired", json!({ "agent": agent, "lease_until_ms": until }))?;
    }
    Ok(())
}

/// Back to the queue: no holder, no lease, no locks.
fn unhold(tx: &Transaction<'_>, id: TaskId, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE task SET state = 'queued', agent = NULL, claimed_ms = NULL, heartbeat_ms = NULL, \
         lease_until_ms = NULL, updated_ms = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    tx.prepare_cached("DELETE FROM task_lock WHERE task = ?1")?.execute([id])?;
    Ok(())
}

fn finish(
    tx: &Transaction<'_>,
    id: TaskId,
    state: TaskState,
    error: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE task SET state = ?2, finished_ms = ?3, updated_ms = ?3, lease_until_ms = NULL, \
         last_error = COALESCE(?4, last_error) WHERE id = ?1",
    )?
    .execute(params![id, state.as_str(), now, error])?;
    tx.prepare_cached("DELETE FROM task_lock WHERE task = ?1")?.execute([id])?;
    Ok(())
}

fn set_state(tx: &Transaction<'_>, id: TaskId, state: TaskState, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE task SET state = ?2, updated_ms = ?3 WHERE id = ?1")?
        .execute(params![id, state.as_str(), now])
        .map(drop)
}

/// Appends a task event to the audit log.
fn record(
    tx: &Transaction<'_>,
    now: i64,
    actor: &str,
    id: TaskId,
    event: &str,
    mut detail: serde_json::Value,
) -> rusqlite::Result<()> {
    detail["event"] = json!(event);
    audit::append(
        tx,
        &AuditEvent { at_ms: now, kind: AuditKind::Task, actor, subject: &format!("task {id}"), detail },
    )
    .map(drop)
}

/// The tasks `id` needs that are not done, with their state.
fn unmet_needs(tx: &Transaction<'_>, id: TaskId) -> rusqlite::Result<Vec<(TaskId, TaskState)>> {
    tx.prepare_cached(
        "SELECT t.id, t.state FROM task_need n JOIN task t ON t.id = n.needs \
         WHERE n.task = ?1 AND t.state <> 'done' ORDER BY t.id",
    )?
    .query_map([id], |r| {
        Ok((r.get(0)?, TaskState::parse(&r.get::<_, String>(1)?).unwrap_or(TaskState::Blocked)))
    })?
    .collect()
}

/// Adds the edge `task` needs `need`, refusing one that closes a cycle.
fn add_need(tx: &Transaction<'_>, task: TaskId, need: TaskId) -> Result<(), Fail> {
    if need == task {
        return Err(TaskError::new(TaskErrorKind::Cycle, format!("task #{task} cannot need itself")).into());
    }
    load(tx, need)?;
    if let Some(path) = need_path(tx, need, task)? {
        let cycle: Vec<String> = std::iter::once(task).chain(path).map(|id| format!("#{id}")).collect();
        return Err(TaskError::new(
            TaskErrorKind::Cycle,
            format!(
                "task #{task} cannot need #{need}: that would make the cycle {}; drop one of these dependencies",
                cycle.join(" -> ")
            ),
        )
        .into());
    }
    tx.prepare_cached("INSERT OR IGNORE INTO task_need (task, needs) VALUES (?1, ?2)")?
        .execute(params![task, need])?;
    Ok(())
}

/// A chain of needs from `from` to `to` (both included), if there is one.
fn need_path(tx: &Transaction<'_>, from: TaskId, to: TaskId) -> rusqlite::Result<Option<Vec<TaskId>>> {
    let mut stack = vec![vec![from]];
    let mut seen = HashSet::from([from]);
    let mut stmt = tx.prepare_cached("SELECT needs FROM task_need WHERE task = ?1 ORDER BY needs")?;
    while let Some(path) = stack.pop() {
        let last = *path.last().unwrap_or(&from);
        if last == to {
            return Ok(Some(path));
        }
        let next: Vec<TaskId> = stmt.query_map([last], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
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

fn insert_task(tx: &Transaction<'_>, new: &NewTask, now: i64) -> Result<Task, Fail> {
    tx.prepare_cached(
        "INSERT INTO task (title, description, type, priority, labels, paths, state, source, fingerprint, \
         created_by, created_ms, updated_ms, attempts, max_attempts) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, ?9, ?10, ?10, 0, ?11)",
    )?
    .execute(params![
        new.title,
        new.description,
        new.kind.as_str(),
        new.priority,
        serde_json::to_string(&new.labels).unwrap_or_else(|_| "[]".to_owned()),
        serde_json::to_string(&new.paths).unwrap_or_else(|_| "[]".to_owned()),
        new.source.as_str(),
        new.fingerprint,
        new.created_by,
        now,
        new.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
    ])?;
    let id = tx.last_insert_rowid();
    for &need in &new.needs {
        add_need(tx, id, need)?;
    }
    let blocked = !unmet_needs(tx, id)?.is_empty();
    if blocked {
        set_state(tx, id, TaskState::Blocked, now)?;
    }
    record(
        tx,
        now,
        &new.created_by,
        id,
        "created",
        json!({
            "title": new.title, "type": new.kind.as_str(), "priority": new.priority, "labels": new.labels,
            "paths": new.paths, "needs": new.needs, "source": new.source.as_str(), "fingerprint": new.fingerprint,
        }),
    )?;
    load(tx, id)
}

const TASK_COLUMNS: &str = "id, title, description, type, priority, labels, paths, state, source, fingerprint, \
     created_by, created_ms, updated_ms, agent, claimed_ms, heartbeat_ms, lease_until_ms, attempts, max_attempts, \
     retry_at_ms, last_error, finished_ms";

fn load(tx: &Transaction<'_>, id: TaskId) -> Result<Task, Fail> {
    let found = tx
        .prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM task WHERE id = ?1"))?
        .query_row([id], |r| {
            let list = |i: usize| -> rusqlite::Result<Vec<String>> {
                Ok(serde_json::from_str(&r.get::<_, String>(i)?).unwrap_or_default())
            };
            Ok(Task {
                id: r.get(0)?,
                title: r.get(1)?,
                description: r.get(2)?,
                kind: TaskType::parse(&r.get::<_, String>(3)?).unwrap_or(TaskType::Other),
                priority: r.get(4)?,
                labels: list(5)?,
                paths: list(6)?,
                needs: Vec::new(),
                state: TaskState::parse(&r.get::<_, String>(7)?).unwrap_or(TaskState::Blocked),
                source: TaskSource::parse(&r.get::<_, String>(8)?),
                fingerprint: r.get(9)?,
                created_by: r.get(10)?,
                created_ms: r.get(11)?,
                updated_ms: r.get(12)?,
                agent: r.get(13)?,
                claimed_ms: r.get(14)?,
                heartbeat_ms: r.get(15)?,
                lease_until_ms: r.get(16)?,
                attempts: r.get(17)?,
                max_attempts: r.get(18)?,
                retry_at_ms: r.get(19)?,
                last_error: r.get(20)?,
                finished_ms: r.get(21)?,
                locks: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut task) = found else {
        return Err(TaskError::new(
            TaskErrorKind::NotFound,
            format!("there is no task #{id} in this workspace; `acas task list --all` lists them"),
        )
        .into());
    };
    task.needs = tx
        .prepare_cached("SELECT needs FROM task_need WHERE task = ?1 ORDER BY needs")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    task.locks = locks_where(tx, Some(id))?;
    Ok(task)
}

/// Every lock, by glob then task. Run after [`reap`], so each belongs to a held task.
fn live_locks(tx: &Transaction<'_>) -> rusqlite::Result<Vec<Lock>> {
    locks_where(tx, None)
}

/// The locks of one task, or of all.
fn locks_where(tx: &Transaction<'_>, task: Option<TaskId>) -> rusqlite::Result<Vec<Lock>> {
    tx.prepare_cached(
        "SELECT l.glob, l.agent, l.task, t.title, l.acquired_ms, COALESCE(t.lease_until_ms, 0) \
         FROM task_lock l JOIN task t ON t.id = l.task \
         WHERE t.state IN ('claimed', 'running') AND (?1 IS NULL OR l.task = ?1) ORDER BY l.glob, l.task",
    )?
    .query_map([task], |r| {
        Ok(Lock {
            glob: r.get(0)?,
            agent: r.get(1)?,
            task: r.get(2)?,
            task_title: r.get(3)?,
            acquired_ms: r.get(4)?,
            lease_until_ms: r.get(5)?,
        })
    })?
    .collect()
}

/// A problem of the diagnostics history.
struct Problem {
    fingerprint: String,
    category: String,
    severity: String,
    message: String,
    source: String,
    symbol: Option<String>,
    path: String,
}

/// The fix task of `problem`, from `template`, checked.
fn problem_task(problem: &Problem, root: &Path, template: &NewTask) -> Result<NewTask, Fail> {
    let mut new = template.clone();
    new.kind = TaskType::Fix;
    new.source = TaskSource::Problem;
    new.fingerprint = Some(problem.fingerprint.clone());
    let summary = format!("Fix {}: {}", problem.category, first_line(&problem.message));
    new.title = truncate_chars(&summary, MAX_TITLE_CHARS);
    let relative = relative_path(root, &problem.path);
    if new.paths.is_empty()
        && let Some(path) = &relative
    {
        new.paths.push(path.clone());
    }
    if new.description.is_empty() {
        new.description = format!(
            "{} {} from {}{}: {}\nfingerprint {}\nfile {}",
            problem.severity,
            problem.category,
            problem.source,
            problem.symbol.as_deref().map(|s| format!(" in {s}")).unwrap_or_default(),
            problem.message,
            problem.fingerprint,
            relative.as_deref().unwrap_or(&problem.path),
        );
    }
    Ok(check_new(&new)?)
}

/// A fingerprint asked for, trimmed: at least 6 characters.
fn check_fingerprint(fingerprint: &str) -> Result<&str, TaskError> {
    let fingerprint = fingerprint.trim();
    if fingerprint.len() < 6 {
        return Err(TaskError::invalid(format!(
            "the fingerprint {fingerprint:?} is too short; give at least 6 characters of it (see `acas activity` or the editor's problems)"
        )));
    }
    Ok(fingerprint)
}

fn find_problem(tx: &Transaction<'_>, fingerprint: &str) -> Result<Problem, Fail> {
    let mut found: Vec<Problem> = tx
        .prepare_cached(
            "SELECT fingerprint, category, severity, message, source, symbol, last_path FROM problem \
             WHERE fingerprint = ?1 OR substr(fingerprint, 1, length(?1)) = ?1 \
             ORDER BY fingerprint = ?1 DESC LIMIT 2",
        )?
        .query_map([fingerprint], |r| {
            Ok(Problem {
                fingerprint: r.get(0)?,
                category: r.get(1)?,
                severity: r.get(2)?,
                message: r.get(3)?,
                source: r.get(4)?,
                symbol: r.get(5)?,
                path: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    match found.len() {
        0 => Err(TaskError::new(
            TaskErrorKind::NotFound,
            format!(
                "no recorded problem has the fingerprint {fingerprint}; problems are recorded by the editor, \
                 `acas watch` and `acas run`"
            ),
        )
        .into()),
        2 if found[0].fingerprint != fingerprint => Err(TaskError::invalid(format!(
            "several problems have fingerprints starting with {fingerprint}; give more of it"
        ))
        .into()),
        _ => Ok(found.swap_remove(0)),
    }
}

/// `path` relative to `root` when it lies inside it, as a glob.
fn relative_path(root: &Path, path: &str) -> Option<String> {
    let path = Path::new(path);
    let relative = if path.is_absolute() { path.strip_prefix(root).ok()? } else { path };
    let text = relative.to_str()?;
    let escaped: String = text
        .chars()
        .flat_map(
            |c| if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') { vec!['\\', c] } else { vec![c] },
        )
        .collect();
    globs::normalize(&escaped).ok()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}

pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub(super) fn at(ms: i64) -> String {
    format!("{} UTC", crate::time::date_time(ms))
}

pub(super) fn backoff_ms(attempts: u32) -> i64 {
    let base = BASE_BACKOFF.as_millis() as i64;
    let factor = 1i64.checked_shl(attempts.saturating_sub(1).min(20)).unwrap_or(i64::MAX);
    base.saturating_mul(factor).min(MAX_BACKOFF.as_millis() as i64)
}

pub(super) fn check_ttl(ttl: Duration) -> Result<i64, TaskError> {
    if ttl < MIN_TTL || ttl > MAX_TTL {
        return Err(TaskError::invalid(format!(
            "a lease of {} s is outside the allowed {} s to {} s; ask for a TTL within it and heartbeat before it ends",
            ttl.as_secs_f64(),
            MIN_TTL.as_secs(),
            MAX_TTL.as_secs()
        )));
    }
    Ok(ttl.as_millis() as i64)
}

pub(super) fn check_name(what: &str, name: &str) -> Result<(), TaskError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed != name {
        return Err(TaskError::invalid(format!(
            "the {what} name {name:?} is empty or has spaces around it; give a name such as claude-1"
        )));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(crate::display::is_hidden_char) {
        return Err(TaskError::invalid(format!(
            "the {what} name {} is longer than {MAX_NAME_CHARS} characters or holds a control, bidi or \
             invisible character; give a shorter plain name",
            crate::display::shown(name)
        )));
    }
    Ok(())
}

pub(super) fn check_labels(labels: &[String]) -> Result<Vec<String>, TaskError> {
    let set: BTreeSet<String> = labels.iter().map(|l| l.trim().to_owned()).collect();
    if set.len() > MAX_LABELS {
        return Err(TaskError::invalid(format!(
            "{} labels is over the limit of {MAX_LABELS}; use fewer",
            set.len()
        )));
    }
    for label in &set {
        let ok = !label.is_empty()
            && label.len() <= 64
            && label.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
        if !ok {
            return Err(TaskError::invalid(format!(
                "the label {label:?} is not 1 to 64 letters, digits, - _ . : or /; rename it"
            )));
        }
    }
    Ok(set.into_iter().collect())
}

pub(super) fn check_paths(paths: &[String]) -> Result<Vec<String>, TaskError> {
    if paths.len() > MAX_PATHS {
        return Err(TaskError::invalid(format!(
            "{} paths is over the limit of {MAX_PATHS}; use globs that cover several files",
            paths.len()
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        let glob = globs::normalize(p).map_err(TaskError::invalid)?;
        if !out.contains(&glob) {
            out.push(glob);
        }
    }
    Ok(out)
}

/// Checks every field of a new task against the limits; returns it with labels and paths in
/// canonical form.
pub(super) fn check_new(new: &NewTask) -> Result<NewTask, TaskError> {
    let title = new.title.trim();
    if title.is_empty()
        || title.chars().count() > MAX_TITLE_CHARS
        || title.chars().any(crate::display::is_hidden_char)
    {
        return Err(TaskError::invalid(format!(
            "a task title must be 1 to {MAX_TITLE_CHARS} characters on one line, without control, bidi or \
             invisible characters; put details in the description"
        )));
    }
    if new.description.len() > MAX_DESCRIPTION_BYTES {
        return Err(TaskError::invalid(format!(
            "the description is {} bytes, over the limit of {MAX_DESCRIPTION_BYTES}; shorten it or point to a file",
            new.description.len()
        )));
    }
    if new.needs.len() > MAX_NEEDS {
        return Err(TaskError::invalid(format!(
            "a task may need at most {MAX_NEEDS} tasks; split it into smaller ones"
        )));
    }
    if let Some(max) = new.max_attempts
        && !(1..=MAX_ATTEMPTS_LIMIT).contains(&max)
    {
        return Err(TaskError::invalid(format!("max attempts must be 1 to {MAX_ATTEMPTS_LIMIT}, not {max}")));
    }
    check_name("creator", &new.created_by)?;
    let mut checked = new.clone();
    checked.title = title.to_owned();
    checked.labels = check_labels(&new.labels)?;
    checked.paths = check_paths(&new.paths)?;
    let mut needs = new.needs.clone();
    needs.sort_unstable();
    needs.dedup();
    checked.needs = needs;
    Ok(checked)
}
