//! `acas/problems`: the problems recorded in the store, open ones only.

use acas_protocol::ext;
use tower_lsp_server::jsonrpc::Result;

use crate::lsp::{Backend, Params, convert, errors, file_path_of, internal_error};

pub(crate) async fn handle(
    backend: &Backend,
    Params(params): Params<ext::ProblemsParams>,
) -> Result<Vec<ext::Problem>> {
    let handle = backend.handle()?;
    let path = params.uri.as_deref().map(file_path_of).transpose()?;
    let (root, rows) = handle
        .problems(params.category, path)
        .await
        .ok_or_else(|| internal_error("reading problems failed inside ACAS; see its log"))?
        .map_err(errors::refused)?;
    Ok(rows.into_iter().map(|row| convert::problem(&root, row)).collect())
}
