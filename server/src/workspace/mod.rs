//! The single owner of a workspace's state, and its event loop.
//!
//! Everything that changes state arrives as an [`Event`] on one channel and is handled by one
//! task, in arrival order: editor notifications, file-system batches, the typed results of work
//! done elsewhere ([`Done`]), timers and requests ([`Request`]). Front ends (the LSP server,
//! `acas watch`) send events through a [`Handle`] and receive [`Output`]s; they never touch the
//! state. A panic while handling one event is caught and logged, and the loop goes on with the
//! next.
//!
//! Only state changes and what typing needs run here: open documents are parsed incrementally
//! on the loop, because that is the latency path. Reading and parsing files on disk, reading the
//! configuration, building the escalation engine, SQLite queries and every escalation run
//! elsewhere, on snapshots, and come back as events. A request is answered only once the
//! background work started by the events before it is back ([`Workspace::in_flight`]), so it
//! sees their effect as if they had run on the loop; work started after it does not hold it.
//!
//! What this module holds: the loop, [`Event`], [`Output`], [`Options`] and the state's fields.
//! Each concern is a file of its own: [`documents`] (document sync), [`scan`] (the walk, the
//! watcher and disk analyses), [`publish`] (what the editor is shown), [`external`] (other
//! tools' diagnostics), [`settings`] (configuration and editor settings), [`rules`] (automatic
//! escalation), [`escalations`] (escalation jobs, AI notes and their fixes), [`status`] (status
//! and spend), [`requests`] (the typed requests and their answers), [`workflows`] (workflow
//! files), [`runs`] (workflow runs) and [`shared`] (the workspace lease).

mod checkers;
mod documents;
mod escalations;
mod external;
mod publish;
mod refused;
mod requests;
mod rules;
mod run_records;
mod runs;
mod scan;
mod settings;
mod shared;
mod status;
#[cfg(test)]
mod tests;
mod workflows;

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::analysis::{Analyzed, DiskQueue, FileDiagnostic};
use crate::assist::Notes;
use crate::classify::Language;
use crate::config::{self, Config};
use crate::escalate::engine::Escalator;
use crate::store::{self, Store};
use crate::text::PositionEncoding;
use crate::watch::{self, Change, IgnoreRules, Watcher};
pub use checkers::CheckerEvent;
pub use documents::ContentChange;
use documents::OpenDocument;
pub use escalations::{Answer, EscalateRequest, EscalationError, Prepared, QuickFix};
pub use external::ExternalDiagnostic;
use external::ExternalEntry;
pub use refused::{Refused, RefusedKind};
pub use requests::{PlanError, Request};
pub use runs::{RUN_SOURCE, RunState, StepState, WorkflowEvent};
use scan::ScanState;
pub use status::{Spend, Status};
pub use workflows::SOURCE as WORKFLOW_SOURCE;

/// A tool's report waiting for the one before it to be located: its number and diagnostics.
type WaitingReport = (u64, Vec<ExternalDiagnostic>);

/// How often old activity is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Everything the loop handles: a closed set of typed inputs.
pub enum Event {
    Opened {
        path: PathBuf,
        version: i32,
        language_id: String,
        text: String,
    },
    Changed {
        path: PathBuf,
        version: i32,
        changes: Vec<ContentChange>,
    },
    Saved {
        path: PathBuf,
    },
    Closed {
        path: PathBuf,
    },
    Settings(acas_protocol::Settings),
    /// The complete current diagnostics another tool published for a file.
    External {
        path: PathBuf,
        source: String,
        diagnostics: Vec<ExternalDiagnostic>,
    },
    Files(watch::Batch),
    Analyzed(Analyzed),
    /// A walk ended: the files it found (its directories are watched already), and for a
    /// rescan, the changes no event reported (already recorded).
    WalkDone {
        files: HashSet<PathBuf>,
        rescan: bool,
        missed: Vec<Change>,
    },
    /// Walk again and record what events missed, after a burst.
    Reconcile,
    /// Time to look at the escalation rules again.
    RulesTick,
    Prune,
    /// Work the loop started elsewhere came back, with the number [`Workspace::off_loop`] gave it.
    Done(u64, Done),
    /// Triggers, the workflow engine and workflow steps.
    Workflow(WorkflowEvent),
    /// This process took (`held`) or lost the workspace lease, and with it the work done once
    /// per workspace.
    Lease {
        held: bool,
    },
    /// Something a background task has to tell the user.
    Message {
        level: MessageLevel,
        text: String,
    },
    /// An escalation ended, by rule or by the editor's request.
    Escalated(Box<escalations::Escalated>),
    /// A checker's run handed over problems or ended, or saves went quiet.
    Checker(CheckerEvent),
    /// A front end asks something; the answer goes back on the request's own channel.
    Request(Request),
    Shutdown(oneshot::Sender<()>),
}

