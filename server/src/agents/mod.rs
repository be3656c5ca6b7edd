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
pub mod tasks;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub use tasks::{
    Claim, ClaimRequest, Lock, NewTask, QueueVersion, Task, TaskError, TaskErrorKind, TaskFilter, TaskQueue,
    TaskSource, TaskState, TaskType, Unavailable,
};

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
