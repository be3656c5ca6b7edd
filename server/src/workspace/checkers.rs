//! The project's own checkers at run time: which the workspace has, when they run, and what the
//! editor is shown of what they report.
//!
//! Detection ([`checkers::detect`]) runs off the loop at start, when the configuration changes
//! and when a file it reads (Cargo.toml, package.json...) changes. A checker runs at start (when
//! it says `on_start`), after saves (the editor's, and files changed on disk by others; only
//! checkers whose `files` globs match a saved path) and on demand. The first save starts its
//! checkers at once; saves within the debounce window after it cancel those runs and start one
//! run for the latest state when saves are quiet. At most one run per checker: a newer trigger
//! cancels the stale run, whose whole process tree the runner ends. Runs are tasks of their own
//! and never hold up requests.
//!
//! Problems reach the loop in batches as the runner hands them over. Each file a run reports
//! replaces that checker's diagnostics of the file as soon as its problems arrive; at the end
//! of a run that completed, files it no longer reports are cleared. A problem is placed in the
//! open document's text when the document is as it was saved before the run started, else in
//! the file on disk, read off the loop; problems of an open document edited since the run
//! started are dropped (its earlier diagnostics stay, moved along with the edits), the next save
//! runs the checker again. Placed problems are published with the tool as source, recorded with
//! their history, and join the other tools' diagnostics for the rules, the diagnostic triggers,
//! escalations and the retirement of AI notes. Their machine-applicable fixes become quick fixes.
//!
//! A checker that is missing, misconfigured or failed is told to the user once (again only
//! after the configuration changed), shown in the status and logged.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::external::ExternalEntry;
use super::{
    Done, Event, ExternalDiagnostic, MessageLevel, Refused, RefusedKind, Workspace, now_ms, relative,
};
use crate::analysis::{self, FileDiagnostic};
use crate::assist::NoteEdit;
use crate::checkers::detect::{self, Detected};
use crate::checkers::run::{self, RunError};
use crate::checkers::verify::{Mirror, Verdict};
use crate::checkers::{Problem, settings::CheckerSettings};
use crate::classify::{Document, Language};
use crate::files;
use crate::store::{self, Record};
use crate::text::{LineIndex, Position, PositionEncoding, TextRange};
use crate::trust;

/// The most problems handed to the loop in one batch.
const BATCH: usize = 1000;

/// How long after a checker's run ended a change on disk may still be its own output (the
/// watcher reports changes late).
const ECHO_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// The most diagnostics of one checker shown for one file; the rest of a run's problems of the
/// file are dropped, and the user told once.
pub const FILE_PROBLEM_LIMIT: usize = 1000;

/// The files whose change can change which checkers a workspace has.
const DETECTION_FILES: &[&str] = &[
    "Cargo.toml",
    "package.json",
    "tsconfig.json",
    "pyproject.toml",
    "ruff.toml",
    ".ruff.toml",
    "mypy.ini",
    ".mypy.ini",
    "setup.cfg",
    "pyrightconfig.json",
    "go.mod",
    ".eslintrc",
    ".eslintrc.json",
    ".eslintrc.js",
    ".eslintrc.cjs",
    "eslint.config.js",
    "eslint.config.mjs",
    "eslint.config.cjs",
];

/// What a running checker tells the loop.
pub enum CheckerEvent {
    /// Problems the runner handed over, in the tool's own places.
    Problems { checker: String, run: u64, problems: Vec<Problem> },
    /// The run ended: how, or why it gave no complete result.
    Ended { checker: String, run: u64, result: Result<run::Outcome, RunError> },
    /// Saves have been quiet for the configuration's debounce (`[watch] debounce_ms`) since the
    /// one numbered `generation`.
    SavesQuiet { generation: u64 },
    /// Running `checker` on a scratch copy with the AI fix `fix_id` applied showed this.
    Verified { fix_id: String, checker: String, result: Result<Verdict, String> },
    /// The user answered whether they trust the workspace to run its checkers.
    TrustAnswered { yes: bool },
}

/// A checker's diagnostic as the workspace keeps it: placed, with its quick fixes.
#[derive(Debug, Clone)]
pub struct Placed {
    pub(super) diagnostic: FileDiagnostic,
    /// Machine-applicable fixes: their titles and their edits of this file.
    pub(super) fixes: Vec<(String, Vec<NoteEdit>)>,
}

/// A run in progress.
struct Running {
    id: u64,
    cancel: CancellationToken,
    /// The open documents' versions when it started.
    versions: HashMap<PathBuf, i32>,
}

/// Checkers' state on the loop.
#[derive(Default)]
pub(super) struct Checkers {
    detected: Vec<Detected>,
    /// What detection could not apply of the configuration.
    config_problems: Vec<String>,
    /// Whether detection ran once (start runs wait for it).
    detected_once: bool,
    /// Detections started, to apply only the latest.
    generation: u64,
    running: HashMap<String, Running>,
    /// The run whose problems are taken, per checker: the running one or the last that ran.
    accepted: HashMap<String, u64>,
    next_run: u64,
    /// The problems of the accepted run so far, per checker and file.
    problems: HashMap<String, HashMap<PathBuf, Vec<Problem>>>,
    /// Files whose problems of the accepted run were dropped (edited since it started).
    dropped: HashMap<String, HashSet<PathBuf>>,
    /// The diagnostics shown, per file and checker.
    current: HashMap<PathBuf, BTreeMap<String, Vec<Placed>>>,
    /// The sources recorded in the store per file and checker, to clear those that are gone.
    recorded: HashMap<(PathBuf, String), Vec<String>>,
    /// Placements of a file on disk in flight, per checker and file; `true` when more problems
    /// arrived meanwhile.
    placing: HashMap<(String, PathBuf), bool>,
    /// Why a checker gives no result, for the status.
    failures: BTreeMap<String, String>,
    /// What was told to the user since the configuration last changed.
    told: HashSet<String>,
    /// Paths saved since the checkers last ran, each with the checkers that may have written
    /// it (every change of it on disk came while they ran; empty: a person's save), and the
    /// number of the latest save.
    saved: HashMap<PathBuf, HashSet<String>>,
    /// When each checker's last run ended.
    ended_at: HashMap<String, std::time::Instant>,
    /// The files whose changes, made while the checker ran, started its current or last run.
    echo_started: HashMap<String, HashSet<PathBuf>>,
    save_generation: u64,
    /// Within the debounce window of a save: later saves wait for it to be quiet.
    save_pending: bool,
    /// Saves arrived within the window: one more run when it is quiet.
    save_trailing: bool,
    /// The version of each open document when it was last opened or saved.
    saved_versions: HashMap<PathBuf, i32>,
    /// Verifications of AI fixes in progress, by fix.
    verifying: HashMap<String, CancellationToken>,
    /// Whether the user trusts the workspace to run its checkers, as of the last detection.
    trust: Option<trust::State>,
    /// Whether the user was asked to trust the workspace since the configuration last changed.
    asked_trust: bool,
    /// Whether the question is open, or its "yes" not yet written.
    trust_pending: bool,
    /// Whether the start runs were made (once detection was done in a trusted workspace).
    started: bool,
}

