//! `textDocument/didClose`.

use tower_lsp_server::ls_types::DidCloseTextDocumentParams;

use crate::lsp::{Backend, file_path};
use crate::workspace::Event;

pub(crate) async fn handle(backend: &Backend, params: DidCloseTextDocumentParams) {
    let Some(path) = file_path(&params.text_document.uri) else { return };
    backend.send(Event::Closed { path });
}
