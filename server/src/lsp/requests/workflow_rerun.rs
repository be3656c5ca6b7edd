//! Command `acas.workflow.rerun`: runs a finished run's workflow again with the same inputs.

use acas_protocol::ext;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::LSPAny;

use crate::lsp::{Backend, argument, errors, started, stopped};

pub(crate) async fn handle(backend: &Backend, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    let args: ext::WorkflowRunRef = argument(ext::WORKFLOW_RERUN_COMMAND, arguments)?;
    let run = backend.handle()?.rerun(args.run_id).await.ok_or_else(stopped)?;
    Ok(Some(started(run.map_err(errors::refused)?)))
}
