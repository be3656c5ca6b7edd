//! The LSP front end: the only module that knows the LSP library and JSON-RPC.
//!
//! Handlers are thin adapters. Notifications become [`workspace::Event`]s, sent synchronously
//! before any `.await` so that the workspace loop sees them in arrival order; requests that need
//! state run as queries on the loop. Outputs of the loop (diagnostics, messages, progress) are
//! turned back into LSP messages by one forwarding task. URIs become absolute paths here and
//! nowhere else.

mod coalesce;
mod convert;
mod errors;
mod framing;
mod transport;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use acas_protocol::ext;
use tower_lsp_server::ls_types::notification::Notification as _;
use tower_lsp_server::ls_types::request::Request as _;

use crate::text::PositionEncoding;
use crate::workspace::{self, ContentChange, Event, Handle, MessageLevel, Output, Progress};
use errors::{internal as internal_error, invalid_params, not_initialized};

/// Commands that exist only when `ACAS_ENABLE_TEST_COMMANDS=1`, to prove failure handling.
const TEST_PANIC_COMMAND: &str = "acas.test.panic";
/// Sent by the client after it applied an AI quick fix (attached to the code action).
const FIX_APPLIED_COMMAND: &str = "acas.fixApplied";

/// Serves LSP on stdin/stdout until the client exits or disappears. Returns the process exit
/// code: 0 after a clean `shutdown`/`exit`, 1 otherwise (as LSP asks).
pub async fn serve() -> i32 {
    let (service, socket) = LspService::build(Backend::new)
        .custom_method(ext::ExternalDiagnostics::METHOD, Backend::external_diagnostics)
        .custom_method(ext::Problems::METHOD, Backend::problems)
        .custom_method(ext::Status::METHOD, Backend::status)
        .custom_method(ext::Spend::METHOD, Backend::spend)
        .custom_method(ext::FixFeedback::METHOD, Backend::fix_feedback)
        .custom_method(WORK_DONE_PROGRESS_CANCEL, Backend::progress_cancel)
        .custom_method(ext::Workflows::METHOD, Backend::workflows)
        .finish();
    let (stdin, stdout, written) = transport::guard(tokio::io::stdin(), tokio::io::stdout());
    let backend_handle = service.inner().shared();
    Server::new(stdin, stdout, socket).serve(service).await;
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
    /// Why there is no workspace folder, told once by `initialized`.
    detached: Mutex<Option<(MessageType, String)>>,
    /// Whether the client shows `$/progress`.
    progress: std::sync::atomic::AtomicBool,
    /// Work the client can cancel by closing its progress, by progress token.
    cancellable: Mutex<HashMap<String, tokio_util::sync::CancellationToken>>,
}

