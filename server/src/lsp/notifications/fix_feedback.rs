//! `acas/fixFeedback`: what the developer did with an AI fix (reverted, dismissed...).

use acas_protocol::ext;

use crate::lsp::{Backend, Params, convert};

pub(crate) async fn handle(backend: &Backend, Params(params): Params<ext::FixFeedbackParams>) {
    let outcome = convert::fix_outcome(params.outcome);
    let Ok(handle) = backend.handle() else {
        tracing::warn!("acas/fixFeedback: the server is not initialized");
        return;
    };
    match handle.fix_feedback(params.fix_id, outcome).await {
        Some(Ok(())) => {}
        Some(Err(error)) => tracing::warn!("acas/fixFeedback: {error}"),
        None => tracing::warn!("acas/fixFeedback: the workspace has stopped"),
    }
}
