//! The single owner of a workspace's state, and its event loop.
//!
//! Everything that changes state arrives as an [`Event`] on one channel and is handled by one
//! task, in arrival order: editor notifications, file-system batches, finished analyses, timers
//! and requests. Front ends (the LSP server, `acas watch`) send events through a [`Handle`] and
//! receive [`Output`]s; they never touch the state. A panic while handling one event is caught
//! and logged, and the loop goes on with the next.
//!
//! Open documents are parsed incrementally here, on the loop, because that is the latency path;
//! files on disk are analysed on the [`DiskQueue`]'s threads and their results come back as
//! events. An open document always wins over the file on disk. Workflow definitions
//! (`.acas/workflows/*.yaml`) are checked by [`workflows`], open or on disk.

mod refused;
mod runs;
mod shared;
mod workflows;

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::analysis::{self, Analyzed, DiskQueue, FileDiagnostic, Outcome};
use crate::assist::{IndexRefresh, Job, Note, NoteEdit, NoteFix, Notes};
use crate::classify::{self, Document, Language, Severity};
use crate::config::{self, Config};
use crate::escalate::context::Problem;
use crate::escalate::engine::{Escalator, Explained};
use crate::escalate::symbols::SymbolIndex;
use crate::files;
use crate::store::{self, Record, Store};
use crate::text::{LineIndex, Position, PositionEncoding, TextRange};
use crate::watch::{self, Change, IgnoreRules, Watcher};
pub use refused::{Refused, RefusedKind};
pub use runs::{RUN_SOURCE, RunState, StepState, WorkflowEvent};
pub use workflows::SOURCE as WORKFLOW_SOURCE;

/// How often old activity is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// This many changes between walks is a burst (a branch switch, a build): reconcile with a walk
/// once it settles.
const BURST: usize = 1000;
/// Quiet time after a burst before the reconciling walk.
const RECONCILE_AFTER: Duration = Duration::from_millis(500);
/// File events are written to the store in batches of this size.
const RECORD_BATCH: usize = 1000;

/// A diagnostic another tool reported, as the editor forwarded it.
#[derive(Debug, Clone)]
pub struct ExternalDiagnostic {
    pub range: TextRange,
    pub severity: Severity,
    pub code: Option<String>,
    /// The tool inside the source, when the source aggregates several.
    pub tool: Option<String>,
    pub message: String,
}

/// Another tool's diagnostic as the workspace keeps it.
#[derive(Debug, Clone)]
struct ExternalEntry {
    fingerprint: String,
    category: String,
    diagnostic: ExternalDiagnostic,
}

/// A diagnostic present now, from any source, as the rules see it.
struct Present {
    path: PathBuf,
    fingerprint: String,
    category: String,
    severity: String,
    source: String,
    range: TextRange,
    external: Option<ExternalDiagnostic>,
}

impl Present {
    fn own(path: &Path, d: &FileDiagnostic) -> Present {
        Present {
            path: path.to_path_buf(),
            fingerprint: d.fingerprint.clone(),
            category: d.category.as_str().into(),
            severity: d.severity.as_str().into(),
            source: d.source.clone(),
            range: d.range,
            external: None,
        }
    }
}

/// One edit of an open document: `range` is `None` for a full replacement.
#[derive(Debug, Clone)]
pub struct ContentChange {
    pub range: Option<TextRange>,
    pub text: String,
}

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
    WalkDone {
        files: HashSet<PathBuf>,
        rescan: bool,
    },
    /// Walk again and record what events missed, after a burst.
    Reconcile,
    /// Time to look at the escalation rules again.
    RulesTick,
    Prune,
    /// Triggers, the workflow engine and workflow steps.
    Workflow(WorkflowEvent),
    /// This process took (`held`) or lost the workspace lease, and with it the work done once
    /// per workspace.
    Lease {
        held: bool,
    },
    /// Runs a closure on the state, in order with every other event.
    Query(Box<dyn FnOnce(&mut Workspace) + Send>),
    Shutdown(oneshot::Sender<()>),
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
    pub analysis_threads: usize,
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
            analysis_threads: 1,
        }
    }
}

/// A cheap handle to send events to the loop.
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

    /// Runs `f` on the state in order with other events and returns its answer.
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Workspace) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::Query(Box::new(move |ws| {
            let _ = tx.send(f(ws));
        })));
        rx.await.ok()
    }

    /// Stops watching, writes everything pending to the store and ends the loop.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        self.send(Event::Shutdown(tx));
        let _ = rx.await;
    }
}

struct OpenDocument {
    doc: Document,
    index: LineIndex,
    version: i32,
    fingerprints: Vec<String>,
}

struct ScanState {
    started: std::time::Instant,
    walked: Option<usize>,
    analyzed: usize,
    diagnostics: usize,
}

/// The state of one workspace. Only the loop owns it.
pub struct Workspace {
    root: PathBuf,
    /// Whether the files under the root are part of the workspace; if not (no usable root
    /// folder), only open documents are, and nothing on disk is read, watched or written.
    on_disk: bool,
    encoding: PositionEncoding,
    analysis_threads: usize,
    config: Config,
    settings: acas_protocol::Settings,
    store: Option<Store>,
    /// Why the store, the configuration or the watcher is not working, for status reports.
    store_error: Option<String>,
    config_error: Option<String>,
    watch_error: Option<String>,
    queue: DiskQueue,
    rules: Arc<IgnoreRules>,
    watcher: Option<Watcher>,
    output: mpsc::UnboundedSender<Output>,
    handle: Handle,
    open: HashMap<PathBuf, OpenDocument>,
    /// Open documents over the parsing size limit: kept out of `open`, told about once.
    too_large: HashSet<PathBuf>,
    /// Latest analysis sequence applied per path on disk.
    disk_seq: HashMap<PathBuf, u64>,
    /// Disk diagnostics published and not yet cleared.
    disk_published: HashMap<PathBuf, Arc<[FileDiagnostic]>>,
    /// Every file seen by a walk or an event, to find what a rescan adds or removes.
    /// Shared with the watcher's consumer, which keeps it current between walks.
    known: Arc<Mutex<HashSet<PathBuf>>>,
    /// A reconciling walk is scheduled after a burst of events.
    reconcile_scheduled: bool,
    /// File changes since the last walk, and when the latest arrived.
    changes_since_walk: usize,
    last_change: std::time::Instant,
    /// The escalation engine, or why there is none.
    escalator: Result<Arc<Escalator>, Refused>,
    notes: Notes,
    /// Fingerprints other tools report per file and source, to know when an AI note is done.
    external_fingerprints: HashMap<PathBuf, HashMap<String, Vec<String>>>,
    /// Other tools' current diagnostics, with their fingerprint and category, for the rules.
    external_current: HashMap<PathBuf, HashMap<String, Vec<ExternalEntry>>>,
    /// When each present fingerprint appeared, and how often it has appeared this session.
    seen: HashMap<String, (std::time::Instant, u64)>,
    /// How many times each fingerprint has appeared this session.
    appearances: HashMap<String, u64>,
    /// Fingerprints escalated automatically this session: never twice.
    auto_escalated: HashSet<String>,
    /// The file, line and time of the last edit.
    last_edit: Option<(PathBuf, u32, std::time::Instant)>,
    rules_tick_scheduled: bool,
    /// Symbol indexes by language, built by the first escalation of that language.
    symbols: HashMap<Language, Arc<Mutex<SymbolIndex>>>,
    /// Files changed since their language's index was last brought up to date.
    symbols_stale: HashMap<Language, HashSet<PathBuf>>,
    files_seen: usize,
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
}

