//! Workflows at run time in the workspace loop: the durable engine, the triggers that start runs,
//! the webhook server, and what the editor hears of runs.
//!
//! At the start, runs left unfinished by an earlier process are resumed, and the valid workflows
//! of `.acas/workflows` are loaded (again whenever one of those files changes on disk). File
//! changes, published diagnostics and escalation outcomes are fed to the triggers; what they
//! fire, and what the engine reports of runs, comes back into the loop as [`WorkflowEvent`]s, in
//! order with everything else. The editor gets the whole state of a run after every change
//! ([`RunState`]), and `editor.notify` / `editor.diagnostic` steps reach it as messages and
//! diagnostics.
//!
//! Accepted webhook requests wait in the store's inbox until their run starts. While this process
//! holds the workspace lease it reads the inbox when it takes the lease and at every heartbeat
//! (a process that lost the lease may still record requests it had queued), and starts each
//! entry's run in the transaction that takes the entry, so each request runs once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Event, Handle, MessageLevel, Output, Workspace};
use super::{Refused, RefusedKind};
use crate::analysis::FileDiagnostic;
use crate::classify::{Category, Severity};
use crate::text::{Position, TextRange};
use crate::watch::Batch;
use crate::workflow::actions::{Editor, EscalatorAi};
use crate::workflow::definition::{RunStatus, StepStatus, Workflow};
use crate::workflow::engine::{Engine, EngineOptions, RunEvent, definition_parser};
use crate::workflow::error::WorkflowErrorKind;
use crate::workflow::state::RunId;
use crate::workflow::triggers::diagnostic::OpenDiagnostic;
use crate::workflow::triggers::escalation::EscalationEvent;
use crate::workflow::triggers::manual::coerce_json_inputs;
use crate::workflow::triggers::runner::{self, TriggerHandle};
use crate::workflow::triggers::schedule::Clock;
use crate::workflow::triggers::webhook::{WebhookOptions, WebhookServer, env_secrets};
use crate::workflow::triggers::{self, Fired, Trigger, file_change};
use crate::workflow::{outbox, validate};

/// How many ended runs the loop keeps as it told them, for lists of runs.
const ENDED_KEPT: usize = 256;

/// The source of diagnostics that `editor.diagnostic` steps publish.
pub const RUN_SOURCE: &str = "acas-workflow-run";

/// What reaches the loop from the workflow machinery.
pub enum WorkflowEvent {
    /// A trigger asks for a run.
    Fired(Fired),
    /// The engine committed a change of a run or a step.
    Run(RunEvent),
    /// An `editor.notify` step.
    Notify { level: MessageLevel, message: String },
    /// An `editor.diagnostic` step.
    Diagnostic { path: PathBuf, line: u32, column: u32, severity: Severity, message: String },
}

/// The whole state of a run, as the editor is told after each change and in lists of runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    pub run: RunId,
    pub workflow: String,
    pub status: RunStatus,
    pub steps: Vec<StepState>,
    pub error: Option<String>,
    /// Unix milliseconds: when the run was created (or first heard of), and when it ended.
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    /// Orders the states this workspace gave out: a higher `seq` is the later state.
    pub seq: u64,
}

