//! `acas/externalDiagnostics`: another tool's complete diagnostics of a file, as the editor
//! shows them.

use acas_protocol::ext;

use crate::lsp::{Backend, Params, convert, file_path, parse_uri};
use crate::workspace::Event;

pub(crate) async fn handle(backend: &Backend, Params(params): Params<ext::ExternalDiagnosticsParams>) {
    let Some(path) = parse_uri(&params.uri).as_ref().and_then(file_path) else { return };
    let diagnostics = params.diagnostics.into_iter().map(convert::external_diagnostic).collect();
    backend.send(Event::External { path, source: params.source, diagnostics });
}
