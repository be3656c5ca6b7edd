//! What the editor is shown for a file: ACAS's own diagnostics (of the open document, else of
//! the file on disk), what the project's checkers report, its AI notes and what workflow runs
//! said about it, as one complete list
//! ([`Output::Diagnostics`]). Recording diagnostics in the store (a queued write, never a query)
//! happens here too.

use std::path::Path;
use std::sync::Arc;

use super::{Output, Workspace, now_ms, relative};
use crate::analysis::{self, FileDiagnostic};
use crate::store::{self, Record};

impl Workspace {
    /// Publishes an open document's diagnostics; when their set changed, records them, retires
    /// the AI notes whose error is gone and applies the escalation rules.
    pub(super) fn publish_open(&mut self, path: &Path) {
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

    /// Publishes `diagnostics` with the file's AI notes and run diagnostics added.
    pub(super) fn publish(&self, path: &Path, version: Option<i32>, diagnostics: Arc<[FileDiagnostic]>) {
        self.workflow_triggers_diagnostics(path, Some(&diagnostics));
        let from_runs = self.run_diagnostics(path);
        let from_checkers = self.checker_diagnostics(path);
        let diagnostics = if self.notes.has(path) || !from_runs.is_empty() || !from_checkers.is_empty() {
            diagnostics
                .iter()
                .cloned()
                .chain(from_checkers)
                .chain(self.notes.diagnostics(path))
                .chain(from_runs.iter().cloned())
                .collect()
        } else {
            diagnostics
        };
        let _ = self.output.send(Output::Diagnostics { path: path.to_path_buf(), version, diagnostics });
    }

    /// Publishes a file's current diagnostics again (after its AI notes changed).
    pub(super) fn republish(&self, path: &Path) {
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

    /// Publishes a file's disk diagnostics unless it is open or nothing changed.
    pub(super) fn apply_disk(&mut self, path: &Path, diagnostics: Arc<[FileDiagnostic]>) {
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

    pub(super) fn record_diagnostics(&self, path: &Path, diagnostics: &[FileDiagnostic]) {
        let Some(store) = &self.store else { return };
        store.record(vec![Record::Diagnostics(store::FileDiagnostics {
            at_ms: now_ms(),
            path: relative(&self.root, path),
            source: "acas".to_owned(),
            diagnostics: diagnostics.iter().map(diagnostic_record).collect(),
        })]);
    }
}

pub(super) fn diagnostic_record(d: &FileDiagnostic) -> store::DiagnosticRecord {
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
