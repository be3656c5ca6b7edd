//! What goes into the store ([`Record`]) and what comes out of it (rows and their queries).
//!
//! Paths are workspace-relative strings with `/` separators; times are milliseconds since the
//! Unix epoch; languages, categories and severities are the strings the classifier uses.

/// One thing to write. Callers batch records into a `Vec` for [`Store::record`](super::Store::record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    File(FileEvent),
    Editor(EditorEvent),
    Diagnostics(FileDiagnostics),
}

/// A change on disk, as the watcher saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEvent {
    pub at_ms: i64,
    pub kind: FileEventKind,
    pub path: String,
    /// The new path, for [`FileEventKind::Renamed`].
    pub to_path: Option<String>,
    pub size: Option<u64>,
    pub language: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileEventKind {
    Created,
    Modified,
    Deleted,
    Renamed,
}

impl FileEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileEventKind::Created => "created",
            FileEventKind::Modified => "modified",
            FileEventKind::Deleted => "deleted",
            FileEventKind::Renamed => "renamed",
        }
    }
}

/// Something the user did to a document in the editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditorEvent {
    pub at_ms: i64,
    pub kind: EditorEventKind,
    pub path: String,
    pub version: Option<i32>,
    pub language: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EditorEventKind {
    Open,
    Change,
    Save,
    Close,
}

impl EditorEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EditorEventKind::Open => "open",
            EditorEventKind::Change => "change",
            EditorEventKind::Save => "save",
            EditorEventKind::Close => "close",
        }
    }
}

/// The complete current set of diagnostics of one file from one source (for example
/// `acas-syntax`, or `rust-analyzer` when forwarded by the editor).
///
/// The writer diffs it against the set it holds for the same `(path, source)`: diagnostics
/// missing from the new set are resolved in that file, new ones appear. An empty set clears the
/// file for that source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiagnostics {
    pub at_ms: i64,
    pub path: String,
    pub source: String,
    pub diagnostics: Vec<DiagnosticRecord>,
}

/// One diagnostic of a [`FileDiagnostics`] set. History is kept per `fingerprint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosticRecord {
    pub fingerprint: String,
    pub category: String,
    pub severity: String,
    pub message: String,
    pub source: String,
    pub symbol: Option<String>,
    pub line: u32,
    pub character: u32,
}

/// Which activity rows to return, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityQuery {
    /// Only rows at or after this time.
    pub since_ms: Option<i64>,
    /// At most this many rows (the newest ones).
    pub limit: usize,
    /// Only rows whose path starts with this string (a plain string prefix, not a glob).
    pub path_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivityKind {
    File,
    Editor,
    Diagnostic,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::File => "file",
            ActivityKind::Editor => "editor",
            ActivityKind::Diagnostic => "diagnostic",
        }
    }

    pub(super) fn from_db(s: &str) -> Option<ActivityKind> {
        match s {
            "file" => Some(ActivityKind::File),
            "editor" => Some(ActivityKind::Editor),
            "diagnostic" => Some(ActivityKind::Diagnostic),
            _ => None,
        }
    }
}

/// One line of the activity log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    pub at_ms: i64,
    pub kind: ActivityKind,
    /// `created`, `modified`, `deleted`, `renamed` (file); `open`, `change`, `save`, `close`
    /// (editor); `appeared`, `resolved` (diagnostic, in this file).
    pub action: String,
    pub path: String,
    /// A short human-readable detail: the rename target, size and language of a file; the
    /// version (and number of coalesced changes) of an editor event; `category: message` of a
    /// diagnostic.
    pub detail: Option<String>,
}

/// Which problems (per-fingerprint histories) to return, most recently seen first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProblemQuery {
    pub category: Option<String>,
    /// Only problems open in this file, or last seen in it.
    pub path: Option<String>,
    pub include_resolved: bool,
}

/// The history of one fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemRow {
    pub fingerprint: String,
    pub category: String,
    pub severity: String,
    pub message: String,
    pub source: String,
    pub symbol: Option<String>,
    /// How many times it went from absent to present in some file.
    pub occurrences: u64,
    pub first_seen_ms: i64,
    /// The last time a diagnostics set containing it was recorded.
    pub last_seen_ms: i64,
    /// When its current (or last) occurrence began; with `resolved_at_ms`, the time to
    /// resolution of that occurrence.
    pub appeared_ms: i64,
    /// When it disappeared from every file; `None` while it is open.
    pub resolved_at_ms: Option<i64>,
    /// Where it is open now: `(path, line, character)`, sorted. Empty once resolved.
    pub locations: Vec<(String, u32, u32)>,
}