/// A summary of the workspace, for status displays.
#[derive(Debug, Clone)]
pub struct Status {
    pub root: PathBuf,
    pub files: usize,
    pub languages: Vec<(String, usize)>,
    pub open_documents: usize,
    pub files_with_errors: usize,
    pub store_path: Option<PathBuf>,
    pub store_bytes: u64,
    pub watching: bool,
    pub scanning: bool,
    /// Health of each part: (name, state, detail).
    pub subsystems: Vec<(&'static str, &'static str, Option<String>)>,
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
    fn new(options: Options, handle: Handle, output: mpsc::UnboundedSender<Output>) -> Workspace {
        let root = options.root;
        let (config, config_error) =
            if options.scan { config::load(&root) } else { (Config::default(), None) };
        let config = config.with_settings(&options.settings);
        let config_problem = config_error.as_ref().map(|e| e.to_string());
        if let Some(error) = &config_error {
            let _ = output.send(Output::Message {
                level: MessageLevel::Error,
                text: format!("{error}; using the defaults until it is fixed"),
            });
            let _ = output.send(config_diagnostics(error.path.clone(), Some(error)));
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
        let queue = start_queue(&handle, options.analysis_threads, config.max_file_size, options.encoding);
        let rules = Arc::new(IgnoreRules::new(&root, &config.ignore));
        let mut workspace = Workspace {
            root,
            on_disk: options.scan,
            encoding: options.encoding,
            analysis_threads: options.analysis_threads,
            config,
            settings: options.settings,
            store,
            store_error,
            config_error: config_problem,
            watch_error: None,
            queue,
            rules,
            watcher: None,
            output,
            handle,
            open: HashMap::new(),
            too_large: HashSet::new(),
            disk_seq: HashMap::new(),
            disk_published: HashMap::new(),
            known: Arc::default(),
            escalator: Err(Refused::from(&crate::escalate::engine::EscalateError::NoProvider)),
            notes: Notes::default(),
            external_fingerprints: HashMap::new(),
            external_current: HashMap::new(),
            seen: HashMap::new(),
            appearances: HashMap::new(),
            auto_escalated: HashSet::new(),
            last_edit: None,
            rules_tick_scheduled: false,
            symbols: HashMap::new(),
            symbols_stale: HashMap::new(),
            reconcile_scheduled: false,
            changes_since_walk: 0,
            last_change: std::time::Instant::now(),
            files_seen: 0,
            languages: HashMap::new(),
            scan: None,
            workflows: Default::default(),
            runs: Default::default(),
            shared: None,
            records_files: Arc::default(),
            fence: Arc::default(),
        };
        workspace.escalator = workspace.build_escalator(None);
        if options.watch {
            workspace.start_watcher();
        }
        if options.watch && options.record {
            workspace.start_workflows();
            workspace.start_shared();
        }
        if options.scan {
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
        }
        pruner.abort();
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Opened { path, version, language_id, text } => {
                self.opened(path, version, &language_id, text)
            }
            Event::Changed { path, version, changes } => self.changed(path, version, changes),
            Event::Saved { path } => self.record_editor(&path, store::EditorEventKind::Save, None),
            Event::Closed { path } => self.closed(path),
            Event::Settings(settings) => self.settings_changed(settings),
            Event::External { path, source, diagnostics } => self.external(path, source, diagnostics),
            Event::Files(batch) => self.files_changed(batch),
            Event::Analyzed(analyzed) => self.analyzed(analyzed),
            Event::WalkDone { files, rescan } => self.walk_done(files, rescan),
            Event::Reconcile => {
                let quiet = self.last_change.elapsed();
                if quiet < RECONCILE_AFTER {
                    self.schedule_reconcile(RECONCILE_AFTER - quiet);
                } else {
                    self.reconcile_scheduled = false;
                    self.changes_since_walk = 0;
                    self.start_walk(true);
                }
            }
            Event::RulesTick => {
                self.rules_tick_scheduled = false;
                self.apply_rules();
            }
            Event::Prune => self.prune(),
            Event::Workflow(event) => self.workflow_event(event),
            Event::Lease { held } => self.lease_changed(held),
            Event::Query(f) => f(self),
            Event::Shutdown(_) => unreachable!("handled by the loop"),
        }
    }

    fn start_watcher(&mut self) {
        let store = self.store.clone();
        let queue = self.queue.clone();
        let handle = self.handle.clone();
        let root = self.root.clone();
        let known = self.known.clone();
        let records = self.records_files.clone();
        let fence = self.fence.clone();
        let consumer = move |mut batch: watch::Batch| {
            track(&known, &mut batch.changes);
            if let Some(store) = &store
                && records.load(Ordering::SeqCst)
                && let Some(fence) = shared::current(&fence)
            {
                record_changes(store, &root, &batch.changes, &fence);
            }
            for change in &batch.changes {
                if let Change::Renamed { from, .. } = change {
                    queue.enqueue(from.clone());
                }
                queue.enqueue(change.path().to_path_buf());
            }
            handle.send(Event::Files(batch));
        };
        match Watcher::start(self.rules.clone(), self.config.debounce, consumer) {
            Ok(watcher) => {
                self.watcher = Some(watcher);
                self.watch_error = None;
            }
            Err(error) => {
                self.watch_error = Some(error.to_string());
                let text = format!(
                    "cannot watch {} for changes: {error}; restart ACAS to try again",
                    self.root.display()
                );
                self.message(MessageLevel::Warning, text);
            }
        }
    }

    /// Walks the workspace on a thread of its own, queueing every file for analysis.
    fn start_walk(&mut self, rescan: bool) {
        if !rescan {
            self.scan = Some(ScanState {
                started: std::time::Instant::now(),
                walked: None,
                analyzed: 0,
                diagnostics: 0,
            });
            self.progress(Progress::Begin { title: "Scanning workspace".into() });
        }
        let rules = self.watcher.as_ref().map_or_else(|| self.rules.clone(), |w| w.rules());
        let queue = self.queue.clone();
        let handle = self.handle.clone();
        let dirs = Arc::new(Mutex::new(Vec::new()));
        let watching = self.watcher.is_some();
        std::thread::Builder::new()
            .name("acas-walk".into())
            .spawn(move || {
                let files = Mutex::new(HashSet::new());
                watch::walk(
                    &rules,
                    rules.root(),
                    &|file| {
                        queue.enqueue(file.clone());
                        files.lock().unwrap().insert(file);
                    },
                    &|dir| {
                        if watching {
                            dirs.lock().unwrap().push(dir);
                        }
                    },
                );
                let dirs = std::mem::take(&mut *dirs.lock().unwrap());
                handle.send(Event::Query(Box::new(move |ws| {
                    if let Some(watcher) = &ws.watcher {
                        watcher.watch_dirs(dirs);
                    }
                })));
                handle.send(Event::WalkDone { files: files.into_inner().unwrap(), rescan });
            })
            .expect("spawning the workspace walk");
    }

