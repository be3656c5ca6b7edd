//! `window/workDoneProgress/cancel`: the user closed a progress; cancels its work.

use tower_lsp_server::ls_types::{NumberOrString, WorkDoneProgressCancelParams};

use crate::lsp::{Backend, work};

pub(crate) async fn handle(backend: &Backend, params: WorkDoneProgressCancelParams) {
    let token = match params.token {
        NumberOrString::String(s) => s,
        NumberOrString::Number(n) => n.to_string(),
    };
    if !work::cancel(&backend.cancellable, &token) {
        tracing::debug!("progress `{token}` is not running; nothing to cancel");
    }
}