impl Checkers {
    /// Whether runs, or saves waiting to start them, are in progress.
    pub(super) fn busy(&self) -> bool {
        !self.running.is_empty() || self.save_trailing
    }
}

fn mirror_key(checker: &str) -> String {
    format!("checker:{checker}")
}

impl Workspace {
    /// Detects the workspace's checkers again, and whether the user trusts it, off the loop.
    pub(super) fn detect_checkers(&mut self) {
        if !self.on_disk {
            return;
        }
        self.checkers.generation += 1;
        let generation = self.checkers.generation;
        let (root, settings): (PathBuf, CheckerSettings) = (self.root.clone(), self.config.checkers.clone());
        self.off_loop(
            "detecting checkers",
            move || {
                let trust = trust::state(&root);
                let (detected, problems) =
                    detect::checkers_probing(&root, &settings, &[], trust.is_trusted());
                (detected, problems, trust)
            },
            move |(detected, problems, trust)| Done::Checkers { generation, detected, problems, trust },
        );
    }

    /// Asks the user, once since the configuration last changed, to trust the workspace.
    fn ask_trust(&mut self) {
        if self.checkers.asked_trust {
            return;
        }
        self.checkers.asked_trust = true;
        self.checkers.trust_pending = true;
        let names: Vec<&str> =
            self.checkers.detected.iter().filter(|d| d.enabled).map(|d| d.checker.name.as_str()).collect();
        let changed = self.checkers.trust == Some(trust::State::Changed);
        let text = format!(
            "ACAS: {} wants to run {}: {}. {}Trust it only if you trust its code and .acas/config.toml; `acas trust {}` does the same from a terminal",
            self.root.display(),
            if names.len() == 1 { "a checker" } else { "checkers" },
            names.join(", "),
            if changed { "Its [[checkers]] changed since you trusted it. " } else { "" },
            self.root.display(),
        );
        tracing::warn!("{text}");
        let (answer, answered) = tokio::sync::oneshot::channel();
        let _ = self.output.send(super::Output::AskTrust { text, answer });
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let yes = answered.await.unwrap_or(false);
            handle.send(Event::Checker(CheckerEvent::TrustAnswered { yes }));
        });
    }

    /// Detection came back: puts it in force, reports the configuration's problems, and runs
    /// the start checkers the first time.
    pub(super) fn checkers_detected(
        &mut self,
        generation: u64,
        detected: Vec<Detected>,
        problems: Vec<String>,
        trust: trust::State,
    ) {
        if generation != self.checkers.generation {
            return;
        }
        self.checkers.trust = Some(trust);
        for d in &detected {
            tracing::info!(
                "checker `{}` ({}): {}",
                d.checker.name,
                if d.enabled { "on" } else { "off" },
                d.why
            );
        }
        // Runs of checkers that are gone or turned off, or of a workspace no longer trusted, end.
        let gone: Vec<String> = self
            .checkers
            .running
            .keys()
            .filter(|name| {
                !trust.is_trusted() || !detected.iter().any(|d| d.enabled && &d.checker.name == *name)
            })
            .cloned()
            .collect();
        for name in gone {
            if let Some(run) = self.checkers.running.remove(&name) {
                run.cancel.cancel();
            }
        }
        self.checkers.detected = detected;
        self.checkers.config_problems = problems.clone();
        for problem in problems {
            self.tell_once(MessageLevel::Error, problem);
        }
        self.checkers.detected_once = true;
        if !trust.is_trusted() {
            // Saves wait for the user's trust; once given, the start runs are made again.
            self.checkers.started = false;
            if self.checkers.detected.iter().any(|d| d.enabled) {
                self.ask_trust();
            }
            return;
        }
        if !self.checkers.started {
            // The first detection in a trusted workspace, or the user trusted it since: the
            // start runs, and the runs of the saves that waited.
            self.checkers.started = true;
            let mut names: Vec<String> = self
                .checkers
                .detected
                .iter()
                .filter(|d| d.enabled && d.checker.on_start && !self.skipped(&d.checker.name))
                .map(|d| d.checker.name.clone())
                .collect();
            // Saves that came before detection was done: the first of a burst.
            let saved = self.take_saved();
            if !saved.is_empty() {
                self.save_window();
            }
            for name in self.saved_checkers_for(&saved) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            for name in names {
                self.start_checker(&name);
            }
        }
    }

    /// Whether the editor already shows what the checker `name` reports.
    /// Whether the editor shows this checker's diagnostics already: `tsc` in the settings also
    /// names the `tsc@web` of a project below the root.
    fn skipped(&self, name: &str) -> bool {
        let base = name.split_once('@').map_or(name, |(base, _)| base);
        self.settings.skip_checkers.as_ref().is_some_and(|skip| skip.iter().any(|s| s == name || s == base))
    }

    /// The configuration changed: what was told (and asked) may be told again, and detection
    /// runs again.
    pub(super) fn checker_config_changed(&mut self) {
        self.checkers.told.clear();
        self.checkers.asked_trust = false;
        self.detect_checkers();
    }

    /// Tells the user `text` unless it was told since the configuration last changed; logs it.
    fn tell_once(&mut self, level: MessageLevel, text: String) {
        match level {
            MessageLevel::Error => tracing::error!("{text}"),
            _ => tracing::warn!("{text}"),
        }
        if self.checkers.told.insert(text.clone()) {
            self.message(level, text);
        }
    }

    /// A document was opened or saved: its text is the file's now.
    pub(super) fn checker_doc_saved(&mut self, path: &Path) {
        if let Some(open) = self.open.get(path) {
            self.checkers.saved_versions.insert(path.to_path_buf(), open.version);
        }
    }

    pub(super) fn checker_doc_closed(&mut self, path: &Path) {
        self.checkers.saved_versions.remove(path);
    }

    /// The editor saved `path`, or another program changed it on disk: the checkers it calls
    /// for run once saves are quiet.
    pub(super) fn checker_saved(&mut self, path: &Path, by_editor: bool) {
        if !self.on_disk || !path.starts_with(&self.root) {
            return;
        }
        let rel = relative(&self.root, path);
        if rel.starts_with(".acas/") || rel == ".acas" {
            return;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if DETECTION_FILES.contains(&name) {
            self.detect_checkers();
        }
        if !by_editor {
            // An open document's saves come from the editor; what a tool writes (build output)
            // is not source and must not start the tools again.
            if self.open.contains_key(path) {
                return;
            }
            let watched = Language::from_path(path).is_some()
                || self
                    .checkers
                    .detected
                    .iter()
                    .any(|d| !d.checker.files.is_empty() && matches(&d.checker.files, &rel));
            if !watched {
                return;
            }
        }
        // A change on disk made while checkers ran (or right after) may be their own output.
        let writers: HashSet<String> = if by_editor {
            HashSet::new()
        } else {
            let now = std::time::Instant::now();
            self.checkers
                .running
                .keys()
                .cloned()
                .chain(
                    self.checkers
                        .ended_at
                        .iter()
                        .filter(|(_, at)| now.duration_since(**at) < ECHO_WINDOW)
                        .map(|(name, _)| name.clone()),
                )
                .collect()
        };
        match self.checkers.saved.get_mut(path) {
            // Each change must be a checker's for the path to be that checker's output.
            Some(before) => before.retain(|name| writers.contains(name)),
            None => {
                self.checkers.saved.insert(path.to_path_buf(), writers);
            }
        }
        if !self.checkers.detected_once {
            // The checkers are not known yet: they run for these saves once they are.
            return;
        }
        if !self.checkers.trust.is_some_and(trust::State::is_trusted) {
            // They run for these saves once the user trusts the workspace; unless the question
            // is open, the list may say so by now (`acas trust` in a terminal).
            if !self.checkers.trust_pending {
                self.detect_checkers();
            }
            return;
        }
        if self.checkers.save_pending {
            // Within the window of an earlier save: the runs for the older state are stale now;
            // one run for the latest state starts once saves are quiet.
            self.checkers.save_trailing = true;
            for name in self.saved_checkers(&[relative(&self.root, path)]) {
                self.cancel_checker(&name);
            }
        } else {
            // The first save of a burst starts its checkers at once.
            self.checkers.save_trailing = false;
            self.run_saved_checkers();
        }
        self.save_window();
    }

    /// Opens, or extends, the window after a save within which later saves wait for quiet.
    fn save_window(&mut self) {
        self.checkers.save_generation += 1;
        self.checkers.save_pending = true;
        let generation = self.checkers.save_generation;
        let (handle, quiet) = (self.handle.clone(), self.config.debounce);
        tokio::spawn(async move {
            tokio::time::sleep(quiet).await;
            handle.send(Event::Checker(CheckerEvent::SavesQuiet { generation }));
        });
    }

    /// The enabled checkers that run on save and cover one of `saved` (relative paths).
    fn saved_checkers(&self, saved: &[String]) -> Vec<String> {
        if saved.is_empty() {
            return Vec::new();
        }
        self.checkers
            .detected
            .iter()
            .filter(|d| d.enabled && d.checker.on_save && !self.skipped(&d.checker.name))
            .filter(|d| d.checker.files.is_empty() || saved.iter().any(|p| matches(&d.checker.files, p)))
            .map(|d| d.checker.name.clone())
            .collect()
    }

    /// Starts the checkers that the paths saved since they last ran call for.
    fn run_saved_checkers(&mut self) {
        let saved = self.take_saved();
        for name in self.saved_checkers_for(&saved) {
            self.start_checker(&name);
        }
    }

    /// The paths saved since the checkers last ran, relative too, with the checkers that may
    /// have written each (see [`Workspace::checker_saved`]).
    fn take_saved(&mut self) -> Vec<(PathBuf, String, HashSet<String>)> {
        let root = self.root.clone();
        self.checkers
            .saved
            .drain()
            .map(|(p, writers)| {
                let rel = relative(&root, &p);
                (p, rel, writers)
            })
            .collect()
    }

    /// The checkers that `saved` calls for, but for one whose only calls are files it wrote
    /// itself for the second time running: its own output runs it again once (it may be an
    /// input, as generated code is), never in a loop.
    fn saved_checkers_for(&mut self, saved: &[(PathBuf, String, HashSet<String>)]) -> Vec<String> {
        let rels: Vec<String> = saved.iter().map(|(_, rel, _)| rel.clone()).collect();
        let mut starts = Vec::new();
        for name in self.saved_checkers(&rels) {
            let Some(d) = self.checkers.detected.iter().find(|d| d.checker.name == name) else { continue };
            let calling: Vec<&(PathBuf, String, HashSet<String>)> = saved
                .iter()
                .filter(|(_, rel, _)| d.checker.files.is_empty() || matches(&d.checker.files, rel))
                .collect();
            let own = calling.iter().all(|(_, _, writers)| writers.contains(&name));
            if own {
                let paths: HashSet<PathBuf> = calling.iter().map(|(p, _, _)| p.clone()).collect();
                let again =
                    self.checkers.echo_started.get(&name).is_some_and(|before| paths.is_subset(before));
                if again {
                    tracing::info!("checker `{name}`: not run again; only files it writes itself changed");
                    continue;
                }
                self.checkers.echo_started.insert(name.clone(), paths);
            } else {
                self.checkers.echo_started.remove(&name);
            }
            starts.push(name);
        }
        starts
    }

    /// Ends the run of `name` in progress, whose problems are no longer taken.
    fn cancel_checker(&mut self, name: &str) {
        if let Some(stale) = self.checkers.running.remove(name) {
            tracing::info!("checker `{name}`: a newer save cancels the run in progress");
            stale.cancel.cancel();
            if self.checkers.accepted.get(name) == Some(&stale.id) {
                self.checkers.accepted.remove(name);
            }
        }
    }

    pub(super) fn checker_event(&mut self, event: CheckerEvent) {
        match event {
            CheckerEvent::SavesQuiet { generation } => {
                if generation != self.checkers.save_generation {
                    return;
                }
                self.checkers.save_pending = false;
                if std::mem::take(&mut self.checkers.save_trailing) {
                    self.run_saved_checkers();
                } else {
                    self.checkers.saved.clear();
                }
            }
            CheckerEvent::Problems { checker, run, problems } => {
                self.checker_problems(checker, run, problems)
            }
            CheckerEvent::Ended { checker, run, result } => self.checker_ended(checker, run, result),
            CheckerEvent::Verified { fix_id, checker, result } => self.fix_verified(fix_id, checker, result),
            CheckerEvent::TrustAnswered { yes: true } => {
                // Written first, so that every detection from now on finds it; then detected.
                let root = self.root.clone();
                self.off_loop(
                    "trusting the workspace",
                    move || match trust::trust(&root) {
                        Ok(root) => tracing::info!("{} is trusted to run its checkers", root.display()),
                        Err(error) => tracing::error!("trusting the workspace failed: {error}"),
                    },
                    |()| Done::Trusted,
                );
            }
            CheckerEvent::TrustAnswered { yes: false } => {
                self.checkers.trust_pending = false;
                tracing::info!("the workspace is not trusted: its checkers do not run");
            }
        }
    }

    /// Verifies the AI fix `fix_id` with the checker that reported its error (`fingerprint`
    /// of `path`), if a checker did: off the loop, on a scratch mirror of the workspace with the
    /// fix applied. Meanwhile the fix is offered as one that parses.
    pub(super) fn verify_fix_with_checker(&mut self, path: &Path, fix_id: &str, fingerprint: &str) {
        let reported = self.checkers.current.get(path).and_then(|by| {
            by.iter().find_map(|(name, placed)| {
                placed
                    .iter()
                    .find(|p| p.diagnostic.fingerprint == fingerprint)
                    .map(|p| (name.clone(), p.diagnostic.clone()))
            })
        });
        let Some((name, diagnostic)) = reported else { return };
        let Some(checker) =
            self.checkers.detected.iter().find(|d| d.checker.name == name).map(|d| d.checker.clone())
        else {
            return;
        };
        let before: Vec<Problem> = self
            .checkers
            .problems
            .get(&name)
            .map(|by| by.values().flatten().cloned().collect())
            .unwrap_or_default();
        let Some(target) = before
            .iter()
            .find(|p| {
                p.span.path == path && p.code == diagnostic.code && diagnostic.message.starts_with(&p.message)
            })
            .cloned()
        else {
            return;
        };
        let Some(note) = self.notes.find_mut(fix_id) else { return };
        let Some(fix) = note.fix.clone() else { return };
        note.verification = crate::assist::Verification::Checking { checker: name.clone() };
        // The texts the fix edits: an open document's as the editor has it, a file's on disk.
        let mut texts: Vec<(PathBuf, Option<String>)> = Vec::new();
        for edit in &fix.edits {
            if !texts.iter().any(|(p, _)| *p == edit.path) {
                texts.push((edit.path.clone(), self.open.get(&edit.path).map(|o| o.doc.text().to_owned())));
            }
        }
        let mirror = Mirror::for_workspace(&self.root, &self.config.ignore);
        let (encoding, max_size, root) = (self.encoding, self.config.max_file_size, self.root.clone());
        let cancel = CancellationToken::new();
        self.checkers.verifying.insert(fix_id.to_owned(), cancel.clone());
        tracing::info!("checker `{name}`: verifying the AI fix {fix_id} on a scratch copy");
        let handle = self.handle.clone();
        let fix_id = fix_id.to_owned();
        tokio::spawn(async move {
            let result = async {
                let mut edited = Vec::new();
                for (path, text) in texts {
                    let text = match text {
                        Some(text) => text,
                        None => {
                            let (file, root) = (path.clone(), root.clone());
                            tokio::task::spawn_blocking(move || files::read_beneath(&root, &file, max_size))
                                .await
                                .map_err(|e| e.to_string())?
                                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                        }
                    };
                    let new = with_edits(&text, fix.edits.iter().filter(|e| e.path == path), encoding)
                        .ok_or_else(|| format!("the fix no longer applies to {}", path.display()))?;
                    edited.push((path, new));
                }
                mirror.verify(&checker, &edited, &target, &before, &cancel).await.map_err(|e| e.to_string())
            }
            .await;
            handle.send(Event::Checker(CheckerEvent::Verified { fix_id, checker: name, result }));
        });
    }

    /// A fix's verification by its checker came back: the quick fix says how it went, and a
    /// fix the checker verified is recorded as such.
    fn fix_verified(&mut self, fix_id: String, checker: String, result: Result<Verdict, String>) {
        use crate::assist::Verification;
        self.checkers.verifying.remove(&fix_id);
        let first_line = |p: &Problem| p.message.lines().next().unwrap_or("").to_owned();
        let verification = match result {
            Ok(Verdict::Verified { elapsed, .. }) => {
                tracing::info!(
                    "checker `{checker}` verified the AI fix {fix_id} in {:.1}s",
                    elapsed.as_secs_f64()
                );
                Verification::Checked { checker }
            }
            Ok(Verdict::StillReported { problem, .. }) => Verification::CheckFailed {
                why: format!("it still reports `{}`", first_line(&problem)),
                checker,
            },
            Ok(Verdict::NewErrors { problems, .. }) => Verification::CheckFailed {
                why: format!(
                    "it reports new errors with the fix, first `{}` at {}:{}",
                    problems.first().map(first_line).unwrap_or_default(),
                    problems.first().map_or_else(String::new, |p| relative(&self.root, &p.span.path)),
                    problems.first().map_or(0, |p| p.span.start.line),
                ),
                checker,
            },
            Err(why) => {
                tracing::warn!("checker `{checker}` could not verify the AI fix {fix_id}: {why}");
                self.tell_once(
                    MessageLevel::Warning,
                    format!("checker `{checker}` could not verify an AI fix: {why}"),
                );
                Verification::CheckFailed { why: format!("it could not check the fix: {why}"), checker }
            }
        };
        let Some(note) = self.notes.find_mut(&fix_id) else { return };
        note.verification = verification;
        let note = note.clone();
        if matches!(note.verification, Verification::Checked { .. }) {
            self.record_fix(&note, store::Outcome::Verified);
        }
    }

    /// Runs the checkers `names` (every enabled one when empty, those the editor shows
    /// already too: asked for, they run) now; answers the names started.
    pub(super) fn run_checkers(&mut self, mut names: Vec<String>) -> Result<Vec<String>, Refused> {
        // A name asked twice runs once (a client that repeats names must not start, and cancel,
        // one run per repetition).
        let mut seen = HashSet::new();
        names.retain(|name| seen.insert(name.clone()));
        if !self.on_disk {
            return Err(Refused::new(RefusedKind::NoWorkspace, "checkers need a workspace folder"));
        }
        if self.checkers.trust.is_some_and(|t| !t.is_trusted()) {
            // Asked for: ask again.
            self.checkers.asked_trust = false;
            self.ask_trust();
            return Err(Refused::new(
                RefusedKind::Untrusted,
                format!(
                    "the workspace is not trusted to run its checkers; choose \"Trust and run\", or run `acas trust {}`",
                    self.root.display()
                ),
            ));
        }
        let names = if names.is_empty() {
            self.checkers.detected.iter().filter(|d| d.enabled).map(|d| d.checker.name.clone()).collect()
        } else {
            for name in &names {
                if !self.checkers.detected.iter().any(|d| &d.checker.name == name) {
                    let known: Vec<&str> =
                        self.checkers.detected.iter().map(|d| d.checker.name.as_str()).collect();
                    return Err(Refused::new(
                        RefusedKind::CheckerNotFound,
                        format!(
                            "the workspace has no checker `{name}`; it has {}; define it under [[checkers]] in .acas/config.toml",
                            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                        ),
                    ));
                }
            }
            names
        };
        for name in &names {
            self.checkers.echo_started.remove(name);
            self.start_checker(name);
        }
        Ok(names)
    }

    /// Starts a run of the checker `name`, cancelling the one in progress.
    fn start_checker(&mut self, name: &str) {
        if !self.checkers.trust.is_some_and(trust::State::is_trusted) {
            return;
        }
        let Some(detected) = self.checkers.detected.iter().find(|d| d.checker.name == name) else {
            return;
        };
        let checker = detected.checker.clone();
        if let Some(stale) = self.checkers.running.remove(name) {
            tracing::info!("checker `{name}`: a newer run cancels the run in progress");
            stale.cancel.cancel();
        }
        self.checkers.next_run += 1;
        let id = self.checkers.next_run;
        let cancel = CancellationToken::new();
        let versions = self.open.iter().map(|(p, o)| (p.clone(), o.version)).collect();
        self.checkers.running.insert(name.to_owned(), Running { id, cancel: cancel.clone(), versions });
        self.checkers.accepted.insert(name.to_owned(), id);
        self.checkers.problems.insert(name.to_owned(), HashMap::new());
        self.checkers.dropped.insert(name.to_owned(), HashSet::new());
        tracing::info!("checker `{name}`: running `{}`", checker.command.join(" "));
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let name = checker.name.clone();
            let (tx, mut rx) = mpsc::unbounded_channel::<Problem>();
            let runner = tokio::spawn(async move {
                let mut hand_over = move |p: Problem| {
                    let _ = tx.send(p);
                };
                run::run(&checker, &cancel, &mut hand_over).await
            });
            while let Some(first) = rx.recv().await {
                let mut problems = vec![first];
                while problems.len() < BATCH
                    && let Ok(p) = rx.try_recv()
                {
                    problems.push(p);
                }
                handle.send(Event::Checker(CheckerEvent::Problems {
                    checker: name.clone(),
                    run: id,
                    problems,
                }));
            }
            let result = runner.await.unwrap_or_else(|error| {
                tracing::error!("checker `{name}`: its run failed: {error}");
                Err(RunError::Internal { checker: name.clone() })
            });
            handle.send(Event::Checker(CheckerEvent::Ended { checker: name, run: id, result }));
        });
    }

    fn checker_problems(&mut self, checker: String, run: u64, problems: Vec<Problem>) {
        if self.checkers.accepted.get(&checker) != Some(&run) {
            return;
        }
        let mut paths = Vec::new();
        let mut over_limit = None;
        let by_file = self.checkers.problems.entry(checker.clone()).or_default();
        for mut problem in problems {
            // `./src/a.rs` and `src/../src/a.rs` are the document the editor has open as `src/a.rs`.
            problem.span.path = lexical(&problem.span.path);
            for edit in problem.fixes.iter_mut().flat_map(|f| f.edits.iter_mut()) {
                edit.span.path = lexical(&edit.span.path);
            }
            for related in problem.related.iter_mut() {
                related.span.path = lexical(&related.span.path);
            }
            let path = problem.span.path.clone();
            if !path.starts_with(&self.root) {
                tracing::debug!("checker `{checker}` reported {} outside the workspace", path.display());
                continue;
            }
            let kept = by_file.entry(path.clone()).or_default();
            if kept.len() >= FILE_PROBLEM_LIMIT {
                if over_limit.is_none() {
                    over_limit = Some(path);
                }
                continue;
            }
            kept.push(problem);
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        if let Some(path) = over_limit {
            self.tell_once(
                MessageLevel::Warning,
                format!(
                    "checker `{checker}` reported more than {FILE_PROBLEM_LIMIT} problems in {}; only the first {FILE_PROBLEM_LIMIT} of a file are shown (fix them, or narrow the checker's command in .acas/config.toml)",
                    relative(&self.root, &path)
                ),
            );
        }
        for path in paths {
            self.place_checker_file(&checker, run, path);
        }
        self.apply_rules();
    }

    /// Places the accepted run's problems of `path` so far: in the open document, or in the file
    /// on disk off the loop.
    fn place_checker_file(&mut self, checker: &str, run: u64, path: PathBuf) {
        let Some(problems) = self.checkers.problems.get(checker).and_then(|p| p.get(&path)).cloned() else {
            return;
        };
        if let Some(open) = self.open.get(&path) {
            let at_start = self.checkers.running.get(checker).and_then(|r| r.versions.get(&path)).copied();
            let saved = self.checkers.saved_versions.get(&path).copied();
            let as_run = saved == Some(open.version) && at_start.is_none_or(|v| v == open.version);
            if !as_run {
                tracing::info!(
                    "checker `{checker}`: {} was edited since the run started; its problems are dropped until the next save",
                    path.display()
                );
                self.checkers.dropped.entry(checker.to_owned()).or_default().insert(path);
                return;
            }
            let diagnostics = analysis::place_problems_in(
                open.doc.text(),
                &open.index,
                Some(&open.doc),
                &problems,
                self.encoding,
            );
            let placed =
                with_fixes(open.doc.text(), &open.index, &path, &problems, diagnostics, self.encoding);
            self.set_checker_file(checker, &path, placed);
            return;
        }
        let key = (checker.to_owned(), path.clone());
        if let Some(again) = self.checkers.placing.get_mut(&key) {
            *again = true;
            return;
        }
        self.checkers.placing.insert(key, false);
        let (max_size, encoding) = (self.config.max_file_size, self.encoding);
        let checker = checker.to_owned();
        let (file, root) = (path.clone(), self.root.clone());
        self.off_loop(
            "placing a checker's problems",
            move || match files::read_beneath(&root, &file, max_size) {
                Ok(text) => {
                    let index = LineIndex::new(&text);
                    let doc = Language::from_path(&file).map(|l| Document::new(l, text.clone()));
                    let diagnostics =
                        analysis::place_problems_in(&text, &index, doc.as_ref(), &problems, encoding);
                    Some(with_fixes(&text, &index, &file, &problems, diagnostics, encoding))
                }
                Err(skip) => {
                    tracing::info!("problems in {} are not shown: {skip}", file.display());
                    None
                }
            },
            move |placed| Done::CheckerPlaced { checker, run, path, placed },
        );
    }

    /// A file on disk was placed: shows it unless a newer run took over, and places it again
    /// when more problems arrived meanwhile.
    pub(super) fn checker_placed(
        &mut self,
        checker: String,
        run: u64,
        path: PathBuf,
        placed: Option<Vec<Placed>>,
    ) {
        let again = self.checkers.placing.remove(&(checker.clone(), path.clone())).unwrap_or(false);
        if self.checkers.accepted.get(&checker) != Some(&run) {
            return;
        }
        if let Some(placed) = placed {
            self.set_checker_file(&checker, &path, placed);
        }
        if again {
            self.place_checker_file(&checker, run, path);
        }
        self.apply_rules();
    }

    fn checker_ended(&mut self, checker: String, run: u64, result: Result<run::Outcome, RunError>) {
        if self.checkers.running.get(&checker).is_some_and(|r| r.id == run) {
            self.checkers.running.remove(&checker);
            self.checkers.ended_at.insert(checker.clone(), std::time::Instant::now());
        }
        if self.checkers.accepted.get(&checker) != Some(&run) {
            return;
        }
        match result {
            Ok(outcome) => {
                tracing::info!(
                    "checker `{checker}`: {} problems, exit code {:?}, in {:.1}s",
                    outcome.problems,
                    outcome.exit_code,
                    outcome.elapsed.as_secs_f64()
                );
                self.checkers.failures.remove(&checker);
                if let Some(note) = outcome.note(&checker) {
                    self.tell_once(MessageLevel::Warning, note);
                }
                let reported = self.checkers.problems.get(&checker).cloned().unwrap_or_default();
                let dropped = self.checkers.dropped.get(&checker).cloned().unwrap_or_default();
                let stale: Vec<PathBuf> = self
                    .checkers
                    .current
                    .iter()
                    .filter(|(path, by)| {
                        by.contains_key(&checker) && !reported.contains_key(*path) && !dropped.contains(*path)
                    })
                    .map(|(path, _)| path.clone())
                    .collect();
                for path in stale {
                    self.set_checker_file(&checker, &path, Vec::new());
                }
                self.apply_rules();
            }
            Err(RunError::Cancelled { .. }) => {}
            Err(error) => {
                let text = error.to_string();
                self.checkers.failures.insert(checker.clone(), text.clone());
                self.tell_once(MessageLevel::Warning, text);
            }
        }
    }

    /// Shows `placed` as the checker's diagnostics of `path`, records them, and lets the
    /// triggers and AI notes see them (the caller applies the rules once for all its files).
    pub(super) fn set_checker_file(&mut self, checker: &str, path: &Path, placed: Vec<Placed>) {
        self.show_checker_file(checker, path, placed, true);
    }

    /// [`Self::set_checker_file`], recording in the store only when `record` (what was read
    /// from the store is not recorded again: a newer set may have replaced it meanwhile).
    pub(super) fn show_checker_file(
        &mut self,
        checker: &str,
        path: &Path,
        placed: Vec<Placed>,
        record: bool,
    ) {
        let unchanged = self
            .checkers
            .current
            .get(path)
            .and_then(|by| by.get(checker))
            .is_some_and(|before| same(before, &placed))
            || (placed.is_empty()
                && self.checkers.current.get(path).is_none_or(|by| !by.contains_key(checker)));
        if unchanged {
            return;
        }
        if record {
            self.record_checker_file(checker, path, &placed);
        }
        if placed.is_empty() {
            if let Some(by) = self.checkers.current.get_mut(path) {
                by.remove(checker);
                if by.is_empty() {
                    self.checkers.current.remove(path);
                }
            }
        } else {
            self.checkers.current.entry(path.to_path_buf()).or_default().insert(checker.to_owned(), placed);
        }
        self.mirror_checker_file(checker, path);
        self.republish(path);
        self.retire_notes(path);
    }

    /// Records the checker's diagnostics of `path` in the store, by tool, clearing the tools
    /// it recorded there before and no longer reports.
    fn record_checker_file(&mut self, checker: &str, path: &Path, placed: &[Placed]) {
        let mut by_source: BTreeMap<String, Vec<store::DiagnosticRecord>> = BTreeMap::new();
        for p in placed {
            by_source
                .entry(p.diagnostic.source.clone())
                .or_default()
                .push(super::publish::diagnostic_record(&p.diagnostic));
        }
        let key = (path.to_path_buf(), checker.to_owned());
        let before = self.checkers.recorded.remove(&key).unwrap_or_default();
        for source in before {
            by_source.entry(source).or_default();
        }
        if let Some(store) = &self.store {
            let at_ms = now_ms();
            let rel = relative(&self.root, path);
            store.record(
                by_source
                    .iter()
                    .map(|(source, diagnostics)| {
                        Record::Diagnostics(store::FileDiagnostics {
                            at_ms,
                            path: rel.clone(),
                            source: source.clone(),
                            diagnostics: diagnostics.clone(),
                        })
                    })
                    .collect(),
            );
        }
        let sources: Vec<String> =
            by_source.into_iter().filter(|(_, d)| !d.is_empty()).map(|(s, _)| s).collect();
        if !sources.is_empty() {
            self.checkers.recorded.insert(key, sources);
        }
    }

    /// Keeps the checker's diagnostics of `path` among the other tools' ones, where the rules,
    /// the triggers, escalations and AI notes look.
    fn mirror_checker_file(&mut self, checker: &str, path: &Path) {
        let key = mirror_key(checker);
        let placed = self.checkers.current.get(path).and_then(|by| by.get(checker));
        match placed {
            Some(placed) => {
                let entries: Vec<ExternalEntry> = placed
                    .iter()
                    .map(|p| ExternalEntry {
                        fingerprint: p.diagnostic.fingerprint.clone(),
                        category: p.diagnostic.category.as_str().to_owned(),
                        diagnostic: ExternalDiagnostic {
                            range: p.diagnostic.range,
                            severity: p.diagnostic.severity,
                            code: p.diagnostic.code.clone(),
                            tool: Some(p.diagnostic.source.clone()),
                            message: p.diagnostic.message.clone(),
                        },
                    })
                    .collect();
                let fingerprints = entries.iter().map(|e| e.fingerprint.clone()).collect();
                self.external_current.entry(path.to_path_buf()).or_default().insert(key.clone(), entries);
                self.external_fingerprints.entry(path.to_path_buf()).or_default().insert(key, fingerprints);
            }
            None => {
                for map in [&mut self.external_fingerprints] {
                    if let Some(by) = map.get_mut(path) {
                        by.remove(&key);
                    }
                }
                if let Some(by) = self.external_current.get_mut(path) {
                    by.remove(&key);
                }
            }
        }
    }

    /// `diagnostics` another tool reported for `path` (as `source`) but those a checker
    /// reported already: the tool's name, line and message are the same.
    pub(super) fn without_checker_echoes(
        &self,
        path: &Path,
        source: &str,
        diagnostics: Vec<ExternalDiagnostic>,
    ) -> Vec<ExternalDiagnostic> {
        let Some(by) = self.checkers.current.get(path) else { return diagnostics };
        diagnostics
            .into_iter()
            .filter(|d| {
                let tool = d.tool.as_deref().unwrap_or(source);
                !by.values().flatten().any(|p| {
                    p.diagnostic.source == tool
                        && p.diagnostic.message == d.message
                        && p.diagnostic.range.start.line == d.range.start.line
                })
            })
            .collect()
    }

    /// The checkers' diagnostics of `path`, as shown.
    pub(super) fn checker_diagnostics(&self, path: &Path) -> Vec<FileDiagnostic> {
        self.checkers
            .current
            .get(path)
            .map(|by| by.values().flatten().map(|p| p.diagnostic.clone()).collect())
            .unwrap_or_default()
    }

    /// The tools' fixes of the checker diagnostics overlapping `range` of `path`, with their
    /// edits and the text each replaces (checked against the file when asked).
    /// Each comes with the diagnostic it fixes.
    pub(super) fn checker_fixes(
        &self,
        path: &Path,
        range: TextRange,
    ) -> Vec<(String, Vec<NoteEdit>, super::escalations::Fixed)> {
        let Some(by) = self.checkers.current.get(path) else { return Vec::new() };
        by.values()
            .flatten()
            .filter(|p| p.diagnostic.range.start <= range.end && range.start <= p.diagnostic.range.end)
            .flat_map(|p| {
                let fixed = super::escalations::Fixed {
                    range: p.diagnostic.range,
                    source: p.diagnostic.source.clone(),
                    message: p.diagnostic.message.clone(),
                };
                p.fixes.iter().map(move |(title, edits)| {
                    (format!("Fix: {title} ({})", p.diagnostic.source), edits.clone(), fixed.clone())
                })
            })
            .collect()
    }

    /// An open document was edited at `range` (positions before the edit) with `new_text`:
    /// the checkers' diagnostics after it move with it, those it touched are dropped.
    pub(super) fn shift_checker_diagnostics(&mut self, path: &Path, range: TextRange, new_text: &str) {
        let Some(by) = self.checkers.current.get_mut(path) else { return };
        let encoding = self.encoding;
        let mut changed = Vec::new();
        for (checker, placed) in by.iter_mut() {
            let before = placed.len();
            placed.retain(|p| !touches(p.diagnostic.range, range));
            for p in placed.iter_mut() {
                p.diagnostic.range = shift_range(p.diagnostic.range, range, new_text, encoding);
                p.diagnostic.related.retain(|(r, _)| !touches(*r, range));
                for (r, _) in p.diagnostic.related.iter_mut() {
                    *r = shift_range(*r, range, new_text, encoding);
                }
                p.fixes.retain(|(_, edits)| edits.iter().all(|e| !touches(e.range, range)));
                for (_, edits) in p.fixes.iter_mut() {
                    for e in edits.iter_mut() {
                        e.range = shift_range(e.range, range, new_text, encoding);
                    }
                }
            }
            if placed.len() != before || !placed.is_empty() {
                changed.push(checker.clone());
            }
        }
        by.retain(|_, placed| !placed.is_empty());
        if by.is_empty() {
            self.checkers.current.remove(path);
        }
        for checker in changed {
            self.mirror_checker_file(&checker, path);
        }
    }

    /// The checkers' part of the status: detection's problems and failed runs.
    pub(super) fn checker_status(&self) -> (&'static str, &'static str, Option<String>) {
        let problems: Vec<String> = self
            .checkers
            .config_problems
            .iter()
            .cloned()
            .chain(self.checkers.failures.values().cloned())
            .collect();
        if !problems.is_empty() {
            return ("checkers", "degraded", Some(problems.join("; ")));
        }
        let on: Vec<&str> = self
            .checkers
            .detected
            .iter()
            .filter(|d| d.enabled && !self.skipped(&d.checker.name))
            .map(|d| d.checker.name.as_str())
            .collect();
        if let Some(state) = self.checkers.trust.filter(|t| !t.is_trusted() && !on.is_empty()) {
            let why = match state {
                trust::State::Changed => "its [[checkers]] changed since it was trusted",
                _ => "the workspace is not trusted",
            };
            return ("checkers", "off", Some(format!("{why}: run `acas trust {}`", self.root.display())));
        }
        let running: Vec<&str> = self.checkers.running.keys().map(String::as_str).collect();
        match (on.is_empty(), running.is_empty()) {
            (true, _) => ("checkers", "off", None),
            (false, true) => ("checkers", "ok", Some(on.join(", "))),
            (false, false) => ("checkers", "busy", Some(format!("running {}", sorted(running).join(", ")))),
        }
    }

    /// The user's trust is written: the checkers are detected again, and run.
    pub(super) fn workspace_trusted(&mut self) {
        self.checkers.trust_pending = false;
        self.detect_checkers();
    }

    /// Ends every run (the server is stopping).
    pub(super) fn stop_checkers(&mut self) {
        for (_, run) in self.checkers.running.drain() {
            run.cancel.cancel();
        }
        for (_, cancel) in self.checkers.verifying.drain() {
            cancel.cancel();
        }
    }
}

