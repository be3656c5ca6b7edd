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

use crate::checkers;
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
    /// The tool's own code for it (`E0308`, `F401`), when a checker reported it.
    pub code: Option<String>,
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
            code: None,
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

/// The byte offset in `text` of a tool's 1-based `point`, whose column counts `unit`s. A column
/// past the end of its line clamps to the line's end; a line past the end, to the end of the text.
pub fn tool_offset(
    text: &str,
    index: &LineIndex,
    point: checkers::Point,
    unit: checkers::ColumnUnit,
) -> usize {
    let Some(range) = index.line_range(point.line.saturating_sub(1)) else {
        return text.len();
    };
    let line = text[range.clone()].trim_end_matches(['\n', '\r']);
    let wanted = point.column.saturating_sub(1) as usize;
    let column = match unit {
        checkers::ColumnUnit::Bytes => {
            let mut at = wanted.min(line.len());
            while !line.is_char_boundary(at) {
                at -= 1;
            }
            at
        }
        checkers::ColumnUnit::Chars => line.char_indices().nth(wanted).map_or(line.len(), |(i, _)| i),
        checkers::ColumnUnit::Utf16 => {
            let mut units = 0;
            line.char_indices()
                .find(|(_, ch)| {
                    let here = units >= wanted;
                    units += ch.len_utf16();
                    here
                })
                .map_or(line.len(), |(i, _)| i)
        }
    };
    range.start + column
}

/// The byte range of a tool's span in `text`. A span with no end, or an empty one, covers the
/// rest of the word at its start (at least one character), so that it can be seen.
pub fn tool_range(text: &str, index: &LineIndex, span: &checkers::Span) -> std::ops::Range<usize> {
    let start = tool_offset(text, index, span.start, span.columns);
    let end = span.end.map(|end| tool_offset(text, index, end, span.columns)).unwrap_or(start).max(start);
    if end > start {
        return start..end;
    }
    let rest = &text[start..];
    let word = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let word =
        if word == 0 { rest.chars().next().filter(|c| *c != '\n').map_or(0, char::len_utf8) } else { word };
    start..start + word
}

/// A checker's problems in one file, placed in the file's `text`, classified and fingerprinted
/// with their enclosing symbols like every other diagnostic. Related places in the same file
/// become related ranges; those in other files are named at the end of the message.
pub fn place_problems(
    text: &str,
    language: Option<Language>,
    problems: &[checkers::Problem],
    encoding: PositionEncoding,
) -> Vec<FileDiagnostic> {
    let index = LineIndex::new(text);
    let doc = language.map(|language| classify::Document::new(language, text.to_owned()));
    place_problems_in(text, &index, doc.as_ref(), problems, encoding)
}