    fn opened(&mut self, path: PathBuf, version: i32, language_id: &str, text: String) {
        let language = Language::from_path(&path).or_else(|| language_from_id(language_id));
        self.record_editor(&path, store::EditorEventKind::Open, Some(version));
        let Some(language) = language else {
            self.workflow_opened(&path, version, text);
            return;
        };
        if text.len() as u64 > self.config.max_file_size {
            // Parsing it on every keystroke would hold up everything else the loop does.
            if self.too_large.insert(path.clone()) {
                self.message(
                    MessageLevel::Info,
                    format!(
                        "ACAS does not check {}: it has {} bytes, more than the {} bytes it parses; raise `max_size` under [files] in .acas/config.toml to check it",
                        relative(&self.root, &path),
                        text.len(),
                        self.config.max_file_size
                    ),
                );
            }
            return;
        }
        let doc = Document::new(language, text);
        let index = LineIndex::new(doc.text());
        self.open.insert(path.clone(), OpenDocument { doc, index, version, fingerprints: Vec::new() });
        self.publish_open(&path);
    }

    fn changed(&mut self, path: PathBuf, version: i32, changes: Vec<ContentChange>) {
        let current = self.open.get(&path).map(|open| open.version).or_else(|| self.workflow_version(&path));
        if let Some(current) = current
            && version <= current
        {
            // Applying it would put the text out of step with the editor's.
            tracing::warn!(
                "ignored a change to {} with version {version}: the document is already at version {current}",
                path.display()
            );
            return;
        }
        self.record_editor(&path, store::EditorEventKind::Change, Some(version));
        let line = changes.first().and_then(|c| c.range).map_or(0, |r| r.start.line);
        self.last_edit = Some((path.clone(), line, std::time::Instant::now()));
        if self.workflow_changed(&path, version, &changes) {
            return;
        }
        let encoding = self.encoding;
        let Some(open) = self.open.get_mut(&path) else {
            tracing::debug!("change for a document that is not open: {}", path.display());
            return;
        };
        for change in changes {
            match change.range {
                None => {
                    open.doc.replace(change.text);
                    open.index = LineIndex::new(open.doc.text());
                }
                Some(range) => {
                    let text = open.doc.text();
                    let start = open.index.offset(text, range.start, encoding);
                    let end = open.index.offset(text, range.end, encoding).max(start);
                    open.doc.edit(start..end, &change.text);
                    open.index.edit(start..end, &change.text);
                }
            }
        }
        open.doc.reparse();
        open.version = version;
        self.publish_open(&path);
    }

    fn closed(&mut self, path: PathBuf) {
        self.record_editor(&path, store::EditorEventKind::Close, None);
        self.workflow_closed(&path);
        if self.open.remove(&path).is_some() {
            // Back to what is on disk.
            self.publish(&path, None, Arc::from(Vec::new()));
            self.queue.enqueue(path);
        }
    }

    /// Classifies, fingerprints and records another tool's diagnostics. They are never
    /// published back: the editor shows them already.
    fn external(&mut self, path: PathBuf, source: String, diagnostics: Vec<ExternalDiagnostic>) {
        let located = self.symbols_for(&path, diagnostics.iter().map(|d| d.range.start));
        let records: Vec<store::DiagnosticRecord> = diagnostics
            .iter()
            .zip(located)
            .map(|(d, symbol)| {
                let tool = d.tool.as_deref().unwrap_or(&source);
                let category = classify::external::category(tool, d.code.as_deref(), &d.message);
                let message = classify::external::fingerprint_message(&d.message);
                store::DiagnosticRecord {
                    fingerprint: classify::fingerprint(&message, category, symbol.as_deref()),
                    category: category.as_str().to_owned(),
                    severity: d.severity.as_str().to_owned(),
                    message: d.message.clone(),
                    source: tool.to_owned(),
                    symbol,
                    line: d.range.start.line,
                    character: d.range.start.character,
                }
            })
            .collect();
        let fingerprints: Vec<String> =
            records.iter().map(|r: &store::DiagnosticRecord| r.fingerprint.clone()).collect();
        let current = records
            .iter()
            .zip(&diagnostics)
            .map(|(r, d)| ExternalEntry {
                fingerprint: r.fingerprint.clone(),
                category: r.category.clone(),
                diagnostic: d.clone(),
            })
            .collect();
        self.external_current.entry(path.clone()).or_default().insert(source.clone(), current);
        self.external_fingerprints.entry(path.clone()).or_default().insert(source.clone(), fingerprints);
        if let Some(store) = &self.store {
            store.record(vec![Record::Diagnostics(store::FileDiagnostics {
                at_ms: now_ms(),
                path: relative(&self.root, &path),
                source,
                diagnostics: records,
            })]);
        }
        self.workflow_triggers_diagnostics(&path, None);
        self.retire_notes(&path);
        self.apply_rules();
    }

    /// Enclosing symbol paths of positions in a file: from the open document, else from the
    /// file on disk when it can be parsed.
    fn symbols_for(&self, path: &Path, positions: impl Iterator<Item = Position>) -> Vec<Option<String>> {
        let owned;
        let (doc, index) = match self.open.get(path) {
            Some(open) => (&open.doc, &open.index),
            None => {
                let Some(language) = Language::from_path(path) else {
                    return positions.map(|_| None).collect();
                };
                let Ok(text) = files::read_source(path, self.config.max_file_size) else {
                    return positions.map(|_| None).collect();
                };
                let doc = Document::new(language, text);
                let index = LineIndex::new(doc.text());
                owned = (doc, index);
                (&owned.0, &owned.1)
            }
        };
        positions
            .map(|p| {
                let offset = index.offset(doc.text(), p, self.encoding);
                classify::symbol_at(doc.language(), doc.tree(), doc.text(), offset)
            })
            .collect()
    }

    fn publish_open(&mut self, path: &Path) {
        let Some(open) = self.open.get_mut(path) else {
            return;
        };
        let diagnostics: Arc<[FileDiagnostic]> =
            analysis::locate(open.doc.text(), &open.index, open.doc.diagnostics(), self.encoding).into();
        let version = Some(open.version);
        let fingerprints: Vec<String> = diagnostics.iter().map(|d| d.fingerprint.clone()).collect();
        let changed_set = fingerprints != open.fingerprints;
        open.fingerprints = fingerprints;
        if changed_set {
            self.record_diagnostics(path, &diagnostics);
        }
        self.publish(path, version, diagnostics);
        if changed_set {
            self.retire_notes(path);
            self.apply_rules();
        }
    }

    fn publish(&self, path: &Path, version: Option<i32>, diagnostics: Arc<[FileDiagnostic]>) {
        self.workflow_triggers_diagnostics(path, Some(&diagnostics));
        let from_runs = self.run_diagnostics(path);
        let diagnostics = if self.notes.has(path) || !from_runs.is_empty() {
            diagnostics
                .iter()
                .cloned()
                .chain(self.notes.diagnostics(path))
                .chain(from_runs.iter().cloned())
                .collect()
        } else {
            diagnostics
        };
        let _ = self.output.send(Output::Diagnostics { path: path.to_path_buf(), version, diagnostics });
    }

