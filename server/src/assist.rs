//! AI answers shown in the editor, and what became of them.
//!
//! An escalation's answer becomes a [`Note`] on the file: an `acas-ai` diagnostic whose first
//! sentence is the message (the full explanation goes to hover), and, when the fix passed
//! verification, a quick fix. A note lives until its error's fingerprint is gone from the file;
//! if its fix had been applied by then, that is recorded as resolved. [`run`] performs one
//! escalation off the workspace loop, on a snapshot.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;
use tree_sitter::Tree;

use crate::analysis::FileDiagnostic;
use crate::classify::{Category, Language, Severity};
use crate::escalate::StreamEvent;
use crate::escalate::context::{self, Budget, PastFix, Problem, Site};
use crate::escalate::engine::{EscalateError, Escalator, Explained};
use crate::escalate::symbols::SymbolIndex;
use crate::text::TextRange;

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
            (Some(fix), _) => out
                .push_str(&format!("\n**Quick fix:** {} (verified: applies and parses)\n", fix.description)),
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

/// Everything one escalation needs, taken from the workspace at the time it was asked.
pub struct Job {
    pub escalator: Arc<Escalator>,
    pub root: PathBuf,
    pub path: PathBuf,
    pub rel: String,
    pub language: Language,
    pub text: String,
    pub tree: Tree,
    pub range: Range<usize>,
    pub problem: Problem,
    pub past: Vec<PastFix>,
    /// The workspace's symbol index of the error's language, shared by escalations.
    pub index: Arc<Mutex<SymbolIndex>>,
    /// What to bring the index up to date with before reading it: every file of the language
    /// when the index is new, else the files that changed since the last escalation.
    pub index_refresh: IndexRefresh,
    pub max_size: u64,
}

/// How an escalation brings the symbol index up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexRefresh {
    /// The index is new: index all of these files.
    Build(Vec<PathBuf>),
    /// These files changed (or vanished) since the index was last brought up to date.
    Changed(Vec<PathBuf>),
}

/// Builds the context on a blocking thread, then asks the providers.
pub async fn run(
    job: Job,
    on_event: &mut (dyn FnMut(&str, StreamEvent) + Send),
    cancel: &CancellationToken,
) -> Result<Explained, EscalateError> {
    let escalator = job.escalator.clone();
    let built = tokio::task::spawn_blocking(move || {
        // A concurrent escalation of the same language waits here until the index is current.
        let mut index = job.index.lock().unwrap_or_else(PoisonError::into_inner);
        match &job.index_refresh {
            IndexRefresh::Build(files) => *index = SymbolIndex::build(&job.root, files, job.max_size),
            IndexRefresh::Changed(files) => {
                for path in files {
                    index.refresh(&job.root, path, job.max_size);
                }
            }
        }
        let read = |p: &str| crate::files::read_source(&job.root.join(p), job.max_size).ok();
        let site = Site {
            root: &job.root,
            path: &job.rel,
            language: job.language,
            text: &job.text,
            tree: &job.tree,
            range: job.range.clone(),
        };
        let context = context::build(
            &site,
            job.problem.clone(),
            &index,
            job.escalator.redactor(),
            &read,
            job.past.clone(),
            Budget::default(),
        );
        let prepared = job.escalator.prepare(&context);
        drop(index);
        (prepared, job)
    })
    .await;
    let Ok((prepared, job)) = built else {
        return Err(EscalateError::Internal("building the context failed; see the log".to_owned()));
    };
    let prepared = prepared?;
    let text = job.text.clone();
    let rel = job.rel.clone();
    let root = job.root.clone();
    let max_size = job.max_size;
    let read = move |p: &str| {
        if p == rel { Some(text.clone()) } else { crate::files::read_source(&root.join(p), max_size).ok() }
    };
    escalator.run(&prepared, &job.rel, &read, on_event, cancel).await
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