/// `text` with `edits` (ranges in `encoding`) applied, or `None` when one no longer finds the
/// text it replaces.
fn with_edits<'a>(
    text: &str,
    edits: impl Iterator<Item = &'a NoteEdit>,
    encoding: PositionEncoding,
) -> Option<String> {
    let index = LineIndex::new(text);
    let mut spans: Vec<(std::ops::Range<usize>, &str)> = Vec::new();
    for edit in edits {
        let start = index.offset(text, edit.range.start, encoding);
        let end = index.offset(text, edit.range.end, encoding).max(start);
        if text.get(start..end) != Some(edit.old.as_str()) {
            return None;
        }
        spans.push((start..end, edit.new.as_str()));
    }
    spans.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = text.to_owned();
    let mut floor = usize::MAX;
    for (range, new) in spans {
        if range.end > floor {
            return None;
        }
        out.replace_range(range.clone(), new);
        floor = range.start;
    }
    Some(out)
}

/// `path` without `.` components, and with each `..` taking away the component before it.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn sorted(mut names: Vec<&str>) -> Vec<&str> {
    names.sort_unstable();
    names
}

/// Whether `path` (relative, with `/`) matches one of `globs`.
fn matches(globs: &[String], path: &str) -> bool {
    globs.iter().any(|g| {
        globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map(|g| g.compile_matcher().is_match(path))
            .unwrap_or(false)
    })
}

