//! Tells the client when the agents' task queue changes (`acas/tasksChanged`), whoever changed
//! it: agents over MCP and `acas task` write the store from other processes, so this reads a
//! version of the queue ([`crate::agents::TaskQueue::version`]) every [`POLL`] on a blocking
//! thread and notifies when it differs. When a lease has ended it first returns the task to the
//! queue, so that the view does not show a holder whose lease is over. It shows nothing itself.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use acas_protocol::ext;
use tower_lsp_server::Client;

use crate::agents::{QueueVersion, SystemClock, TaskQueue};

/// How often the queue's version is read.
pub(super) const POLL: Duration = Duration::from_secs(1);

/// Runs until `stop` says so: reads the version, notifies on a change.
pub(super) async fn watch(client: Client, root: PathBuf, stop: impl Fn() -> bool) {
    let mut queue: Option<TaskQueue> = None;
    let mut last: Option<QueueVersion> = None;
    let mut warned = false;
    while !stop() {
        let (root, open) = (root.clone(), queue.take());
        let read = tokio::task::spawn_blocking(move || {
            let mut queue = match open {
                Some(queue) => queue,
                // Never the one to create the workspace's state.
                None if !root.join(".acas").join("state.db").is_file() => return Ok(None),
                None => TaskQueue::open(&root, Arc::new(SystemClock))?,
            };
            let mut version = queue.version()?;
            if version.next_lease_end_ms.is_some_and(|end| end <= crate::time::now_ms()) {
                queue.reap()?;
                version = queue.version()?;
            }
            Ok::<_, crate::agents::TaskError>(Some((queue, version)))
        })
        .await;
        match read {
            Ok(Ok(None)) => {}
            Ok(Ok(Some((open, version)))) => {
                queue = Some(open);
                if last.is_some_and(|last| last != version) {
                    client.send_notification::<ext::TasksChanged>(()).await;
                }
                last = Some(version);
                warned = false;
            }
            Ok(Err(error)) if !warned => {
                tracing::info!(%error, "cannot read the task queue to tell the editor of its changes");
                warned = true;
            }
            _ => {}
        }
        tokio::time::sleep(POLL).await;
    }
}
