//! Other tools' diagnostics, as the editor forwards them (`acas/externalDiagnostics`).
//!
//! Each report replaces the tool's previous one for that file. Its diagnostics are classified,
//! fingerprinted with the symbol that encloses them and recorded; they feed the escalation rules,
//! the diagnostic triggers and the retirement of AI notes, and are never published back (the
//! editor shows them already). For a file that is not open, finding the symbols means reading
//! and parsing it: that happens off the loop, and the report is applied when it comes back,
//! unless a newer report of the same tool for the same file arrived meanwhile.

use std::path::{Path, PathBuf};

use super::{Done, Workspace, now_ms, relative};
use crate::classify::{self, Document, Language, Severity};
use crate::files;
use crate::store::{self, Record};
use crate::text::{LineIndex, Position, PositionEncoding, TextRange};

fn key_of(path: &Path, source: &str) -> (PathBuf, String) {
    (path.to_path_buf(), source.to_owned())
}

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
pub(super) struct ExternalEntry {
    pub(super) fingerprint: String,
    pub(super) category: String,
    pub(super) diagnostic: ExternalDiagnostic,
}

impl Workspace {
    /// Takes a tool's complete report for a file: at once when the file is open (or cannot be
    /// parsed), else once the file was read and parsed off the loop.
    pub(super) fn external(&mut self, path: PathBuf, source: String, diagnostics: Vec<ExternalDiagnostic>) {
        // An editor that forwards every diagnostic it shows sends ACAS's checkers' back.
        let diagnostics = self.without_checker_echoes(&path, &source, diagnostics);
        let key = key_of(&path, &source);
        let seq = self.external_seq.get(&key).map_or(1, |s| s + 1);
        self.external_seq.insert(key, seq);
        let language = Language::from_path(&path);
        match (self.open.get(&path), language) {
            (Some(open), _) => {
                let symbols = symbols_in(&open.doc, &open.index, positions(&diagnostics), self.encoding);
                self.external_located(path, source, seq, diagnostics, symbols);
            }
            (None, None) => {
                let symbols = vec![None; diagnostics.len()];
                self.external_located(path, source, seq, diagnostics, symbols);
            }
            (None, Some(language)) => {
                if let Some(waiting) = self.external_waiting.get_mut(&key_of(&path, &source)) {
                    // One report of this tool for this file is being located: this one waits,
                    // replacing any other that waited (they are stale anyway).
                    *waiting = Some((seq, diagnostics));
                    return;
                }
                self.locate(path, source, seq, diagnostics, language);
            }
        }
    }

    /// Reads and parses a file off the loop to find the symbols enclosing a tool's report.
    fn locate(
        &mut self,
        path: PathBuf,
        source: String,
        seq: u64,
        diagnostics: Vec<ExternalDiagnostic>,
        language: Language,
    ) {
        self.external_waiting.insert(key_of(&path, &source), None);
        let (max_size, encoding) = (self.config.max_file_size, self.encoding);
        let (file, root) = (path.clone(), self.root.clone());
        let work = self.off_loop(
            "locating another tool's diagnostics",
            move || {
                let symbols = match files::read_beneath(&root, &file, max_size) {
                    Ok(text) => {
                        let doc = Document::new(language, text);
                        let index = LineIndex::new(doc.text());
                        symbols_in(&doc, &index, positions(&diagnostics), encoding)
                    }
                    Err(_) => vec![None; diagnostics.len()],
                };
                (diagnostics, symbols)
            },
            move |(diagnostics, symbols)| Done::Located { path, source, seq, diagnostics, symbols },
        );
        self.locating.insert(work);
    }

    /// A located report came back: applies it (unless a newer one replaced it) and locates the
    /// report that waited for it, if any.
    pub(super) fn external_back(
        &mut self,
        path: PathBuf,
        source: String,
        seq: u64,
        diagnostics: Vec<ExternalDiagnostic>,
        located: Vec<Option<String>>,
    ) {
        if let Some(Some((waiting, report))) = self.external_waiting.remove(&key_of(&path, &source))
            && let Some(language) = Language::from_path(&path)
        {
            self.locate(path.clone(), source.clone(), waiting, report, language);
        }
        self.external_located(path, source, seq, diagnostics, located);
    }

    /// Classifies, fingerprints and records a tool's report, whose enclosing symbols are known.
    pub(super) fn external_located(
        &mut self,
        path: PathBuf,
        source: String,
        seq: u64,
        diagnostics: Vec<ExternalDiagnostic>,
        located: Vec<Option<String>>,
    ) {
        if self.external_seq.get(&(path.clone(), source.clone())) != Some(&seq) {
            // A newer report of the same tool replaced this one while it was located.
            return;
        }
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

    /// What other tools say about lines `lines` of `path`, but the diagnostic `except`.
    pub(super) fn external_on_lines(&self, path: &Path, lines: (u32, u32), except: &str) -> Vec<String> {
        let mut others = Vec::new();
        if let Some(sources) = self.external_current.get(path) {
            for (source, list) in sources {
                for ExternalEntry { fingerprint, diagnostic: d, .. } in list {
                    if fingerprint != except && d.range.start.line <= lines.1 && lines.0 <= d.range.end.line {
                        let tool = d.tool.as_deref().unwrap_or(source);
                        others.push(format!("{tool}: {}", d.message));
                    }
                }
            }
        }
        others
    }
}

fn positions(diagnostics: &[ExternalDiagnostic]) -> Vec<Position> {
    diagnostics.iter().map(|d| d.range.start).collect()
}

/// The symbol paths enclosing `positions` of a parsed document.
pub(super) fn symbols_in(
    doc: &Document,
    index: &LineIndex,
    positions: Vec<Position>,
    encoding: PositionEncoding,
) -> Vec<Option<String>> {
    positions
        .into_iter()
        .map(|p| {
            let offset = index.offset(doc.text(), p, encoding);
            classify::symbol_at(doc.language(), doc.tree(), doc.text(), offset)
        })
        .collect()
}
