//! The workflow engine's error type: a kind to match on and a message that says what failed and
//! what to do.

use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowErrorKind {
    /// The database refused (locked, corrupt, disk full ...); the message comes from the store.
    Store,
    /// No run with that id, or no workflow with that name.
    NotFound,
    /// Inputs that do not match the workflow's `inputs:` (missing, wrong type, not a choice).
    Input,
    /// A stored definition that no longer parses, or one that cannot run.
    Definition,
    /// The run is not in a state that allows the request (resume a finished run, re-run a
    /// successful one).
    State,
    /// A run only the workspace lease's holder may start, asked for by a process that no longer
    /// holds the lease.
    Fenced,
    /// The run of an accepted webhook request that was started already.
    Claimed,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct WorkflowError {
    pub kind: WorkflowErrorKind,
    pub message: String,
}

impl WorkflowError {
    pub fn new(kind: WorkflowErrorKind, message: impl Into<String>) -> WorkflowError {
        WorkflowError { kind, message: message.into() }
    }
}

impl From<StoreError> for WorkflowError {
    fn from(e: StoreError) -> WorkflowError {
        WorkflowError::new(WorkflowErrorKind::Store, e.to_string())
    }
}
