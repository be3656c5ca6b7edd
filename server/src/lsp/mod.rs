//! The LSP front end: the only module that knows the LSP library and JSON-RPC.
//!
//! Handlers are thin adapters. Notifications become [`workspace::Event`]s, sent synchronously
//! before any `.await` so that the workspace loop sees them in arrival order; requests that need
//! state run as queries on the loop. Outputs of the loop (diagnostics, messages, progress) are
//! turned back into LSP messages by one forwarding task. URIs become absolute paths here and
//! nowhere else.

mod convert;
mod transport;

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use acas_protocol::ext;
use tower_lsp_server::ls_types::notification::Notification as _;
use tower_lsp_server::ls_types::request::Request as _;

use crate::text::PositionEncoding;
use crate::workspace::{self, ContentChange, Event, Handle, MessageLevel, Output, Progress};

/// Commands that exist only when `ACAS_ENABLE_TEST_COMMANDS=1`, to prove failure handling.
const TEST_PANIC_COMMAND: &str = "acas.test.panic";

/// Serves LSP on stdin/stdout until the client exits or disappears. Returns the process exit
/// code: 0 after a clean `shutdown`/`exit`, 1 otherwise (as LSP asks).
pub async fn serve() -> i32 {
    let (service, socket) = LspService::build(Backend::new)
        .custom_method(ext::ExternalDiagnostics::METHOD, Backend::external_diagnostics)
        .custom_method(ext::Problems::METHOD, Backend::problems)
        .custom_method(ext::Status::METHOD, Backend::status)
        .finish();
    let (stdin, stdout) = transport::guard(tokio::io::stdin(), tokio::io::stdout());
    let backend_handle = service.inner().shared();
    Server::new(stdin, stdout, socket).serve(service).await;
    // The client sent `exit`, or closed the connection without it.
    let shutdown_requested = backend_handle.shutdown_requested();
    if let Some(handle) = backend_handle.handle() {
        handle.shutdown().await;
    }
    if shutdown_requested { 0 } else { 1 }
}

struct Shared {
    handle: OnceLock<Handle>,
    shutdown: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn handle(&self) -> Option<&Handle> {
        self.handle.get()
    }

    fn shutdown_requested(&self) -> bool {
        self.shutdown.load(std::sync::atomic::Ordering::SeqCst)
    }
}

struct Backend {
    client: Client,
    shared: std::sync::Arc<Shared>,
    /// Set by `initialize`, consumed by `initialized`.
    start: Mutex<Option<workspace::Options>>,
    /// Whether the client shows `$/progress`.
    progress: std::sync::atomic::AtomicBool,
}

impl Backend {
    fn new(client: Client) -> Backend {
        Backend {
            client,
            shared: std::sync::Arc::new(Shared { handle: OnceLock::new(), shutdown: Default::default() }),
            start: Mutex::new(None),
            progress: Default::default(),
        }
    }

    fn shared(&self) -> std::sync::Arc<Shared> {
        self.shared.clone()
    }

    fn send(&self, event: Event) {
        match self.shared.handle() {
            Some(handle) => handle.send(event),
            None => tracing::warn!("a notification arrived before `initialized`; ignored"),
        }
    }
}

/// ACAS's own methods (see `protocol/README.md`).
impl Backend {
    async fn external_diagnostics(&self, params: ext::ExternalDiagnosticsParams) {
        let Some(path) = parse_uri(&params.uri).as_ref().and_then(file_path) else { return };
        let diagnostics = params.diagnostics.into_iter().map(convert::external_diagnostic).collect();
        self.send(Event::External { path, source: params.source, diagnostics });
    }

