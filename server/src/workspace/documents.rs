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
use crate::text::{Edit, LineIndex, TextRange};

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
    /// Its edits, to move what was placed on an older version of its text.
    pub(super) journal: Journal,
}

/// Where an open document's text stood: which opening of it, and how many edits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    opening: u64,
    edits: u64,
}

/// The edits of an open document, to move what was placed on an older version of its text (an
/// escalation's answer, asked about the text as it was) to where that text is now. Keeps the
/// last [`JOURNAL_EDITS`] edits; what is older is placed by comparing the texts.
pub(super) struct Journal {
    opening: u64,
    /// The number of edits dropped from the front.
    first: u64,
    edits: Vec<Edit>,
}

/// How many edits of an open document its journal keeps.
const JOURNAL_EDITS: usize = 4096;

impl Journal {
    fn new() -> Journal {
        use std::sync::atomic::{AtomicU64, Ordering};
        static OPENINGS: AtomicU64 = AtomicU64::new(1);
        Journal { opening: OPENINGS.fetch_add(1, Ordering::Relaxed), first: 0, edits: Vec::new() }
    }

    pub(super) fn mark(&self) -> Mark {
        Mark { opening: self.opening, edits: self.first + self.edits.len() as u64 }
    }

    fn record(&mut self, edits: &[Edit]) {
        self.edits.extend_from_slice(edits);
        if self.edits.len() > 2 * JOURNAL_EDITS {
            let dropped = self.edits.len() - JOURNAL_EDITS;
            self.edits.drain(..dropped);
            self.first += dropped as u64;
        }
    }

    /// The edits made since `mark`, or `None` when it is of another opening or too old.
    pub(super) fn since(&self, mark: Mark) -> Option<&[Edit]> {
        if mark.opening != self.opening || mark.edits < self.first {
            return None;
        }
        self.edits.get((mark.edits - self.first) as usize..)
    }
}

