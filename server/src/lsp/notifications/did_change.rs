//! `textDocument/didChange`: incremental or full changes.

use tower_lsp_server::ls_types::DidChangeTextDocumentParams;

use crate::lsp::{Backend, convert, file_path};
use crate::workspace::{ContentChange, Event};

pub(crate) async fn handle(backend: &Backend, params: DidChangeTextDocumentParams) {
    let Some(path) = file_path(&params.text_document.uri) else { return };
    let changes = params
        .content_changes
        .into_iter()
        .map(|c| ContentChange { range: c.range.map(convert::range_from_lsp), text: c.text })
        .collect();
    backend.send(Event::Changed { path, version: params.text_document.version, changes });
}
