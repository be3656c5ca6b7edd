//! `textDocument/didOpen`.

use tower_lsp_server::ls_types::DidOpenTextDocumentParams;

use crate::lsp::{Backend, file_path};
use crate::workspace::Event;

pub(crate) async fn handle(backend: &Backend, params: DidOpenTextDocumentParams) {
    let doc = params.text_document;
    let Some(path) = file_path(&doc.uri) else { return };
    backend.send(Event::Opened { path, version: doc.version, language_id: doc.language_id, text: doc.text });
}