/// The typed result of work the loop started off the loop (rust-analyzer's `Task`). Each is in
/// [`Workspace::in_flight`] until it is back.
pub enum Done {
    /// The configuration was read again.
    Config { generation: u64, config: Box<Config>, errors: Vec<config::ConfigError> },
    /// The escalation engine was built again for a changed configuration.
    Escalator { generation: u64, escalator: Result<Arc<Escalator>, Refused> },
    /// A file another tool reported on was read and parsed: the symbols enclosing its
    /// diagnostics.
    Located {
        path: PathBuf,
        source: String,
        seq: u64,
        diagnostics: Vec<ExternalDiagnostic>,
        symbols: Vec<Option<String>>,
    },
    /// An unopened file was read and parsed for an escalation (the editor's or a rule's).
    Snapshot {
        request: Box<EscalateRequest>,
        snapshot: Result<escalations::Snapshot, Refused>,
        then: escalations::Then,
    },
    /// A workflow file on disk was read and checked: its text when it has problems.
    WorkflowFile { path: PathBuf, text: String, problems: Vec<crate::workflow::parse::Problem> },
    /// The policy file was checked: an open document's `version`, or the file on disk (`None`).
    PolicyFile {
        path: PathBuf,
        version: Option<i32>,
        text: String,
        problems: Vec<crate::workflow::parse::Problem>,
    },
    /// The workflows of `.acas/workflows` were loaded again after one of their files changed.
    Workflows(Vec<crate::workflow::definition::Workflow>),
    /// A file with resolved AI fixes was read, to notice fixes that were undone; `present` are
    /// the fingerprints present when it was asked.
    Reverts { path: PathBuf, present: HashSet<String>, text: String },
    /// What a failed step of a run of `workflow` said about files.
    RunDiagnostics {
        run: crate::workflow::state::RunId,
        workflow: String,
        by_file: HashMap<PathBuf, Vec<FileDiagnostic>>,
    },
    /// The workspace's checkers were detected again.
    Checkers {
        generation: u64,
        detected: Vec<crate::checkers::detect::Detected>,
        problems: Vec<String>,
        trust: crate::trust::State,
    },
    /// A checker's problems in a file on disk were placed in its text (`None`: it cannot be read).
    CheckerPlaced { checker: String, run: u64, path: PathBuf, placed: Option<Vec<checkers::Placed>> },
    /// The user's trust in the workspace was written to the trust list.
    Trusted,
    /// What `acas run` recorded, read back from the store: per file and tool, placed.
    RunRecords { read: u64, sets: Vec<(PathBuf, String, Vec<checkers::Placed>)> },
    /// The background work found nothing to apply.
    Nothing,
    /// The background work panicked or was dropped.
    Lost(&'static str),
}

/// Removes the scratch copies used to verify fixes that are stale (their workspace is gone, or
/// they were not used for a long time), on a thread of its own.
fn remove_stale_mirrors() {
    use crate::checkers::verify;
    let spawned = std::thread::Builder::new().name("acas-scratch-clean".to_owned()).spawn(|| {
        for dir in verify::remove_stale(&verify::scratch_dir(), verify::STALE_AFTER) {
            tracing::info!("removed the stale scratch copy {}", dir.display());
        }
    });
    if let Err(error) = spawned {
        tracing::warn!("cannot look for stale scratch copies: {error}");
    }
}

/// What the loop tells its front end.
#[derive(Debug)]
pub enum Output {
    /// The complete current diagnostics of a file (empty clears them).
    Diagnostics { path: PathBuf, version: Option<i32>, diagnostics: Arc<[FileDiagnostic]> },
    /// File-system changes, as they were seen.
    Changes(Vec<Change>),
    /// Something the user should read.
    Message { level: MessageLevel, text: String },
    /// Work that takes a while: the initial scan.
    Progress(Progress),
    /// A workflow run changed: its whole state.
    WorkflowRun(RunState),
    /// The workspace's checkers wait for the user to trust it: ask, with `text`, and answer
    /// whether they trust it now ("Trust and run"). A front end that cannot ask drops `answer`
    /// after showing `text`.
    AskTrust { text: String, answer: tokio::sync::oneshot::Sender<bool> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageLevel {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Begin { title: String },
    Report { message: String, percentage: Option<u32> },
    End { message: String },
}

/// How to start a workspace.
pub struct Options {
    pub root: PathBuf,
    pub encoding: PositionEncoding,
    pub settings: acas_protocol::Settings,
    /// Whether to parse every file at start.
    pub scan: bool,
    /// Whether to watch the file system after the initial scan.
    pub watch: bool,
    /// Whether to record activity in `.acas/state.db`.
    pub record: bool,
    /// Whether to load each language's symbol index when the initial walk is done (from the
    /// store, indexing again only what changed), so that the first escalation finds it ready.
    pub symbols: bool,
    pub analysis_threads: usize,
    /// Set when a workflow step started this process: its escalations are made for that run's
    /// agent (its spend limit applies, and they count as its spend).
    pub acting_for: Option<crate::process_tree::Acting>,
}

impl Options {
    /// A workspace with no root folder: only open documents are checked, nothing is recorded.
    pub fn detached(encoding: PositionEncoding, settings: acas_protocol::Settings) -> Options {
        Options {
            root: PathBuf::new(),
            encoding,
            settings,
            scan: false,
            watch: false,
            record: false,
            symbols: false,
            analysis_threads: 1,
            acting_for: None,
        }
    }
}

/// A cheap handle to send events to the loop. Typed requests are its methods ([`requests`]).
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Event>,
}

impl Handle {
    pub fn send(&self, event: Event) {
        if self.tx.send(event).is_err() {
            tracing::debug!("workspace loop has stopped; event dropped");
        }
    }

