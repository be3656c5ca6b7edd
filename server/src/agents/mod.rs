//! The control plane for AI coding agents sharing a workspace: claimable tasks with leases,
//! dependencies and retries (`tasks`), and the path locks their claims hold (`globs` decides
//! when two locks overlap).
//!
//! Everything lives in `.acas/state.db`, written in `IMMEDIATE` transactions on a connection of
//! the caller's own, so that several processes (agents, editors, the command line) can claim at
//! once and each decision is taken on the state as it is at that moment. Every change is a
//! record of the store's hash-chained audit log, appended in the same transaction.
//!
//! It has plain Rust APIs: the command line and the MCP server are front ends over it. It does
//! not run tasks, talk to agents or watch files; time comes from a [`Clock`] the caller gives,
//! so that tests drive leases without waiting.

pub mod globs;
pub mod postgres;
pub mod tasks;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub use tasks::{
    Claim, ClaimRequest, Lock, NewTask, QueueVersion, Task, TaskError, TaskErrorKind, TaskFilter, TaskQueue,
    TaskSource, TaskState, TaskType, Unavailable,
};

/// The task queue's shared operations, on either engine: the workspace's SQLite
/// ([`TaskQueue`]) or the team's PostgreSQL ([`postgres::PgTaskQueue`]). They mean the same on
/// both; see `tasks.rs` for the rules.
pub trait Tasks: Send {
    /// Creates a task: `blocked` when it needs a task that is not done, else `queued`.
    fn create(&mut self, new: &NewTask) -> Result<Task, TaskError>;
    /// One task, with its needs and locks.
    fn get(&mut self, id: tasks::TaskId) -> Result<Task, TaskError>;
    /// Gives `request.agent` the best task it may take (or the one it names), locks the task's
    /// paths and starts its lease.
    fn claim(&mut self, request: &ClaimRequest) -> Result<Claim, TaskError>;
    /// Extends the lease of a task `agent` holds; the first heartbeat makes it `running`.
    fn heartbeat(&mut self, id: tasks::TaskId, agent: &str, ttl: Duration) -> Result<Task, TaskError>;
    /// Marks a held task done; returns it and the tasks it unblocked.
    fn done(&mut self, id: tasks::TaskId, agent: &str) -> Result<(Task, Vec<tasks::TaskId>), TaskError>;
    /// Records a failure of a held task: queued again after a backoff, or `failed`.
    fn fail(&mut self, id: tasks::TaskId, agent: &str, error: &str) -> Result<Task, TaskError>;
    /// Gives a held task back to the queue; no attempt is counted.
    fn release(&mut self, id: tasks::TaskId, agent: &str) -> Result<Task, TaskError>;
    /// Every lock held now, by glob.
    fn locks(&mut self) -> Result<Vec<Lock>, TaskError>;
    /// Tasks matching `filter`: those not finished first, by priority then id.
    fn list(&mut self, filter: &TaskFilter) -> Result<Vec<Task>, TaskError>;
    /// Makes a queued or blocked task need each of `needs`; a need that would close a cycle is
    /// refused, naming the cycle.
    fn add_needs(
        &mut self,
        id: tasks::TaskId,
        needs: &[tasks::TaskId],
        actor: &str,
    ) -> Result<Task, TaskError>;
    /// Makes a queued or blocked task no longer need `need`; queued when nothing else it needs is
    /// unfinished.
    fn drop_need(&mut self, id: tasks::TaskId, need: tasks::TaskId, actor: &str) -> Result<Task, TaskError>;
    /// Puts a failed task back in the queue with its attempts counted afresh.
    fn retry(&mut self, id: tasks::TaskId, actor: &str) -> Result<Task, TaskError>;
    /// Adds path locks to a task `agent` holds, all or none.
    fn lock(&mut self, id: tasks::TaskId, agent: &str, globs: &[String]) -> Result<Task, TaskError>;
    /// The tasks `id` needs that are not done, with their state: why a blocked task waits.
    fn waiting_on(&mut self, id: tasks::TaskId) -> Result<Vec<(tasks::TaskId, TaskState)>, TaskError>;
    /// A fix task for a problem recorded in the workspace at `root`, by its fingerprint or a
    /// unique prefix of it; the open task of that problem when there is one (the flag says
    /// whether the task is new).
    fn task_for_problem(
        &mut self,
        fingerprint: &str,
        root: &Path,
        template: &NewTask,
    ) -> Result<(Task, bool), TaskError>;
}