    /// Publishes a file's current diagnostics again (after its AI notes changed).
    fn republish(&self, path: &Path) {
        match self.open.get(path) {
            Some(open) => {
                let diagnostics: Arc<[FileDiagnostic]> =
                    analysis::locate(open.doc.text(), &open.index, open.doc.diagnostics(), self.encoding)
                        .into();
                self.publish(path, Some(open.version), diagnostics);
            }
            None => {
                let diagnostics =
                    self.disk_published.get(path).cloned().unwrap_or_else(|| Arc::from(Vec::new()));
                self.publish(path, None, diagnostics);
            }
        }
    }

    /// Retires the AI notes of `path` whose error is gone (an applied fix whose error is gone
    /// resolved it), and notices resolved fixes that were undone (reverted).
    fn retire_notes(&mut self, path: &Path) {
        if !self.notes.has(path) && !self.notes.watching_reverts(path) {
            return;
        }
        let mut present: HashSet<String> = match self.open.get(path) {
            Some(open) => open.fingerprints.iter().cloned().collect(),
            None => self
                .disk_published
                .get(path)
                .map(|d| d.iter().map(|d| d.fingerprint.clone()).collect())
                .unwrap_or_default(),
        };
        if let Some(sources) = self.external_fingerprints.get(path) {
            present.extend(sources.values().flatten().cloned());
        }
        if self.notes.watching_reverts(path) {
            let text = match self.open.get(path) {
                Some(open) => Some(open.doc.text().to_owned()),
                None => files::read_source(path, self.config.max_file_size).ok(),
            };
            if let Some(text) = text {
                for note in self.notes.reverted(path, &|fp| present.contains(fp), &text) {
                    tracing::info!("AI fix {} was undone", note.fix_id);
                    self.record_fix(&note, store::Outcome::Reverted);
                }
            }
        }
        let gone = self.notes.gone(path, &|fp| present.contains(fp));
        for note in gone.iter().filter(|n| n.applied) {
            self.record_fix(note, store::Outcome::Resolved);
            self.notes.resolved(path, note.clone());
        }
        if !gone.is_empty() {
            self.republish(path);
        }
    }

    fn record_fix(&self, note: &Note, outcome: store::Outcome) {
        let Some(store) = &self.store else { return };
        let edit = note.fix.as_ref().and_then(|f| f.edits.first());
        store.record(vec![Record::FixOutcome(store::FixOutcome {
            fix_id: note.fix_id.clone(),
            at_ms: now_ms(),
            fingerprint: note.fingerprint.clone(),
            category: note.category.clone(),
            provider: note.provider.clone(),
            model: note.model.clone(),
            outcome,
            description: note.fix.as_ref().map(|f| f.description.clone()),
            old: edit.map(|e| e.old.clone()),
            new: edit.map(|e| e.new.clone()),
        })]);
    }

    fn files_changed(&mut self, batch: watch::Batch) {
        self.changes_since_walk += batch.changes.len();
        self.last_change = std::time::Instant::now();
        if self.changes_since_walk >= BURST && !self.reconcile_scheduled {
            // Kernel queues drop events in a burst, not always saying so: walk once it settles.
            self.reconcile_scheduled = true;
            self.schedule_reconcile(RECONCILE_AFTER);
        }
        self.workflow_triggers_files(&batch);
        if batch.rescan {
            if let Some(watcher) = &self.watcher {
                self.rules = watcher.rules();
            }
            self.start_walk(true);
        }
        for change in &batch.changes {
            if change.path() == config::path(&self.root) {
                self.reload_config();
            }
            self.symbols_changed(change);
        }
        self.workflow_files_changed(&batch.changes);
        if !batch.changes.is_empty() {
            let _ = self.output.send(Output::Changes(batch.changes));
        }
    }

    /// Notes a changed file for its language's symbol index, which the next escalation of that
    /// language brings up to date.
    fn symbols_changed(&mut self, change: &watch::Change) {
        let paths = match change {
            watch::Change::Renamed { from, to } => vec![from.as_path(), to.as_path()],
            other => vec![other.path()],
        };
        for path in paths {
            if let Some(language) = Language::from_path(path).filter(|l| self.symbols.contains_key(l)) {
                self.symbols_stale.entry(language).or_default().insert(path.to_path_buf());
            }
        }
    }

    fn analyzed(&mut self, analyzed: Analyzed) {
        self.apply_analyzed(analyzed);
        // Whatever the file was, the queue may be empty now: the scan may be over.
        self.report_scan();
    }

    fn apply_analyzed(&mut self, analyzed: Analyzed) {
        let Analyzed { path, seq, outcome } = analyzed;
        let last = self.disk_seq.entry(path.clone()).or_insert(0);
        if seq < *last {
            return;
        }
        *last = seq;
        if let Some(scan) = &mut self.scan {
            scan.analyzed += 1;
        }
        let diagnostics: Arc<[FileDiagnostic]> = match outcome {
            Outcome::Parsed { language, diagnostics, .. } => {
                self.files_seen += 1;
                *self.languages.entry(language).or_default() += 1;
                if let Some(scan) = &mut self.scan {
                    scan.diagnostics += diagnostics.len();
                }
                diagnostics.into()
            }
            Outcome::NotSource => return,
            Outcome::Skipped(files::Skip::Vanished | files::Skip::NotAFile) => Arc::from(Vec::new()),
            Outcome::Skipped(skip) => {
                tracing::info!("skipped {}: {skip}", path.display());
                Arc::from(Vec::new())
            }
        };
        self.apply_disk(&path, diagnostics);
    }

    /// Publishes a file's disk diagnostics unless it is open or nothing changed.
    fn apply_disk(&mut self, path: &Path, diagnostics: Arc<[FileDiagnostic]>) {
        let before = self.disk_published.get(path);
        if before.is_none() && diagnostics.is_empty() {
            return;
        }
        if before.is_some_and(|b| **b == *diagnostics) {
            return;
        }
        self.record_diagnostics(path, &diagnostics);
        if diagnostics.is_empty() {
            self.disk_published.remove(path);
        } else {
            self.disk_published.insert(path.to_path_buf(), diagnostics.clone());
        }
        if !self.open.contains_key(path) {
            self.publish(path, None, diagnostics);
        }
        self.retire_notes(path);
    }

