//! `acas/tasks`: the agents' task queue and the path locks held now, read through `agents::open`
//! (the workspace's store, or the team's queue of the repository on a shared store) on a
//! blocking thread (the queue is shared with other processes and is not state of the loop).

use std::sync::Arc;

use acas_protocol::ext::{self, ErrorKind};
use tower_lsp_server::jsonrpc::Result;

use crate::agents::{SystemClock, TaskFilter};
use crate::lsp::{Backend, Params, convert, errors};

pub(crate) async fn handle(
    backend: &Backend,
    Params(params): Params<ext::TasksParams>,
) -> Result<ext::TasksResult> {
    backend.handle()?;
    let Some(root) = backend.root() else {
        return Err(errors::error(
            ErrorKind::NoWorkspace,
            "the task queue needs a workspace folder; open one",
        ));
    };
    let filter =
        TaskFilter { include_finished: params.include_finished.unwrap_or(false), ..TaskFilter::default() };
    let read = tokio::task::spawn_blocking(move || {
        // A workspace without state has no tasks of its own; asking does not create its state.
        if !crate::agents::shared(&root) && !root.join(".acas").join("state.db").is_file() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut queue = crate::agents::open(&root, Arc::new(SystemClock))?;
        Ok::<_, crate::agents::TaskError>((queue.list(&filter)?, queue.locks()?))
    })
    .await
    .map_err(|_| errors::internal("reading the task queue stopped; see ACAS's log"))?;
    let (tasks, locks) = read.map_err(|e| errors::error(ErrorKind::StoreFailed, e.message))?;
    Ok(ext::TasksResult {
        tasks: tasks.iter().map(convert::task).collect(),
        locks: locks.iter().map(convert::task_lock).collect(),
    })
}
