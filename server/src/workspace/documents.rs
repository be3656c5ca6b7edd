//! Document sync: documents the editor opens, edits, saves and closes.
//!
//! An open document is parsed incrementally on the loop at every change, because that is the
//! latency path; its text always wins over the file on disk, and closing it brings the disk
//! state back. Changes older than the document's version are ignored. Workflow files go to
//! [`super::workflows`] instead. A document's language comes from its path first, and from the
//! editor's `languageId` only when the path says nothing ([`language_of`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{MessageLevel, Workspace, now_ms, relative};
use crate::classify::{Document, Language};
use crate::store::{self, Record};
use crate::text::{LineIndex, TextRange};

/// One edit of an open document: `range` is `None` for a full replacement.
#[derive(Debug, Clone)]
pub struct ContentChange {
    pub range: Option<TextRange>,
    pub text: String,
}

/// A document open in the editor, parsed.
pub(super) struct OpenDocument {
    pub(super) doc: Document,
    pub(super) index: LineIndex,
    pub(super) version: i32,
    /// The fingerprints of its diagnostics as last published.
    pub(super) fingerprints: Vec<String>,
}

impl Workspace {
    pub(super) fn opened(&mut self, path: PathBuf, version: i32, language_id: &str, text: String) {
        self.record_editor(&path, store::EditorEventKind::Open, Some(version));
        let Some(language) = language_of(&self.root, &path, language_id) else {
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
        self.checker_doc_saved(&path);
        self.publish_open(&path);
    }

    /// The editor saved a document: the checkers the file calls for run (debounced).
    pub(super) fn saved(&mut self, path: PathBuf) {
        self.record_editor(&path, store::EditorEventKind::Save, None);
        self.checker_doc_saved(&path);
        self.checker_saved(&path, true);
    }

    pub(super) fn changed(&mut self, path: PathBuf, version: i32, changes: Vec<super::ContentChange>) {
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
        if !self.open.contains_key(&path) {
            tracing::debug!("change for a document that is not open: {}", path.display());
            return;
        }
        for change in changes {
            let open = self.open.get_mut(&path).expect("checked above");
            // The checkers' diagnostics move with the edit, in the text before it.
            let (edited, inserted) = match change.range {
                None => {
                    let (range, inserted) =
                        super::checkers::difference(open.doc.text(), &open.index, &change.text, encoding);
                    (range, inserted.to_owned())
                }
                Some(range) => {
                    let text = open.doc.text();
                    let start = open.index.offset(text, range.start, encoding);
                    let end = open.index.offset(text, range.end, encoding).max(start);
                    (open.index.range(text, start..end, encoding), change.text.clone())
                }
            };
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
            self.shift_checker_diagnostics(&path, edited, &inserted);
        }
        let open = self.open.get_mut(&path).expect("checked above");
        open.doc.reparse();
        open.version = version;
        self.publish_open(&path);
    }

    pub(super) fn closed(&mut self, path: PathBuf) {
        self.record_editor(&path, store::EditorEventKind::Close, None);
        self.workflow_closed(&path);
        self.checker_doc_closed(&path);
        if self.open.remove(&path).is_some() {
            // Back to what is on disk.
            self.publish(&path, None, Arc::from(Vec::new()));
            self.analyse(path);
        }
    }

    pub(super) fn record_editor(&self, path: &Path, kind: store::EditorEventKind, version: Option<i32>) {
        let Some(store) = &self.store else { return };
        store.record(vec![Record::Editor(store::EditorEvent {
            at_ms: now_ms(),
            kind,
            path: relative(&self.root, path),
            version,
            language: Language::from_path(path).map(|l| l.id().to_owned()),
        })]);
    }
}

/// Extensions of kinds of text ACAS does not parse: an editor's `languageId` for them is not
/// believed (Kakoune sends `python` for every file).
const OTHER_EXTENSIONS: &[&str] = &[
    "md",
    "markdown",
    "txt",
    "text",
    "rst",
    "adoc",
    "org",
    "tex",
    "toml",
    "yaml",
    "yml",
    "ini",
    "cfg",
    "conf",
    "env",
    "lock",
    "log",
    "csv",
    "tsv",
    "xml",
    "svg",
    "html",
    "htm",
    "css",
    "scss",
    "sass",
    "less",
    "vue",
    "svelte",
    "c",
    "h",
    "cc",
    "cpp",
    "cxx",
    "hpp",
    "hh",
    "m",
    "mm",
    "java",
    "kt",
    "kts",
    "scala",
    "groovy",
    "gradle",
    "cs",
    "fs",
    "swift",
    "rb",
    "php",
    "pl",
    "pm",
    "lua",
    "vim",
    "el",
    "clj",
    "cljs",
    "ex",
    "exs",
    "erl",
    "hs",
    "ml",
    "mli",
    "nix",
    "zig",
    "dart",
    "r",
    "jl",
    "sh",
    "bash",
    "zsh",
    "fish",
    "ps1",
    "bat",
    "sql",
    "proto",
    "graphql",
    "gql",
    "tf",
    "hcl",
    "dockerfile",
    "mk",
    "cmake",
    "diff",
    "patch",
];

/// The language of an opened document, by its path first: a workflow file is a workflow
/// (`None`, whatever the editor says), an extension ACAS parses decides, an extension of another
/// kind of text is not parsed; only a path with neither (no extension, or one nobody knows)
/// goes by the editor's `languageId`.
fn language_of(root: &Path, path: &Path, language_id: &str) -> Option<Language> {
    if crate::workflow::validate::is_workflow_file(root, path) {
        return None;
    }
    if let Some(language) = Language::from_path(path) {
        return Some(language);
    }
    let known_other = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| OTHER_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    if known_other {
        return None;
    }
    language_from_id(language_id)
}

fn language_from_id(id: &str) -> Option<Language> {
    Language::ALL
        .into_iter()
        .find(|l| l.id() == id || (id == "javascriptreact" && *l == Language::JavaScript))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_decides_before_the_editor_language_id() {
        let root = Path::new("/ws");
        let of = |path: &str, id: &str| language_of(root, Path::new(path), id);
        assert_eq!(of("/ws/.acas/workflows/ci.yaml", "python"), None);
        assert_eq!(of("/ws/.acas/workflows/ci.yml", "yaml"), None);
        assert_eq!(of("/ws/src/lib.rs", "python"), Some(Language::Rust));
        assert_eq!(of("/ws/README.md", "python"), None);
        assert_eq!(of("/ws/notes.TXT", "python"), None);
        assert_eq!(of("/ws/bin/tool", "python"), Some(Language::Python));
        assert_eq!(of("/ws/app.weird", "javascriptreact"), Some(Language::JavaScript));
        assert_eq!(of("/ws/bin/tool", "plaintext"), None);
    }
}