impl RunState {
    /// A run as the store recorded it, with its steps in definition order.
    pub fn recorded(
        run: &crate::workflow::state::RunRecord,
        steps: &[crate::workflow::state::StepRecord],
        seq: u64,
    ) -> RunState {
        let mut steps: Vec<&crate::workflow::state::StepRecord> = steps.iter().collect();
        steps.sort_by_key(|s| s.position);
        RunState {
            run: run.id,
            workflow: run.workflow.clone(),
            status: run.status,
            steps: steps
                .into_iter()
                .map(|s| StepState {
                    id: s.step_id.clone(),
                    status: s.status,
                    attempts: s.attempts,
                    error: s.error.clone(),
                })
                .collect(),
            error: run.error.clone(),
            created_ms: run.created_ms,
            finished_ms: run.finished_ms,
            seq,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepState {
    pub id: String,
    pub status: StepStatus,
    pub attempts: u32,
    pub error: Option<String>,
}

/// A run checked on the loop, to be committed to the store off it.
pub struct RunStart {
    engine: Engine,
    workflow: Workflow,
    inputs: Map<String, Value>,
}

impl RunStart {
    /// Commits the run (only while the workspace lease is held under `fence`, when given, and,
    /// for an accepted webhook request, only if its `inbox` entry is still there, taking it) and
    /// starts it; returns its id. Writes the store: call it off the loop.
    pub fn commit(
        &self,
        trigger: &Trigger,
        fence: Option<&crate::store::Fence>,
        inbox: Option<i64>,
    ) -> Result<RunId, (WorkflowErrorKind, Refused)> {
        let handle = self
            .engine
            .start_fenced(&self.workflow, trigger, &self.inputs, fence, inbox)
            .map_err(|e| (e.kind, e.into()))?;
        Ok(handle.id)
    }
}

/// Writes an approved plan to `.acas/plans/` and starts it; returns the run's id. Writes the
/// disk and the store: call it off the loop.
pub(super) fn start_plan(
    engine: &Engine,
    root: &Path,
    plan: &crate::workflow::planner::Plan,
) -> Result<RunId, Refused> {
    let name = format!("plan-{}", super::now_ms());
    let workflow = plan.to_workflow(root, &name).map_err(Refused::from)?;
    crate::workflow::planner::Plan::save(root, &workflow).map_err(|e| {
        Refused::new(RefusedKind::StoreFailed, format!("cannot write {}: {e}", workflow.file.display()))
    })?;
    let trigger = Trigger::Plan { prompt: plan.prompt.clone() };
    engine.start(&workflow, &trigger, &Map::new()).map(|h| h.id).map_err(Refused::from)
}

/// Sends the webhook requests accepted but not yet started to the loop as triggers: those this
/// process's server accepted and is starting (the loop starts each once), and those of a process
/// that stopped first or lost the lease before it could start them. Reads the store: call it off
/// the loop. A store that cannot be read is told of (`tell`) or logged.
fn start_inbox(store: &crate::store::Store, fired: &triggers::FiredSender, handle: &Handle, tell: bool) {
    let entries = match store.webhook_inbox() {
        Ok(entries) => entries,
        Err(error) if tell => {
            handle.send(Event::Message {
                level: MessageLevel::Warning,
                text: format!("ACAS could not read accepted webhooks: {error}"),
            });
            return;
        }
        Err(error) => {
            tracing::debug!("{error}");
            return;
        }
    };
    for (id, entry) in entries {
        let trigger = serde_json::from_str::<Trigger>(&entry.trigger);
        let inputs = serde_json::from_str::<Map<String, Value>>(&entry.inputs);
        match (trigger, inputs) {
            (Ok(trigger), Ok(inputs)) => {
                let _ =
                    fired.blocking_send(Fired { workflow: entry.workflow, trigger, inputs, inbox: Some(id) });
            }
            _ => {
                tracing::warn!(id, workflow = %entry.workflow, "dropped an unreadable accepted webhook");
                if let Err(error) = store.webhook_inbox_done(id) {
                    tracing::warn!("{error}");
                }
            }
        }
    }
}

/// What a list of workflows and recent runs is made from, taken on the loop.
pub struct WorkflowsSnapshot {
    pub definitions: Vec<Workflow>,
    pub engine: Option<Engine>,
    pub live: Vec<RunState>,
    pub seq: u64,
}

impl WorkflowsSnapshot {
    /// The `limit` most recent runs, newest first: as the store has them, or as the editor was
    /// last told for the runs that have not ended. Reads the store: call it off the loop.
    pub fn recent_runs(&self, limit: usize) -> Vec<RunState> {
        let recorded = match &self.engine {
            Some(engine) => {
                engine.db().history(None, limit).map_err(|e| tracing::warn!("{e}")).unwrap_or_default()
            }
            None => Vec::new(),
        };
        let mut runs: HashMap<RunId, RunState> = HashMap::new();
        for record in &recorded {
            let steps = self.engine.as_ref().and_then(|e| e.db().steps(record.id).ok()).unwrap_or_default();
            runs.insert(record.id, RunState::recorded(record, &steps, self.seq));
        }
        for live in &self.live {
            // A run the store has seen end is later than what the loop told of it; an end the
            // loop told of is later than a store that still has the run going (it could not
            // record the end), and it is what the editor was told.
            if runs.get(&live.run).is_some_and(|r| r.status.is_final()) {
                continue;
            }
            if live.status.is_final() && !runs.contains_key(&live.run) {
                // Pruned from the store, or beyond the list's length: not listed.
                continue;
            }
            let created_ms = runs.get(&live.run).map_or(live.created_ms, |r| r.created_ms);
            runs.insert(live.run, RunState { created_ms, ..live.clone() });
        }
        let mut runs: Vec<RunState> = runs.into_values().collect();
        runs.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.run.cmp(&a.run)));
        runs.truncate(limit);
        runs
    }
}

/// The workflow machinery of one workspace.
#[derive(Default)]
pub(super) struct Runs {
    engine: Option<Engine>,
    definitions: Vec<Workflow>,
    triggers: Option<TriggerHandle>,
    webhooks: Option<mpsc::UnboundedSender<Vec<Workflow>>>,
    /// Runs that have not ended, as last told to the editor.
    states: HashMap<RunId, RunState>,
    /// The last runs that ended, as told to the editor: a list of runs shows them so even when
    /// the store could not record the end (a full disk).
    ended: std::collections::VecDeque<RunState>,
    /// The `seq` of the latest [`RunState`] given out.
    seq: u64,
    /// ACAS's own diagnostics per file as last published, for the diagnostic triggers.
    own: std::cell::RefCell<HashMap<PathBuf, Vec<OpenDiagnostic>>>,
    /// Diagnostics from runs, by workflow (`""` for `editor.diagnostic` steps) and file: what
    /// `editor.diagnostic` steps said, and the `file:line: message` lines of failed steps.
    diagnostics: HashMap<String, HashMap<PathBuf, Vec<FileDiagnostic>>>,
    /// The same, flattened per file, as published.
    published: HashMap<PathBuf, Vec<FileDiagnostic>>,
    stop: CancellationToken,
    /// Stops the triggers, the outbox and the webhook server: set while this process holds the
    /// workspace lease.
    shared: Option<CancellationToken>,
    /// Webhook inbox entries this process tried to start a run for while it holds the lease (an
    /// entry reaches it from the webhook server and from the inbox, read every heartbeat);
    /// cleared when the lease changes hands, since a try refused for a lease lost meanwhile
    /// leaves the entry for whoever holds it next. The store makes sure an entry starts one run.
    inbox_started: std::collections::HashSet<i64>,
    /// The latest run of each workflow the loop heard of: what a failed run said about files is
    /// shown only while no later run of its workflow started.
    latest: HashMap<String, RunId>,
    /// Whether the user was told that the workspace's workflows do not start by themselves
    /// until it is trusted (once per process).
    untrusted_said: Arc<std::sync::atomic::AtomicBool>,
}

/// Whether the workflows of the workspace at `root` may start by themselves; when not, says so
/// once (`said`) and logs each refusal. Reads the trust list: off the loop.
fn trusted_to_start(root: &Path, name: &str, said: &std::sync::atomic::AtomicBool, handle: &Handle) -> bool {
    let Some(why) = crate::trust::workflows_untrusted(root) else { return true };
    tracing::info!("workflow `{name}` did not start by itself: the workspace is not trusted");
    if !said.swap(true, std::sync::atomic::Ordering::SeqCst) {
        handle.send(Event::Message { level: MessageLevel::Warning, text: why });
    }
    false
}

impl Drop for Runs {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Sends `editor.*` steps into the loop.
struct LoopEditor {
    handle: Handle,
    root: PathBuf,
}

impl Editor for LoopEditor {
    fn notify(&self, level: &str, message: &str) {
        let level = match level {
            "error" => MessageLevel::Error,
            "warning" => MessageLevel::Warning,
            _ => MessageLevel::Info,
        };
        self.handle.send(Event::Workflow(WorkflowEvent::Notify { level, message: message.to_owned() }));
    }

