//! Command `acas.workflow.cancel`: cancels a run.

use acas_protocol::ext;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::LSPAny;

use crate::lsp::{Backend, argument, errors, stopped};

pub(crate) async fn handle(backend: &Backend, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    let args: ext::WorkflowRunRef = argument(ext::WORKFLOW_CANCEL_COMMAND, arguments)?;
    backend.handle()?.cancel_run(args.run_id).await.ok_or_else(stopped)?.map_err(errors::refused)?;
    Ok(None)
}