    async fn problems(&self, params: ext::ProblemsParams) -> Result<Vec<ext::Problem>> {
        let handle = self.shared.handle().ok_or_else(not_initialized)?;
        let path = match &params.uri {
            Some(uri) => Some(
                parse_uri(uri)
                    .as_ref()
                    .and_then(file_path)
                    .ok_or_else(|| invalid_params(format!("`{uri}` is not a file URI")))?,
            ),
            None => None,
        };
        let (store, root) = handle
            .query(|ws| (ws.store().cloned(), ws.root().to_path_buf()))
            .await
            .ok_or_else(|| internal_error("the workspace has stopped"))?;
        let Some(store) = store else { return Ok(Vec::new()) };
        let query = crate::store::ProblemQuery {
            category: params.category,
            path: path.map(|p| workspace::relative(&root, &p)),
            include_resolved: false,
        };
        // Everything recorded before this request is committed first, so the answer includes it.
        let rows = tokio::task::spawn_blocking(move || store.flush().and_then(|()| store.problems(&query)))
            .await
            .map_err(|_| internal_error("reading problems failed inside ACAS; see its log"))?
            .map_err(|e| internal_error(&format!("reading problems failed: {e}")))?;
        Ok(rows.into_iter().map(|row| convert::problem(&root, row)).collect())
    }

    async fn status(&self) -> Result<ext::StatusResult> {
        let handle = self.shared.handle().ok_or_else(not_initialized)?;
        let status = handle
            .query(|ws| ws.status())
            .await
            .ok_or_else(|| internal_error("the workspace has stopped"))?;
        Ok(convert::status(status))
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let encoding = negotiate_encoding(&params);
        let root = workspace_root(&params);
        let settings = params
            .initialization_options
            .as_ref()
            .map(convert::settings)
            .transpose()
            .map_err(|e| invalid_params(format!("initializationOptions: {e}")))?
            .unwrap_or_default();
        let progress =
            params.capabilities.window.as_ref().and_then(|w| w.work_done_progress).unwrap_or(false);
        self.progress.store(progress, std::sync::atomic::Ordering::SeqCst);
        match root {
            Some(root) => {
                tracing::info!("workspace {}", root.display());
                *self.start.lock().unwrap() = Some(workspace::Options {
                    root,
                    encoding,
                    settings,
                    scan: true,
                    watch: true,
                    record: true,
                    analysis_threads: 2,
                });
            }
            None => {
                tracing::info!("no workspace folder: only open documents are checked");
                *self.start.lock().unwrap() = Some(workspace::Options::detached(encoding, settings));
            }
        }
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(match encoding {
                    PositionEncoding::Utf8 => PositionEncodingKind::UTF8,
                    PositionEncoding::Utf16 => PositionEncodingKind::UTF16,
                }),
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                    ..Default::default()
                })),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: test_commands_enabled()
                        .then(|| TEST_PANIC_COMMAND.to_owned())
                        .into_iter()
                        .collect(),
                    ..Default::default()
                }),
                experimental: Some(serde_json::json!({ "acas": {
                    "version": env!("CARGO_PKG_VERSION"),
                    "methods": [ext::ExternalDiagnostics::METHOD, ext::Problems::METHOD, ext::Status::METHOD],
                } })),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "acas".to_owned(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let Some(options) = self.start.lock().unwrap().take() else {
            return;
        };
        let progress = self.progress.load(std::sync::atomic::Ordering::SeqCst);
        let (handle, outputs) = workspace::start(options);
        let _ = self.shared.handle.set(handle);
        tokio::spawn(forward(self.client.clone(), outputs, progress));
    }

    async fn shutdown(&self) -> Result<()> {
        self.shared.shutdown.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(handle) = self.shared.handle() {
            handle.shutdown().await;
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let Some(path) = file_path(&doc.uri) else {
            return;
        };
        self.send(Event::Opened { path, version: doc.version, language_id: doc.language_id, text: doc.text });
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let Some(path) = file_path(&params.text_document.uri) else {
            return;
        };
        let changes = params
            .content_changes
            .into_iter()
            .map(|c| ContentChange { range: c.range.map(convert::range_from_lsp), text: c.text })
            .collect();
        self.send(Event::Changed { path, version: params.text_document.version, changes });
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        let Some(path) = file_path(&params.text_document.uri) else {
            return;
        };
        self.send(Event::Saved { path });
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let Some(path) = file_path(&params.text_document.uri) else {
            return;
        };
        self.send(Event::Closed { path });
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        match convert::settings(&params.settings) {
            Ok(settings) => {
                if let Some(level) = settings.log_level {
                    crate::logging::set_level(level.as_str());
                }
                self.send(Event::Settings(settings))
            }
            Err(error) => {
                self.client
                    .show_message(MessageType::ERROR, format!("ACAS settings are invalid: {error}"))
                    .await
            }
        }
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        if params.command == TEST_PANIC_COMMAND && test_commands_enabled() {
            let handle = self.shared.handle().ok_or_else(not_initialized)?;
            return handle
                .query(|_| -> Option<LSPAny> { panic!("test panic requested") })
                .await
                .ok_or_else(|| internal_error("the request failed inside ACAS; see its log"));
        }
        Err(invalid_params(format!("unknown command `{}`", params.command)))
    }
}

