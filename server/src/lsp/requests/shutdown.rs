//! `shutdown`: stops the workspace (its pending records are written) before answering.

use std::sync::atomic::Ordering;

use tower_lsp_server::jsonrpc::Result;

use crate::lsp::Backend;

pub(crate) async fn handle(backend: &Backend) -> Result<()> {
    backend.shared.shutdown.store(true, Ordering::SeqCst);
    if let Some(handle) = backend.shared.handle() {
        handle.shutdown().await;
    }
    Ok(())
}
