//! Command `acas.test.panic` (only with `ACAS_ENABLE_TEST_COMMANDS=1`): panics on the loop, to
//! prove that a panic costs only its request.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::LSPAny;

use crate::lsp::{Backend, internal_error};
use crate::workspace::Request;

pub(crate) async fn handle(backend: &Backend, _: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    backend
        .handle()?
        .request(Request::Panic)
        .await
        .map(|()| None)
        .ok_or_else(|| internal_error("the request failed inside ACAS; see its log"))
}
