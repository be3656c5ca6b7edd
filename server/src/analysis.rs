//! Classified diagnostics of files, in editor terms.
//!
//! Joins [`crate::files`] (what to read), [`crate::classify`] (what is wrong) and
//! [`crate::text`] (where, in lines and columns). [`DiskQueue`] analyses files from disk on a
//! small pool of threads, coalescing repeated requests for one path and numbering results so
//! that a slow, older analysis can never overwrite a newer one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::classify::{self, Category, Language, Severity};
use crate::files::{self, Skip};
use crate::text::{LineIndex, PositionEncoding, TextRange};

/// A diagnostic located by line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiagnostic {
    pub range: TextRange,
    pub severity: Severity,
    pub category: Category,
    pub message: String,
    pub source: String,
    pub fingerprint: String,
    pub symbol: Option<String>,
    pub related: Vec<(TextRange, String)>,
    /// For an AI explanation (source `acas-ai`): the id of its quick fix or note.
    pub fix_id: Option<String>,
}

/// Locates byte-offset diagnostics in `text`.
pub fn locate(
    text: &str,
    index: &LineIndex,
    diagnostics: &[classify::Diagnostic],
    encoding: PositionEncoding,
) -> Vec<FileDiagnostic> {
    diagnostics
        .iter()
        .map(|d| FileDiagnostic {
            range: index.range(text, d.range.clone(), encoding),
            severity: d.severity,
            category: d.category,
            message: d.message.clone(),
            source: d.source.clone(),
            fingerprint: d.fingerprint.clone(),
            symbol: d.symbol.clone(),
            related: d
                .related
                .iter()
                .map(|r| (index.range(text, r.range.clone(), encoding), r.message.clone()))
                .collect(),
            fix_id: None,
        })
        .collect()
}

/// What analysing one file on disk gave.
#[derive(Debug)]
pub enum Outcome {
    Parsed {
        language: Language,
        size: u64,
        diagnostics: Vec<FileDiagnostic>,
    },
    /// Not a language ACAS parses.
    NotSource,
    Skipped(Skip),
}

/// Reads, parses and classifies one file.
pub fn analyze_file(path: &Path, max_size: u64, encoding: PositionEncoding) -> Outcome {
    let Some(language) = Language::from_path(path) else {
        return Outcome::NotSource;
    };
    let text = match files::read_source(path, max_size) {
        Ok(text) => text,
        Err(skip) => return Outcome::Skipped(skip),
    };
    let diagnostics = classify::check(language, &text);
    let diagnostics = if diagnostics.is_empty() {
        Vec::new()
    } else {
        locate(&text, &LineIndex::new(&text), &diagnostics, encoding)
    };
    Outcome::Parsed { language, size: text.len() as u64, diagnostics }
}

/// A finished analysis from the queue.
#[derive(Debug)]
pub struct Analyzed {
    pub path: PathBuf,
    /// Increases with the time the file was read; only the highest per path is current.
    pub seq: u64,
    pub outcome: Outcome,
}

/// A pool of threads that analyses files from disk.
#[derive(Clone)]
pub struct DiskQueue {
    queued: Arc<Mutex<HashSet<PathBuf>>>,
    tx: crossbeam_channel::Sender<PathBuf>,
}

impl DiskQueue {
    /// Starts `threads` workers; each result goes to `done`.
    pub fn start(
        threads: usize,
        max_size: u64,
        encoding: PositionEncoding,
        done: impl Fn(Analyzed) + Send + Sync + 'static,
    ) -> DiskQueue {
        let (tx, rx) = crossbeam_channel::unbounded::<PathBuf>();
        let queued = Arc::new(Mutex::new(HashSet::new()));
        let seq = Arc::new(AtomicU64::new(1));
        let done = Arc::new(done);
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let queued = queued.clone();
            let seq = seq.clone();
            let done = done.clone();
            std::thread::Builder::new()
                .name(format!("acas-analyze-{i}"))
                .spawn(move || {
                    while let Ok(path) = rx.recv() {
                        // Unmark before reading: a change from now on queues the path again.
                        queued.lock().unwrap_or_else(|e| e.into_inner()).remove(&path);
                        let seq = seq.fetch_add(1, Ordering::SeqCst);
                        let outcome = std::panic::catch_unwind(|| analyze_file(&path, max_size, encoding))
                            .unwrap_or_else(|_| {
                                tracing::error!("analysis of {} panicked", path.display());
                                Outcome::Skipped(Skip::Unreadable(std::io::Error::other("analysis failed")))
                            });
                        done(Analyzed { path, seq, outcome });
                    }
                })
                .expect("spawning an analysis thread");
        }
        DiskQueue { queued, tx }
    }

    /// Queues a path unless it is already waiting.
    pub fn enqueue(&self, path: PathBuf) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        if queued.insert(path.clone()) {
            let _ = self.tx.send(path);
        }
    }

    /// Paths waiting to be analysed.
    pub fn pending(&self) -> usize {
        self.queued.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
