//! `acas/fixFeedback`: what the developer did with an AI fix (reverted, dismissed...).

use acas_protocol::ext;

use crate::lsp::Backend;
use crate::store::Outcome;

pub(crate) async fn handle(backend: &Backend, params: ext::FixFeedbackParams) {
    let outcome = match params.outcome.as_str() {
        "applied" => Outcome::Applied,
        "reverted" => Outcome::Reverted,
        "dismissed" => Outcome::Dismissed,
        other => {
            tracing::warn!("acas/fixFeedback: unknown outcome `{other}`");
            return;
        }
    };
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
