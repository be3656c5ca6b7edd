//! `workspace/executeCommand`: runs the command through the table of commands.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{ExecuteCommandParams, LSPAny};

use crate::lsp::{Backend, methods};

pub(crate) async fn handle(backend: &Backend, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
    methods::run_command(backend, &params.command, params.arguments).await
}
