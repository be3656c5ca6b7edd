//! The LSP front end: the only module that knows the LSP library and JSON-RPC.
//!
//! Handlers are thin adapters, one per file: [`requests`] turn a request into a call on the
//! workspace's [`Handle`] and the answer back into LSP types; [`notifications`] become
//! [`workspace::Event`]s, sent synchronously before any `.await` so that the workspace loop sees
//! them in arrival order. [`methods`] is the one table of the `acas/` methods and the commands,
//! from which the dispatch and the capabilities are built. [`forward`] turns the loop's outputs
//! back into LSP messages. URIs become absolute paths here and nowhere else.

mod approvals;
mod coalesce;
mod convert;
mod errors;
mod forward;
mod framing;
mod methods;
mod notifications;
mod requests;
mod store_status;
mod tasks_changed;
mod transport;
mod work;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::de::DeserializeOwned;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use acas_protocol::ext;

use crate::workspace::{self, Event, Handle};
use errors::{internal as internal_error, invalid_params, not_initialized, stopped};

/// How many messages the LSP library handles at once. Past it, the next message (a `didChange`
/// too) waits until one of them is answered: at the library's default of 4, four requests
/// waiting on a locked store or a slow provider held up every keystroke's diagnostics. Handlers
/// hand their work to the loop at once, so a high limit costs only memory per request.
const MAX_CONCURRENT_MESSAGES: usize = 256;

/// Serves LSP on stdin/stdout until the client exits or disappears. Returns the process exit
/// code: 0 after a clean `shutdown`/`exit`, 1 otherwise (as LSP asks).
pub async fn serve() -> i32 {
    let (service, socket) = methods::register(LspService::build(Backend::new)).finish();
    let (stdin, stdout, written) = transport::guard(tokio::io::stdin(), tokio::io::stdout());
    let backend_handle = service.inner().shared.clone();
    Server::new(stdin, stdout, socket).concurrency_level(MAX_CONCURRENT_MESSAGES).serve(service).await;
    // The last answers to malformed messages go out, unless the client stopped reading them.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), written).await;
    // The client sent `exit`, or closed the connection without it.
    let shutdown_requested = backend_handle.shutdown_requested();
    if let Some(handle) = backend_handle.handle() {
        handle.shutdown().await;
    }
    if shutdown_requested { 0 } else { 1 }
}

struct Shared {
    handle: OnceLock<Handle>,
    shutdown: AtomicBool,
}

impl Shared {
    fn handle(&self) -> Option<&Handle> {
        self.handle.get()
    }

    fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }
}

/// What the handlers share: the client, the workspace's handle once `initialized` started it,
/// and what the client negotiated.
pub(crate) struct Backend {
    client: Client,
    shared: Arc<Shared>,
    /// Set by `initialize`, consumed by `initialized`.
    start: Mutex<Option<workspace::Options>>,
    /// Why there is no workspace folder, told once by `initialized`.
    detached: Mutex<Option<(MessageType, String)>>,
    /// Whether the client shows `$/progress`.
    progress: AtomicBool,
    /// Work the client can cancel (by closing its progress, or with `acas.cancel`), by
    /// progress token.
    cancellable: work::Cancellable,
    /// The workspace folder, when there is one.
    root: Mutex<Option<PathBuf>>,
    /// Set when a workflow step started this server: what it starts acts for that run's agent.
    acting_for: Option<crate::process_tree::Acting>,
}

impl Backend {
    fn new(client: Client) -> Backend {
        Backend {
            client,
            shared: Arc::new(Shared { handle: OnceLock::new(), shutdown: Default::default() }),
            acting_for: crate::process_tree::acting_for(),
            start: Mutex::new(None),
            detached: Mutex::new(None),
            progress: Default::default(),
            cancellable: Default::default(),
            root: Mutex::new(None),
        }
    }