    fn walk_done(&mut self, files: HashSet<PathBuf>, rescan: bool) {
        if rescan {
            // Events were lost: what appeared or vanished meanwhile is recorded from the walk.
            // Events for files that changed while the walk ran may be in `known` already, or
            // still on their way: only what the file system confirms now is a missed change.
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            let created: Vec<PathBuf> = files
                .iter()
                .filter(|p| !known.contains(*p) && p.symlink_metadata().is_ok())
                .cloned()
                .collect();
            let deleted: Vec<PathBuf> = known
                .iter()
                .filter(|p| !files.contains(*p) && p.symlink_metadata().is_err())
                .cloned()
                .collect();
            known.extend(created.iter().cloned());
            for path in &deleted {
                known.remove(path);
            }
            drop(known);
            let mut missed: Vec<Change> = created.into_iter().map(Change::Created).collect();
            missed.extend(deleted.into_iter().map(Change::Deleted));
            if !missed.is_empty() {
                tracing::info!("rescan found {} changes that no event reported", missed.len());
                if let Some(store) = &self.store
                    && self.records_files.load(Ordering::SeqCst)
                    && let Some(fence) = shared::current(&self.fence)
                {
                    record_changes(store, &self.root, &missed, &fence);
                }
                for change in &missed {
                    if let Change::Deleted(path) = change {
                        self.queue.enqueue(path.clone());
                    }
                }
                let _ = self.output.send(Output::Changes(missed));
            }
            // Files that went out of view lose their diagnostics.
            let gone: Vec<PathBuf> =
                self.disk_published.keys().filter(|p| !files.contains(*p)).cloned().collect();
            for path in gone {
                self.apply_disk(&path, Arc::from(Vec::new()));
            }
        } else {
            if let Some(scan) = &mut self.scan {
                scan.walked = Some(files.len());
            }
            // Keep what events added while the walk ran.
            self.known.lock().unwrap_or_else(|e| e.into_inner()).extend(files);
        }
        self.report_scan();
    }

    fn report_scan(&mut self) {
        let Some(scan) = &self.scan else { return };
        let pending = self.queue.pending();
        match scan.walked {
            Some(total) if pending == 0 => {
                let message = format!(
                    "{} files parsed, {} syntax errors, in {:.1} s",
                    self.files_seen,
                    scan.diagnostics,
                    scan.started.elapsed().as_secs_f64()
                );
                self.scan = None;
                tracing::info!("scan of {total} entries done: {message}");
                release_memory();
                self.progress(Progress::End { message });
            }
            walked => {
                if scan.analyzed % 500 == 0 {
                    let percentage = walked.map(|t| (scan.analyzed * 100 / t.max(1)).min(100) as u32);
                    let message = format!("{} files", scan.analyzed);
                    self.progress(Progress::Report { message, percentage });
                }
            }
        }
    }

    fn settings_changed(&mut self, settings: acas_protocol::Settings) {
        if settings == self.settings {
            return;
        }
        self.settings = settings;
        self.reload_config();
    }

    fn reload_config(&mut self) {
        let (config, error) = if self.on_disk { config::load(&self.root) } else { (Config::default(), None) };
        if let Some(error) = error {
            self.config_error = Some(error.to_string());
            self.message(MessageLevel::Error, format!("{error}; the previous settings stay in force"));
            let _ = self.output.send(config_diagnostics(error.path.clone(), Some(&error)));
            return;
        }
        if self.config_error.take().is_some() {
            // Fixed: clear the diagnostic in the configuration file.
            let _ = self.output.send(config_diagnostics(config::path(&self.root), None));
        }
        let config = config.with_settings(&self.settings);
        if config.escalation != self.config.escalation {
            self.config.escalation = config.escalation.clone();
            self.escalator = self.build_escalator(None);
        }
        if config != self.config {
            let rescan =
                config.ignore != self.config.ignore || config.max_file_size != self.config.max_file_size;
            self.config = config;
            if rescan && self.on_disk {
                self.queue = self.start_queue();
                self.rules = Arc::new(IgnoreRules::new(&self.root, &self.config.ignore));
                self.watcher = None;
                self.start_watcher();
                self.start_walk(true);
            }
        }
    }

