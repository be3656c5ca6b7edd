//! `textDocument/hover`: an AI note's explanation, or the next runs of a workflow's `cron:`.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{Hover, HoverContents, HoverParams, MarkupContent, MarkupKind};

use crate::lsp::{Backend, convert, file_path};

pub(crate) async fn handle(backend: &Backend, params: HoverParams) -> Result<Option<Hover>> {
    let position = params.text_document_position_params;
    let Some(path) = file_path(&position.text_document.uri) else { return Ok(None) };
    let at = crate::text::Position { line: position.position.line, character: position.position.character };
    let found = backend.handle()?.hover(path, at).await;
    Ok(found.map(|(range, markdown)| Hover {
        contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: markdown }),
        range: Some(convert::range_to_lsp(range)),
    }))
}