impl Workspace {
    pub(super) fn opened(&mut self, path: PathBuf, version: i32, language_id: &str, text: String) {
        self.record_editor(&path, store::EditorEventKind::Open, Some(version));
        let Some(language) = language_of(&self.root, &path, language_id, &text) else {
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
        let journal = Journal::new();
        self.open
            .insert(path.clone(), OpenDocument { doc, index, version, fingerprints: Vec::new(), journal });
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
        // AI notes placed on the text before these changes move with it.
        let before = {
            let open = &self.open[&path];
            self.notes.has(&path).then(|| (open.doc.text().to_owned(), open.index.clone()))
        };
        let mut edits = Vec::with_capacity(changes.len());
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
                    edits.push(Edit::between(open.doc.text(), &change.text));
                    open.doc.replace(change.text);
                    open.index = LineIndex::new(open.doc.text());
                }
                Some(range) => {
                    let text = open.doc.text();
                    let start = open.index.offset(text, range.start, encoding);
                    let end = open.index.offset(text, range.end, encoding).max(start);
                    edits.push(Edit { start, end, len: change.text.len() });
                    open.doc.edit(start..end, &change.text);
                    open.index.edit(start..end, &change.text);
                }
            }
            self.shift_checker_diagnostics(&path, edited, &inserted);
        }
        let open = self.open.get_mut(&path).expect("checked above");
        open.journal.record(&edits);
        open.doc.reparse();
        open.version = version;
        if let Some((old, old_index)) = before {
            self.notes_follow(&path, &old, &old_index, &edits);
        }
        self.publish_open(&path);
    }

    pub(super) fn closed(&mut self, path: PathBuf) {
        self.record_editor(&path, store::EditorEventKind::Close, None);
        self.workflow_closed(&path);
        self.checker_doc_closed(&path);
        if self.open.remove(&path).is_some() {
            // Back to what is on disk, as far as it is known until it is read again: the
            // buffer's problems are no longer open, and AI notes about errors only the buffer
            // had go.
            let on_disk = self.disk_published.get(&path).cloned().unwrap_or_else(|| Arc::from(Vec::new()));
            self.record_diagnostics(&path, &on_disk);
            self.retire_notes(&path);
            self.publish(&path, None, on_disk);
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

/// Names of files that are not source code of a language ACAS parses, whatever their
/// extension (`Dockerfile.dev`) and whatever the editor says.
const OTHER_NAMES: &[&str] = &[
    "makefile",
    "gnumakefile",
    "license",
    "licence",
    "copying",
    "notice",
    "authors",
    "contributors",
    "codeowners",
    "owners",
    "readme",
    "changelog",
    "changes",
    "dockerfile",
    "containerfile",
    "jenkinsfile",
    "procfile",
    "gemfile",
    "rakefile",
    "vagrantfile",
    "brewfile",
    "justfile",
    "caddyfile",
    "pipfile",
    ".env",
    ".envrc",
    ".gitignore",
    ".gitattributes",
    ".gitmodules",
    ".dockerignore",
    ".npmignore",
    ".npmrc",
    ".editorconfig",
    ".prettierrc",
    ".eslintrc",
    ".babelrc",
];

/// The language of an opened document, by its path first: a workflow file is a workflow
/// (`None`, whatever the editor says), an extension ACAS parses decides, a name or an extension
/// of another kind of text is not parsed. A path with no extension goes by the editor's
/// `languageId` only when the text agrees (its `#!` line names that language: a script); a
/// path with an extension nobody knows goes by the `languageId`.
fn language_of(root: &Path, path: &Path, language_id: &str, text: &str) -> Option<Language> {
    if crate::workflow::validate::is_workflow_file(root, path) {
        return None;
    }
    if let Some(language) = Language::from_path(path) {
        return Some(language);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    // `Dockerfile.dev`, `.env.local`: the name up to its first dot after the first character.
    let stem =
        name.char_indices().skip(1).find(|&(_, c)| c == '.').map_or(name.as_str(), |(i, _)| &name[..i]);
    if OTHER_NAMES.contains(&stem) {
        return None;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some(extension) if OTHER_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str()) => None,
        Some(_) => language_from_id(language_id),
        None => language_from_id(language_id).filter(|&language| shebang_names(text, language)),
    }
}

/// Whether `text` starts with a `#!` line that runs a program of `language`.
fn shebang_names(text: &str, language: Language) -> bool {
    let Some(line) = text.lines().next().and_then(|l| l.strip_prefix("#!")) else { return false };
    let programs: &[&str] = match language {
        Language::Python => &["python", "python2", "python3", "pypy", "pypy3", "uv"],
        Language::JavaScript => &["node", "nodejs", "bun", "deno", "zx"],
        Language::TypeScript | Language::Tsx => &["ts-node", "tsx", "bun", "deno"],
        Language::Rust => &["rust-script", "cargo"],
        Language::Go => &["gorun", "go", "yaegi"],
        Language::Json => &[],
    };
    line.split(|c: char| c.is_whitespace() || c == '/').any(|word| {
        // `python3.12`
        let word = word.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        programs.contains(&word) || programs.contains(&word.trim_end_matches('-'))
    })
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
        let of = |path: &str, id: &str| language_of(root, Path::new(path), id, "");
        assert_eq!(of("/ws/.acas/workflows/ci.yaml", "python"), None);
        assert_eq!(of("/ws/.acas/workflows/ci.yml", "yaml"), None);
        assert_eq!(of("/ws/src/lib.rs", "python"), Some(Language::Rust));
        assert_eq!(of("/ws/README.md", "python"), None);
        assert_eq!(of("/ws/notes.TXT", "python"), None);
        assert_eq!(of("/ws/app.weird", "javascriptreact"), Some(Language::JavaScript));
        assert_eq!(of("/ws/bin/tool", "plaintext"), None);
        // Kakoune sends `python` for every file.
        for name in [
            "Makefile",
            "LICENSE",
            ".gitignore",
            "Dockerfile",
            "Dockerfile.dev",
            ".env",
            ".env.local",
            "CODEOWNERS",
        ] {
            assert_eq!(language_of(root, &Path::new("/ws").join(name), "python", "FROM x\n"), None, "{name}");
        }
    }

    #[test]
    fn a_file_without_an_extension_goes_by_the_editor_only_when_its_first_line_agrees() {
        let of = |id: &str, text: &str| language_of(Path::new("/ws"), Path::new("/ws/bin/tool"), id, text);
        assert_eq!(of("python", "#!/usr/bin/env python3\nimport os\n"), Some(Language::Python));
        assert_eq!(of("python", "#!/usr/bin/python3.12 -u\n"), Some(Language::Python));
        assert_eq!(of("javascript", "#!/usr/bin/env node\n"), Some(Language::JavaScript));
        assert_eq!(of("typescript", "#!/usr/bin/env -S deno run\n"), Some(Language::TypeScript));
        assert_eq!(of("python", "#!/bin/sh\necho hi\n"), None);
        assert_eq!(of("python", "import os\n"), None);
        assert_eq!(of("python", ""), None);
    }
}
