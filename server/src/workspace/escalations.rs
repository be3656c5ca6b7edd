//! Escalation jobs and the AI notes they leave on files.
//!
//! The loop only takes snapshots and applies answers: for an escalation (asked by the editor or
//! by a rule) it finds the problem in the file as it is now (an unopened file is read and parsed
//! off the loop), picks the symbol index and the providers, and hands a [`Job`] to
//! [`assist::escalate`], which runs elsewhere. The answer comes back as [`Event::Escalated`] and
//! becomes a note: an `acas-ai` diagnostic, its hover and, when verified, a quick fix. What the
//! developer does with a fix (applied, dismissed, reverted, resolved) is recorded here.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tree_sitter::Tree;

use super::documents::Mark;
use super::{
    Done, Event, ExternalDiagnostic, Handle, MessageLevel, Refused, RefusedKind, Request, Workspace, now_ms,
    relative,
};
use crate::assist::{
    self, Index, IndexRefresh, Job, Note, NoteEdit, NoteFix, Outcome, Providers, SharedIndexLock,
    Verification,
};
use crate::classify::{self, Document, Language, Severity};
use crate::config::Config;
use crate::escalate::StreamEvent;
use crate::escalate::context::Problem;
use crate::escalate::engine::{EscalateError, Escalator, Explained};
use crate::files;
use crate::store::{self, Record, Store};
use crate::text::{Edit, LineIndex, Position, TextRange};
use crate::watch;

/// What the editor asks to escalate: the diagnostic at `range` of `path`, the one it sent or
/// else the one ACAS knows there, with every provider or only the one named.
#[derive(Debug, Clone)]
pub struct EscalateRequest {
    pub path: PathBuf,
    pub range: TextRange,
    pub diagnostic: Option<ExternalDiagnostic>,
    pub provider: Option<String>,
    /// The client gave a position only: choose the diagnostic there.
    pub choose: bool,
    /// The fingerprint of the ACAS diagnostic meant, when the client echoed it back.
    pub fingerprint: Option<String>,
}

/// What an escalation the editor asked for gave: the answer, and the id of the quick fix shown
/// for it.
#[derive(Debug)]
pub struct Answer {
    pub explained: Explained,
    pub fix_id: Option<String>,
}

/// Why an escalation the editor asked for gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum EscalationError {
    /// The workspace refused it (no such diagnostic, a file ACAS does not parse, no provider...).
    #[error("{0}")]
    Refused(Refused),
    /// The escalation ran and failed, or was cancelled.
    #[error("{0}")]
    Escalate(EscalateError),
    #[error("the workspace has stopped")]
    Stopped,
}

/// A file parsed for an escalation.
pub struct Snapshot {
    language: Language,
    text: String,
    tree: Tree,
    diagnostics: Vec<classify::Diagnostic>,
    /// Where the open document stood, when it was one.
    mark: Option<Mark>,
}

/// What follows the snapshot of a file to escalate.
pub enum Then {
    /// The editor waits for the job, to run it itself.
    Reply(oneshot::Sender<Result<(Job, Option<Mark>), Refused>>),
    /// A rule asked: run it in the background.
    Rule,
}

/// Who asked for an escalation, and so who hears of its end.
pub enum Asker {
    /// A rule: the answer appears on the file, a failure is a warning.
    Rule,
    /// The editor, waiting for what was shown.
    Editor(oneshot::Sender<Shown>),
}

/// What an answer became on its file: the id of its quick fix, or why none is offered.
#[derive(Debug, Default)]
pub struct Shown {
    pub fix_id: Option<String>,
    pub fix_rejected: Option<String>,
}

/// A finished escalation, back on the loop.
pub struct Escalated {
    pub path: PathBuf,
    pub text: String,
    pub range: Range<usize>,
    /// Where the open document stood when `text` was taken from it.
    pub mark: Option<Mark>,
    pub problem: Problem,
    /// The answer and its fix as edits of each file, or why there is none.
    pub result: Result<(Explained, Option<NoteFix>), String>,
    pub by: Asker,
}

/// The escalation engine of a configuration, or why there is none. Reads the store (to order
/// providers by success): call it off the loop, or before the loop starts.
pub(super) fn build_escalator(
    config: &Config,
    store: Option<Store>,
    only: Option<&str>,
) -> Result<Arc<Escalator>, Refused> {
    let env = |name: &str| std::env::var(name).ok();
    Escalator::new(&config.escalation, &env, store, only).map(Arc::new).map_err(|e| Refused::from(&e))
}

