//! `workspace/didChangeConfiguration`: the editor's ACAS settings; invalid ones are shown and
//! change nothing.

use tower_lsp_server::ls_types::{DidChangeConfigurationParams, MessageType};

use crate::lsp::{Backend, convert};
use crate::workspace::Event;

pub(crate) async fn handle(backend: &Backend, params: DidChangeConfigurationParams) {
    match convert::settings(&params.settings) {
        Ok(settings) => {
            backend.log_settings(&settings);
            backend.send(Event::Settings(settings))
        }
        Err(error) => {
            backend
                .client
                .show_message(MessageType::ERROR, format!("ACAS settings are invalid: {error}"))
                .await
        }
    }
}
