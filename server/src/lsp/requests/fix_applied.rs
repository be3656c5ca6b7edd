//! Command `acas.fixApplied`: the client applied an AI quick fix (the code action's command).

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::LSPAny;

use crate::lsp::{Backend, errors, invalid_params, stopped};
use crate::store::Outcome;

pub(crate) async fn handle(backend: &Backend, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    let fix_id = arguments.first().and_then(|v| v.as_str()).map(str::to_owned);
    let fix_id = fix_id.ok_or_else(|| invalid_params("acas.fixApplied needs the fix id".to_owned()))?;
    backend
        .handle()?
        .fix_feedback(fix_id, Outcome::Applied)
        .await
        .ok_or_else(stopped)?
        .map_err(errors::refused)?;
    Ok(None)
}