    fn schedule_reconcile(&self, after: Duration) {
        let handle = self.handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            handle.send(Event::Reconcile);
        });
    }

    fn start_queue(&self) -> DiskQueue {
        start_queue(&self.handle, self.analysis_threads, self.config.max_file_size, self.encoding)
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
        if let Some(store) = &self.store
            && let Err(error) = store.flush()
        {
            tracing::error!("writing pending activity failed: {error}");
        }
        self.release_lease();
    }

    fn record_editor(&self, path: &Path, kind: store::EditorEventKind, version: Option<i32>) {
        let Some(store) = &self.store else { return };
        store.record(vec![Record::Editor(store::EditorEvent {
            at_ms: now_ms(),
            kind,
            path: relative(&self.root, path),
            version,
            language: Language::from_path(path).map(|l| l.id().to_owned()),
        })]);
    }

    fn record_diagnostics(&self, path: &Path, diagnostics: &[FileDiagnostic]) {
        let Some(store) = &self.store else { return };
        store.record(vec![Record::Diagnostics(store::FileDiagnostics {
            at_ms: now_ms(),
            path: relative(&self.root, path),
            source: "acas".to_owned(),
            diagnostics: diagnostics.iter().map(diagnostic_record).collect(),
        })]);
    }

    fn message(&self, level: MessageLevel, text: String) {
        let _ = self.output.send(Output::Message { level, text });
    }

    fn progress(&self, progress: Progress) {
        let _ = self.output.send(Output::Progress(progress));
    }

    /// Decides, by the configured rules, which present diagnostics to escalate now, and when
    /// to look again for those that must wait.
    fn apply_rules(&mut self) {
        // Rules escalate (which needs a provider) or start workflows (which need the engine).
        if self.escalator.is_err() && !self.runs_enabled() {
            return;
        }
        let now = std::time::Instant::now();
        let mut present: Vec<Present> = Vec::new();
        for (path, open) in &self.open {
            for d in analysis::locate(open.doc.text(), &open.index, open.doc.diagnostics(), self.encoding) {
                present.push(Present::own(path, &d));
            }
        }
        for (path, diagnostics) in &self.disk_published {
            if !self.open.contains_key(path) {
                present.extend(diagnostics.iter().map(|d| Present::own(path, d)));
            }
        }
        for (path, sources) in &self.external_current {
            for entry in sources.values().flatten() {
                let d = &entry.diagnostic;
                present.push(Present {
                    path: path.clone(),
                    fingerprint: entry.fingerprint.clone(),
                    category: entry.category.clone(),
                    severity: d.severity.as_str().into(),
                    source: d.tool.clone().unwrap_or_else(|| "editor".to_owned()),
                    range: d.range,
                    external: Some(d.clone()),
                });
            }
        }
        let alive: HashSet<&String> = present.iter().map(|p| &p.fingerprint).collect();
        self.seen.retain(|fp, _| alive.contains(fp));
        for p in &present {
            if !self.seen.contains_key(&p.fingerprint) {
                // It appears (again): count it.
                let count = self.appearances.entry(p.fingerprint.clone()).or_insert(0);
                *count += 1;
                self.seen.insert(p.fingerprint.clone(), (now, *count));
            }
        }
        let rules = self.config.escalation.rules();
        let idle = self.last_edit.as_ref().map_or(Duration::MAX, |(_, _, at)| now.duration_since(*at));
        let mut next_look: Option<Duration> = None;
        let mut to_escalate = Vec::new();
        let mut to_start = Vec::new();
        for Present { path, fingerprint, category, severity, source, range, external } in present {
            if self.auto_escalated.contains(&fingerprint) {
                continue;
            }
            let rel = relative(&self.root, &path);
            let editing = self
                .last_edit
                .as_ref()
                .and_then(|(p, line, _)| (p == &path).then_some((rel.as_str(), *line)));
            let (first, occurrences) = self.seen[&fingerprint];
            let facts = crate::escalate::rules::Facts {
                category: &category,
                severity: &severity,
                source: &source,
                path: &rel,
                line: range.start.line,
                persisted: now.duration_since(first),
                occurrences,
                idle,
                editing,
            };
            match crate::escalate::rules::decide(&rules, &facts) {
                crate::escalate::rules::Decision::WaitFor(wait) => {
                    next_look = Some(next_look.map_or(wait, |n| n.min(wait)));
                }
                crate::escalate::rules::Decision::Escalate { .. } if self.escalator.is_ok() => {
                    self.auto_escalated.insert(fingerprint.clone());
                    to_escalate.push((path, range, external));
                }
                crate::escalate::rules::Decision::Workflow { name } => {
                    self.auto_escalated.insert(fingerprint.clone());
                    let trigger = crate::workflow::triggers::Trigger::Rule {
                        path: rel.clone(),
                        line: range.start.line + 1,
                        category: category.clone(),
                        severity: severity.clone(),
                        source: source.clone(),
                        fingerprint: fingerprint.clone(),
                    };
                    to_start.push((name, trigger));
                }
                _ => {}
            }
        }
        for (path, range, external) in to_escalate {
            self.escalate_in_background(path, range, external);
        }
        for (name, trigger) in to_start {
            if let Err(error) = self.start_run(&name, trigger, &serde_json::Map::new()) {
                self.message(
                    MessageLevel::Warning,
                    format!("ACAS could not start workflow `{name}` by rule: {error}"),
                );
            }
        }
        if let Some(wait) = next_look
            && !self.rules_tick_scheduled
        {
            self.rules_tick_scheduled = true;
            let handle = self.handle.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
                handle.send(Event::RulesTick);
            });
        }
    }

    /// Escalates without a request: the answer appears on the file like any other.
    fn escalate_in_background(
        &mut self,
        path: PathBuf,
        range: TextRange,
        external: Option<ExternalDiagnostic>,
    ) {
        let job = match self.escalation_job(&path, range, external, None, false) {
            Ok(job) => job,
            Err(error) => {
                tracing::info!("not escalating {}: {error}", path.display());
                return;
            }
        };
        tracing::info!("escalating {} by rule: {}", relative(&self.root, &path), job.problem.message);
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let text = job.text.clone();
            let byte_range = job.range.clone();
            let problem = job.problem.clone();
            let cancel = tokio_util::sync::CancellationToken::new();
            let result = crate::assist::run(job, &mut |_, _| {}, &cancel).await;
            match result {
                Ok(explained) => handle.send(Event::Query(Box::new(move |ws| {
                    ws.escalation_done(&path, &text, byte_range, &problem, &explained);
                }))),
                Err(error) => {
                    let message = format!("ACAS could not escalate {}: {error}", path.display());
                    let error = error.to_string();
                    handle.send(Event::Query(Box::new(move |ws| {
                        ws.escalation_failed(&path, &problem, &error);
                        ws.message(MessageLevel::Warning, message);
                    })));
                }
            }
        });
    }

    fn build_escalator(&self, only: Option<&str>) -> Result<Arc<Escalator>, Refused> {
        let env = |name: &str| std::env::var(name).ok();
        Escalator::new(&self.config.escalation, &env, self.store.clone(), only)
            .map(Arc::new)
            .map_err(|e| Refused::from(&e))
    }

    /// Everything needed to escalate the diagnostic at `range` of `path`: the one the client
    /// sent, else the one ACAS knows there; with `choose` (the client gave a position only),
    /// the one this workspace chooses there among its own and the other tools'.
    pub fn escalation_job(
        &mut self,
        path: &Path,
        range: TextRange,
        diagnostic: Option<ExternalDiagnostic>,
        provider: Option<&str>,
        choose: bool,
    ) -> Result<Job, Refused> {
        let escalator = match provider {
            Some(name) => self.build_escalator(Some(name))?,
            None => self.escalator.clone()?,
        };
        let unsupported = |message: String| Refused::new(RefusedKind::UnsupportedFile, message);
        let language = Language::from_path(path).ok_or_else(|| {
            unsupported(format!("{}: ACAS does not parse this kind of file", path.display()))
        })?;
        let (text, tree, diagnostics) = match self.open.get(path) {
            Some(open) => {
                (open.doc.text().to_owned(), open.doc.tree().clone(), open.doc.diagnostics().to_vec())
            }
            None => {
                let text = files::read_source(path, self.config.max_file_size)
                    .map_err(|skip| unsupported(format!("{}: {skip}", path.display())))?;
                let doc = Document::new(language, text);
                (doc.text().to_owned(), doc.tree().clone(), doc.diagnostics().to_vec())
            }
        };
        let index = LineIndex::new(&text);
        let start = index.offset(&text, range.start, self.encoding);
        let end = index.offset(&text, range.end, self.encoding).max(start);
        let rel = relative(&self.root, path);
        let (chosen, diagnostic) = match choose {
            true => self.choose_at(path, &text, &index, range.start, &diagnostics),
            false => (None, diagnostic),
        };
        let (start, end) = match &diagnostic {
            Some(d) if choose => {
                let start = index.offset(&text, d.range.start, self.encoding);
                (start, index.offset(&text, d.range.end, self.encoding).max(start))
            }
            _ => (start, end),
        };
        let (range, problem) = match diagnostic {
            Some(d) => {
                let symbol = self.symbols_for(path, std::iter::once(d.range.start)).pop().flatten();
                let tool = d.tool.clone().unwrap_or_else(|| "editor".to_owned());
                let category = classify::external::category(&tool, d.code.as_deref(), &d.message);
                let message = classify::external::fingerprint_message(&d.message);
                (
                    start..end,
                    Problem {
                        fingerprint: classify::fingerprint(&message, category, symbol.as_deref()),
                        message: d.message,
                        category: category.as_str().to_owned(),
                        severity: d.severity.as_str().to_owned(),
                        source: tool,
                        code: d.code,
                        symbol,
                        related: Vec::new(),
                        others: Vec::new(),
                    },
                )
            }
            None => {
                let d = chosen
                    .map(|i| &diagnostics[i])
                    .or_else(|| diagnostics.iter().find(|d| d.range.start <= end && start <= d.range.end))
                    .ok_or_else(|| {
                        let message = format!("no diagnostic at {rel}:{}", range.start.line + 1);
                        Refused::new(RefusedKind::NoDiagnostic, message)
                    })?;
                (
                    d.range.clone(),
                    Problem {
                        message: d.message.clone(),
                        category: d.category.as_str().to_owned(),
                        severity: d.severity.as_str().to_owned(),
                        source: d.source.clone(),
                        code: None,
                        fingerprint: d.fingerprint.clone(),
                        symbol: d.symbol.clone(),
                        related: d.related.iter().map(|r| r.message.clone()).collect(),
                        others: Vec::new(),
                    },
                )
            }
        };
        // What other tools say about the same lines.
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() as u32;
        let lines = (line_of(range.start), line_of(range.end));
        let mut problem = problem;
        if let Some(sources) = self.external_current.get(path) {
            for (source, list) in sources {
                for ExternalEntry { fingerprint, diagnostic: d, .. } in list {
                    if *fingerprint != problem.fingerprint
                        && d.range.start.line <= lines.1
                        && lines.0 <= d.range.end.line
                    {
                        let tool = d.tool.as_deref().unwrap_or(source);
                        problem.others.push(format!("{tool}: {}", d.message));
                    }
                }
            }
        }
        for d in &diagnostics {
            let line = line_of(d.range.start);
            if d.fingerprint != problem.fingerprint && lines.0 <= line && line <= lines.1 {
                problem.others.push(format!("{}: {}", d.source, d.message));
            }
        }
        let (index, index_refresh) = match self.symbols.get(&language) {
            Some(index) => {
                let changed = self.symbols_stale.remove(&language).unwrap_or_default();
                (index.clone(), IndexRefresh::Changed(changed.into_iter().collect()))
            }
            None => {
                let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
                let files =
                    known.iter().filter(|p| Language::from_path(p) == Some(language)).cloned().collect();
                let index = Arc::new(Mutex::new(SymbolIndex::default()));
                self.symbols.insert(language, index.clone());
                (index, IndexRefresh::Build(files))
            }
        };
        Ok(Job {
            past: escalator.past_fixes(&problem.fingerprint),
            escalator,
            root: self.root.clone(),
            path: path.to_path_buf(),
            rel,
            language,
            text,
            tree,
            range,
            problem,
            index,
            index_refresh,
            max_size: self.config.max_file_size,
        })
    }

    /// Tells the workflow triggers that an escalation failed.
    pub fn escalation_failed(&self, path: &Path, problem: &Problem, error: &str) {
        self.workflow_triggers_escalation(crate::workflow::triggers::escalation::EscalationEvent {
            outcome: crate::workflow::definition::EscalationOutcome::Failed,
            path: relative(&self.root, path),
            fingerprint: problem.fingerprint.clone(),
            provider: None,
            message: format!("{}: {error}", problem.message),
        });
    }

    /// Shows an escalation's answer on the file; returns the id of its note.
    pub fn escalation_done(
        &mut self,
        path: &Path,
        text: &str,
        range: std::ops::Range<usize>,
        problem: &Problem,
        explained: &Explained,
    ) -> String {
        use crate::workflow::definition::EscalationOutcome;
        self.workflow_triggers_escalation(crate::workflow::triggers::escalation::EscalationEvent {
            outcome: if explained.fix.is_some() {
                EscalationOutcome::Fixed
            } else {
                EscalationOutcome::Explained
            },
            path: relative(&self.root, path),
            fingerprint: problem.fingerprint.clone(),
            provider: Some(explained.provider.clone()),
            message: problem.message.clone(),
        });
        let line_index = LineIndex::new(text);
        let fix_id = format!("fix-{:x}-{}", now_ms(), self.notes_counter());
        let fix = explained.fix.as_ref().map(|fix| NoteFix {
            description: fix.description.clone(),
            edits: fix
                .files
                .iter()
                .flat_map(|(rel, replacements)| {
                    let file = self.root.join(rel);
                    let content = if file == path {
                        Some(text.to_owned())
                    } else {
                        files::read_source(&file, self.config.max_file_size).ok()
                    };
                    let content = content.unwrap_or_default();
                    let index = LineIndex::new(&content);
                    replacements
                        .iter()
                        .map(|r| NoteEdit {
                            path: file.clone(),
                            range: index.range(&content, r.range.clone(), self.encoding),
                            old: content.get(r.range.clone()).unwrap_or_default().to_owned(),
                            new: r.new.clone(),
                        })
                        .collect::<Vec<_>>()
                })
                .collect(),
        });
        let note = Note {
            fix_id: fix_id.clone(),
            about: format!("{}: {}", problem.source, problem.message),
            range: line_index.range(text, range, self.encoding),
            explanation: explained.explanation.clone(),
            fingerprint: problem.fingerprint.clone(),
            category: problem.category.clone(),
            provider: explained.provider.clone(),
            model: explained.model.clone(),
            cost_micros: explained.cost_micros,
            cached: explained.cached,
            fix,
            fix_rejected: explained.fix_rejected.clone(),
            applied: false,
        };
        if note.fix.is_some() {
            self.record_fix(&note, store::Outcome::Offered);
        }
        self.notes.add(path, note);
        self.republish(path);
        fix_id
    }

    fn notes_counter(&self) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    /// Verified AI fixes overlapping `range` whose text is still as it was verified.
    pub fn quick_fixes(&self, path: &Path, range: TextRange) -> Vec<(String, String, Vec<NoteEdit>)> {
        self.notes
            .at(path, range)
            .into_iter()
            .filter_map(|note| {
                let fix = note.fix.as_ref()?;
                let still =
                    fix.edits.iter().all(|e| self.current_text(&e.path, e.range).is_some_and(|t| t == e.old));
                still.then(|| {
                    (note.fix_id.clone(), format!("Apply AI fix: {}", fix.description), fix.edits.clone())
                })
            })
            .collect()
    }

    fn current_text(&self, path: &Path, range: TextRange) -> Option<String> {
        let owned;
        let (text, index) = match self.open.get(path) {
            Some(open) => (open.doc.text(), &open.index),
            None => {
                let text = files::read_source(path, self.config.max_file_size).ok()?;
                owned = (LineIndex::new(&text), text);
                (owned.1.as_str(), &owned.0)
            }
        };
        let start = index.offset(text, range.start, self.encoding);
        let end = index.offset(text, range.end, self.encoding);
        text.get(start..end).map(str::to_owned)
    }

    /// The hover text at `position`: the next runs of a workflow's `cron:`, or an AI note.
    pub fn hover(&self, path: &Path, position: Position) -> Option<(TextRange, String)> {
        if let Some(found) = self.workflow_hover(path, position) {
            return Some(found);
        }
        let here = TextRange { start: position, end: position };
        self.notes.at(path, here).first().map(|n| (n.range, n.hover()))
    }

    /// The diagnostic to explain at `at` among ACAS's own (`own`) and the other tools' this
    /// workspace was told about: an own one by its index in `own`, another tool's whole.
    fn choose_at(
        &self,
        path: &Path,
        text: &str,
        index: &LineIndex,
        at: Position,
        own: &[classify::Diagnostic],
    ) -> (Option<usize>, Option<ExternalDiagnostic>) {
        let external: Vec<ExternalDiagnostic> = self
            .external_current
            .get(path)
            .into_iter()
            .flat_map(|sources| sources.iter())
            .flat_map(|(source, list)| {
                list.iter().map(move |e| ExternalDiagnostic {
                    tool: Some(e.diagnostic.tool.clone().unwrap_or_else(|| source.clone())),
                    ..e.diagnostic.clone()
                })
            })
            .collect();
        let candidates: Vec<(TextRange, Severity)> = own
            .iter()
            .map(|d| (index.range(text, d.range.clone(), self.encoding), d.severity))
            .chain(external.iter().map(|d| (d.range, d.severity)))
            .collect();
        match crate::escalate::choose::diagnostic_at(&candidates, at) {
            Some(i) if i < own.len() => (Some(i), None),
            Some(i) => (None, Some(external[i - own.len()].clone())),
            None => (None, None),
        }
    }

    /// What the developer did with an AI fix.
    pub fn fix_feedback(&mut self, fix_id: &str, outcome: store::Outcome) -> Result<(), Refused> {
        if let Some(note) = self.notes.take_retired(fix_id) {
            // Its error is already gone: applying it resolved it.
            self.record_fix(&note, outcome);
            if outcome == store::Outcome::Applied {
                self.record_fix(&note, store::Outcome::Resolved);
                if let Some(path) = note.fix.as_ref().and_then(|f| f.edits.first()).map(|e| e.path.clone()) {
                    self.notes.resolved(&path, note);
                }
            }
            return Ok(());
        }
        let note = self.notes.find_mut(fix_id).ok_or_else(|| {
            Refused::new(RefusedKind::FixNotFound, format!("no AI fix `{fix_id}` is shown"))
        })?;
        match outcome {
            store::Outcome::Applied => note.applied = true,
            store::Outcome::Reverted => note.applied = false,
            _ => {}
        }
        let note = note.clone();
        self.record_fix(&note, outcome);
        if outcome == store::Outcome::Dismissed {
            let path = self.notes.path_of(fix_id);
            self.notes.remove(fix_id);
            if let Some(path) = path {
                self.republish(&path);
            }
        }
        Ok(())
    }

    /// The configured budgets and provider names, for spend reports.
    pub fn spend_setup(&self) -> (Option<Store>, crate::escalate::cost::Budget, Vec<String>) {
        let providers = match &self.escalator {
            Ok(e) => e.provider_names(),
            Err(_) => Vec::new(),
        };
        (self.store.clone(), self.config.escalation.budget.clone(), providers)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    pub fn status(&self) -> Status {
        let mut languages: Vec<(String, usize)> =
            self.languages.iter().map(|(l, n)| (l.id().to_owned(), *n)).collect();
        languages.sort();
        Status {
            root: self.root.clone(),
            files: self.files_seen,
            languages,
            open_documents: self.open.len(),
            files_with_errors: self.disk_published.len(),
            store_path: self.store.as_ref().map(|s| s.path().to_path_buf()),
            store_bytes: self.store.as_ref().map_or(0, |s| s.size_bytes()),
            watching: self.watcher.is_some(),
            scanning: self.scan.is_some(),
            subsystems: vec![
                health("store", self.store.is_some(), self.store_error.clone()),
                health("watcher", self.watcher.is_some(), self.watch_error.clone()),
                (
                    "config",
                    if self.config_error.is_some() { "degraded" } else { "ok" },
                    self.config_error.clone(),
                ),
                match &self.scan {
                    Some(scan) => ("scan", "busy", Some(format!("{} files analysed", scan.analyzed))),
                    None => ("scan", "ok", None),
                },
            ],
        }
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
            Event::Workflow(_) => "workflow event",
            Event::Lease { .. } => "lease",
            Event::Query(_) => "query",
            Event::Shutdown(_) => "shutdown",
        }
    }
}