/// An escalation the editor asked for, ready to ask the providers: the file's snapshot, the
/// problem and the providers are settled, so nothing local can refuse it any more.
pub struct Prepared {
    job: Job,
    mark: Option<Mark>,
    /// Where the problem is, in lines and columns, for what the editor shows meanwhile.
    pub range: TextRange,
}

impl Handle {
    /// Takes what the editor asked to escalate and settles everything that does not need a
    /// provider: the diagnostic (or why there is none), the file, the providers named. Fast:
    /// the loop takes a snapshot, a file that is not open is read, the providers are built.
    pub async fn prepare_escalation(&self, request: EscalateRequest) -> Result<Prepared, EscalationError> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::Request(Request::Escalation { request: Box::new(request), reply: tx }));
        let (mut job, mark) =
            rx.await.map_err(|_| EscalationError::Stopped)?.map_err(EscalationError::Refused)?;
        if let Providers::Build { .. } = job.providers {
            // Only the provider the editor named: one it cannot build is a bad request.
            let (providers, dry_run) = (
                std::mem::replace(
                    &mut job.providers,
                    Providers::Build { config: Box::default(), store: None, only: None },
                ),
                job.dry_run,
            );
            let escalator = tokio::task::spawn_blocking(move || providers.resolve(dry_run))
                .await
                .map_err(|_| {
                    EscalationError::Escalate(EscalateError::Internal(
                        "building the providers failed; see the log".to_owned(),
                    ))
                })?
                .map_err(|e| EscalationError::Refused(Refused::from(&e)))?;
            job.providers = Providers::Ready(escalator);
        }
        let range = LineIndex::new(&job.text).range(&job.text, job.range.clone(), job.encoding);
        Ok(Prepared { job, mark, range })
    }

    /// Asks the providers about a prepared escalation and shows the answer on the file.
    /// `on_event` hears the providers' progress; cancelling `cancel` stops the escalation.
    /// Its end is shown only if `claim` says it was not cancelled first: a cancelled escalation
    /// shows nothing and ends `Cancelled`, whatever the providers said.
    pub async fn run_escalation(
        &self,
        prepared: Prepared,
        on_event: &mut (dyn FnMut(&str, StreamEvent) + Send),
        cancel: &CancellationToken,
        claim: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<Answer, EscalationError> {
        let (job, mark) = (prepared.job, prepared.mark);
        let (root, path, text, range, problem, max_size, encoding) = (
            job.root.clone(),
            job.path.clone(),
            job.text.clone(),
            job.range.clone(),
            job.problem.clone(),
            job.max_size,
            job.encoding,
        );
        let result = assist::escalate(job, on_event, cancel).await;
        if !claim() {
            return Err(EscalationError::Escalate(EscalateError::Cancelled));
        }
        let result = match result {
            Ok(Outcome::Explained(explained)) => Ok(explained),
            Ok(Outcome::DryRun { .. }) => unreachable!("the editor's escalations send"),
            Err(EscalateError::Cancelled) => return Err(EscalationError::Escalate(EscalateError::Cancelled)),
            Err(error) => Err(error),
        };
        match result {
            Ok(explained) => {
                let fix = fix_edits(&root, &path, &text, &explained, max_size, encoding).await;
                let (tx, rx) = oneshot::channel();
                let shown = explained.clone();
                self.send(Event::Escalated(Box::new(Escalated {
                    path,
                    text,
                    range,
                    mark,
                    problem,
                    result: Ok((shown, fix)),
                    by: Asker::Editor(tx),
                })));
                let shown = rx.await.map_err(|_| EscalationError::Stopped)?;
                let explained = Explained { fix_rejected: shown.fix_rejected, ..explained };
                Ok(Answer { fix_id: shown.fix_id, explained })
            }
            Err(error) => {
                let (tx, _) = oneshot::channel();
                self.send(Event::Escalated(Box::new(Escalated {
                    path,
                    text,
                    range,
                    mark,
                    problem,
                    result: Err(error.to_string()),
                    by: Asker::Editor(tx),
                })));
                Err(EscalationError::Escalate(error))
            }
        }
    }
}

