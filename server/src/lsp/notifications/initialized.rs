//! `initialized`: starts the workspace loop, the task that forwards its outputs and the one that
//! asks about pending policy approvals, and tells
//! the user once why there is no workspace folder, when there is none.

use std::sync::atomic::Ordering;

use tower_lsp_server::ls_types::{InitializedParams, MessageType};

use crate::lsp::{Backend, approvals, coalesce, forward, store_status, tasks_changed};
use crate::workspace;

pub(crate) async fn handle(backend: &Backend, _: InitializedParams) {
    let Some(options) = backend.start.lock().unwrap().take() else {
        return;
    };
    let progress = backend.progress.load(Ordering::SeqCst);
    let (handle, outputs) = workspace::start(options);
    let _ = backend.shared.handle.set(handle);
    tokio::spawn(forward::forward(backend.client.clone(), coalesce::coalesce(outputs), progress));
    if let Some(root) = backend.root() {
        tokio::spawn(approvals::ask(backend.client.clone(), root.clone()));
        let shared = backend.shared.clone();
        tokio::spawn(tasks_changed::watch(backend.client.clone(), root.clone(), move || {
            shared.shutdown_requested()
        }));
        let shared = backend.shared.clone();
        tokio::spawn(store_status::watch(backend.client.clone(), root.clone(), move || {
            shared.shutdown_requested()
        }));
        let shared = backend.shared.clone();
        tokio::spawn(tasks_changed::listen_shared(backend.client.clone(), root, move || {
            shared.shutdown_requested()
        }));
    }
    let detached = backend.detached.lock().unwrap().take();
    match detached {
        Some((MessageType::WARNING, text)) => backend.client.show_message(MessageType::WARNING, text).await,
        Some((level, text)) => backend.client.log_message(level, text).await,
        None => {}
    }
}