    /// Stops watching, writes everything pending to the store and ends the loop.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        self.send(Event::Shutdown(tx));
        let _ = rx.await;
    }
}

/// The state of one workspace. Only the loop owns it.
pub struct Workspace {
    root: PathBuf,
    /// Whether the files under the root are part of the workspace; if not (no usable root
    /// folder), only open documents are, and nothing on disk is read, watched or written.
    on_disk: bool,
    encoding: PositionEncoding,
    analysis_threads: usize,
    /// Who this process's escalations are for ([`Options::acting_for`]).
    acting_for: Option<crate::process_tree::Acting>,
    config: Config,
    settings: acas_protocol::Settings,
    store: Option<Store>,
    /// Why the store, the configuration or the watcher is not working, for status reports.
    store_error: Option<String>,
    config_error: Option<String>,
    watch_error: Option<String>,
    queue: DiskQueue,
    rules: Arc<IgnoreRules>,
    /// Whether to watch the file system ([`Options::watch`]), and the watcher when it runs.
    watch: bool,
    watcher: Option<Watcher>,
    output: mpsc::UnboundedSender<Output>,
    handle: Handle,
    open: HashMap<PathBuf, OpenDocument>,
    /// Open documents over the parsing size limit: kept out of `open`, told about once.
    too_large: HashSet<PathBuf>,
    /// Latest analysis sequence applied per path on disk.
    disk_seq: HashMap<PathBuf, u64>,
    /// Paths the loop queued for analysis whose result has not come back.
    analysing: HashSet<PathBuf>,
    /// Disk diagnostics published and not yet cleared.
    disk_published: HashMap<PathBuf, Arc<[FileDiagnostic]>>,
    /// Every file seen by a walk or an event, to find what a rescan adds or removes.
    /// Shared with the watcher's consumer, which keeps it current between walks.
    known: Arc<Mutex<HashSet<PathBuf>>>,
    /// Files the last rescan found deleted (and recorded) whose events may still come.
    found_deleted: Arc<Mutex<HashSet<PathBuf>>>,
    /// A reconciling walk is scheduled after a burst of events.
    reconcile_scheduled: bool,
    /// File changes since the last walk, and when the latest arrived.
    changes_since_walk: usize,
    last_change: std::time::Instant,
    /// The escalation engine, or why there is none.
    escalator: Result<Arc<Escalator>, Refused>,
    /// Configuration reads started, to apply only the latest.
    config_generation: u64,
    /// Escalation engine builds started, to apply only the latest.
    escalator_generation: u64,
    notes: Notes,
    /// Fingerprints other tools report per file and source, to know when an AI note is done.
    external_fingerprints: HashMap<PathBuf, HashMap<String, Vec<String>>>,
    /// Other tools' current diagnostics, with their fingerprint and category, for the rules.
    external_current: HashMap<PathBuf, HashMap<String, Vec<ExternalEntry>>>,
    /// The latest report of each tool per file, numbered: a report located off the loop is
    /// applied only if no newer one arrived meanwhile.
    external_seq: HashMap<(PathBuf, String), u64>,
    /// When each present fingerprint appeared, and how often it has appeared this session.
    seen: HashMap<String, (std::time::Instant, u64)>,
    /// How many times each fingerprint has appeared this session.
    appearances: HashMap<String, u64>,
    /// Fingerprints escalated automatically this session: never twice.
    auto_escalated: HashSet<String>,
    /// The file, line and time of the last edit.
    last_edit: Option<(PathBuf, u32, std::time::Instant)>,
    rules_tick_scheduled: bool,
    /// Symbol indexes by language, loaded when the initial walk is done (with
    /// [`Options::symbols`]) or by the first escalation of that language.
    symbols: HashMap<Language, crate::assist::SharedIndexLock>,
    /// Whether to load the symbol indexes when the initial walk is done.
    symbols_at_start: bool,
    /// Files changed since their language's index was last brought up to date.
    symbols_stale: HashMap<Language, HashSet<PathBuf>>,
    /// The language of every file on disk parsed last time it was read, and how many files of
    /// each language that makes.
    parsed: HashMap<PathBuf, Language>,
    languages: HashMap<Language, usize>,
    scan: Option<ScanState>,
    workflows: workflows::WorkflowFiles,
    runs: runs::Runs,
    /// The workspace lease, when this process takes part in it (it watches and records).
    shared: Option<shared::Shared>,
    /// Whether this process holds the lease, and so records file events.
    records_files: Arc<AtomicBool>,
    /// The lease's fencing token of this process's tenure: file events and trigger-started runs
    /// are written only while the lease is still held under it.
    fence: shared::FenceCell,
    /// Walks started whose [`Event::WalkDone`] has not come back yet.
    walking: usize,
    /// Background work whose [`Done`] has not come back yet, by the number it was started under.
    in_flight: std::collections::BTreeSet<u64>,
    /// The part of it that locates other tools' diagnostics: only the requests that read those
    /// ([`Request::reads_external`]) wait for it.
    locating: std::collections::BTreeSet<u64>,
    /// Per file and tool with a report being located: the newest report that arrived meanwhile,
    /// located when that one is back (one at a time per file and tool).
    external_waiting: HashMap<(PathBuf, String), Option<WaitingReport>>,
    /// The number the next background work is started under.
    next_work: u64,
    /// Requests that wait for the background work started before them (numbers below the one
    /// kept with each), in arrival order.
    deferred: std::collections::VecDeque<(u64, Request)>,
    /// Waiting for nothing to be left in flight or in analysis ([`Request::Settled`]).
    settle_waiters: Vec<oneshot::Sender<()>>,
    /// The project's checkers, their runs and what they report.
    checkers: checkers::Checkers,
    /// What `acas run`'s lists named when read last.
    run_lists: run_records::RunLists,
}

/// Starts the loop for a workspace; outputs go to the returned receiver.
pub fn start(options: Options) -> (Handle, mpsc::UnboundedReceiver<Output>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (output, outputs) = mpsc::unbounded_channel();
    let handle = Handle { tx };
    let workspace = Workspace::new(options, handle.clone(), output);
    tokio::spawn(workspace.run(rx));
    (handle, outputs)
}

impl Workspace {
    /// Opens what the workspace needs before its loop starts: the configuration, the store,
    /// the escalation engine, the watcher and the workflow engine.
    fn new(options: Options, handle: Handle, output: mpsc::UnboundedSender<Output>) -> Workspace {
        let root = options.root;
        let (config, errors) =
            if options.scan { config::load_all(&root) } else { (Config::default(), Vec::new()) };
        // A mistake in a `[[checkers]]` entry leaves that entry out; any other, the defaults.
        let config = if errors.iter().any(|e| !e.checker) { Config::default() } else { config };
        let config = config.with_settings(&options.settings);
        let config_problem = errors.first().map(|e| e.to_string());
        if let Some(error) = errors.first() {
            let text = if error.checker {
                format!("{}; the other entries are in force", settings::listed(&errors))
            } else {
                format!("{error}; using the defaults until it is fixed")
            };
            let _ = output.send(Output::Message { level: MessageLevel::Error, text });
        }
        for output_ in settings::config_diagnostics_all(&root, &errors, false) {
            let _ = output.send(output_);
        }
        let store_options = store::StoreOptions { retention: config.retention, ..Default::default() };
        let opened = options.record.then(|| Store::open_workspace(&root, store_options));
        let store_error = match &opened {
            Some(Err(error)) => Some(error.to_string()),
            _ => None,
        };
        let store = match opened {
            None => None,
            Some(Ok(store)) => Some(store),
            Some(Err(error)) => {
                let _ = output.send(Output::Message {
                    level: MessageLevel::Error,
                    text: format!("activity is not being recorded: {error}"),
                });
                None
            }
        };
        let queue = scan::start_queue(
            &handle,
            &root,
            options.analysis_threads,
            config.max_file_size,
            options.encoding,
        );
        let rules = Arc::new(IgnoreRules::new(&root, &config.ignore));
        let escalator = escalations::build_escalator(&config, store.clone(), None);
        let mut workspace = Workspace {
            root,
            on_disk: options.scan,
            encoding: options.encoding,
            analysis_threads: options.analysis_threads,
            acting_for: options.acting_for,
            config,
            settings: options.settings,
            store,
            store_error,
            config_error: config_problem,
            watch_error: None,
            queue,
            rules,
            watch: options.watch,
            watcher: None,
            output,
            handle,
            open: HashMap::new(),
            too_large: HashSet::new(),
            disk_seq: HashMap::new(),
            analysing: HashSet::new(),
            disk_published: HashMap::new(),
            known: Arc::default(),
            found_deleted: Arc::default(),
            escalator,
            config_generation: 0,
            escalator_generation: 0,
            notes: Notes::default(),
            external_fingerprints: HashMap::new(),
            external_current: HashMap::new(),
            external_seq: HashMap::new(),
            seen: HashMap::new(),
            appearances: HashMap::new(),
            auto_escalated: HashSet::new(),
            last_edit: None,
            rules_tick_scheduled: false,
            symbols: HashMap::new(),
            symbols_at_start: options.symbols,
            symbols_stale: HashMap::new(),
            reconcile_scheduled: false,
            changes_since_walk: 0,
            last_change: std::time::Instant::now(),
            parsed: HashMap::new(),
            languages: HashMap::new(),
            scan: None,
            workflows: Default::default(),
            runs: Default::default(),
            shared: None,
            records_files: Arc::default(),
            fence: Arc::default(),
            walking: 0,
            in_flight: Default::default(),
            locating: Default::default(),
            external_waiting: HashMap::new(),
            next_work: 0,
            deferred: Default::default(),
            settle_waiters: Vec::new(),
            checkers: Default::default(),
            run_lists: Default::default(),
        };
        if options.watch {
            workspace.start_watcher();
        }
        if options.watch && options.record {
            workspace.start_workflows();
            workspace.start_shared();
        }
        if options.scan {
            remove_stale_mirrors();
            workspace.read_run_lists();
            workspace.detect_checkers();
            workspace.check_workflow_files();
            workspace.start_walk(false);
        }
        workspace
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        let prune_handle = self.handle.clone();
        let pruner = tokio::spawn(async move {
            let mut interval = tokio::time::interval(PRUNE_EVERY);
            loop {
                interval.tick().await;
                prune_handle.send(Event::Prune);
            }
        });
        while let Some(event) = rx.recv().await {
            if let Event::Shutdown(done) = event {
                self.shutdown();
                let _ = done.send(());
                break;
            }
            let event_name = event.name();
            if std::panic::catch_unwind(AssertUnwindSafe(|| self.handle(event))).is_err() {
                tracing::error!("handling {event_name} panicked; the server goes on");
            }
            if std::panic::catch_unwind(AssertUnwindSafe(|| self.answer_deferred())).is_err() {
                tracing::error!("answering a request panicked; the server goes on");
            }
        }
        pruner.abort();
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Opened { path, version, language_id, text } => {
                self.opened(path, version, &language_id, text)
            }
            Event::Changed { path, version, changes } => self.changed(path, version, changes),
            Event::Saved { path } => self.saved(path),
            Event::Closed { path } => self.closed(path),
            Event::Settings(settings) => self.settings_changed(settings),
            Event::External { path, source, diagnostics } => self.external(path, source, diagnostics),
            Event::Files(batch) => self.files_changed(batch),
            Event::Analyzed(analyzed) => self.analyzed(analyzed),
            Event::WalkDone { files, rescan, missed } => self.walk_done(files, rescan, missed),
            Event::Reconcile => self.reconcile(),
            Event::RulesTick => {
                self.rules_tick_scheduled = false;
                self.apply_rules();
            }
            Event::Prune => self.prune(),
            Event::Done(work, done) => {
                self.in_flight.remove(&work);
                self.locating.remove(&work);
                self.done(done);
            }
            Event::Workflow(event) => self.workflow_event(event),
            Event::Lease { held } => self.lease_changed(held),
            Event::Message { level, text } => self.message(level, text),
            Event::Escalated(escalated) => self.escalated(*escalated),
            Event::Checker(event) => self.checker_event(event),
            Event::Request(request) => {
                if let Request::Settled(reply) = request {
                    self.settle_waiters.push(reply);
                } else if !self.in_flight.is_empty() || !self.deferred.is_empty() {
                    self.deferred.push_back((self.next_work, request));
                } else {
                    self.answer(request);
                }
            }
            Event::Shutdown(_) => unreachable!("handled by the loop"),
        }
    }