/// [`place_problems`] in a text already indexed, and parsed when `doc` is given (an open
/// document), one diagnostic per problem in their order.
pub fn place_problems_in(
    text: &str,
    index: &LineIndex,
    doc: Option<&classify::Document>,
    problems: &[checkers::Problem],
    encoding: PositionEncoding,
) -> Vec<FileDiagnostic> {
    problems
        .iter()
        .map(|p| {
            let range = tool_range(text, index, &p.span);
            let category = p
                .category
                .unwrap_or_else(|| classify::external::category(&p.source, p.code.as_deref(), &p.message));
            let symbol = doc.and_then(|d| classify::symbol_at(d.language(), d.tree(), d.text(), range.start));
            let fingerprint = classify::fingerprint(
                &classify::external::fingerprint_message(&p.message),
                category,
                symbol.as_deref(),
            );
            let mut message = p.message.clone();
            let mut related = Vec::new();
            for r in &p.related {
                if r.span.path == p.span.path {
                    related.push((
                        index.range(text, tool_range(text, index, &r.span), encoding),
                        r.message.clone(),
                    ));
                } else {
                    message.push_str(&format!(
                        "\n{}:{}:{}: {}",
                        r.span.path.display(),
                        r.span.start.line,
                        r.span.start.column,
                        r.message
                    ));
                }
            }
            FileDiagnostic {
                range: index.range(text, range, encoding),
                severity: p.severity,
                category,
                message,
                source: p.source.clone(),
                code: p.code.clone(),
                fingerprint,
                symbol,
                related,
                fix_id: None,
            }
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

/// Reads, parses and classifies one file of the workspace at `root` (read beneath it: see
/// [`files::read_beneath`]).
pub fn analyze_file(root: &Path, path: &Path, max_size: u64, encoding: PositionEncoding) -> Outcome {
    let Some(language) = Language::from_path(path) else {
        return Outcome::NotSource;
    };
    let text = match files::read_beneath(root, path, max_size) {
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
    /// Starts `threads` workers for the files of the workspace at `root`; each result goes to
    /// `done`.
    pub fn start(
        root: PathBuf,
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
            let root = root.clone();
            std::thread::Builder::new()
                .name(format!("acas-analyze-{i}"))
                .spawn(move || {
                    while let Ok(path) = rx.recv() {
                        // Unmark before reading: a change from now on queues the path again.
                        queued.lock().unwrap_or_else(|e| e.into_inner()).remove(&path);
                        let seq = seq.fetch_add(1, Ordering::SeqCst);
                        let outcome =
                            std::panic::catch_unwind(|| analyze_file(&root, &path, max_size, encoding))
                                .unwrap_or_else(|_| {
                                    tracing::error!("analysis of {} panicked", path.display());
                                    Outcome::Skipped(Skip::Unreadable(std::io::Error::other(
                                        "analysis failed",
                                    )))
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::checkers::{ColumnUnit, Point, Problem, Related, Span};
    use crate::text::Position;

    fn problem(
        line: u32,
        column: u32,
        columns: ColumnUnit,
        source: &str,
        code: &str,
        message: &str,
    ) -> Problem {
        Problem {
            span: Span {
                path: PathBuf::from("/ws/src/lib.rs"),
                start: Point { line, column },
                end: None,
                columns,
            },
            severity: Severity::Error,
            code: Some(code.to_owned()),
            message: message.to_owned(),
            source: source.to_owned(),
            category: None,
            related: Vec::new(),
            fixes: Vec::new(),
        }
    }

    #[test]
    fn a_tools_column_is_counted_in_its_own_unit() {
        // "é" is 2 bytes, 1 char, 1 UTF-16 unit; "𝒳" is 4 bytes, 1 char, 2 UTF-16 units.
        let text = "a\nlet é𝒳 = value;\n";
        let index = LineIndex::new(text);
        let at = |column, unit| &text[tool_offset(text, &index, Point { line: 2, column }, unit)..];
        assert!(at(14, ColumnUnit::Bytes).starts_with("value"));
        assert!(at(10, ColumnUnit::Chars).starts_with("value"));
        assert!(at(11, ColumnUnit::Utf16).starts_with("value"));
        // A byte column inside a character falls back to its start; past the line, the line's end.
        assert!(at(6, ColumnUnit::Bytes).starts_with("é"));
        assert_eq!(
            tool_offset(text, &index, Point { line: 2, column: 99 }, ColumnUnit::Chars),
            text.len() - 1
        );
        assert_eq!(tool_offset(text, &index, Point { line: 9, column: 1 }, ColumnUnit::Chars), text.len());
    }

    #[test]
    fn a_problem_is_classified_and_fingerprinted_with_its_symbol_and_survives_unrelated_edits() {
        let text = "fn helper() {}\n\nfn main() {\n    let x: u32 = \"no\";\n}\n";
        let found = place_problems(
            text,
            Some(Language::Rust),
            &[problem(4, 18, ColumnUnit::Chars, "rustc", "E0308", "mismatched types")],
            PositionEncoding::Utf16,
        );
        let d = &found[0];
        assert_eq!(d.category, Category::Type);
        assert_eq!(d.symbol.as_deref(), Some("main"));
        assert_eq!(d.range.start, Position { line: 3, character: 17 });
        // With no end, the span covers the token at the start.
        assert_eq!(d.range.end, Position { line: 3, character: 18 });
        let moved = format!("// a comment\nuse std::fmt;\n{text}");
        let again = place_problems(
            &moved,
            Some(Language::Rust),
            &[problem(6, 18, ColumnUnit::Chars, "rustc", "E0308", "mismatched types")],
            PositionEncoding::Utf16,
        );
        assert_eq!(again[0].fingerprint, d.fingerprint);
    }

    #[test]
    fn related_places_in_other_files_are_named_in_the_message() {
        let text = "def f():\n    raise ValueError('x')\n";
        let mut p = problem(2, 5, ColumnUnit::Chars, "python", "", "ValueError: x");
        p.span.path = PathBuf::from("/ws/a.py");
        p.related = vec![
            Related {
                span: Span {
                    path: PathBuf::from("/ws/a.py"),
                    start: Point { line: 1, column: 1 },
                    end: None,
                    columns: ColumnUnit::Chars,
                },
                message: "in f".to_owned(),
            },
            Related {
                span: Span {
                    path: PathBuf::from("/ws/main.py"),
                    start: Point { line: 7, column: 1 },
                    end: None,
                    columns: ColumnUnit::Chars,
                },
                message: "called from here".to_owned(),
            },
        ];
        let d = &place_problems(text, Some(Language::Python), &[p], PositionEncoding::Utf16)[0];
        assert_eq!(d.related.len(), 1);
        assert_eq!(d.related[0].1, "in f");
        assert!(d.message.ends_with("\n/ws/main.py:7:1: called from here"), "{}", d.message);
    }
}
