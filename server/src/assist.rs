//! AI answers shown in the editor, and what became of them.
//!
//! An escalation's answer becomes a [`Note`] on the file: an `acas-ai` diagnostic whose first
//! sentence is the message (the full explanation goes to hover), and, when the fix passed
//! verification, a quick fix. A note lives until its error's fingerprint is gone from the file;
//! if its fix had been applied by then, that is recorded as resolved.
//!
//! [`escalate`] is the one entry point of an escalation, for the editor, the loop's rules and
//! `acas explain` alike: it takes a [`Job`] (a snapshot of the file, the problem, where the
//! providers and the symbol index come from, dry run or not) and returns its [`Outcome`]. It
//! runs off the workspace loop. It knows nothing of LSP or of the loop.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;
use tree_sitter::Tree;

use crate::analysis::FileDiagnostic;
use crate::classify::{Category, Language, Severity};
use crate::config::Escalation as EscalationConfig;
use crate::escalate::StreamEvent;
use crate::escalate::answer::VerifiedFix;
use crate::escalate::context::{self, Budget, Problem, Site};
use crate::escalate::engine::{EscalateError, Escalator, Explained, Prepared};
use crate::escalate::symbols::{SymbolIndex, Synced};
use crate::store::Store;
use crate::text::{LineIndex, PositionEncoding, TextRange};
use crate::watch::IgnoreRules;

#[derive(Debug, Clone)]
pub struct NoteEdit {
    pub path: PathBuf,
    pub range: TextRange,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone)]
pub struct NoteFix {
    pub description: String,
    pub edits: Vec<NoteEdit>,
}

/// How far a fix was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// It applied in memory, and every file it edits reparsed without a new syntax error.
    Parses,
    /// It parses, and `checker`, which reported the error, is running on a scratch copy with it.
    Checking { checker: String },
    /// `checker` no longer reports the error with the fix, and reports no new error.
    Checked { checker: String },
    /// It parses, but `checker` still reports the error or new ones (`why`), or could not run.
    CheckFailed { checker: String, why: String },
}

impl Verification {
    /// How the quick fix's title says it was verified.
    pub fn title(&self) -> String {
        match self {
            Verification::Parses => "(reparsed clean)".to_owned(),
            Verification::Checking { checker } => format!("(reparsed clean; {checker} running)"),
            Verification::Checked { checker } => format!("(verified by {checker})"),
            Verification::CheckFailed { checker, .. } => {
                format!("(reparsed clean; not verified by {checker})")
            }
        }
    }

    /// The sentence hover shows.
    pub fn sentence(&self) -> String {
        match self {
            Verification::Parses => "verified: applies and parses".to_owned(),
            Verification::Checking { checker } => format!("applies and parses; `{checker}` is checking it"),
            Verification::Checked { checker } => {
                format!("verified: `{checker}` no longer reports the error with it, and reports nothing new")
            }
            Verification::CheckFailed { checker, why } => {
                format!("applies and parses, but `{checker}`: {why}")
            }
        }
    }