fn start_queue(handle: &Handle, threads: usize, max_size: u64, encoding: PositionEncoding) -> DiskQueue {
    let handle = handle.clone();
    DiskQueue::start(threads, max_size, encoding, move |done| handle.send(Event::Analyzed(done)))
}

/// Keeps the set of known files current and reports a modification of a file never seen as its
/// creation (its creation event was lost).
fn track(known: &Mutex<HashSet<PathBuf>>, changes: &mut [Change]) {
    let mut known = known.lock().unwrap_or_else(|e| e.into_inner());
    for change in changes {
        match change {
            Change::Created(p) => {
                known.insert(p.clone());
            }
            Change::Modified(p) => {
                if known.insert(p.clone()) {
                    *change = Change::Created(p.clone());
                }
            }
            Change::Deleted(p) => {
                known.remove(p);
            }
            Change::Renamed { from, to } => {
                known.remove(from);
                known.insert(to.clone());
            }
        }
    }
}

fn record_changes(store: &Store, root: &Path, changes: &[Change], fence: &store::Fence) {
    let at_ms = now_ms();
    for chunk in changes.chunks(RECORD_BATCH) {
        let records = chunk
            .iter()
            .map(|change| {
                let (kind, path, to_path) = match change {
                    Change::Created(p) => (store::FileEventKind::Created, p, None),
                    Change::Modified(p) => (store::FileEventKind::Modified, p, None),
                    Change::Deleted(p) => (store::FileEventKind::Deleted, p, None),
                    Change::Renamed { from, to } => (store::FileEventKind::Renamed, from, Some(to)),
                };
                let size = std::fs::symlink_metadata(change.path()).ok().map(|m| m.len());
                let event = store::FileEvent {
                    at_ms,
                    kind,
                    path: relative(root, path),
                    to_path: to_path.map(|p| relative(root, p)),
                    size: if matches!(kind, store::FileEventKind::Deleted) { None } else { size },
                    language: Language::from_path(change.path()).map(|l| l.id().to_owned()),
                };
                Record::FencedFile { fence: fence.clone(), event }
            })
            .collect();
        store.record(records);
    }
}

