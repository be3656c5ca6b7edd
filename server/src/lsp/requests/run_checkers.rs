//! Command `acas.runCheckers`: runs the project's checkers now (those named, or every enabled
//! one); their problems arrive as diagnostics.

use acas_protocol::ext;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::LSPAny;

use crate::lsp::{Backend, argument, errors, stopped};

pub(crate) async fn handle(backend: &Backend, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    let args: ext::RunCheckersArgs = if arguments.iter().all(LSPAny::is_null) {
        ext::RunCheckersArgs::default()
    } else {
        argument(ext::RUN_CHECKERS_COMMAND, arguments)?
    };
    let started =
        backend.handle()?.run_checkers(args.names).await.ok_or_else(stopped)?.map_err(errors::refused)?;
    Ok(Some(serde_json::to_value(ext::RunCheckersResult { started }).expect("results serialise")))
}