impl Backend {
    fn new(client: Client) -> Backend {
        Backend {
            client,
            shared: std::sync::Arc::new(Shared { handle: OnceLock::new(), shutdown: Default::default() }),
            start: Mutex::new(None),
            detached: Mutex::new(None),
            progress: Default::default(),
            cancellable: Default::default(),
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
            .ok_or_else(errors::stopped)?;
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
            .map_err(|e| {
                errors::error(
                    acas_protocol::ext::ErrorKind::StoreFailed,
                    format!("reading problems failed: {e}"),
                )
            })?;
        Ok(rows.into_iter().map(|row| convert::problem(&root, row)).collect())
    }

    async fn spend(&self) -> Result<ext::SpendResult> {
        let handle = self.shared.handle().ok_or_else(not_initialized)?;
        let (store, budget, providers) =
            handle.query(|ws| ws.spend_setup()).await.ok_or_else(errors::stopped)?;
        let (today, month) = match store {
            Some(store) => tokio::task::spawn_blocking(move || {
                let (day, month) = crate::escalate::engine::period_starts(workspace::now_ms());
                (store.spend_since(day, None).unwrap_or(0), store.spend_since(month, None).unwrap_or(0))
            })
            .await
            .map_err(|_| internal_error("reading spend failed inside ACAS; see its log"))?,
            None => (0, 0),
        };
        let usd = crate::escalate::cost::usd;
        Ok(ext::SpendResult {
            today_usd: usd(today),
            month_usd: usd(month),
            daily_budget_usd: budget.workspace.daily.map(usd),
            monthly_budget_usd: budget.workspace.monthly.map(usd),
            providers,
        })
    }

    async fn fix_feedback(&self, params: ext::FixFeedbackParams) {
        let outcome = convert::fix_outcome(params.outcome);
        if let Err(error) = self.feedback(params.fix_id, outcome).await {
            tracing::warn!("acas/fixFeedback: {}", error.message);
        }
    }

    async fn feedback(&self, fix_id: String, outcome: crate::store::Outcome) -> Result<()> {
        let handle = self.shared.handle().ok_or_else(not_initialized)?;
        handle
            .query(move |ws| ws.fix_feedback(&fix_id, outcome))
            .await
            .ok_or_else(errors::stopped)?
            .map_err(errors::refused)
    }

    /// Runs one escalation with `$/progress`, and shows its answer on the file.
    async fn escalate(&self, args: ext::EscalateArgs) -> Result<ext::EscalateResult> {
        let handle = self.shared.handle().ok_or_else(not_initialized)?;
        let path = parse_uri(&args.uri)
            .as_ref()
            .and_then(file_path)
            .ok_or_else(|| invalid_params(format!("`{}` is not a file URI", args.uri)))?;
        let range = convert::escalate_range(&args)
            .ok_or_else(|| invalid_params("acas.escalate needs a range or a position"))?;
        let (choose, diagnostic) = (args.range.is_none(), args.diagnostic.map(convert::external_diagnostic));
        let lookup = path.clone();
        let provider = args.provider.clone();
        let job = handle
            .query(move |ws| ws.escalation_job(&lookup, range, diagnostic, provider.as_deref(), choose))
            .await
            .ok_or_else(errors::stopped)?
            .map_err(errors::refused)?;
        let cancel = tokio_util::sync::CancellationToken::new();
        // A request the client cancels ($/cancelRequest) is dropped: that cancels the work too.
        let _cancel_on_drop = cancel.clone().drop_guard();
        let text = job.text.clone();
        let byte_range = job.range.clone();
        let problem = job.problem.clone();
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
        let progress = self.progress.load(std::sync::atomic::Ordering::SeqCst).then(|| self.client.clone());
        let token =
            format!("acas/escalate/{}", ESCALATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        // Closing the progress (window/workDoneProgress/cancel) cancels the escalation.
        let _registered = progress.is_some().then(|| Registered::new(&self.cancellable, &token, &cancel));
        let reporter = tokio::spawn(async move {
            let Some(client) = progress else {
                while received.recv().await.is_some() {}
                return;
            };
            let token = NumberOrString::String(token);
            if client.create_work_done_progress(token.clone()).await.is_err() {
                while received.recv().await.is_some() {}
                return;
            }
            let ongoing = client
                .progress(token, "ACAS: asking AI")
                .with_message("building the context")
                .with_cancel_button()
                .begin()
                .await;
            while let Some(message) = received.recv().await {
                ongoing.report_with_message(message, None).await;
            }
            ongoing.finish().await;
        });
        let mut chars = 0usize;
        let mut reported_at = 0usize;
        let mut on_event = |provider: &str, event: crate::escalate::StreamEvent| match event {
            crate::escalate::StreamEvent::Started => {
                let _ = events.send(format!("asking {provider}"));
            }
            crate::escalate::StreamEvent::Text(text) => {
                chars += text.len();
                if reported_at == 0 || chars - reported_at >= 400 {
                    reported_at = chars.max(1);
                    let _ = events.send(format!("{provider}: {chars} characters received"));
                }
            }
            crate::escalate::StreamEvent::Usage(_) => {}
        };
        let result = crate::assist::run(job, &mut on_event, &cancel).await;
        drop(events);
        let _ = reporter.await;
        if let Err(error) = &result
            && !matches!(error, crate::escalate::engine::EscalateError::Cancelled)
        {
            let (path, problem, error) = (path.clone(), problem.clone(), error.to_string());
            handle.send(Event::Query(Box::new(move |ws| ws.escalation_failed(&path, &problem, &error))));
        }
        let explained = result.map_err(|e| errors::escalate(&e))?;
        let shown = explained.clone();
        let fix_id = handle
            .query(move |ws| ws.escalation_done(&path, &text, byte_range, &problem, &shown))
            .await
            .ok_or_else(errors::stopped)?;
        Ok(ext::EscalateResult {
            explanation: explained.explanation,
            fix_id: explained.fix.is_some().then_some(fix_id),
            fix_rejected: explained.fix_rejected,
            provider: explained.provider,
            model: explained.model,
            cost_usd: crate::escalate::cost::usd(explained.cost_micros),
            cached: explained.cached,
        })
    }

    /// `acas.workflow.run`, `acas.workflow.cancel` and `acas.workflow.rerun`.
    async fn workflow_command(&self, command: &str, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
        let handle = self.shared.handle().ok_or_else(not_initialized)?;
        let argument = arguments
            .into_iter()
            .next()
            .ok_or_else(|| invalid_params(format!("{command} needs an argument object")))?;
        let started = match command {
            ext::WORKFLOW_RUN_COMMAND => {
                let args: ext::WorkflowRunArgs = serde_json::from_value(argument)
                    .map_err(|e| invalid_params(format!("{command}: {e}")))?;
                let trigger = crate::workflow::triggers::Trigger::Manual {
                    source: crate::workflow::triggers::ManualSource::Editor,
                };
                handle.query(move |ws| ws.start_run(&args.workflow, trigger, &args.inputs).map(Some)).await
            }
            _ => {
                let args: ext::WorkflowRunRef = serde_json::from_value(argument)
                    .map_err(|e| invalid_params(format!("{command}: {e}")))?;
                if command == ext::WORKFLOW_CANCEL_COMMAND {
                    handle.query(move |ws| ws.cancel_run(args.run_id).map(|()| None)).await
                } else {
                    handle.query(move |ws| ws.rerun(args.run_id).map(Some)).await
                }
            }
        };
        let started = started.ok_or_else(errors::stopped)?.map_err(errors::refused)?;
        Ok(started
            .map(|run_id| serde_json::to_value(ext::WorkflowStarted { run_id }).expect("results serialise")))
    }

    /// `acas.plan`: asks for a plan, shows it with `window/showMessageRequest`, runs it when the
    /// user approves. Cancelling the request cancels the planning.
    async fn plan(&self, args: ext::PlanArgs) -> Result<ext::PlanResult> {
        let handle = self.shared.handle().ok_or_else(not_initialized)?;
        let ai = handle
            .query(|ws| ws.workflow_ai())
            .await
            .ok_or_else(errors::stopped)?
            .map_err(errors::refused)?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let _cancel_on_drop = cancel.clone().drop_guard();
        let plan = crate::workflow::planner::generate(ai.as_ref(), &args.prompt, &cancel)
            .await
            .map_err(errors::plan)?;
        let rendered = plan.render();
        let run = MessageActionItem { title: "Run plan".to_owned(), properties: Default::default() };
        let cancel_item = MessageActionItem { title: "Cancel".to_owned(), properties: Default::default() };
        let choice = self
            .client
            .show_message_request(
                MessageType::INFO,
                format!("ACAS plan for \"{}\":\n{rendered}", args.prompt),
                Some(vec![run.clone(), cancel_item]),
            )
            .await
            .ok()
            .flatten();
        let approved = choice.is_some_and(|c| c.title == run.title);
        let mut result = ext::PlanResult {
            plan: rendered,
            tasks: plan.tasks.len() as u32,
            approved,
            run_id: None,
            cost_usd: plan.cost_usd,
        };
        if approved {
            let run_id = handle
                .query(move |ws| ws.start_plan(&plan))
                .await
                .ok_or_else(errors::stopped)?
                .map_err(errors::refused)?;
            result.run_id = Some(run_id);
        }
        Ok(result)
    }

    /// `acas/workflows`: the valid workflows and the recent runs.
    async fn workflows(&self) -> Result<ext::WorkflowsResult> {
        let handle = self.shared.handle().ok_or_else(not_initialized)?;
        let (workflows, runs) = handle.query(|ws| ws.workflows(50)).await.ok_or_else(errors::stopped)?;
        Ok(convert::workflows(&workflows, &runs))
    }

    /// `window/workDoneProgress/cancel`: the user closed a progress; cancels its work.
    async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        let token = match params.token {
            NumberOrString::String(s) => s,
            NumberOrString::Number(n) => n.to_string(),
        };
        let cancel = self.cancellable.lock().unwrap_or_else(PoisonError::into_inner).get(&token).cloned();
        match cancel {
            Some(cancel) => cancel.cancel(),
            None => tracing::debug!("progress `{token}` is not running; nothing to cancel"),
        }
    }

    async fn status(&self) -> Result<ext::StatusResult> {
        let handle = self.shared.handle().ok_or_else(not_initialized)?;
        let status = handle.query(|ws| ws.status()).await.ok_or_else(errors::stopped)?;
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
            Ok(root) => {
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
                *self.start.lock().unwrap() = Some(workspace::Options::detached(encoding, settings));
                *self.detached.lock().unwrap() = Some((level, text));
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
                    commands: [
                        ext::ESCALATE_COMMAND,
                        FIX_APPLIED_COMMAND,
                        ext::WORKFLOW_RUN_COMMAND,
                        ext::WORKFLOW_CANCEL_COMMAND,
                        ext::WORKFLOW_RERUN_COMMAND,
                        ext::PLAN_COMMAND,
                    ]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(test_commands_enabled().then(|| TEST_PANIC_COMMAND.to_owned()))
                    .collect(),
                    ..Default::default()
                }),
                code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
                    code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
                    ..Default::default()
                })),
                experimental: Some(serde_json::json!({ "acas": {
                    "version": env!("CARGO_PKG_VERSION"),
                    "methods": [ext::ExternalDiagnostics::METHOD, ext::Problems::METHOD, ext::Status::METHOD, ext::Spend::METHOD, ext::FixFeedback::METHOD, ext::Workflows::METHOD],
                    "notifications": [ext::WorkflowRun::METHOD],
                    "commands": [ext::ESCALATE_COMMAND, ext::WORKFLOW_RUN_COMMAND, ext::WORKFLOW_CANCEL_COMMAND, ext::WORKFLOW_RERUN_COMMAND, ext::PLAN_COMMAND],
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
        tokio::spawn(forward(self.client.clone(), coalesce::coalesce(outputs), progress));
        let detached = self.detached.lock().unwrap().take();
        match detached {
            Some((MessageType::WARNING, text)) => self.client.show_message(MessageType::WARNING, text).await,
            Some((level, text)) => self.client.log_message(level, text).await,
            None => {}
        }
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
        if params.command == ext::ESCALATE_COMMAND {
            let args: ext::EscalateArgs = params
                .arguments
                .into_iter()
                .next()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| invalid_params(format!("acas.escalate: {e}")))?
                .ok_or_else(|| {
                    invalid_params("acas.escalate needs {uri, range} or {uri, position}".to_owned())
                })?;
            let result = self.escalate(args).await?;
            return Ok(Some(serde_json::to_value(result).expect("results serialise")));
        }
        if params.command == FIX_APPLIED_COMMAND {
            let fix_id = params.arguments.first().and_then(|v| v.as_str()).map(str::to_owned);
            let fix_id =
                fix_id.ok_or_else(|| invalid_params("acas.fixApplied needs the fix id".to_owned()))?;
            self.feedback(fix_id, crate::store::Outcome::Applied).await?;
            return Ok(None);
        }
        if params.command == ext::PLAN_COMMAND {
            let args: ext::PlanArgs = params
                .arguments
                .into_iter()
                .next()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| invalid_params(format!("acas.plan: {e}")))?
                .ok_or_else(|| invalid_params("acas.plan needs {prompt}".to_owned()))?;
            let result = self.plan(args).await?;
            return Ok(Some(serde_json::to_value(result).expect("results serialise")));
        }
        if [ext::WORKFLOW_RUN_COMMAND, ext::WORKFLOW_CANCEL_COMMAND, ext::WORKFLOW_RERUN_COMMAND]
            .contains(&params.command.as_str())
        {
            return self.workflow_command(&params.command, params.arguments).await;
        }
        Err(invalid_params(format!("unknown command `{}`", params.command)))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let Some(path) = file_path(&params.text_document.uri) else { return Ok(None) };
        let handle = self.shared.handle().ok_or_else(not_initialized)?;
        let range = convert::range_from_lsp(params.range);
        let lookup = path.clone();
        let fixes = handle.query(move |ws| ws.quick_fixes(&lookup, range)).await.unwrap_or_default();
        let mut actions = Vec::new();
        for (fix_id, title, edits) in fixes {
            let mut changes: std::collections::HashMap<Uri, Vec<TextEdit>> = std::collections::HashMap::new();
            for edit in edits {
                let Some(uri) = Uri::from_file_path(&edit.path) else { continue };
                changes
                    .entry(uri)
                    .or_default()
                    .push(TextEdit { range: convert::range_to_lsp(edit.range), new_text: edit.new });
            }
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title,
                kind: Some(CodeActionKind::QUICKFIX),
                // Tied to the diagnostics here, so that editors list the verified fix first.
                diagnostics: Some(params.context.diagnostics.clone()),
                is_preferred: Some(true),
                edit: Some(WorkspaceEdit { changes: Some(changes), ..Default::default() }),
                command: Some(Command {
                    title: "Record that the AI fix was applied".to_owned(),
                    command: FIX_APPLIED_COMMAND.to_owned(),
                    arguments: Some(vec![serde_json::json!(fix_id)]),
                }),
                ..Default::default()
            }));
        }
        // Every diagnostic here, from any tool, can be explained; other servers' own quick fixes
        // are theirs to offer and are never hidden.
        for diagnostic in &params.context.diagnostics {
            // AI notes explain already; workflow definitions are not code that escalation reads.
            if matches!(diagnostic.source.as_deref(), Some("acas-ai" | crate::workspace::WORKFLOW_SOURCE)) {
                continue;
            }
            let own = diagnostic.source.as_deref() == Some("acas");
            let args = ext::EscalateArgs {
                uri: params.text_document.uri.as_str().to_owned(),
                range: Some(convert::ext_range_from_lsp(diagnostic.range)),
                position: None,
                diagnostic: (!own).then(|| convert::external_from_lsp(diagnostic)),
                provider: None,
            };
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: "Explain and fix with AI".to_owned(),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![diagnostic.clone()]),
                command: Some(Command {
                    title: "Explain and fix with AI".to_owned(),
                    command: ext::ESCALATE_COMMAND.to_owned(),
                    arguments: Some(vec![serde_json::to_value(args).expect("arguments serialise")]),
                }),
                ..Default::default()
            }));
        }
        Ok(Some(actions))
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let position = params.text_document_position_params;
        let Some(path) = file_path(&position.text_document.uri) else { return Ok(None) };
        let handle = self.shared.handle().ok_or_else(not_initialized)?;
        let at =
            crate::text::Position { line: position.position.line, character: position.position.character };
        let found = handle.query(move |ws| ws.hover(&path, at)).await.flatten();
        Ok(found.map(|(range, markdown)| Hover {
            contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: markdown }),
            range: Some(convert::range_to_lsp(range)),
        }))
    }
}