/// Turns workspace outputs into LSP messages, in order.
async fn forward(client: Client, mut outputs: tokio::sync::mpsc::UnboundedReceiver<Output>, progress: bool) {
    let encoding_independent_token = NumberOrString::String("acas/scan".to_owned());
    let mut progress_token: Option<NumberOrString> = None;
    while let Some(output) = outputs.recv().await {
        match output {
            Output::Diagnostics { path, version, diagnostics } => {
                let Some(uri) = Uri::from_file_path(&path) else {
                    continue;
                };
                let diagnostics = diagnostics.iter().map(|d| convert::diagnostic(&uri, d)).collect();
                client.publish_diagnostics(uri, diagnostics, version).await;
            }
            Output::Message { level, text } => {
                let typ = match level {
                    MessageLevel::Error => MessageType::ERROR,
                    MessageLevel::Warning => MessageType::WARNING,
                    MessageLevel::Info => MessageType::INFO,
                };
                client.show_message(typ, text).await;
            }
            Output::Changes(_) => {}
            Output::Progress(p) if progress => {
                let value = match p {
                    Progress::Begin { title } => {
                        let token = encoding_independent_token.clone();
                        if client.create_work_done_progress(token.clone()).await.is_err() {
                            continue;
                        }
                        progress_token = Some(token);
                        WorkDoneProgress::Begin(WorkDoneProgressBegin { title, ..Default::default() })
                    }
                    Progress::Report { message, percentage } => {
                        WorkDoneProgress::Report(WorkDoneProgressReport {
                            message: Some(message),
                            percentage,
                            ..Default::default()
                        })
                    }
                    Progress::End { message } => {
                        WorkDoneProgress::End(WorkDoneProgressEnd { message: Some(message) })
                    }
                };
                let Some(token) = progress_token.clone() else {
                    continue;
                };
                if matches!(value, WorkDoneProgress::End(_)) {
                    progress_token = None;
                }
                client
                    .send_notification::<notification::Progress>(ProgressParams {
                        token,
                        value: ProgressParamsValue::WorkDone(value),
                    })
                    .await;
            }
            Output::Progress(_) => {}
        }
    }
}

fn negotiate_encoding(params: &InitializeParams) -> PositionEncoding {
    let offered = params.capabilities.general.as_ref().and_then(|g| g.position_encodings.as_ref());
    match offered {
        Some(kinds) if kinds.contains(&PositionEncodingKind::UTF8) => PositionEncoding::Utf8,
        _ => PositionEncoding::Utf16,
    }
}

#[allow(deprecated)]
fn workspace_root(params: &InitializeParams) -> Option<PathBuf> {
    let from_folders = params.workspace_folders.as_ref().and_then(|f| f.first()).map(|f| &f.uri);
    from_folders.or(params.root_uri.as_ref()).and_then(file_path)
}

fn parse_uri(uri: &str) -> Option<Uri> {
    uri.parse::<Uri>().ok()
}

/// The absolute path of a `file:` URI; other schemes are not files ACAS can see.
fn file_path(uri: &Uri) -> Option<PathBuf> {
    let path = uri.to_file_path().map(|p| p.into_owned());
    if path.is_none() {
        tracing::debug!("ignoring non-file URI {}", uri.as_str());
    }
    path
}

fn test_commands_enabled() -> bool {
    std::env::var_os("ACAS_ENABLE_TEST_COMMANDS").is_some_and(|v| v == "1")
}

fn invalid_params(message: String) -> Error {
    Error { code: ErrorCode::InvalidParams, message: message.into(), data: None }
}

fn internal_error(message: &str) -> Error {
    Error { code: ErrorCode::InternalError, message: message.to_owned().into(), data: None }
}

fn not_initialized() -> Error {
    Error {
        code: ErrorCode::ServerError(-32002),
        message: "the server is not initialized".into(),
        data: None,
    }
}