fn diagnostic_record(d: &FileDiagnostic) -> store::DiagnosticRecord {
    store::DiagnosticRecord {
        fingerprint: d.fingerprint.clone(),
        category: d.category.as_str().to_owned(),
        severity: d.severity.as_str().to_owned(),
        message: d.message.clone(),
        source: d.source.clone(),
        symbol: d.symbol.clone(),
        line: d.range.start.line,
        character: d.range.start.character,
    }
}

pub use crate::files::relative;

/// Hands memory freed after a burst of allocations (the scan) back to the system.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap structures; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The diagnostics of a configuration file: its error, located, or none.
fn config_diagnostics(path: PathBuf, error: Option<&config::ConfigError>) -> Output {
    let diagnostics: Vec<FileDiagnostic> = error
        .map(|e| {
            let at = Position {
                line: e.line.saturating_sub(1) as u32,
                character: e.column.saturating_sub(1) as u32,
            };
            FileDiagnostic {
                range: TextRange { start: at, end: Position { line: at.line, character: at.character + 1 } },
                severity: Severity::Error,
                category: classify::Category::Build,
                message: e.message.clone(),
                source: "acas".to_owned(),
                fingerprint: classify::fingerprint(&e.message, classify::Category::Build, None),
                symbol: None,
                related: Vec::new(),
                fix_id: None,
            }
        })
        .into_iter()
        .collect();
    Output::Diagnostics { path, version: None, diagnostics: diagnostics.into() }
}

fn health(
    name: &'static str,
    running: bool,
    error: Option<String>,
) -> (&'static str, &'static str, Option<String>) {
    match (running, error) {
        (true, _) => (name, "ok", None),
        (false, Some(error)) => (name, "failed", Some(error)),
        (false, None) => (name, "off", None),
    }
}

fn language_from_id(id: &str) -> Option<Language> {
    Language::ALL
        .into_iter()
        .find(|l| l.id() == id || (id == "javascriptreact" && *l == Language::JavaScript))
}

pub use crate::time::now_ms;