    /// The level recorded with the fix's outcomes.
    pub fn level(&self) -> String {
        match self {
            Verification::Parses | Verification::Checking { .. } => "parses".to_owned(),
            Verification::Checked { checker } => format!("checker:{checker}"),
            Verification::CheckFailed { checker, .. } => format!("checker-failed:{checker}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Note {
    pub fix_id: String,
    /// The diagnostic it explains, as `source: message`.
    pub about: String,
    pub range: TextRange,
    pub explanation: String,
    pub fingerprint: String,
    pub category: String,
    pub provider: String,
    pub model: String,
    pub cost_micros: u64,
    pub cached: bool,
    pub fix: Option<NoteFix>,
    pub fix_rejected: Option<String>,
    /// How far `fix` was verified.
    pub verification: Verification,
    pub applied: bool,
}

impl Note {
    /// The one-line summary: the explanation's first sentence.
    pub fn summary(&self) -> String {
        let text = self.explanation.trim();
        let end = text
            .char_indices()
            .find(|&(i, c)| c == '\n' || (c == '.' && text[i + 1..].starts_with([' ', '\n'])))
            .map_or(text.len(), |(i, c)| if c == '.' { i + 1 } else { i });
        text[..end].to_owned()
    }

    /// Markdown for hover.
    pub fn hover(&self) -> String {
        let mut out =
            format!("**ACAS AI** ({}, {})\n\n{}\n", self.provider, self.model, self.explanation.trim());
        match (&self.fix, &self.fix_rejected) {
            (Some(fix), _) => out.push_str(&format!(
                "\n**Quick fix:** {} ({})\n",
                fix.description,
                self.verification.sentence()
            )),
            (None, Some(why)) => out.push_str(&format!("\n*No fix offered:* {why}\n")),
            (None, None) => {}
        }
        let cost = if self.cached {
            "from the cache".to_owned()
        } else {
            format!("${:.4}", crate::escalate::cost::usd(self.cost_micros))
        };
        out.push_str(&format!("\n*{cost}*"));
        out
    }

    fn diagnostic(&self) -> FileDiagnostic {
        FileDiagnostic {
            range: self.range,
            severity: Severity::Information,
            category: category(&self.category),
            message: self.summary(),
            source: "acas-ai".to_owned(),
            code: None,
            fingerprint: self.fingerprint.clone(),
            symbol: None,
            related: vec![(self.range, format!("explains {}", self.about))],
            fix_id: Some(self.fix_id.clone()),
        }
    }
}

fn category(name: &str) -> Category {
    [
        Category::Syntax,
        Category::Type,
        Category::Name,
        Category::Import,
        Category::Ownership,
        Category::Lint,
        Category::Test,
        Category::Runtime,
        Category::Build,
    ]
    .into_iter()
    .find(|c| c.as_str() == name)
    .unwrap_or(Category::Other)
}

/// Notes of every file.
#[derive(Debug, Default)]
pub struct Notes {
    by_path: HashMap<PathBuf, Vec<Note>>,
    /// Notes whose error went away, kept a while: the editor applies a quick fix's edit before
    /// it runs the fix's command, so the error is often gone before "applied" arrives.
    retired: Vec<(std::time::Instant, Note)>,
    /// Applied fixes that resolved their error, kept a while to notice when they are undone.
    resolved: Vec<(std::time::Instant, PathBuf, Note)>,
}

/// How long a retired note can still receive feedback.
const RETIRED_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// How long after resolving its error an undone fix counts as reverted.
const REVERT_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

impl Notes {
    /// Adds a note, replacing an earlier one for the same fingerprint.
    pub fn add(&mut self, path: &Path, note: Note) {
        let notes = self.by_path.entry(path.to_path_buf()).or_default();
        notes.retain(|n| n.fingerprint != note.fingerprint);
        notes.push(note);
    }

    pub fn diagnostics(&self, path: &Path) -> Vec<FileDiagnostic> {
        self.by_path.get(path).map_or_else(Vec::new, |notes| notes.iter().map(Note::diagnostic).collect())
    }

    pub fn at(&self, path: &Path, range: TextRange) -> Vec<&Note> {
        self.by_path
            .get(path)
            .map(|notes| {
                notes.iter().filter(|n| n.range.start <= range.end && range.start <= n.range.end).collect()
            })
            .unwrap_or_default()
    }

    pub fn find_mut(&mut self, fix_id: &str) -> Option<&mut Note> {
        self.by_path.values_mut().flat_map(|n| n.iter_mut()).find(|n| n.fix_id == fix_id)
    }

    pub fn remove(&mut self, fix_id: &str) -> Option<Note> {
        for notes in self.by_path.values_mut() {
            if let Some(i) = notes.iter().position(|n| n.fix_id == fix_id) {
                return Some(notes.remove(i));
            }
        }
        None
    }

    pub fn path_of(&self, fix_id: &str) -> Option<PathBuf> {
        self.by_path
            .iter()
            .find(|(_, notes)| notes.iter().any(|n| n.fix_id == fix_id))
            .map(|(p, _)| p.clone())
    }

    pub fn has(&self, path: &Path) -> bool {
        self.by_path.get(path).is_some_and(|n| !n.is_empty())
    }

    /// Drops the notes of `path` whose error is gone, returning them.
    pub fn gone(&mut self, path: &Path, present: &dyn Fn(&str) -> bool) -> Vec<Note> {
        let Some(notes) = self.by_path.get_mut(path) else { return Vec::new() };
        let (gone, kept): (Vec<Note>, Vec<Note>) =
            std::mem::take(notes).into_iter().partition(|n| !present(&n.fingerprint));
        *notes = kept;
        let now = std::time::Instant::now();
        self.retired.retain(|(at, _)| now.duration_since(*at) < RETIRED_FOR);
        self.retired.extend(gone.iter().map(|n| (now, n.clone())));
        gone
    }

    /// Keeps a note that is not shown (its error went before it could be) for feedback.
    pub fn retire(&mut self, note: Note) {
        let now = std::time::Instant::now();
        self.retired.retain(|(at, _)| now.duration_since(*at) < RETIRED_FOR);
        self.retired.push((now, note));
    }

    /// Moves the notes of `path`, and their fixes' edits of it, to where `to` says the text
    /// they were placed on is now. A note `to` finds no place for goes (its text was edited
    /// away).
    pub fn relocate(&mut self, path: &Path, to: &dyn Fn(TextRange) -> Option<TextRange>) {
        let Some(notes) = self.by_path.get_mut(path) else { return };
        let mut gone = Vec::new();
        notes.retain_mut(|note| {
            let Some(range) = to(note.range) else {
                gone.push(note.clone());
                return false;
            };
            note.range = range;
            // An edit whose text was replaced stays where it was: it is offered again only if
            // its old text is found there (applying the fix is such an edit).
            for edit in note.fix.iter_mut().flat_map(|f| &mut f.edits).filter(|e| e.path == path) {
                if let Some(range) = to(edit.range) {
                    edit.range = range;
                }
            }
            true
        });
        for note in gone {
            self.retire(note);
        }
    }

    /// Remembers an applied fix that resolved its error on `path`.
    pub fn resolved(&mut self, path: &Path, note: Note) {
        let now = std::time::Instant::now();
        self.resolved.retain(|(at, _, n)| now.duration_since(*at) < REVERT_WINDOW && n.fix_id != note.fix_id);
        self.resolved.push((now, path.to_path_buf(), note));
    }

    /// Whether `path` has resolved fixes that could still be reverted.
    pub fn watching_reverts(&self, path: &Path) -> bool {
        self.resolved.iter().any(|(_, p, _)| p == path)
    }

    /// The resolved fixes of `path` that were undone: their error is back and the text their
    /// edits replaced is in the file again. Each is reported once.
    pub fn reverted(&mut self, path: &Path, present: &dyn Fn(&str) -> bool, text: &str) -> Vec<Note> {
        let now = std::time::Instant::now();
        self.resolved.retain(|(at, _, _)| now.duration_since(*at) < REVERT_WINDOW);
        let undone = |note: &Note| {
            present(&note.fingerprint)
                && note.fix.as_ref().is_some_and(|fix| {
                    fix.edits
                        .iter()
                        .filter(|e| e.path == path)
                        .all(|e| e.old.is_empty() || text.contains(&e.old))
                })
        };
        let (reverted, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.resolved).into_iter().partition(|(_, p, n)| p == path && undone(n));
        self.resolved = kept;
        reverted.into_iter().map(|(_, _, note)| note).collect()
    }

    /// A note whose error went away recently.
    pub fn take_retired(&mut self, fix_id: &str) -> Option<Note> {
        let i = self.retired.iter().position(|(_, n)| n.fix_id == fix_id)?;
        Some(self.retired.remove(i).1)
    }
}

/// Everything one escalation needs: the workspace, the file as it is now, the problem, where the
/// providers and the symbol index come from, and whether to send anything. The editor's
/// `acas.escalate`, the loop's rules and `acas explain` all build one and call [`escalate`].
pub struct Job {
    pub root: PathBuf,
    pub path: PathBuf,
    pub rel: String,
    pub language: Language,
    /// The file's text and tree as the escalation sees them (the editor's, when open).
    pub text: String,
    pub tree: Tree,
    /// The bytes of the problem in `text`.
    pub range: Range<usize>,
    pub problem: Problem,
    pub providers: Providers,
    pub index: Index,
    pub max_size: u64,
    /// Render and redact the request, estimate its cost, send nothing.
    pub dry_run: bool,
    /// How the editor counts columns, for the fix's edits.
    pub encoding: PositionEncoding,
    /// How much context to gather, in estimated tokens.
    pub budget: Budget,
    /// The agent the escalation is for, as policies name it; `None` for a person. Its spend
    /// limit is asked before anything is sent, and the call is recorded as its spend.
    pub agent: Option<String>,
    /// The agent's session, as decision records name it (`claude-code/1a2b3c4d`).
    pub session: Option<String>,
}

/// Where an escalation's providers come from.
pub enum Providers {
    /// An engine already built, whose chain keeps its retry and cooldown state across
    /// escalations.
    Ready(Arc<Escalator>),
    /// Built for this escalation from the configuration (only the provider named `only`, when
    /// given); a dry run builds an inspector, which needs no key.
    Build { config: Box<EscalationConfig>, store: Option<Store>, only: Option<String> },
}

impl Providers {
    /// The engine to ask: the one ready, or one built now (which reads the store: call it off
    /// the loop). A dry run builds an inspector.
    pub fn resolve(&self, dry_run: bool) -> Result<Arc<Escalator>, EscalateError> {
        match self {
            Providers::Ready(escalator) => Ok(escalator.clone()),
            Providers::Build { config, store, only } => {
                let env = |name: &str| std::env::var(name).ok();
                let build = if dry_run { Escalator::inspector } else { Escalator::new };
                Ok(Arc::new(build(config.as_ref(), &env, store.clone(), only.as_deref())?))
            }
        }
    }
}

/// A workspace's symbol index of one language, shared by its escalations, and what bringing it
/// up to date did: when it was loaded at start, and for the last escalation that read it.
#[derive(Debug, Default)]
pub struct SharedIndex {
    pub index: SymbolIndex,
    pub at_start: Option<Synced>,
    pub last_escalation: Option<Synced>,
}

/// A [`SharedIndex`] behind the lock that escalations wait on while it is loaded or refreshed
/// (an asynchronous lock, so that its loading can hold it from the moment it is queued).
pub type SharedIndexLock = Arc<tokio::sync::Mutex<SharedIndex>>;

/// Loads the index of `files` from the store, indexing again only the files that changed since
/// they were stored, into the index `guard` holds (call it off the loop: it reads the store and
/// the disk). Escalations of its language wait until it is done.
pub fn load_at_start(
    mut guard: tokio::sync::OwnedMutexGuard<SharedIndex>,
    store: Option<&Store>,
    root: &Path,
    files: &[PathBuf],
    max_size: u64,
) -> Synced {
    let (index, synced) = SymbolIndex::load(store, root, files, max_size);
    guard.index = index;
    guard.at_start = Some(synced);
    synced
}

/// Where an escalation's symbol index comes from.
pub enum Index {
    /// The workspace's index of the error's language, shared by escalations, and what to bring
    /// it up to date with before reading it.
    Shared { index: SharedIndexLock, refresh: IndexRefresh, store: Option<Store> },
    /// Built for this escalation from a walk of the workspace with these rules, from what the
    /// store holds when there is one (and kept there).
    Walk { rules: Arc<IgnoreRules>, store: Option<Store> },
}

/// How an escalation brings the symbol index up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexRefresh {
    /// The index is new: load it from the store, brought up to date with these files (all
    /// of them, when nothing is stored).
    Build(Vec<PathBuf>),
    /// These files changed (or vanished) since the index was last brought up to date.
    Changed(Vec<PathBuf>),
}

/// What an escalation gave.
#[derive(Debug)]
pub enum Outcome {
    /// A provider answered (or the cache did).
    Explained(Explained),
    /// A dry run: the request as it would leave, and the providers that could not be built.
    DryRun { prepared: Prepared, unavailable: Vec<(String, String)> },
}

/// Asks the policy whether `agent` may spend on a request now, counting today's spend on the
/// ledger `escalator` reserves on (the shared store's when one is configured), and records the
/// decision. Without a policy file nothing is read or recorded. Every front end's escalation for
/// an agent passes here: the MCP server's, `acas explain --agent` or inside a step, and `acas
/// serve` started by a step.
async fn spend_gate(
    escalator: &Arc<Escalator>,
    root: &Path,
    agent: &str,
    session: Option<&str>,
    cancel: &CancellationToken,
) -> Result<(), EscalateError> {
    let (owned, owned_root, owned_agent) = (escalator.clone(), root.to_path_buf(), agent.to_owned());
    let read = tokio::task::spawn_blocking(move || {
        let policy = crate::policy::Policy::load(&owned_root);
        if policy.is_absent() {
            return Ok((policy, (0.0, 0.0)));
        }
        owned.spent_today(&owned_agent).map(|spent| (policy, spent))
    })
    .await
    .map_err(|e| EscalateError::Internal(format!("reading the policy failed: {e}")))?;
    let (policy, (today_usd, agent_today_usd)) = read.map_err(|e| {
        EscalateError::SpendDenied(format!(
            "reading today's AI spend failed ({e}), so {agent}'s spend limit cannot be checked and nothing is sent; try again when the store answers"
        ))
    })?;
    let spend = crate::policy::Action::Spend { today_usd, agent_today_usd, request_usd: 0.0 };
    match crate::policy::approvals::enforce(root, &policy, agent, session, &spend, cancel).await {
        Ok(_) => Ok(()),
        Err(_) if cancel.is_cancelled() => Err(EscalateError::Cancelled),
        Err(refusal) => Err(EscalateError::SpendDenied(refusal)),
    }
}

/// Runs one escalation: builds the providers and the context on a blocking thread (reads of
/// disk and the store happen there), then, unless it is a dry run, asks the providers.
pub async fn escalate(
    job: Job,
    on_event: &mut (dyn FnMut(&str, StreamEvent) + Send),
    cancel: &CancellationToken,
) -> Result<Outcome, EscalateError> {
    let built = tokio::task::spawn_blocking(move || -> Result<_, EscalateError> {
        let escalator = job.providers.resolve(job.dry_run)?;
        let past = escalator.past_fixes(&job.problem.fingerprint);
        let site = Site {
            root: &job.root,
            path: &job.rel,
            language: job.language,
            text: &job.text,
            tree: &job.tree,
            range: job.range.clone(),
        };
        let read = |p: &str| {
            if p == job.rel {
                Some(job.text.clone())
            } else {
                crate::files::read_beneath(&job.root, &job.root.join(p), job.max_size).ok()
            }
        };
        let build_context = |index: &SymbolIndex| {
            context::build(&site, job.problem.clone(), index, escalator.redactor(), &read, past, job.budget)
        };
        let context = match &job.index {
            Index::Shared { index, refresh, store } => {
                // The index's loading at start, or a concurrent escalation of the same
                // language, holds it until it is current.
                let mut shared = index.blocking_lock();
                let synced = match refresh {
                    IndexRefresh::Build(files) => {
                        let (loaded, synced) =
                            SymbolIndex::load(store.as_ref(), &job.root, files, job.max_size);
                        shared.index = loaded;
                        synced
                    }
                    IndexRefresh::Changed(files) => {
                        shared.index.refresh(store.as_ref(), &job.root, files, job.max_size)
                    }
                };
                shared.last_escalation = Some(synced);
                tracing::debug!(?synced, "symbol index brought up to date");
                build_context(&shared.index)
            }
            Index::Walk { rules, store } => {
                let files = workspace_files(&job.root, rules, job.language);
                let (index, synced) = SymbolIndex::load(store.as_ref(), &job.root, &files, job.max_size);
                tracing::info!(
                    "symbol index, files: {} from the store, {} parsed, {} dropped",
                    synced.reused,
                    synced.tagged,
                    synced.dropped
                );
                build_context(&index)
            }
        };
        let mut prepared = escalator.prepare(&context)?;
        prepared.agent = job.agent.clone();
        Ok((escalator, prepared, job))
    })
    .await;
    let Ok(built) = built else {
        return Err(EscalateError::Internal("building the context failed; see the log".to_owned()));
    };
    let (escalator, prepared, job) = built?;
    if job.dry_run {
        return Ok(Outcome::DryRun { unavailable: escalator.unavailable().to_vec(), prepared });
    }
    if let Some(agent) = &job.agent {
        spend_gate(&escalator, &job.root, agent, job.session.as_deref(), cancel).await?;
    }
    let Job { text, rel, root, max_size, .. } = job;
    let default_path = rel.clone();
    let read = move |p: &str| {
        if p == rel {
            Some(text.clone())
        } else {
            crate::files::read_beneath(&root, &root.join(p), max_size).ok()
        }
    };
    escalator.run(&prepared, &default_path, &read, on_event, cancel).await.map(Outcome::Explained)
}

/// The nearest directory above `path` with `.acas` or `.git`, else its own directory.
pub fn workspace_root(path: &Path) -> PathBuf {
    let start = path.parent().unwrap_or(path);
    start
        .ancestors()
        .find(|d| d.join(".acas").is_dir() || d.join(".git").exists())
        .unwrap_or(start)
        .to_path_buf()
}

/// The diagnostic on `line` (zero-based): a syntax error ACAS finds now, else one another tool
/// reported and the store recorded.
pub fn problem_on_line(
    doc: &crate::classify::Document,
    rel: &str,
    line: u32,
    store: Option<&Store>,
) -> Option<(std::ops::Range<usize>, Problem)> {
    let text = doc.text();
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() as u32;
    if let Some(d) = doc.diagnostics().iter().find(|d| line_of(d.range.start) == line) {
        return Some((
            d.range.clone(),
            Problem::of(
                d,
                d.related
                    .iter()
                    .map(|r| format!("line {}: {}", line_of(r.range.start) + 1, r.message))
                    .collect(),
            ),
        ));
    }
    let store = store?;
    let rows = store
        .problems(&crate::store::ProblemQuery { path: Some(rel.to_owned()), ..Default::default() })
        .ok()?;
    let row = rows.into_iter().find(|r| r.locations.iter().any(|(p, l, _)| p == rel && *l == line))?;
    let (_, _, character) = row.locations.iter().find(|(p, l, _)| p == rel && *l == line)?.clone();
    let start = text.lines().take(line as usize).map(|l| l.len() + 1).sum::<usize>() + character as usize;
    let start = start.min(text.len());
    let symbol = crate::classify::symbol_at(doc.language(), doc.tree(), text, start);
    Some((
        start..start,
        Problem {
            message: row.message,
            category: row.category,
            severity: row.severity,
            source: row.source,
            code: None,
            fingerprint: row.fingerprint,
            symbol: row.symbol.or(symbol),
            related: Vec::new(),
            others: Vec::new(),
        },
    ))
}

/// The workspace's files of `language`, for the symbol index.
fn workspace_files(root: &Path, rules: &Arc<IgnoreRules>, language: Language) -> Vec<PathBuf> {
    let found = Mutex::new(Vec::new());
    crate::watch::walk(
        rules,
        root,
        &|f| {
            if Language::from_path(&f) == Some(language) {
                found.lock().unwrap_or_else(PoisonError::into_inner).push(f);
            }
        },
        &|_| {},
    );
    found.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// A verified fix as edits in lines and columns of each file: `text` is the error's file
/// (`path`) as the escalation saw it, other files are read from disk.
pub fn note_fix(
    root: &Path,
    path: &Path,
    text: &str,
    fix: &VerifiedFix,
    max_size: u64,
    encoding: PositionEncoding,
) -> NoteFix {
    NoteFix {
        description: fix.description.clone(),
        edits: fix
            .files
            .iter()
            .flat_map(|(rel, replacements)| {
                let file = root.join(rel);
                let content = if file == path {
                    Some(text.to_owned())
                } else {
                    crate::files::read_beneath(root, &file, max_size).ok()
                };
                let content = content.unwrap_or_default();
                let index = LineIndex::new(&content);
                replacements
                    .iter()
                    .map(|r| NoteEdit {
                        path: file.clone(),
                        range: index.range(&content, r.range.clone(), encoding),
                        old: content.get(r.range.clone()).unwrap_or_default().to_owned(),
                        new: r.new.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(explanation: &str) -> Note {
        Note {
            fix_id: "f1".into(),
            about: "rustc: mismatched types".into(),
            range: TextRange::default(),
            explanation: explanation.into(),
            fingerprint: "fp".into(),
            category: "type".into(),
            provider: "p".into(),
            model: "m".into(),
            cost_micros: 1234,
            cached: false,
            fix: None,
            fix_rejected: Some("it did not parse".into()),
            verification: Verification::Parses,
            applied: false,
        }
    }

    #[test]
    fn the_summary_is_the_first_sentence() {
        assert_eq!(note("The call is missing `)`. Add it.").summary(), "The call is missing `)`.");
        assert_eq!(note("Version 1.2 broke it\nmore").summary(), "Version 1.2 broke it");
        assert_eq!(note("No period").summary(), "No period");
        let hover = note("Because.").hover();
        assert!(hover.contains("*No fix offered:* it did not parse") && hover.contains("$0.0012"), "{hover}");
    }

    #[test]
    fn notes_go_when_their_error_does() {
        let mut notes = Notes::default();
        let path = Path::new("/w/a.rs");
        notes.add(path, note("x"));
        notes.add(path, Note { fingerprint: "other".into(), fix_id: "f2".into(), ..note("y") });
        assert_eq!(notes.diagnostics(path).len(), 2);
        let gone = notes.gone(path, &|fp| fp == "other");
        assert_eq!(gone.len(), 1);
        assert_eq!(notes.diagnostics(path)[0].fix_id.as_deref(), Some("f2"));
        assert!(notes.remove("f2").is_some());
        assert!(!notes.has(path));
    }
}