    fn diagnostic(&self, path: &str, line: u32, column: u32, severity: &str, message: &str) {
        let severity = match severity {
            "warning" => Severity::Warning,
            "information" | "info" => Severity::Information,
            "hint" => Severity::Hint,
            _ => Severity::Error,
        };
        self.handle.send(Event::Workflow(WorkflowEvent::Diagnostic {
            path: self.root.join(path),
            line,
            column,
            severity,
            message: message.to_owned(),
        }));
    }
}

impl Workspace {
    /// Opens the engine and loads the workflows. What runs once per workspace (resuming, triggers,
    /// the outbox, webhooks) starts when this process holds the lease ([`Self::start_shared_runs`]).
    pub(super) fn start_workflows(&mut self) {
        if self.store.is_none() {
            return;
        }
        let (events, mut received) = mpsc::unbounded_channel();
        let mut options = EngineOptions::new(self.root.clone(), definition_parser());
        options.history = self.config.workflows;
        options.templates = self.config.templates;
        options.editor = Arc::new(LoopEditor { handle: self.handle.clone(), root: self.root.clone() });
        options.ai = self.escalator.clone().ok().map(|e| Arc::new(EscalatorAi(e)) as _);
        options.events = Some(events);
        // With a shared store, `run:` steps go to the team's workers while one is connected.
        options.workers =
            self.config.shared_store.clone().map(|s| Arc::new(crate::workflow::workers::Workers::new(s)));
        // With a shared store, every run is mirrored there for the team to see.
        options.shared_runs = self.config.shared_store.clone();
        let engine = match Engine::open(options) {
            Ok(engine) => engine,
            Err(error) => {
                self.message(MessageLevel::Error, format!("ACAS cannot run workflows: {error}"));
                return;
            }
        };
        let handle = self.handle.clone();
        tokio::spawn(async move {
            while let Some(event) = received.recv().await {
                handle.send(Event::Workflow(WorkflowEvent::Run(event)));
            }
        });
        self.runs.engine = Some(engine);
        self.runs.definitions = validate::load_dir(&self.root).0;
    }