/// Whether two lists of placed diagnostics show the same.
fn same(a: &[Placed], b: &[Placed]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| a.diagnostic == b.diagnostic && a.fixes.len() == b.fixes.len())
}

/// The placed diagnostics with the tools' fixes whose edits are all in this file, each edit
/// with the text it replaces.
fn with_fixes(
    text: &str,
    index: &LineIndex,
    path: &Path,
    problems: &[Problem],
    diagnostics: Vec<FileDiagnostic>,
    encoding: PositionEncoding,
) -> Vec<Placed> {
    problems
        .iter()
        .zip(diagnostics)
        .map(|(problem, diagnostic)| {
            let fixes = problem
                .fixes
                .iter()
                .filter(|f| !f.edits.is_empty() && f.edits.iter().all(|e| e.span.path == path))
                .map(|f| {
                    let edits = f
                        .edits
                        .iter()
                        .map(|e| {
                            let start = analysis::tool_offset(text, index, e.span.start, e.span.columns);
                            let end = e
                                .span
                                .end
                                .map_or(start, |end| analysis::tool_offset(text, index, end, e.span.columns))
                                .max(start);
                            NoteEdit {
                                path: path.to_path_buf(),
                                range: index.range(text, start..end, encoding),
                                old: text[start..end].to_owned(),
                                new: e.replacement.clone(),
                            }
                        })
                        .collect();
                    (f.title.clone(), edits)
                })
                .collect();
            Placed { diagnostic, fixes }
        })
        .collect()
}

