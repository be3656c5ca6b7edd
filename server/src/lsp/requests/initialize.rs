//! `initialize`: negotiates the position encoding, finds the workspace folder (or why there is
//! none) and announces the capabilities, commands and `acas/` methods from the method table.
//! The workspace itself starts at `initialized`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::lsp::{Backend, convert, file_path, invalid_params, methods};
use crate::text::PositionEncoding;
use crate::workspace;

pub(crate) async fn handle(backend: &Backend, params: InitializeParams) -> Result<InitializeResult> {
    let encoding = negotiate_encoding(&params);
    let root = workspace_root(&params);
    let settings = params
        .initialization_options
        .as_ref()
        .map(convert::settings)
        .transpose()
        .map_err(|e| invalid_params(format!("initializationOptions: {e}")))?
        .unwrap_or_default();
    let progress = params.capabilities.window.as_ref().and_then(|w| w.work_done_progress).unwrap_or(false);
    backend.progress.store(progress, Ordering::SeqCst);
    backend.log_settings(&settings);
    open_log_file(root.as_ref().ok().map(PathBuf::as_path));
    match root {
        Ok(root) => {
            tracing::info!("workspace {}", root.display());
            *backend.root.lock().unwrap() = Some(root.clone());
            *backend.start.lock().unwrap() = Some(workspace::Options {
                root,
                encoding,
                settings,
                scan: true,
                watch: true,
                record: true,
                symbols: true,
                analysis_threads: 2,
                acting_for: backend.acting_for.clone(),
            });
        }
        Err(why) => {
            let (level, text) = match why {
                NoRoot::Missing => (MessageType::INFO, "no workspace folder is open".to_owned()),
                NoRoot::Unusable(reason) => (MessageType::WARNING, reason),
            };
            let text = format!(
                "ACAS: {text}; only open documents are checked and nothing is recorded. Open a \
                 local folder to record activity and run workflows"
            );
            tracing::info!("{text}");
            *backend.start.lock().unwrap() = Some(workspace::Options::detached(encoding, settings));
            *backend.detached.lock().unwrap() = Some((level, text));
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
            hover_provider: Some(HoverProviderCapability::Simple(true)),
            execute_command_provider: Some(ExecuteCommandOptions {
                commands: methods::commands(),
                ..Default::default()
            }),
            code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
                code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
                ..Default::default()
            })),
            experimental: Some(methods::experimental()),
            ..Default::default()
        },
        server_info: Some(ServerInfo {
            name: "acas".to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }),
        offset_encoding: None,
    })
}

/// Sends the rest of the log to the workspace's log file, or the user's without a workspace.
fn open_log_file(root: Option<&std::path::Path>) {
    let Some((base, dir)) = crate::logging::file_place(root) else {
        tracing::warn!("no workspace folder and no HOME: the log goes to stderr only");
        return;
    };
    match crate::logging::open_file(&base, dir) {
        Ok(path) => tracing::info!("log file {}", path.display()),
        Err(error) => tracing::warn!(
            "cannot write the log file under {}: {error}; the log goes to stderr only",
            base.join(dir).display()
        ),
    }
}

fn negotiate_encoding(params: &InitializeParams) -> PositionEncoding {
    let offered = params.capabilities.general.as_ref().and_then(|g| g.position_encodings.as_ref());
    match offered {
        Some(kinds) if kinds.contains(&PositionEncodingKind::UTF8) => PositionEncoding::Utf8,
        _ => PositionEncoding::Utf16,
    }
}

/// Why a workspace has no folder to record state in.
enum NoRoot {
    /// The client opened no folder.
    Missing,
    /// The folder is not a local directory, for this reason.
    Unusable(String),
}

/// The local directory the client opened, or why there is none. Only an existing directory
/// named by a `file:` URI is a root: state is written nowhere else.
fn workspace_root(params: &InitializeParams) -> std::result::Result<PathBuf, NoRoot> {
    let from_folders = params.workspace_folders.as_ref().and_then(|f| f.first()).map(|f| &f.uri);
    #[allow(deprecated)] // `rootUri` is what clients without workspace folders send.
    let uri = from_folders.or(params.root_uri.as_ref()).ok_or(NoRoot::Missing)?;
    let path = file_path(uri).ok_or_else(|| {
        NoRoot::Unusable(format!("the workspace folder `{}` is not a local file URI", uri.as_str()))
    })?;
    if !path.is_dir() {
        return Err(NoRoot::Unusable(format!(
            "the workspace folder {} is not a directory on this machine",
            path.display()
        )));
    }
    Ok(path)
}