    /// Resumes interrupted runs and starts the triggers, the outbox and the webhook server.
    pub(super) fn start_shared_runs(&mut self) {
        if self.runs.shared.is_some() {
            return;
        }
        let (Some(store), Some(engine)) = (self.store.clone(), self.runs.engine.clone()) else { return };
        let stop = self.runs.stop.child_token();
        self.runs.shared = Some(stop.clone());
        let (fired, mut fired_rx) = triggers::channel();
        let handle = self.handle.clone();
        tokio::spawn(async move {
            while let Some(fired) = fired_rx.recv().await {
                handle.send(Event::Workflow(WorkflowEvent::Fired(fired)));
            }
        });
        // Resuming the runs an earlier process left and reading the webhooks accepted but not
        // started read the store: off the loop. The accepted webhooks come back as triggers:
        // those left by an earlier process at once, and every heartbeat those a process that
        // lost the lease recorded after this one took it over (it answers what was queued on its
        // port before freeing it).
        let (resuming, inbox, fired_inbox) = (engine.clone(), store.clone(), fired.clone());
        let handle = self.handle.clone();
        let (every, polling) = (self.config.lease.heartbeat, stop.child_token());
        let root = self.root.clone();
        let resumed = tokio::task::spawn_blocking(move || {
            // A cloned repository can carry a state with an interrupted run: it resumes by
            // itself only in a workspace the user trusted, as triggers start runs.
            let untrusted = crate::trust::workflows_untrusted(&root);
            if let Some(why) = &untrusted {
                tracing::info!("interrupted workflow runs are not resumed: the workspace is not trusted");
                if resuming.interrupted_runs().is_ok_and(|n| n > 0) {
                    handle.send(Event::Message {
                        level: MessageLevel::Warning,
                        text: format!(
                            "interrupted workflow runs wait, not resumed: {why}; `acas workflow resume RUN` resumes one"
                        ),
                    });
                }
            }
            match if untrusted.is_some() { Ok(Vec::new()) } else { resuming.resume_interrupted() } {
                Ok(resumed) if !resumed.is_empty() => {
                    let ids: Vec<String> = resumed.iter().map(|r| r.id.to_string()).collect();
                    tracing::info!("resumed interrupted workflow runs {}", ids.join(", "));
                }
                Ok(_) => {}
                Err(error) => handle.send(Event::Message {
                    level: MessageLevel::Warning,
                    text: format!("ACAS could not resume workflow runs: {error}"),
                }),
            }
            start_inbox(&inbox, &fired_inbox, &handle, true);
            (inbox, fired_inbox, handle)
        });
        tokio::spawn(async move {
            let Ok((inbox, fired, handle)) = resumed.await else { return };
            loop {
                tokio::select! {
                    () = polling.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                }
                let (inbox, fired, handle) = (inbox.clone(), fired.clone(), handle.clone());
                let _ =
                    tokio::task::spawn_blocking(move || start_inbox(&inbox, &fired, &handle, false)).await;
            }
        });
        let (trigger_handle, _) =
            runner::spawn(self.runs.definitions.clone(), Clock::System, fired.clone(), stop.child_token());
        self.runs.triggers = Some(trigger_handle);

        outbox::Outbox::new(store.clone()).spawn(outbox::OutboxOptions::default(), stop.child_token());
        if let Some(port) = self.config.webhooks.port {
            let (reloads, mut reload_rx) = mpsc::unbounded_channel::<Vec<Workflow>>();
            self.runs.webhooks = Some(reloads);
            let limits = &self.config.webhooks;
            let options = WebhookOptions {
                port,
                max_body_bytes: limits.max_body_bytes,
                max_connections: limits.max_connections,
                header_timeout: limits.header_timeout,
                body_timeout: limits.body_timeout,
                min_body_rate: limits.min_body_rate,
                secrets: env_secrets(),
            };
            let definitions = self.runs.definitions.clone();
            let stop = stop.child_token();
            let handle = self.handle.clone();
            tokio::spawn(async move {
                match WebhookServer::start(options, &definitions, store, fired, stop.clone()).await {
                    Ok(server) => {
                        tracing::info!("webhooks listen on http://{}", server.local_addr());
                        loop {
                            tokio::select! {
                                _ = stop.cancelled() => break,
                                next = reload_rx.recv() => match next {
                                    Some(workflows) => server.reload(&workflows),
                                    None => break,
                                },
                            }
                        }
                        server.stopped().await;
                    }
                    Err(error) => {
                        let text = format!("ACAS cannot serve webhooks on 127.0.0.1:{port}: {error}");
                        handle.send(Event::Message { level: MessageLevel::Error, text });
                    }
                }
            });
        }
    }

