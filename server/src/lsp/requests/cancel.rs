//! Command `acas.cancel`: cancels an escalation or a planning by the handle its command
//! answered with. Its end still arrives as its notification (with the error kind `cancelled`).

use acas_protocol::ext;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::LSPAny;

use crate::lsp::work::{self, Kind};
use crate::lsp::{Backend, argument, invalid_params};

pub(crate) async fn handle(backend: &Backend, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    let args: ext::CancelArgs = argument(ext::CANCEL_COMMAND, arguments)?;
    let token = match args {
        ext::CancelArgs { escalation_id: Some(id), plan_id: None } => Kind::Escalation.token(id),
        ext::CancelArgs { escalation_id: None, plan_id: Some(id) } => Kind::Plan.token(id),
        _ => return Err(invalid_params("acas.cancel needs {escalationId} or {planId}")),
    };
    let cancelled = work::cancel(&backend.cancellable, &token);
    Ok(Some(serde_json::to_value(ext::CancelResult { cancelled }).expect("results serialise")))
}