/// The fix of an answer as edits in lines and columns, read off the loop.
async fn fix_edits(
    root: &Path,
    path: &Path,
    text: &str,
    explained: &Explained,
    max_size: u64,
    encoding: crate::text::PositionEncoding,
) -> Option<NoteFix> {
    let fix = explained.fix.clone()?;
    let (root, path, text) = (root.to_path_buf(), path.to_path_buf(), text.to_owned());
    tokio::task::spawn_blocking(move || assist::note_fix(&root, &path, &text, &fix, max_size, encoding))
        .await
        .ok()
}

impl Workspace {
    /// Takes a snapshot of the file `request` names, then goes on as `then` says: at once for
    /// an open file, else once the file was read and parsed off the loop.
    pub(super) fn escalation_request(&mut self, request: EscalateRequest, then: Then) {
        if let Some(open) = self.open.get(&request.path) {
            let snapshot = snapshot(&open.doc, Some(open.journal.mark()));
            self.snapshot_taken(request, Ok(snapshot), then);
            return;
        }
        let path = request.path.clone();
        let max_size = self.config.max_file_size;
        self.off_loop(
            "reading a file to escalate",
            move || {
                let unsupported = |message: String| Refused::new(RefusedKind::UnsupportedFile, message);
                let language = Language::from_path(&path).ok_or_else(|| {
                    unsupported(format!("{}: ACAS does not parse this kind of file", path.display()))
                })?;
                let text = files::read_source(&path, max_size)
                    .map_err(|skip| unsupported(format!("{}: {skip}", path.display())))?;
                Ok(snapshot(&Document::new(language, text), None))
            },
            move |snapshot| Done::Snapshot { request: Box::new(request), snapshot, then },
        );
    }

    /// Builds the job of a snapshot taken, and hands it to the editor or runs it for a rule.
    pub(super) fn snapshot_taken(
        &mut self,
        request: EscalateRequest,
        snapshot: Result<Snapshot, Refused>,
        then: Then,
    ) {
        let path = request.path.clone();
        let mark = snapshot.as_ref().ok().and_then(|s| s.mark);
        let job = snapshot.and_then(|snapshot| self.escalation_job(request, snapshot));
        match then {
            Then::Reply(reply) => {
                let _ = reply.send(job.map(|job| (job, mark)));
            }
            Then::Rule => match job {
                Ok(job) => self.run_by_rule(job, mark),
                Err(error) => tracing::info!("not escalating {}: {error}", path.display()),
            },
        }
    }