    /// Starts a run that an escalation rule asks for: checked on the loop, committed off it.
    pub(super) fn start_by_rule(&self, name: String, trigger: Trigger) {
        let start = self.run_start(&name, &Map::new());
        let handle = self.handle.clone();
        let (root, said) = (self.root.clone(), self.runs.untrusted_said.clone());
        tokio::task::spawn_blocking(move || {
            if !trusted_to_start(&root, &name, &said, &handle) {
                return;
            }
            if let Err(error) = start.and_then(|start| start.commit(&trigger, None, None).map_err(|(_, e)| e))
            {
                handle.send(Event::Message {
                    level: MessageLevel::Warning,
                    text: format!("ACAS could not start workflow `{name}` by rule: {error}"),
                });
            }
        });
    }

    /// Starts the run a trigger asks for: checked on the loop, committed off it, and only
    /// while this process holds the workspace lease.
    fn start_fired(&mut self, fired: Fired) {
        if let Some(id) = fired.inbox
            && !self.runs.inbox_started.insert(id)
        {
            return;
        }
        let name = fired.workflow.clone();
        let start = self.run_start(&name, &fired.inputs);
        let fence = super::shared::current(&self.fence);
        let (store, handle) = (self.store.clone(), self.handle.clone());
        let (root, said) = (self.root.clone(), self.runs.untrusted_said.clone());
        tokio::task::spawn_blocking(move || {
            if !trusted_to_start(&root, &name, &said, &handle) {
                // An accepted webhook for an untrusted workspace is dropped, not kept to start
                // a surprise run once the workspace is trusted.
                if let (Some(id), Some(store)) = (fired.inbox, &store)
                    && let Err(error) = store.webhook_inbox_done(id)
                {
                    tracing::warn!("{error}");
                }
                return;
            }
            // Only the holder of the workspace lease starts runs for triggers; the store checks
            // that it still is when it commits the run.
            let result = match (start, fence) {
                (Err(error), _) => Err((WorkflowErrorKind::State, error)),
                (Ok(_), None) => Err((
                    WorkflowErrorKind::Fenced,
                    Refused::new(
                        RefusedKind::StoreFailed,
                        format!(
                            "workflow `{name}` was not started: this process does not hold the workspace lease"
                        ),
                    ),
                )),
                (Ok(start), Some(fence)) => start.commit(&fired.trigger, Some(&fence), fired.inbox),
            };
            match result {
                Ok(_) => {}
                // An accepted webhook's entry stays for the process that holds the lease now.
                Err((WorkflowErrorKind::Fenced, error)) => tracing::warn!("{error}"),
                Err((WorkflowErrorKind::Claimed, error)) => tracing::debug!("{error}"),
                Err((_, error)) => {
                    handle.send(Event::Message {
                        level: MessageLevel::Warning,
                        text: format!("ACAS could not start workflow `{name}`: {error}"),
                    });
                    // It cannot start (its workflow is gone or broken): not to be tried again.
                    if let (Some(id), Some(store)) = (fired.inbox, store)
                        && let Err(error) = store.webhook_inbox_done(id)
                    {
                        tracing::warn!("{error}");
                    }
                }
            }
        });
    }

    /// The lease changed hands: accepted webhooks this process tried to start may be tried again.
    pub(super) fn runs_lease_changed(&mut self) {
        self.runs.inbox_started.clear();
    }

    /// Stops the triggers, the outbox and the webhook server (another process took the lease,
    /// or this one is shutting down). Runs already started go on.
    pub(super) fn stop_shared_runs(&mut self) {
        if let Some(stop) = self.runs.shared.take() {
            stop.cancel();
        }
        self.runs.triggers = None;
        self.runs.webhooks = None;
    }

    /// Feeds file changes to the triggers, and reloads the workflows when one of their files
    /// changed.
    pub(super) fn workflow_triggers_files(&mut self, batch: &Batch) {
        if let Some(triggers) = &self.runs.triggers {
            let changes = file_change::changes(&self.root, batch);
            if !changes.is_empty() {
                triggers.files(changes);
            }
        }
        if self.runs.engine.is_some()
            && batch.changes.iter().any(|c| validate::is_workflow_file(&self.root, c.path()))
        {
            let root = self.root.clone();
            self.off_loop(
                "loading the workflows",
                move || validate::load_dir(&root).0,
                super::Done::Workflows,
            );
        }
    }

    /// Puts the workflows loaded again in force, for the triggers and the webhook server too.
    pub(super) fn workflows_loaded(&mut self, workflows: Vec<Workflow>) {
        self.runs.definitions = workflows;
        if let Some(triggers) = &self.runs.triggers {
            triggers.reload(self.runs.definitions.clone());
        }
        if let Some(webhooks) = &self.runs.webhooks {
            let _ = webhooks.send(self.runs.definitions.clone());
        }
    }

