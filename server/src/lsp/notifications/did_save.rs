//! `textDocument/didSave`.

use tower_lsp_server::ls_types::DidSaveTextDocumentParams;

use crate::lsp::{Backend, file_path};
use crate::workspace::Event;

pub(crate) async fn handle(backend: &Backend, params: DidSaveTextDocumentParams) {
    let Some(path) = file_path(&params.text_document.uri) else { return };
    backend.send(Event::Saved { path });
}
