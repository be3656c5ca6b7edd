//! What `acas run` recorded, shown in the editor: each run writes the files and tools it
//! recorded problems for to a list under `.acas/runs/` after committing them to the store; when
//! a list changes on disk (or at start), the sets it names, and those it named before, are read
//! back from the store and shown as the diagnostics of a checker named after their tool
//! (`acas run (python)`), so that they are published, escalated and retired like a checker's.
//!
//! The store is what counts: a set another command recorded since is shown as it is now, and a
//! set a later run cleared is cleared here too. Lists and paths outside the workspace, and files
//! under `.acas`, are left alone. This module does not run commands nor parse their output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::checkers::Placed;
use super::{Done, Workspace, relative};
use crate::analysis::FileDiagnostic;
use crate::checkers::RUN_LISTS;
use crate::classify::{Category, Severity};
use crate::files;
use crate::store::DiagnosticRecord;
use crate::text::{LineIndex, Position, PositionEncoding, TextRange};

/// The most (file, tool) sets one list may name; the rest are not shown.
const LIST_LIMIT: usize = 10_000;

/// The checker name `acas run`'s problems of `source` are shown under.
pub(super) fn run_checker(source: &str) -> String {
    format!("acas run ({source})")
}

/// The (file, tool) sets each list named when it was read last.
#[derive(Debug, Default)]
pub(super) struct RunLists {
    named: HashMap<PathBuf, Vec<(PathBuf, String)>>,
    /// Reads of the store are numbered; per set, the number of the read shown, so that a read
    /// that comes back after a newer one is dropped.
    reads: u64,
    shown: HashMap<(PathBuf, String), u64>,
}

impl Workspace {
    /// Reads every list under `.acas/runs/`, at start.
    pub(super) fn read_run_lists(&mut self) {
        let dir = self.root.join(RUN_LISTS);
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        let lists: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        for list in lists {
            self.run_list_changed(&list);
        }
    }

    /// Whether `path` is one of `acas run`'s lists.
    pub(super) fn is_run_list(&self, path: &Path) -> bool {
        path.parent() == Some(self.root.join(RUN_LISTS).as_path())
            && path.extension().is_some_and(|e| e == "json")
    }

    /// A list changed (or went): shows the sets it names and those it named before as the
    /// store has them now, read off the loop.
    pub(super) fn run_list_changed(&mut self, list: &Path) {
        let Some(store) = self.store.clone() else { return };
        let root = self.root.clone();
        let now = read_list(&root, list);
        let before = match now.clone() {
            Some(now) => self.run_lists.named.insert(list.to_path_buf(), now),
            None => self.run_lists.named.remove(list),
        };
        let mut sets = now.unwrap_or_default();
        for key in before.unwrap_or_default() {
            if !sets.contains(&key) {
                sets.push(key);
            }
        }
        if sets.is_empty() {
            return;
        }
        let (encoding, max_size) = (self.encoding, self.config.max_file_size);
        self.run_lists.reads += 1;
        let read = self.run_lists.reads;
        self.off_loop(
            "reading what `acas run` recorded",
            move || {
                sets.into_iter()
                    .map(|(path, source)| {
                        let records =
                            store.open_diagnostics(&relative(&root, &path), &source).unwrap_or_else(|e| {
                                tracing::warn!("cannot show what `acas run` recorded: {e}");
                                Vec::new()
                            });
                        let text = if records.is_empty() {
                            String::new()
                        } else {
                            files::read_source(&path, max_size).unwrap_or_default()
                        };
                        let placed = place(&text, &records, encoding);
                        (path, source, placed)
                    })
                    .collect()
            },
            move |sets| Done::RunRecords { read, sets },
        );
    }

    /// The sets read back: each replaces what was shown of its file and tool.
    pub(super) fn run_records_read(&mut self, read: u64, sets: Vec<(PathBuf, String, Vec<Placed>)>) {
        for (path, source, placed) in sets {
            let shown = self.run_lists.shown.entry((path.clone(), source.clone())).or_default();
            if *shown > read {
                continue;
            }
            *shown = read;
            self.show_checker_file(&run_checker(&source), &path, placed, false);
        }
        self.apply_rules();
    }
}

/// The sets a list names, inside the workspace and outside `.acas`; `None` when it cannot be
/// read (it went).
fn read_list(root: &Path, list: &Path) -> Option<Vec<(PathBuf, String)>> {
    let bytes = files::read_source(list, 16 * 1024 * 1024).ok()?;
    let named: Vec<(PathBuf, String)> = serde_json::from_str(&bytes).unwrap_or_default();
    let acas = root.join(".acas");
    Some(
        named
            .into_iter()
            .filter(|(path, _)| path.is_absolute() && path.starts_with(root) && !path.starts_with(&acas))
            .filter(|(path, _)| path.components().all(|c| c != std::path::Component::ParentDir))
            .take(LIST_LIMIT)
            .collect(),
    )
}

/// The recorded diagnostics placed in `text`: from where the store has them (UTF-16 columns,
/// as `acas run` records them) to the end of that line's text.
fn place(text: &str, records: &[DiagnosticRecord], encoding: PositionEncoding) -> Vec<Placed> {
    let index = LineIndex::new(text);
    records
        .iter()
        .map(|r| {
            let start = index.offset(
                text,
                Position { line: r.line, character: r.character },
                PositionEncoding::Utf16,
            );
            let line_end = text[start..].find('\n').map_or(text.len(), |n| start + n);
            let end = start + text[start..line_end].trim_end().len();
            let range: TextRange = index.range(text, start..end.max(start), encoding);
            Placed {
                diagnostic: FileDiagnostic {
                    range,
                    severity: Severity::parse(&r.severity).unwrap_or(Severity::Error),
                    category: Category::parse(&r.category).unwrap_or(Category::Runtime),
                    message: r.message.clone(),
                    source: r.source.clone(),
                    code: None,
                    fingerprint: r.fingerprint.clone(),
                    symbol: r.symbol.clone(),
                    related: Vec::new(),
                    fix_id: None,
                },
                fixes: Vec::new(),
            }
        })
        .collect()
}