    /// Feeds a file's complete current diagnostics to the diagnostic triggers: ACAS's own
    /// (`own`, as just published; `None` keeps the last ones) and every other tool's.
    pub(super) fn workflow_triggers_diagnostics(&self, path: &Path, own: Option<&[FileDiagnostic]>) {
        let Some(triggers) = &self.runs.triggers else { return };
        let relative = super::relative(&self.root, path);
        let mut own_by_path = self.runs.own.borrow_mut();
        if let Some(own) = own {
            let current: Vec<OpenDiagnostic> = own
                .iter()
                .filter(|d| {
                    d.source != RUN_SOURCE && d.source != super::WORKFLOW_SOURCE && d.source != "acas-ai"
                })
                .map(|d| OpenDiagnostic {
                    path: relative.clone(),
                    category: d.category.as_str().to_owned(),
                    severity: d.severity.as_str().to_owned(),
                    fingerprint: d.fingerprint.clone(),
                    message: d.message.clone(),
                    line: d.range.start.line + 1,
                })
                .collect();
            own_by_path.insert(path.to_path_buf(), current);
        }
        let mut all = own_by_path.get(path).cloned().unwrap_or_default();
        for entries in self.external_current.get(path).into_iter().flat_map(|by_source| by_source.values()) {
            all.extend(entries.iter().map(|e| OpenDiagnostic {
                path: relative.clone(),
                category: e.category.clone(),
                severity: e.diagnostic.severity.as_str().to_owned(),
                fingerprint: e.fingerprint.clone(),
                message: e.diagnostic.message.clone(),
                line: e.diagnostic.range.start.line + 1,
            }));
        }
        triggers.diagnostics(relative, all);
    }

    /// Tells the escalation triggers how an escalation ended.
    pub(super) fn workflow_triggers_escalation(&self, event: EscalationEvent) {
        if let Some(triggers) = &self.runs.triggers {
            triggers.escalation(event);
        }
    }

    /// The engine, when workflows can run here.
    pub(super) fn workflow_engine(&self) -> Option<Engine> {
        self.runs.engine.clone()
    }

    /// Whether workflows can run here.
    pub(super) fn runs_enabled(&self) -> bool {
        self.runs.engine.is_some()
    }

    /// The diagnostics runs put on `path`.
    pub(super) fn run_diagnostics(&self, path: &Path) -> &[FileDiagnostic] {
        self.runs.published.get(path).map_or(&[], Vec::as_slice)
    }

    /// Shows what a failed run said about files, unless a later run of its workflow started.
    pub(super) fn failed_run_diagnostics(
        &mut self,
        run: RunId,
        workflow: String,
        by_file: HashMap<PathBuf, Vec<FileDiagnostic>>,
    ) {
        if self.runs.latest.get(&workflow).is_none_or(|latest| *latest == run) {
            self.set_run_diagnostics(&workflow, by_file);
        }
    }

    /// Replaces what runs of `workflow` say about files, and republishes the files concerned.
    fn set_run_diagnostics(&mut self, workflow: &str, by_file: HashMap<PathBuf, Vec<FileDiagnostic>>) {
        let old = self.runs.diagnostics.remove(workflow).unwrap_or_default();
        if by_file.is_empty() && old.is_empty() {
            return;
        }
        if !by_file.is_empty() {
            self.runs.diagnostics.insert(workflow.to_owned(), by_file.clone());
        }
        let mut touched: Vec<PathBuf> = old.into_keys().chain(by_file.into_keys()).collect();
        touched.sort();
        touched.dedup();
        for path in touched {
            let all: Vec<FileDiagnostic> =
                self.runs.diagnostics.values().filter_map(|m| m.get(&path)).flatten().cloned().collect();
            if all.is_empty() {
                self.runs.published.remove(&path);
            } else {
                self.runs.published.insert(path.clone(), all);
            }
            self.republish(&path);
        }
    }

    pub(super) fn workflow_event(&mut self, event: WorkflowEvent) {
        match event {
            WorkflowEvent::Fired(fired) => self.start_fired(fired),
            WorkflowEvent::Run(event) => self.run_changed(event),
            WorkflowEvent::Notify { level, message } => self.message(level, message),
            WorkflowEvent::Diagnostic { path, line, column, severity, message } => {
                let at = Position { line: line.saturating_sub(1), character: column.saturating_sub(1) };
                let diagnostic = FileDiagnostic {
                    range: TextRange { start: at, end: at },
                    severity,
                    category: Category::Build,
                    message,
                    source: RUN_SOURCE.to_owned(),
                    code: None,
                    fingerprint: String::new(),
                    symbol: None,
                    related: Vec::new(),
                    fix_id: None,
                };
                let mut by_file = self.runs.diagnostics.get("").cloned().unwrap_or_default();
                by_file.entry(path).or_default().push(diagnostic);
                self.set_run_diagnostics("", by_file);
            }
        }
    }

