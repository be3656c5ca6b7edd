//! `window/workDoneProgress/cancel`: the user closed a progress; cancels its work.

use std::sync::PoisonError;

use tower_lsp_server::ls_types::{NumberOrString, WorkDoneProgressCancelParams};

use crate::lsp::Backend;

pub(crate) async fn handle(backend: &Backend, params: WorkDoneProgressCancelParams) {
    let token = match params.token {
        NumberOrString::String(s) => s,
        NumberOrString::Number(n) => n.to_string(),
    };
    let cancel = backend.cancellable.lock().unwrap_or_else(PoisonError::into_inner).get(&token).cloned();
    match cancel {
        Some(cancel) => cancel.cancel(),
        None => tracing::debug!("progress `{token}` is not running; nothing to cancel"),
    }
}