/// Turns workspace outputs into LSP messages, in order.
const WORK_DONE_PROGRESS_CANCEL: &str = "window/workDoneProgress/cancel";

/// Numbers the escalations' progress tokens.
static ESCALATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A cancellation registered under a progress token for as long as it lives.
struct Registered<'a> {
    map: &'a Mutex<HashMap<String, tokio_util::sync::CancellationToken>>,
    token: String,
}

impl<'a> Registered<'a> {
    fn new(
        map: &'a Mutex<HashMap<String, tokio_util::sync::CancellationToken>>,
        token: &str,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Registered<'a> {
        map.lock().unwrap_or_else(PoisonError::into_inner).insert(token.to_owned(), cancel.clone());
        Registered { map, token: token.to_owned() }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.token);
    }
}

async fn forward(client: Client, mut outputs: tokio::sync::mpsc::Receiver<Output>, progress: bool) {
    let encoding_independent_token = NumberOrString::String("acas/scan".to_owned());
    let mut progress_token: Option<NumberOrString> = None;
    let mut run_tokens: HashMap<i64, NumberOrString> = HashMap::new();
    while let Some(output) = outputs.recv().await {
        match output {
            Output::WorkflowRun(state) => {
                if progress {
                    workflow_progress(&client, &mut run_tokens, &state).await;
                }
                client.send_notification::<ext::WorkflowRun>(convert::workflow_run(&state)).await;
            }
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

/// `$/progress` for a workflow run: begins with its first state, reports each change, ends with
/// its final status.
async fn workflow_progress(
    client: &Client,
    tokens: &mut HashMap<i64, NumberOrString>,
    state: &workspace::RunState,
) {
    let done = state.steps.iter().filter(|s| s.status.is_final()).count();
    let current: Vec<&str> = state
        .steps
        .iter()
        .filter(|s| s.status == crate::workflow::definition::StepStatus::Running)
        .map(|s| s.id.as_str())
        .collect();
    let message = if current.is_empty() {
        format!("{done}/{} steps done", state.steps.len())
    } else {
        format!("{done}/{} steps done; running {}", state.steps.len(), current.join(", "))
    };
    let percentage = (!state.steps.is_empty()).then(|| (done * 100 / state.steps.len()) as u32);
    let (token, value) = match tokens.get(&state.run).cloned() {
        Some(token) if state.status.is_final() => {
            tokens.remove(&state.run);
            let message = format!("run {} {}", state.run, state.status.as_str());
            (token, WorkDoneProgress::End(WorkDoneProgressEnd { message: Some(message) }))
        }
        Some(token) => (
            token,
            WorkDoneProgress::Report(WorkDoneProgressReport {
                message: Some(message),
                percentage,
                ..Default::default()
            }),
        ),
        // A run that ends before its progress began needs none.
        None if state.status.is_final() => return,
        None => {
            let token = NumberOrString::String(format!("acas/workflow/{}", state.run));
            if client.create_work_done_progress(token.clone()).await.is_err() {
                return;
            }
            tokens.insert(state.run, token.clone());
            let begin = WorkDoneProgressBegin {
                title: format!("ACAS: workflow {}", state.workflow),
                message: Some(message),
                percentage,
                cancellable: Some(false),
            };
            (token, WorkDoneProgress::Begin(begin))
        }
    };
    client
        .send_notification::<notification::Progress>(ProgressParams {
            token,
            value: ProgressParamsValue::WorkDone(value),
        })
        .await;
}

fn negotiate_encoding(params: &InitializeParams) -> PositionEncoding {
    let offered = params.capabilities.general.as_ref().and_then(|g| g.position_encodings.as_ref());
    match offered {
        Some(kinds) if kinds.contains(&PositionEncodingKind::UTF8) => PositionEncoding::Utf8,
        _ => PositionEncoding::Utf16,
    }
}

#[allow(deprecated)]
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

fn test_commands_enabled() -> bool {
    std::env::var_os("ACAS_ENABLE_TEST_COMMANDS").is_some_and(|v| v == "1")
}
