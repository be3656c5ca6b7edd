//! Tells the client when the agents' task queue changes (`acas/tasksChanged`), whoever changed
//! it: agents over MCP and `acas task` write the store from other processes, so this reads a
//! version of the queue ([`crate::agents::TaskQueue::version`]) every [`POLL`] on a blocking
//! thread and notifies when it differs. When a lease has ended it first returns the task to the
//! queue, so that the view does not show a holder whose lease is over. It shows nothing itself.
//!
//! With a shared store, [`listen_shared`] also hears the team's changes to the repository's
//! tasks and locks as PostgreSQL notifies them (`store::postgres::listen`), from every instance
//! on every machine, and tells the client the same way, once per burst.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use acas_protocol::ext;
use tower_lsp_server::Client;

use crate::agents::{QueueVersion, SystemClock, TaskQueue};
use crate::store::postgres::listen::ChangeKind;

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

/// Runs until `stop` says so: with a shared store configured for the workspace at `root`,
/// notifies the client of each burst of changes to the repository's tasks and locks made by
/// any instance of the team. Connects again with a backoff when the database cannot be
/// reached, saying so once in the log.
pub(super) async fn listen_shared(client: Client, root: PathBuf, stop: impl Fn() -> bool) {
    let config_root = root.clone();
    let Ok((config, _)) = tokio::task::spawn_blocking(move || crate::config::load(&config_root)).await else {
        return;
    };
    let Some(shared) = config.shared_store else { return };
    let mut backoff = Duration::from_millis(250);
    let mut warned = false;
    let store = loop {
        if stop() {
            return;
        }
        let connecting = shared.clone();
        match tokio::task::spawn_blocking(move || connecting.connect()).await {
            Ok(Ok(store)) => break store,
            Ok(Err(error)) if !warned => {
                tracing::warn!(%error, "cannot hear the team's task changes yet; trying again");
                warned = true;
            }
            _ => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    };
    if warned {
        tracing::info!(store = %shared.url, "reached the shared store; listening for the team's task changes");
    }
    let mut changes = store.listen();
    while !stop() {
        let change = tokio::select! {
            change = changes.recv() => change,
            () = tokio::time::sleep(POLL) => continue,
        };
        let Some(change) = change else { return };
        let mut tasks = matches!(change, ChangeKind::Tasks | ChangeKind::Locks | ChangeKind::Resumed);
        // One notification for what arrived together (a claim writes its task and its locks).
        while let Ok(more) = changes.try_recv() {
            tasks |= matches!(more, ChangeKind::Tasks | ChangeKind::Locks | ChangeKind::Resumed);
        }
        if tasks {
            client.send_notification::<ext::TasksChanged>(()).await;
        }
    }
}