/// The task queue of the workspace at `root`: the team's on the shared store when `[store] url`
/// or `ACAS_DATABASE_URL` names one (the changes this process makes are appended to the
/// workspace's audit log), else the workspace's own. A configuration that cannot be read is
/// refused, since it may name a shared store: a change made to a queue the team does not see
/// would be lost to it.
pub fn open(root: &Path, clock: Arc<dyn Clock>) -> Result<Box<dyn Tasks>, TaskError> {
    let (config, error) = crate::config::load(root);
    if let Some(error) = error {
        return Err(TaskError::invalid(format!("cannot tell which task queue to use: {error}")));
    }
    match config.shared_store {
        Some(shared) => {
            let store = connected(&shared)?;
            Ok(Box::new(postgres::PgTaskQueue::audited(store, clock, root)))
        }
        None => Ok(Box::new(TaskQueue::open(root, clock)?)),
    }
}

/// One handle (one pool, at most 4 connections) per shared store in this process, whoever opens
/// its queue: an editor's views and an MCP server's tools open a queue per call.
fn connected(shared: &crate::store::SharedStore) -> Result<crate::store::PgStore, TaskError> {
    static STORES: std::sync::Mutex<Vec<(crate::store::SharedStore, crate::store::PgStore)>> =
        std::sync::Mutex::new(Vec::new());
    let mut stores = STORES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, store)) = stores.iter().find(|(s, _)| s == shared) {
        return Ok(store.clone());
    }
    let store = shared.connect()?;
    stores.push((shared.clone(), store.clone()));
    Ok(store)
}

/// Whether the workspace at `root` keeps its tasks on a shared store.
pub fn shared(root: &Path) -> bool {
    crate::config::load(root).0.shared_store.is_some()
}

impl Tasks for TaskQueue {
    fn create(&mut self, new: &NewTask) -> Result<Task, TaskError> {
        TaskQueue::create(self, new)
    }
    fn get(&mut self, id: tasks::TaskId) -> Result<Task, TaskError> {
        TaskQueue::get(self, id)
    }
    fn claim(&mut self, request: &ClaimRequest) -> Result<Claim, TaskError> {
        TaskQueue::claim(self, request)
    }
    fn heartbeat(&mut self, id: tasks::TaskId, agent: &str, ttl: Duration) -> Result<Task, TaskError> {
        TaskQueue::heartbeat(self, id, agent, ttl)
    }
    fn done(&mut self, id: tasks::TaskId, agent: &str) -> Result<(Task, Vec<tasks::TaskId>), TaskError> {
        TaskQueue::done(self, id, agent)
    }
    fn fail(&mut self, id: tasks::TaskId, agent: &str, error: &str) -> Result<Task, TaskError> {
        TaskQueue::fail(self, id, agent, error)
    }
    fn release(&mut self, id: tasks::TaskId, agent: &str) -> Result<Task, TaskError> {
        TaskQueue::release(self, id, agent)
    }
    fn locks(&mut self) -> Result<Vec<Lock>, TaskError> {
        TaskQueue::locks(self)
    }
    fn list(&mut self, filter: &TaskFilter) -> Result<Vec<Task>, TaskError> {
        TaskQueue::list(self, filter)
    }
    fn add_needs(
        &mut self,
        id: tasks::TaskId,
        needs: &[tasks::TaskId],
        actor: &str,
    ) -> Result<Task, TaskError> {
        TaskQueue::add_needs(self, id, needs, actor)
    }
    fn drop_need(&mut self, id: tasks::TaskId, need: tasks::TaskId, actor: &str) -> Result<Task, TaskError> {
        TaskQueue::drop_need(self, id, need, actor)
    }
    fn retry(&mut self, id: tasks::TaskId, actor: &str) -> Result<Task, TaskError> {
        TaskQueue::retry(self, id, actor)
    }
    fn lock(&mut self, id: tasks::TaskId, agent: &str, globs: &[String]) -> Result<Task, TaskError> {
        TaskQueue::lock(self, id, agent, globs)
    }
    fn waiting_on(&mut self, id: tasks::TaskId) -> Result<Vec<(tasks::TaskId, TaskState)>, TaskError> {
        TaskQueue::waiting_on(self, id)
    }
    fn task_for_problem(
        &mut self,
        fingerprint: &str,
        root: &Path,
        template: &NewTask,
    ) -> Result<(Task, bool), TaskError> {
        TaskQueue::from_problem(self, fingerprint, root, template)
    }
}

/// Where the task queue reads the time, in Unix milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::time::now_ms()
    }
}

/// A clock that moves only when told to, shared by clones: for tests and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn starting_at(ms: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(ms)))
    }

    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
