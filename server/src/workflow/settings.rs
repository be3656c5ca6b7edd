//! What `.acas/config.toml` says about keeping workflow runs, as the engine takes it.
//!
//! Plain values with their defaults; `config` parses the file into them, nothing here reads it.

use std::time::Duration;

/// How much workflow run history is kept (`[workflows]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkflowHistory {
    /// At most this many finished runs per workflow (`keep_runs`). Default: 100.
    pub keep_runs: usize,
    /// Finished runs older than this are deleted (`keep_days`). Default: 30 days.
    pub keep_age: Duration,
}

impl Default for WorkflowHistory {
    fn default() -> WorkflowHistory {
        WorkflowHistory { keep_runs: 100, keep_age: Duration::from_secs(30 * 24 * 3600) }
    }
}