/// Whether an edit of `edit` touches `range` (overlaps it or borders it).
fn touches(range: TextRange, edit: TextRange) -> bool {
    range.start <= edit.end && edit.start <= range.end
}

/// Where `range`, after an edit of `edit` replaced by `new_text`, is now (it does not touch the
/// edit).
fn shift_range(range: TextRange, edit: TextRange, new_text: &str, encoding: PositionEncoding) -> TextRange {
    TextRange {
        start: shift(range.start, edit, new_text, encoding),
        end: shift(range.end, edit, new_text, encoding),
    }
}

fn shift(at: Position, edit: TextRange, new_text: &str, encoding: PositionEncoding) -> Position {
    if at < edit.end {
        return at;
    }
    let new_lines = new_text.matches('\n').count() as u32;
    let last = new_text.rsplit('\n').next().unwrap_or("");
    let last_len = match encoding {
        PositionEncoding::Utf8 => last.len() as u32,
        PositionEncoding::Utf16 => last.encode_utf16().count() as u32,
    };
    let end_line = edit.start.line + new_lines;
    if at.line == edit.end.line {
        let end_character = if new_lines == 0 { edit.start.character + last_len } else { last_len };
        Position { line: end_line, character: end_character + (at.character - edit.end.character) }
    } else {
        Position { line: at.line - edit.end.line + end_line, character: at.character }
    }
}

