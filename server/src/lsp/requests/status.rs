//! `acas/status`: a summary of the workspace and the health of its parts.

use acas_protocol::ext;
use tower_lsp_server::jsonrpc::Result;

use crate::lsp::{Backend, NoParams, convert, stopped};

pub(crate) async fn handle(backend: &Backend, _: NoParams) -> Result<ext::StatusResult> {
    let status = backend.handle()?.status().await.ok_or_else(stopped)?;
    Ok(convert::status(status))
}
