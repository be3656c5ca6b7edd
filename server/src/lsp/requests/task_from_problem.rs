//! Command `acas.task.fromProblem`: a task for agents from a recorded problem, as `acas task
//! from-problem` makes it (or the problem's open task), through `agents::open` (the team's queue on a shared store) on a
//! blocking thread. It is created by the user, or by the enclosing run's agent when a workflow
//! step started this server.

use std::sync::Arc;

use acas_protocol::ext::{self, ErrorKind};
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::LSPAny;

use crate::agents::{NewTask, SystemClock, TaskErrorKind};
use crate::lsp::{Backend, argument, convert, errors};

pub(crate) async fn handle(backend: &Backend, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    let args: ext::TaskFromProblemArgs = argument(ext::TASK_FROM_PROBLEM_COMMAND, arguments)?;
    backend.handle()?;
    let Some(root) = backend.root() else {
        return Err(errors::error(
            ErrorKind::NoWorkspace,
            "the task queue needs a workspace folder; open one",
        ));
    };
    let mut template = NewTask::titled("from a problem");
    if let Some(acting) = &backend.acting_for {
        template.created_by = acting.agent.clone();
    }
    let made = tokio::task::spawn_blocking(move || {
        let mut queue = crate::agents::open(&root, Arc::new(SystemClock))?;
        queue.task_for_problem(&args.fingerprint, &root, &template)
    })
    .await
    .map_err(|_| errors::internal("creating the task stopped; see ACAS's log"))?;
    let (task, created) = made.map_err(|e| {
        let kind = match e.kind {
            TaskErrorKind::NotFound | TaskErrorKind::Invalid => ErrorKind::InvalidParams,
            TaskErrorKind::Store => ErrorKind::StoreFailed,
            _ => ErrorKind::Internal,
        };
        errors::error(kind, e.message)
    })?;
    let result = ext::TaskFromProblemResult { task: convert::task(&task), created };
    Ok(Some(serde_json::to_value(result).map_err(|e| errors::internal(e.to_string()))?))
}