    fn done(&mut self, done: Done) {
        match done {
            Done::Config { generation, config, errors } => self.config_loaded(generation, *config, errors),
            Done::Escalator { generation, escalator } => self.escalator_built(generation, escalator),
            Done::Located { path, source, seq, diagnostics, symbols } => {
                self.external_back(path, source, seq, diagnostics, symbols)
            }
            Done::Snapshot { request, snapshot, then } => self.snapshot_taken(*request, snapshot, then),
            Done::WorkflowFile { path, text, problems } => self.workflow_checked(path, text, problems),
            Done::PolicyFile { path, version, text, problems } => {
                self.policy_checked(path, version, text, problems)
            }
            Done::Workflows(workflows) => self.workflows_loaded(workflows),
            Done::Reverts { path, present, text } => self.notice_reverts(&path, &present, &text),
            Done::RunDiagnostics { run, workflow, by_file } => {
                self.failed_run_diagnostics(run, workflow, by_file)
            }
            Done::Checkers { generation, detected, problems, trust } => {
                self.checkers_detected(generation, detected, problems, trust)
            }
            Done::Trusted => self.workspace_trusted(),
            Done::CheckerPlaced { checker, run, path, placed } => {
                self.checker_placed(checker, run, path, placed)
            }
            Done::RunRecords { read, sets } => self.run_records_read(read, sets),
            Done::Nothing => {}
            Done::Lost(what) => tracing::error!("{what} failed inside ACAS; see the log above"),
        }
    }

