//! Request handlers, one per file: each turns the LSP request into a call on the workspace's
//! [`crate::workspace::Handle`] and the answer back into LSP types. No domain logic here.

pub(super) mod cancel;
pub(super) mod code_action;
pub(super) mod escalate;
pub(super) mod execute_command;
pub(super) mod fix_applied;
pub(super) mod hover;
pub(super) mod initialize;
pub(super) mod plan;
pub(super) mod problems;
pub(super) mod run_checkers;
pub(super) mod shutdown;
pub(super) mod spend;
pub(super) mod status;
pub(super) mod task_from_problem;
pub(super) mod tasks;
pub(super) mod test_panic;
pub(super) mod workflow_cancel;
pub(super) mod workflow_rerun;
pub(super) mod workflow_run;
pub(super) mod workflows;