    /// The workspace folder, when there is one.
    fn root(&self) -> Option<PathBuf> {
        self.root.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The workspace, once `initialized` started it.
    fn handle(&self) -> Result<&Handle> {
        self.shared.handle().ok_or_else(not_initialized)
    }

    /// Applies the editor's log settings: the level, and whether the log goes to the editor as
    /// `window/logMessage` (unset leaves it as it is).
    fn log_settings(&self, settings: &acas_protocol::Settings) {
        if let Some(level) = settings.log_level {
            crate::logging::set_level(level.as_str());
        }
        match settings.log_to_client {
            Some(true) => {
                let (sender, mut lines) = crate::logging::client_channel();
                // The previous sender, if any, is dropped: its task ends.
                crate::logging::to_client(Some(sender));
                let client = self.client.clone();
                tokio::spawn(async move {
                    while let Some((level, text)) = lines.recv().await {
                        let typ = match level {
                            tracing::Level::ERROR => MessageType::ERROR,
                            tracing::Level::WARN => MessageType::WARNING,
                            tracing::Level::INFO => MessageType::INFO,
                            _ => MessageType::LOG,
                        };
                        client.log_message(typ, text).await;
                    }
                });
            }
            Some(false) => crate::logging::to_client(None),
            None => {}
        }
    }

    fn send(&self, event: Event) {
        match self.shared.handle() {
            Some(handle) => handle.send(event),
            None => tracing::warn!("a notification arrived before `initialized`; ignored"),
        }
    }
}

/// The standard methods, each served by its handler.
impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        requests::initialize::handle(self, params).await
    }

    async fn initialized(&self, params: InitializedParams) {
        notifications::initialized::handle(self, params).await
    }

    async fn shutdown(&self) -> Result<()> {
        requests::shutdown::handle(self).await
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        notifications::did_open::handle(self, params).await
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        notifications::did_change::handle(self, params).await
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        notifications::did_save::handle(self, params).await
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        notifications::did_close::handle(self, params).await
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        notifications::did_change_configuration::handle(self, params).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        requests::execute_command::handle(self, params).await
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        requests::code_action::handle(self, params).await
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        requests::hover::handle(self, params).await
    }
}

fn parse_uri(uri: &str) -> Option<Uri> {
    uri.parse::<Uri>().ok()
}

/// The absolute path of a `file:` URI on this machine; other schemes (`http:`, `untitled:`...)
/// and other hosts are not files ACAS can see.
fn file_path(uri: &Uri) -> Option<PathBuf> {
    let local = uri.scheme().as_str().eq_ignore_ascii_case("file")
        && uri
            .authority()
            .is_none_or(|a| a.as_str().is_empty() || a.as_str().eq_ignore_ascii_case("localhost"));
    let path =
        local.then(|| uri.to_file_path().map(|p| p.into_owned())).flatten().filter(|p| p.is_absolute());
    if path.is_none() {
        tracing::debug!("ignoring URI {}: not a local file", uri.as_str());
    }
    path
}

/// The path of a `file:` URI a request names, or an invalid-params error.
fn file_path_of(uri: &str) -> Result<PathBuf> {
    parse_uri(uri)
        .as_ref()
        .and_then(file_path)
        .ok_or_else(|| invalid_params(format!("`{uri}` is not a file URI")))
}

/// A command's first argument, as the type it takes (read liberally: [`liberal`]).
fn argument<T: DeserializeOwned>(command: &str, arguments: Vec<LSPAny>) -> Result<T> {
    let argument = arguments
        .into_iter()
        .next()
        .ok_or_else(|| invalid_params(format!("{command} needs an argument object")))?;
    liberal(argument).map_err(|e| invalid_params(format!("{command}: {e}")))
}