/// The edit that turns `old` into `new`: the range of `old` that differs (positions in
/// `encoding`) and the text that replaces it, from their common beginning and end.
pub(super) fn difference<'a>(
    old: &str,
    index: &LineIndex,
    new: &'a str,
    encoding: PositionEncoding,
) -> (TextRange, &'a str) {
    let mut prefix = old.bytes().zip(new.bytes()).take_while(|(a, b)| a == b).count();
    while !old.is_char_boundary(prefix) || !new.is_char_boundary(prefix) {
        prefix -= 1;
    }
    let max_suffix = old.len().min(new.len()) - prefix;
    let mut suffix =
        old.bytes().rev().zip(new.bytes().rev()).take(max_suffix).take_while(|(a, b)| a == b).count();
    while !old.is_char_boundary(old.len() - suffix) || !new.is_char_boundary(new.len() - suffix) {
        suffix -= 1;
    }
    let range = index.range(old, prefix..old.len() - suffix, encoding);
    (range, &new[prefix..new.len() - suffix])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::{ColumnUnit, Edit, Fix, Point, Span};
    use crate::classify::Severity;
    use crate::workspace::{Handle, Options, QuickFix};

    fn at(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn a_range_after_an_edit_moves_with_it() {
        let edit = TextRange { start: at(1, 2), end: at(1, 4) };
        // On the edit's last line: columns move by what the line gained.
        assert_eq!(shift(at(1, 10), edit, "abcd", PositionEncoding::Utf16), at(1, 12));
        // Lines after it: lines move by the lines inserted.
        assert_eq!(shift(at(3, 5), edit, "x\ny\n", PositionEncoding::Utf16), at(5, 5));
        // Before it: unchanged.
        assert_eq!(shift(at(0, 9), edit, "x\n", PositionEncoding::Utf16), at(0, 9));
        // Non-ASCII counts in the encoding's units.
        assert_eq!(shift(at(1, 6), edit, "é𝒳", PositionEncoding::Utf16), at(1, 7));
        assert_eq!(shift(at(1, 6), edit, "é𝒳", PositionEncoding::Utf8), at(1, 10));
        assert!(touches(TextRange { start: at(1, 0), end: at(1, 3) }, edit));
        assert!(!touches(TextRange { start: at(2, 0), end: at(2, 3) }, edit));
    }

    #[test]
    fn tools_paths_are_the_editors() {
        assert_eq!(lexical(Path::new("/ws/./src/../src/a.rs")), Path::new("/ws/src/a.rs"));
        assert_eq!(lexical(Path::new("/ws/a.rs")), Path::new("/ws/a.rs"));
    }

    #[test]
    fn a_whole_text_replacement_is_the_edit_of_what_differs() {
        let old = "fn a() {}\nfn b() { é }\nfn c() {}\n";
        let new = "fn a() {}\nfn b() { éé }\nfn c() {}\n";
        let index = LineIndex::new(old);
        let (range, text) = difference(old, &index, new, PositionEncoding::Utf16);
        assert_eq!(text, "é");
        assert_eq!(range.start.line, 1);
        // Applying it to the old text gives the new one.
        let start = index.offset(old, range.start, PositionEncoding::Utf16);
        let end = index.offset(old, range.end, PositionEncoding::Utf16);
        assert_eq!(format!("{}{text}{}", &old[..start], &old[end..]), new);
    }

    fn span(path: &Path, line: u32, column: u32, end: u32) -> Span {
        Span {
            path: path.to_path_buf(),
            start: Point { line, column },
            end: Some(Point { line, column: end }),
            columns: ColumnUnit::Chars,
        }
    }

    /// A tool's fix is a quick fix with no AI, offered while the text it edits is unchanged and
    /// moved with the edits before it.
    #[test]
    fn a_tools_fix_is_offered_while_its_text_is_unchanged() {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().canonicalize().unwrap();
            let file = root.join("src/main.rs");
            let (tx, _rx) = mpsc::unbounded_channel();
            let (output, _outputs) = mpsc::unbounded_channel();
            let mut options = Options::detached(PositionEncoding::Utf16, Default::default());
            options.root = root.clone();
            let mut workspace = Workspace::new(options, Handle { tx }, output);
            let text = "fn main() {\n    let é = 1; let unused = 2;\n}\n";
            workspace.handle(Event::Opened {
                path: file.clone(),
                version: 1,
                language_id: "rust".into(),
                text: text.into(),
            });
            workspace.handle(Event::Saved { path: file.clone() });
            // A run of clippy is the one whose problems are taken.
            workspace.checkers.accepted.insert("clippy".into(), 7);
            let problem = Problem {
                span: span(&file, 2, 20, 26),
                severity: Severity::Warning,
                code: Some("unused_variables".into()),
                message: "unused variable: `unused`".into(),
                source: "rustc".into(),
                category: None,
                related: Vec::new(),
                fixes: vec![Fix {
                    title: "prefix it with an underscore".into(),
                    edits: vec![Edit { span: span(&file, 2, 20, 26), replacement: "_unused".into() }],
                }],
            };
            workspace.handle(Event::Checker(CheckerEvent::Problems {
                checker: "clippy".into(),
                run: 7,
                problems: vec![problem],
            }));
            let line = |l: u32| TextRange {
                start: Position { line: l, character: 0 },
                end: Position { line: l, character: u32::MAX },
            };
            let fixes = workspace.quick_fixes(&file, line(1));
            let [QuickFix { fix_id, title, edits, on_disk, .. }] = fixes.as_slice() else {
                panic!("one fix: {fixes:?}")
            };
            assert_eq!((fix_id, title.as_str()), (&None, "Fix: prefix it with an underscore (rustc)"));
            assert!(on_disk.is_empty());
            assert_eq!(edits[0].old, "unused");
            // "é" is one UTF-16 unit: the tool's character 20 is the editor's 19.
            assert_eq!(edits[0].range.start, Position { line: 1, character: 19 });

            // A line added above moves it; it is still offered, on its new line.
            workspace.handle(Event::Changed {
                path: file.clone(),
                version: 2,
                changes: vec![super::super::ContentChange {
                    range: Some(TextRange {
                        start: Position { line: 0, character: 0 },
                        end: Position { line: 0, character: 0 },
                    }),
                    text: "// top\n".into(),
                }],
            });
            assert!(workspace.quick_fixes(&file, line(1)).is_empty());
            let moved = workspace.quick_fixes(&file, line(2));
            assert_eq!(moved.len(), 1);
            assert_eq!(moved[0].edits[0].range.start, Position { line: 2, character: 19 });

            // The editor forwarding it back as another tool's is not a second diagnostic.
            let echo = workspace.checker_diagnostics(&file)[0].clone();
            workspace.handle(Event::External {
                path: file.clone(),
                source: "rustc".into(),
                diagnostics: vec![ExternalDiagnostic {
                    range: echo.range,
                    severity: echo.severity,
                    code: echo.code.clone(),
                    tool: None,
                    message: echo.message.clone(),
                }],
            });
            assert!(workspace.external_current[&file]["rustc"].is_empty());
            assert_eq!(workspace.external_current[&file]["checker:clippy"].len(), 1);

            // Editing the text it replaces withdraws it.
            workspace.handle(Event::Changed {
                path: file.clone(),
                version: 3,
                changes: vec![super::super::ContentChange {
                    range: Some(TextRange {
                        start: Position { line: 2, character: 19 },
                        end: Position { line: 2, character: 20 },
                    }),
                    text: "U".into(),
                }],
            });
            assert!(workspace.quick_fixes(&file, line(2)).is_empty());
        });
    }
}