    /// A run of the workflow named `name` with `inputs`, checked against its definition and
    /// ready to be committed off the loop ([`RunStart::commit`]).
    pub(super) fn run_start(&self, name: &str, inputs: &Map<String, Value>) -> Result<RunStart, Refused> {
        let engine = self.runs.engine.clone().ok_or_else(|| self.no_engine())?;
        let workflow = self.runs.definitions.iter().find(|w| w.name == name).ok_or_else(|| {
            Refused::new(
                RefusedKind::WorkflowNotFound,
                format!(
                    "there is no valid workflow named `{name}`; `acas workflow validate` shows what is wrong"
                ),
            )
        })?;
        let inputs = coerce_json_inputs(&workflow.inputs, inputs)?;
        Ok(RunStart { engine, workflow: workflow.clone(), inputs })
    }

    /// Why there is no workflow engine: no workspace folder, or a store that failed to open.
    pub(super) fn no_engine(&self) -> Refused {
        match &self.store_error {
            Some(error) if self.on_disk => {
                Refused::new(RefusedKind::StoreFailed, format!("workflows cannot run: {error}"))
            }
            _ => Refused::no_workspace(),
        }
    }

    /// The AI providers, as workflow actions and the planner use them.
    pub(super) fn workflow_ai(&self) -> Result<Arc<dyn crate::workflow::actions::Ai>, Refused> {
        let escalator = self.escalator.clone()?;
        Ok(Arc::new(EscalatorAi(escalator)))
    }

    /// The valid workflows, the engine to read recent runs from (off the loop), the runs that
    /// have not ended as the editor was last told, and the `seq` of the latest state told.
    ///
    /// The list takes a `seq` of its own, above every state told before it and below every
    /// state told after: what it reads from the store is at least as new as the first.
    pub(super) fn workflows(&mut self) -> WorkflowsSnapshot {
        self.runs.seq += 1;
        WorkflowsSnapshot {
            definitions: self.runs.definitions.clone(),
            engine: self.runs.engine.clone(),
            live: self.runs.states.values().chain(&self.runs.ended).cloned().collect(),
            seq: self.runs.seq,
        }
    }