/// Reads `value` as a `T`, forgiving what clients commonly send for "nothing": `null` where an
/// object is expected is an empty object, and so is an empty array anywhere in it (Lua, and so
/// Neovim, cannot tell `{}` from `[]` and sends `[]`); a member that is `null` (Lua's `vim.NIL`,
/// Emacs's `nil`) is read as absent, so an optional map or list is empty and a required one is
/// still missing. The error is the one of the value as sent.
fn liberal<T: DeserializeOwned>(value: LSPAny) -> serde_json::Result<T> {
    fn objects(value: &mut LSPAny) -> bool {
        match value {
            LSPAny::Array(items) if items.is_empty() => {
                *value = LSPAny::Object(Default::default());
                true
            }
            LSPAny::Array(items) => items.iter_mut().fold(false, |changed, v| objects(v) | changed),
            LSPAny::Object(map) => {
                let before = map.len();
                map.retain(|_, v| !v.is_null());
                let dropped = map.len() != before;
                map.values_mut().fold(dropped, |changed, v| objects(v) | changed)
            }
            _ => false,
        }
    }
    let error = match serde_json::from_value::<T>(value.clone()) {
        Ok(read) => return Ok(read),
        Err(error) => error,
    };
    let mut forgiven = match value {
        LSPAny::Null => LSPAny::Object(Default::default()),
        other => other,
    };
    objects(&mut forgiven);
    serde_json::from_value(forgiven).map_err(|_| error)
}

/// The params of an `acas/` request, read with [`liberal`]: `null`, `{}` and `[]` are all "no
/// params" for a request that takes none ([`NoParams`]) and the defaults for one whose params
/// are all optional. (An absent `params` reaches here as `null`: see [`transport`].)
#[derive(Debug)]
pub(crate) struct Params<T>(pub(crate) T);

impl<'de, T: DeserializeOwned> serde::Deserialize<'de> for Params<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = <LSPAny as serde::Deserialize>::deserialize(deserializer)?;
        liberal(value).map(Params).map_err(serde::de::Error::custom)
    }
}

/// The params of a request that takes none: anything empty is accepted.
#[derive(Debug, Default)]
pub(crate) struct NoParams;

impl<'de> serde::Deserialize<'de> for NoParams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        match <LSPAny as serde::Deserialize>::deserialize(deserializer)? {
            LSPAny::Null => Ok(NoParams),
            LSPAny::Object(map) if map.is_empty() => Ok(NoParams),
            LSPAny::Array(items) if items.is_empty() => Ok(NoParams),
            other => Err(serde::de::Error::custom(format!("this request takes no params, not {other}"))),
        }
    }
}

/// The answer of a command that started a run.
fn started(run_id: crate::workflow::state::RunId) -> LSPAny {
    serde_json::to_value(ext::WorkflowStarted { run_id }).expect("results serialise")
}

fn test_commands_enabled() -> bool {
    std::env::var_os("ACAS_ENABLE_TEST_COMMANDS").is_some_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use acas_protocol::ext;
    use serde_json::json;

    use super::liberal;

    #[test]
    fn null_is_absent_for_every_optional_map_and_list() {
        let run: ext::WorkflowRunArgs = liberal(json!({ "workflow": "hello", "inputs": null })).unwrap();
        assert!(run.inputs.is_empty());
        let at = json!({ "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 1 } });
        let sent: ext::ExternalDiagnosticsParams = liberal(json!({
            "uri": "file:///a.rs", "source": "ra",
            "diagnostics": [{ "range": at, "message": "m", "relatedInformation": null, "code": null }],
        }))
        .unwrap();
        assert!(sent.diagnostics[0].related_information.is_empty());
        let escalate: ext::EscalateArgs = liberal(
            json!({ "uri": "file:///a.rs", "range": null, "position": { "line": 0, "character": 0 } }),
        )
        .unwrap();
        assert!(escalate.range.is_none());
        // What the protocol requires is still required, and the error is the one as sent.
        let error = liberal::<ext::ExternalDiagnosticsParams>(
            json!({ "uri": "u", "source": "s", "diagnostics": null }),
        )
        .unwrap_err();
        assert!(error.to_string().contains("null"), "{error}");
    }
}