    /// Everything needed to escalate what `request` names in `snapshot`: the diagnostic the
    /// client sent, else the one ACAS knows there; with `choose` (the client gave a position
    /// only), the one this workspace chooses there among its own and the other tools'.
    pub(super) fn escalation_job(
        &mut self,
        request: EscalateRequest,
        snapshot: Snapshot,
    ) -> Result<Job, Refused> {
        let EscalateRequest { path, range, diagnostic, provider, choose, fingerprint } = request;
        let providers = match provider {
            Some(only) => Providers::Build {
                config: Box::new(self.config.escalation.clone()),
                store: self.store.clone(),
                only: Some(only),
            },
            None => Providers::Ready(self.escalator.clone()?),
        };
        let Snapshot { language, text, tree, diagnostics, .. } = snapshot;
        let index = LineIndex::new(&text);
        let start = index.offset(&text, range.start, self.encoding);
        let end = index.offset(&text, range.end, self.encoding).max(start);
        let rel = relative(&self.root, &path);
        // Clients echo diagnostics back with columns in their own encoding (Neovim 0.7 sends
        // bytes whatever was negotiated): a diagnostic is found by its line and what it says,
        // not by its exact range. One of ACAS's own sent whole is looked up among them.
        // A tool's diagnostic this workspace knows keeps the fingerprint and category it was
        // recorded with (a checker's test failure is a test failure, whatever its tool's name
        // says), so that the answer is shown on it.
        let mut known_as = None;
        let (diagnostic, message) = match diagnostic {
            Some(d) if d.tool.as_deref() == Some("acas") => (None, Some(d.message)),
            Some(d) => match self.known_external(&path, &d) {
                Some((known, fingerprint, category)) => {
                    known_as = Some((fingerprint, category));
                    (Some(known), None)
                }
                None => (Some(d), None),
            },
            None => (None, None),
        };
        let (chosen, diagnostic) = match choose {
            true => {
                let (chosen, diagnostic) = self.choose_at(&path, &text, &index, range.start, &diagnostics);
                known_as =
                    diagnostic.as_ref().and_then(|d| self.known_external(&path, d)).map(|k| (k.1, k.2));
                (chosen, diagnostic)
            }
            false => (None, diagnostic),
        };
        let (start, end) = match &diagnostic {
            Some(d) => {
                let start = index.offset(&text, d.range.start, self.encoding);
                (start, index.offset(&text, d.range.end, self.encoding).max(start))
            }
            _ => (start, end),
        };
        let (range, problem) = match diagnostic {
            Some(d) => {
                let at = index.offset(&text, d.range.start, self.encoding);
                let symbol = classify::symbol_at(language, &tree, &text, at);
                let tool = d.tool.clone().unwrap_or_else(|| "editor".to_owned());
                let (fingerprint, category) = known_as.unwrap_or_else(|| {
                    let category = classify::external::category(&tool, d.code.as_deref(), &d.message);
                    let message = classify::external::fingerprint_message(&d.message);
                    (
                        classify::fingerprint(&message, category, symbol.as_deref()),
                        category.as_str().to_owned(),
                    )
                });
                (
                    start..end,
                    Problem {
                        fingerprint,
                        message: d.message,
                        category,
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
                let line = range.start.line;
                let on_line = |d: &&classify::Diagnostic| {
                    index.range(&text, d.range.clone(), self.encoding).start.line == line
                };
                let d = chosen
                    .map(|i| &diagnostics[i])
                    .or_else(|| {
                        let fingerprint = fingerprint.as_deref()?;
                        diagnostics.iter().filter(on_line).find(|d| d.fingerprint == fingerprint)
                    })
                    .or_else(|| {
                        let message = message.as_deref()?;
                        diagnostics.iter().filter(on_line).find(|d| d.message == message)
                    })
                    .or_else(|| diagnostics.iter().find(|d| d.range.start <= end && start <= d.range.end))
                    .or_else(|| diagnostics.iter().find(on_line))
                    .ok_or_else(|| {
                        let message = format!("no diagnostic at {rel}:{}", range.start.line + 1);
                        Refused::new(RefusedKind::NoDiagnostic, message)
                    })?;
                (d.range.clone(), problem_of(d))
            }
        };
        // What other tools say about the same lines.
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() as u32;
        let lines = (line_of(range.start), line_of(range.end));
        let mut problem = problem;
        problem.others = self.external_on_lines(&path, lines, &problem.fingerprint);
        for d in &diagnostics {
            let line = line_of(d.range.start);
            if d.fingerprint != problem.fingerprint && lines.0 <= line && line <= lines.1 {
                problem.others.push(format!("{}: {}", d.source, d.message));
            }
        }
        Ok(Job {
            index: self.symbol_index(language),
            providers,
            root: self.root.clone(),
            path,
            rel,
            language,
            text,
            tree,
            range,
            problem,
            max_size: self.config.max_file_size,
            dry_run: false,
            encoding: self.encoding,
            budget: crate::escalate::context::Budget::default(),
            // `acas serve` started by a workflow step escalates for the run's agent.
            agent: self.acting_for.as_ref().map(|a| a.agent.clone()),
            session: self.acting_for.as_ref().and_then(|a| a.session.clone()),
        })
    }

    /// The diagnostic another tool reported on `path` that the client sent back: the one on
    /// the same line with the same message, with the range it was reported with, its
    /// fingerprint and its category.
    fn known_external(
        &self,
        path: &Path,
        sent: &ExternalDiagnostic,
    ) -> Option<(ExternalDiagnostic, String, String)> {
        let sources = self.external_current.get(path)?;
        sources.iter().find_map(|(source, list)| {
            list.iter()
                .find(|e| {
                    e.diagnostic.range.start.line == sent.range.start.line
                        && e.diagnostic.message == sent.message
                        && sent
                            .tool
                            .as_deref()
                            .is_none_or(|t| t == source || e.diagnostic.tool.as_deref() == Some(t))
                })
                .map(|e| {
                    let diagnostic = ExternalDiagnostic {
                        tool: Some(e.diagnostic.tool.clone().unwrap_or_else(|| source.clone())),
                        ..e.diagnostic.clone()
                    };
                    (diagnostic, e.fingerprint.clone(), e.category.clone())
                })
        })
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

    /// The workspace's symbol index of `language`, and what to refresh it with.
    fn symbol_index(&mut self, language: Language) -> Index {
        match self.symbols.get(&language) {
            Some(index) => {
                let changed = self.symbols_stale.remove(&language).unwrap_or_default();
                Index::Shared {
                    index: index.clone(),
                    refresh: IndexRefresh::Changed(changed.into_iter().collect()),
                    store: self.store.clone(),
                }
            }
            None => {
                let files = self.known_files_of(language);
                let index = SharedIndexLock::default();
                self.symbols.insert(language, index.clone());
                Index::Shared { index, refresh: IndexRefresh::Build(files), store: self.store.clone() }
            }
        }
    }

    fn known_files_of(&self, language: Language) -> Vec<PathBuf> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.iter().filter(|p| Language::from_path(p) == Some(language)).cloned().collect()
    }

    /// Once the initial walk is done: loads the symbol index of each language it found from the
    /// store, on a thread of its own, indexing again only the files that changed since they were
    /// stored. Each index is locked from now until it is loaded, so that an escalation asked
    /// meanwhile waits for it rather than building its own.
    pub(super) fn load_symbol_indexes(&mut self) {
        if !self.symbols_at_start {
            return;
        }
        let mut languages: Vec<Language> = {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            known.iter().filter_map(|p| Language::from_path(p)).collect::<HashSet<_>>().into_iter().collect()
        };
        languages.retain(|l| *l != Language::Json && !self.symbols.contains_key(l));
        languages.sort_by_key(|l| l.id());
        let mut loads = Vec::new();
        for language in languages {
            let index = SharedIndexLock::default();
            let Ok(guard) = index.clone().try_lock_owned() else { continue };
            self.symbols.insert(language, index);
            loads.push((language, guard, self.known_files_of(language)));
        }
        if loads.is_empty() {
            return;
        }
        let (store, root, max_size) = (self.store.clone(), self.root.clone(), self.config.max_file_size);
        tokio::task::spawn_blocking(move || {
            for (language, guard, files) in loads {
                let started = std::time::Instant::now();
                let synced = assist::load_at_start(guard, store.as_ref(), &root, &files, max_size);
                tracing::info!(
                    "symbol index of {} loaded in {:.0?}: {} files from the store, {} parsed, {} dropped",
                    language.id(),
                    started.elapsed(),
                    synced.reused,
                    synced.tagged,
                    synced.dropped,
                );
            }
        });
    }

    /// The symbol indexes for status displays: `busy` while one is loaded or refreshed, else
    /// what loading each at start and its last escalation parsed.
    pub(super) fn symbols_status(&self) -> Option<(&'static str, &'static str, Option<String>)> {
        if !self.symbols_at_start && self.symbols.is_empty() {
            return None;
        }
        let mut languages: Vec<(&Language, &SharedIndexLock)> = self.symbols.iter().collect();
        languages.sort_by_key(|(l, _)| l.id());
        let mut busy = false;
        let mut parts = Vec::new();
        for (language, index) in languages {
            let Ok(shared) = index.try_lock() else {
                busy = true;
                parts.push(format!("{}: loading", language.id()));
                continue;
            };
            let mut part = format!("{}: {} files", language.id(), shared.index.files());
            if let Some(start) = shared.at_start {
                part.push_str(&format!(
                    ", {} from the store and {} parsed at start",
                    start.reused, start.tagged
                ));
            }
            if let Some(last) = shared.last_escalation {
                part.push_str(&format!(", {} parsed by the last escalation", last.tagged));
            }
            parts.push(part);
        }
        let detail = (!parts.is_empty()).then(|| parts.join("; "));
        Some(("symbols", if busy { "busy" } else { "ok" }, detail))
    }

    /// Notes a changed file for its language's symbol index, which the next escalation of that
    /// language brings up to date.
    pub(super) fn symbols_changed(&mut self, change: &watch::Change) {
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

    /// Escalates by rule, without a request: the answer appears on the file like any other.
    pub(super) fn escalate_by_rule(
        &mut self,
        path: PathBuf,
        range: TextRange,
        external: Option<ExternalDiagnostic>,
    ) {
        let request = EscalateRequest {
            path,
            range,
            diagnostic: external,
            provider: None,
            choose: false,
            fingerprint: None,
        };
        self.escalation_request(request, Then::Rule);
    }

    fn run_by_rule(&mut self, job: Job, mark: Option<Mark>) {
        tracing::info!("escalating {} by rule: {}", job.rel, job.problem.message);
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let (root, path, text, range, problem) = (
                job.root.clone(),
                job.path.clone(),
                job.text.clone(),
                job.range.clone(),
                job.problem.clone(),
            );
            let (max_size, encoding) = (job.max_size, job.encoding);
            let cancel = CancellationToken::new();
            let result = match assist::escalate(job, &mut |_, _| {}, &cancel).await {
                Ok(Outcome::Explained(explained)) => {
                    let fix = fix_edits(&root, &path, &text, &explained, max_size, encoding).await;
                    Ok((explained, fix))
                }
                Ok(Outcome::DryRun { .. }) => unreachable!("rules send"),
                Err(error) => Err(error.to_string()),
            };
            handle.send(Event::Escalated(Box::new(Escalated {
                path,
                text,
                range,
                mark,
                problem,
                result,
                by: Asker::Rule,
            })));
        });
    }

    /// Shows a finished escalation on its file, or tells why it failed.
    pub(super) fn escalated(&mut self, escalated: Escalated) {
        let Escalated { path, text, range, mark, problem, result, by } = escalated;
        match result {
            Ok((explained, fix)) => {
                let shown = self.escalation_done(&path, &text, range, mark, &problem, &explained, fix);
                if let Asker::Editor(reply) = by {
                    let _ = reply.send(shown);
                }
            }
            Err(error) => {
                self.escalation_failed(&path, &problem, &error);
                if let Asker::Rule = by {
                    self.message(
                        MessageLevel::Warning,
                        format!("ACAS could not escalate {}: {error}", path.display()),
                    );
                }
            }
        }
    }

    /// Tells the workflow triggers that an escalation failed.
    fn escalation_failed(&self, path: &Path, problem: &Problem, error: &str) {
        self.workflow_triggers_escalation(crate::workflow::triggers::escalation::EscalationEvent {
            outcome: crate::workflow::definition::EscalationOutcome::Failed,
            path: relative(&self.root, path),
            fingerprint: problem.fingerprint.clone(),
            provider: None,
            message: format!("{}: {error}", problem.message),
        });
    }

    /// Shows an escalation's answer on the file as it is now: placed on `text` (at `mark` of
    /// the open document, when it was one), it moves with the edits made since; an answer whose
    /// error is gone from the file (edited away, or only in a buffer closed since) is not shown.
    #[allow(clippy::too_many_arguments)]
    fn escalation_done(
        &mut self,
        path: &Path,
        text: &str,
        range: Range<usize>,
        mark: Option<Mark>,
        problem: &Problem,
        explained: &Explained,
        fix: Option<NoteFix>,
    ) -> Shown {
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
        let fix_id = format!("fix-{:x}-{}", now_ms(), notes_counter());
        let (range, fix) =
            self.placed_now(path, text, range, mark, &problem.fingerprint, explained.fix.as_ref().and(fix));
        let mut note = Note {
            fix_id: fix_id.clone(),
            about: format!("{}: {}", problem.source, problem.message),
            range: range.unwrap_or_default(),
            explanation: explained.explanation.clone(),
            fingerprint: problem.fingerprint.clone(),
            category: problem.category.clone(),
            provider: explained.provider.clone(),
            model: explained.model.clone(),
            cost_micros: explained.cost_micros,
            cached: explained.cached,
            fix: None,
            fix_rejected: explained.fix_rejected.clone(),
            verification: Verification::Parses,
            applied: false,
        };
        match fix {
            Ok(fix) => note.fix = fix,
            Err(why) => note.fix_rejected = Some(why),
        }
        let shown = Shown {
            fix_id: note.fix.as_ref().map(|_| fix_id.clone()),
            fix_rejected: note.fix_rejected.clone(),
        };
        if range.is_none() || !self.present_fingerprints(path).contains(&note.fingerprint) {
            tracing::info!(
                "not showing the answer about {}: its error is no longer in the file",
                relative(&self.root, path)
            );
            self.notes.retire(note);
            return Shown {
                fix_id: None,
                fix_rejected: Some("its error is no longer in the file".to_owned()),
            };
        }
        if note.fix.is_some() {
            self.record_fix(&note, store::Outcome::Offered);
        }
        let to_check = note.fix.is_some().then(|| (note.fix_id.clone(), note.fingerprint.clone()));
        self.notes.add(path, note);
        if let Some((fix_id, fingerprint)) = to_check {
            self.verify_fix_with_checker(path, &fix_id, &fingerprint);
        }
        self.republish(path);
        shown
    }

    /// Where the bytes `range` of `text` (the file's text as an escalation saw it, at `mark`
    /// of the open document when it was one) are now, and where the same file's edits of
    /// `fix` are: `None` when that text was edited away, `Err` with why the fix is withdrawn.
    fn placed_now(
        &self,
        path: &Path,
        text: &str,
        range: Range<usize>,
        mark: Option<Mark>,
        fingerprint: &str,
        fix: Option<NoteFix>,
    ) -> (Option<TextRange>, Result<Option<NoteFix>, String>) {
        let encoding = self.encoding;
        let then = LineIndex::new(text);
        let Some(open) = self.open.get(path) else {
            if mark.is_some() {
                // The buffer it was asked about is closed: the error as the file on disk has it.
                let on_disk = self
                    .disk_published
                    .get(path)
                    .and_then(|d| d.iter().find(|d| d.fingerprint == fingerprint).map(|d| d.range));
                return (on_disk.or(Some(then.range(text, range, encoding))), Ok(fix));
            }
            return (Some(then.range(text, range, encoding)), Ok(fix));
        };
        let between;
        let edits: &[Edit] = match mark.and_then(|m| open.journal.since(m)) {
            Some(edits) => edits,
            None => {
                between = [Edit::between(text, open.doc.text())];
                &between
            }
        };
        let now = |r: Range<usize>| {
            let moved = edits.iter().try_fold(r, |r, e| e.map(r))?;
            Some(open.index.range(open.doc.text(), moved, encoding))
        };
        let bytes = |r: TextRange| {
            let start = then.offset(text, r.start, encoding);
            start..then.offset(text, r.end, encoding).max(start)
        };
        let fix = match fix {
            Some(mut fix) => {
                let mut lost = false;
                for edit in fix.edits.iter_mut().filter(|e| e.path == path) {
                    match now(bytes(edit.range)) {
                        Some(range) => edit.range = range,
                        None => lost = true,
                    }
                }
                match lost {
                    true => Err("the text it changes was edited while the AI answered".to_owned()),
                    false => Ok(Some(fix)),
                }
            }
            None => Ok(None),
        };
        (now(range), fix)
    }

    /// The fingerprints of the errors `path` has now: of the open document, else of the file
    /// on disk, and those other tools reported.
    fn present_fingerprints(&self, path: &Path) -> HashSet<String> {
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
        present
    }

    /// Moves the AI notes of the open document `path` through `edits`, which turned `old`
    /// (indexed by `old_index`) into its text; a note whose text was edited away goes.
    pub(super) fn notes_follow(&mut self, path: &Path, old: &str, old_index: &LineIndex, edits: &[Edit]) {
        let Some(open) = self.open.get(path) else { return };
        let encoding = self.encoding;
        let (text, index) = (open.doc.text(), &open.index);
        let to = |r: TextRange| {
            let start = old_index.offset(old, r.start, encoding);
            let end = old_index.offset(old, r.end, encoding).max(start);
            let moved = edits.iter().try_fold(start..end, |r, e| e.map(r))?;
            Some(index.range(text, moved, encoding))
        };
        self.notes.relocate(path, &to);
    }

    /// Retires the AI notes of `path` whose error is gone (an applied fix whose error is gone
    /// resolved it), and notices resolved fixes that were undone (reverted).
    pub(super) fn retire_notes(&mut self, path: &Path) {
        if !self.notes.has(path) && !self.notes.watching_reverts(path) {
            return;
        }
        let present = self.present_fingerprints(path);
        if self.notes.watching_reverts(path) {
            match self.open.get(path) {
                Some(open) => {
                    let text = open.doc.text().to_owned();
                    self.notice_reverts(path, &present, &text);
                }
                None => {
                    let (file, root, max_size, present) =
                        (path.to_path_buf(), self.root.clone(), self.config.max_file_size, present.clone());
                    self.off_loop(
                        "reading a file to notice undone fixes",
                        move || {
                            files::read_beneath(&root, &file, max_size).ok().map(|text| (file, present, text))
                        },
                        |read| match read {
                            Some((path, present, text)) => Done::Reverts { path, present, text },
                            None => Done::Nothing,
                        },
                    );
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

    /// Records the resolved fixes of `path` that `text` shows undone (their error is back and
    /// the text they replaced is in the file again).
    pub(super) fn notice_reverts(&mut self, path: &Path, present: &HashSet<String>, text: &str) {
        for note in self.notes.reverted(path, &|fp| present.contains(fp), text) {
            tracing::info!("AI fix {} was undone", note.fix_id);
            self.record_fix(&note, store::Outcome::Reverted);
        }
    }

    pub(super) fn record_fix(&self, note: &Note, outcome: store::Outcome) {
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
            verified: note.fix.as_ref().map(|_| note.verification.level()),
        })]);
    }

    /// The tools' own fixes and the verified AI fixes overlapping `range`, with their edits of
    /// open documents checked against the current text; edits of other files are left to check
    /// on disk.
    pub(super) fn quick_fixes(&self, path: &Path, range: TextRange) -> Vec<QuickFix> {
        let from_tools = self.checker_fixes(path, range).into_iter().filter_map(|(title, edits, fixed)| {
            let on_disk = self.unchanged(&edits)?;
            Some(QuickFix { fix_id: None, title, edits, on_disk, fixes: Some(fixed) })
        });
        let from_ai = self.notes.at(path, range).into_iter().filter_map(|note| {
            let fix = note.fix.as_ref()?;
            let on_disk = self.unchanged(&fix.edits)?;
            Some(QuickFix {
                fix_id: Some(note.fix_id.clone()),
                // How the fix was verified, where the editor lists it.
                title: format!("Apply AI fix: {} {}", fix.description, note.verification.title()),
                edits: fix.edits.clone(),
                on_disk,
                fixes: None,
            })
        });
        from_tools.chain(from_ai).collect()
    }

    /// `None` when an edit of an open document no longer finds the text it replaces; else the
    /// edits of files that are not open, to check on disk.
    fn unchanged(&self, edits: &[NoteEdit]) -> Option<Vec<NoteEdit>> {
        let mut on_disk = Vec::new();
        for edit in edits {
            match self.open.get(&edit.path) {
                Some(open) => {
                    let start = open.index.offset(open.doc.text(), edit.range.start, self.encoding);
                    let end = open.index.offset(open.doc.text(), edit.range.end, self.encoding);
                    if open.doc.text().get(start..end) != Some(edit.old.as_str()) {
                        return None;
                    }
                }
                None => on_disk.push(edit.clone()),
            }
        }
        Some(on_disk)
    }

    /// The hover text at `position`: the next runs of a workflow's `cron:`, or an AI note.
    /// `Err` with the path of a closed workflow file, whose hover is read from disk.
    pub(super) fn hover(
        &self,
        path: &Path,
        position: Position,
    ) -> Result<Option<(TextRange, String)>, PathBuf> {
        if let Some(found) = self.workflow_hover(path, position)? {
            return Ok(Some(found));
        }
        let here = TextRange { start: position, end: position };
        Ok(self.notes.at(path, here).first().map(|n| (n.range, n.hover())))
    }

    /// What the developer did with an AI fix.
    pub(super) fn fix_feedback(&mut self, fix_id: &str, outcome: store::Outcome) -> Result<(), Refused> {
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
}

/// A tool's fix or a verified AI fix offered as a quick fix; the edits in `on_disk` are of files
/// that are not open, and must still find their old text on disk.
#[derive(Debug, Clone)]
pub struct QuickFix {
    /// The AI fix's id, to record what became of it; `None` for a tool's own fix.
    pub fix_id: Option<String>,
    pub title: String,
    pub edits: Vec<NoteEdit>,
    pub on_disk: Vec<NoteEdit>,
    /// For a tool's own fix: the one diagnostic it fixes (a tool's fix of another problem on
    /// the same line is not a fix of this one).
    pub fixes: Option<Fixed>,
}

/// The diagnostic a tool's fix is for, as the editor was given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixed {
    pub range: TextRange,
    pub source: String,
    pub message: String,
}

/// A parsed document as an escalation sees it.
fn snapshot(doc: &Document, mark: Option<Mark>) -> Snapshot {
    Snapshot {
        mark,
        language: doc.language(),
        text: doc.text().to_owned(),
        tree: doc.tree().clone(),
        diagnostics: doc.diagnostics().to_vec(),
    }
}

/// The problem of one of ACAS's own diagnostics.
fn problem_of(d: &classify::Diagnostic) -> Problem {
    Problem::of(d, d.related.iter().map(|r| r.message.clone()).collect())
}

fn notes_counter() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