    fn run_changed(&mut self, event: RunEvent) {
        let (run, workflow) = match &event {
            RunEvent::Run { run, workflow, .. }
            | RunEvent::Step { run, workflow, .. }
            | RunEvent::Steps { run, workflow, .. } => (*run, workflow.clone()),
        };
        let latest = self.runs.latest.entry(workflow.clone()).or_insert(run);
        *latest = (*latest).max(run);
        let definitions = &self.runs.definitions;
        let state = self.runs.states.entry(run).or_insert_with(|| RunState {
            run,
            steps: definitions
                .iter()
                .find(|w| w.name == workflow)
                .map(|w| {
                    w.steps
                        .iter()
                        .map(|s| StepState {
                            id: s.id.clone(),
                            status: StepStatus::Pending,
                            attempts: 0,
                            error: None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            workflow,
            status: RunStatus::Queued,
            error: None,
            created_ms: super::now_ms(),
            finished_ms: None,
            seq: 0,
        });
        match event {
            RunEvent::Run { status, error, .. } => {
                state.status = status;
                state.error = error;
            }
            RunEvent::Steps { steps, .. } => {
                // The driver's own list: the run's definition, which may differ from the file's
                // now, and the steps a re-run kept or a resumed run had finished.
                state.steps = steps
                    .into_iter()
                    .map(|s| StepState { id: s.step, status: s.status, attempts: s.attempts, error: s.error })
                    .collect();
            }
            RunEvent::Step { step, status, attempt, error, .. } => {
                match state.steps.iter_mut().find(|s| s.id == step) {
                    Some(s) => {
                        s.status = status;
                        s.attempts = attempt;
                        s.error = error;
                    }
                    None => state.steps.push(StepState { id: step, status, attempts: attempt, error }),
                }
            }
        }
        self.runs.seq += 1;
        state.seq = self.runs.seq;
        if state.status.is_final() {
            state.finished_ms.get_or_insert_with(super::now_ms);
        }
        let state = state.clone();
        if state.status.is_final() {
            self.runs.states.remove(&run);
            self.runs.ended.retain(|s| s.run != run);
            self.runs.ended.push_back(state.clone());
            if self.runs.ended.len() > ENDED_KEPT {
                self.runs.ended.pop_front();
            }
        }
        match &state.steps.iter().find(|s| s.status == StepStatus::Failed) {
            // What a failed step said about files is shown on them until the workflow runs again.
            Some(failed) if state.status.is_final() => {
                // Reading the step's output from the store happens off the loop.
                let (engine, root) = (self.runs.engine.clone(), self.root.clone());
                let (workflow, step) = (state.workflow.clone(), failed.id.clone());
                let (max_size, encoding) = (self.config.max_file_size, self.encoding);
                self.off_loop(
                    "reading a failed step's output",
                    move || {
                        let step = StepRef { run, workflow: &workflow, step: &step };
                        let by_file = failure_diagnostics(engine.as_ref(), &root, step, max_size, encoding);
                        (workflow, by_file)
                    },
                    move |(workflow, by_file)| super::Done::RunDiagnostics { run, workflow, by_file },
                );
            }
            _ if state.status == RunStatus::Running
                && state.steps.iter().all(|s| s.status == StepStatus::Pending) =>
            {
                self.set_run_diagnostics(&state.workflow, HashMap::new());
            }
            _ => {}
        }
        let _ = self.output.send(Output::WorkflowRun(state));
    }
}

/// The failed step of a run.
struct StepRef<'a> {
    run: RunId,
    workflow: &'a str,
    step: &'a str,
}

/// What a failed step's error and output say about files of the workspace, as diagnostics on
/// those files: compiler messages, tracebacks, panics and stack traces as `acas run` reads them
/// ([`crate::checkers::Format::Crash`]), placed in the files' text and classified; when none is
/// recognised, the `file:line[:column]: message` lines.
fn failure_diagnostics(
    engine: Option<&Engine>,
    root: &Path,
    StepRef { run, workflow, step }: StepRef<'_>,
    max_size: u64,
    encoding: crate::text::PositionEncoding,
) -> HashMap<PathBuf, Vec<FileDiagnostic>> {
    static LOCATED: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let located = LOCATED.get_or_init(|| {
        regex::Regex::new(r"^\s*([^\s:][^:\n]*?):(\d+)(?::(\d+))?:?\s+(\S.*)$").expect("the pattern compiles")
    });
    let record = engine
        .and_then(|e| e.db().steps(run).ok())
        .and_then(|steps| steps.into_iter().find(|s| s.step_id == step));
    let Some(record) = record else { return HashMap::new() };
    let mut text = record.error.clone().unwrap_or_default();
    for stream in ["stdout", "stderr"] {
        if let Some(out) = record.output.as_ref().and_then(|o| o[stream].as_str()) {
            text.push('\n');
            text.push_str(out);
        }
    }
    let mut by_file: HashMap<PathBuf, Vec<FileDiagnostic>> = HashMap::new();
    let recognised = recognised_failures(root, &text, max_size, encoding);
    if !recognised.is_empty() {
        for (file, diagnostics) in recognised {
            let diagnostics = diagnostics
                .into_iter()
                .map(|d| FileDiagnostic {
                    message: format!("{} (workflow `{workflow}`, step `{step}`, run {run})", d.message),
                    ..d
                })
                .collect();
            by_file.insert(file, diagnostics);
        }
        return by_file;
    }
    for line in text.lines().take(10_000) {
        let Some(c) = located.captures(line) else { continue };
        let file = root.join(&c[1]);
        if !file.starts_with(root) || !file.is_file() {
            continue;
        }
        let line: u32 = c[2].parse().unwrap_or(1);
        let column: u32 = c.get(3).and_then(|m| m.as_str().parse().ok()).unwrap_or(1);
        let at = Position { line: line.saturating_sub(1), character: column.saturating_sub(1) };
        by_file.entry(file).or_default().push(FileDiagnostic {
            range: TextRange { start: at, end: at },
            severity: Severity::Error,
            category: Category::Build,
            message: format!("{} (workflow `{workflow}`, step `{step}`, run {run})", &c[4]),
            source: RUN_SOURCE.to_owned(),
            code: None,
            fingerprint: String::new(),
            symbol: None,
            related: Vec::new(),
            fix_id: None,
        });
    }
    by_file
}

/// The problems the crash reader recognises in `text` (at most its first 10,000 lines), placed
/// in the workspace's files they name.
fn recognised_failures(
    root: &Path,
    text: &str,
    max_size: u64,
    encoding: crate::text::PositionEncoding,
) -> HashMap<PathBuf, Vec<FileDiagnostic>> {
    use crate::checkers::parse::{self, Stream};
    let mut parser = parse::crash(root);
    let mut problems = Vec::new();
    for line in text.lines().take(10_000) {
        parser.line(Stream::Stderr, line, &mut problems);
    }
    parser.finish(&mut problems);
    let mut by_path: HashMap<PathBuf, Vec<crate::checkers::Problem>> = HashMap::new();
    for mut problem in problems {
        if problem.span.path.is_relative() {
            problem.span.path = root.join(&problem.span.path);
        }
        if problem.span.path.starts_with(root) {
            by_path.entry(problem.span.path.clone()).or_default().push(problem);
        }
    }
    by_path
        .into_iter()
        .filter_map(|(path, problems)| {
            let text = crate::files::read_beneath(root, &path, max_size).ok()?;
            let language = crate::classify::Language::from_path(&path);
            let mut diagnostics = crate::analysis::place_problems(&text, language, &problems, encoding);
            for d in &mut diagnostics {
                d.source = RUN_SOURCE.to_owned();
            }
            Some((path, diagnostics))
        })
        .collect()
}