    /// Answers the requests that waited for background work, in their order, once the work
    /// started before each is back; then those waiting for every analysis to be back too.
    fn answer_deferred(&mut self) {
        while let Some((before, request)) = self.deferred.front() {
            let waits_for =
                |work: &std::collections::BTreeSet<u64>| work.first().is_some_and(|oldest| oldest < before);
            let others = self
                .in_flight
                .iter()
                .find(|w| !self.locating.contains(w))
                .is_some_and(|oldest| oldest < before);
            if others || (request.reads_external() && waits_for(&self.locating)) {
                break;
            }
            let (_, request) = self.deferred.pop_front().expect("front exists");
            self.answer(request);
        }
        if !self.settle_waiters.is_empty()
            && self.in_flight.is_empty()
            && self.deferred.is_empty()
            && self.analysing.is_empty()
            && self.walking == 0
            && self.scan.is_none()
            && !self.checkers.busy()
        {
            for waiter in self.settle_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// Runs `work` on a blocking thread with what it took from the state; its result comes
    /// back as [`Event::Done`]. Requests that arrive after it wait until it is back.
    fn off_loop<T: Send + 'static>(
        &mut self,
        what: &'static str,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(T) -> Done + Send + 'static,
    ) -> u64 {
        let number = self.next_work;
        self.next_work += 1;
        self.in_flight.insert(number);
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let event = match tokio::task::spawn_blocking(work).await {
                Ok(result) => done(result),
                Err(_) => Done::Lost(what),
            };
            handle.send(Event::Done(number, event));
        });
        number
    }

    fn prune(&mut self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let engine = self.workflow_engine();
        tokio::task::spawn_blocking(move || {
            match store.prune(now_ms()) {
                Ok(rows) if rows > 0 => tracing::info!("pruned {rows} old activity rows"),
                Ok(_) => {}
                Err(error) => tracing::warn!("pruning old activity failed: {error}"),
            }
            // Delivered and abandoned outgoing webhooks are kept a week.
            if let Err(error) = store.outbox_prune(now_ms() - 7 * 24 * 3600 * 1000) {
                tracing::warn!("pruning delivered webhooks failed: {error}");
            }
            match engine.map(|e| e.prune()) {
                Some(Ok(runs)) if runs > 0 => tracing::info!("pruned {runs} old workflow runs"),
                Some(Err(error)) => tracing::warn!("pruning workflow history failed: {error}"),
                _ => {}
            }
        });
    }

    fn shutdown(&mut self) {
        self.watcher = None;
        self.stop_checkers();
        if let Some(store) = &self.store
            && let Err(error) = store.flush()
        {
            tracing::error!("writing pending activity failed: {error}");
        }
        self.release_lease();
    }

    fn message(&self, level: MessageLevel, text: String) {
        let _ = self.output.send(Output::Message { level, text });
    }

    fn progress(&self, progress: Progress) {
        let _ = self.output.send(Output::Progress(progress));
    }
}

impl Event {
    fn name(&self) -> &'static str {
        match self {
            Event::Opened { .. } => "didOpen",
            Event::Changed { .. } => "didChange",
            Event::Saved { .. } => "didSave",
            Event::Closed { .. } => "didClose",
            Event::Settings(_) => "settings",
            Event::External { .. } => "external diagnostics",
            Event::Files(_) => "file changes",
            Event::Analyzed(_) => "analysis result",
            Event::WalkDone { .. } => "walk",
            Event::Reconcile => "reconcile",
            Event::RulesTick => "rules",
            Event::Prune => "prune",
            Event::Done(..) => "background result",
            Event::Workflow(_) => "workflow event",
            Event::Lease { .. } => "lease",
            Event::Message { .. } => "message",
            Event::Escalated(_) => "escalation result",
            Event::Checker(_) => "checker event",
            Event::Request(request) => request.name(),
            Event::Shutdown(_) => "shutdown",
        }
    }
}

pub use crate::files::relative;
pub use crate::time::now_ms;
