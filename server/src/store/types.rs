//! What goes into the store ([`Record`]) and what comes out of it (rows and their queries).
//!
//! Paths are workspace-relative strings with `/` separators; times are milliseconds since the
//! Unix epoch; languages, categories and severities are the strings the classifier uses; money
//! is in micros (millionths of a US dollar), so that sums are exact.

/// One thing to write. Callers batch records into a `Vec` for [`Store::record`](super::Store::record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    File(FileEvent),
    /// A file event only the holder of the workspace lease records: written only if the lease
    /// is still held under `fence` when its transaction commits, dropped otherwise.
    FencedFile {
        fence: super::Fence,
        event: FileEvent,
    },
    Editor(EditorEvent),
    Diagnostics(FileDiagnostics),
    /// Inserts the call, or updates the row with the same id.
    ProviderCall(ProviderCall),
    /// Inserts the entry, or replaces the one with the same key.
    CacheEntry(CacheEntry),
    /// Appends one event of a fix.
    FixOutcome(FixOutcome),
    /// A tool an AI agent called through the MCP server.
    Agent(AgentEvent),
    /// Inserts the symbols of one file, or replaces those of the same path.
    SymbolFile(SymbolFile),
    /// Forgets the symbols of one file (deleted, or no longer indexed).
    SymbolFileGone {
        path: String,
    },
    /// Inserts the symbols of one text by its hash (keeping the newest [`SYMBOL_TEXTS_KEPT`]).
    SymbolText(SymbolText),
}

/// How many texts' symbols ([`Record::SymbolText`]) the store keeps; the oldest go first.
pub const SYMBOL_TEXTS_KEPT: i64 = 256;

/// The symbols of a text that is not a workspace file as it is now (a file as last committed),
/// by the text's hash. Kept as given; checking it is the reader's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolText {
    /// SHA-256 hex of the text.
    pub hash: String,
    pub language: String,
    pub size: i64,
    /// Version of the encoding of `entries`.
    pub format: i64,
    /// The definitions, encoded by the index.
    pub entries: String,
    pub stored_ms: i64,
}

/// One tool call of an AI agent (an MCP client), for the activity log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEvent {
    pub at_ms: i64,
    /// The client's name, as it gave it when it connected.
    pub agent: String,
    /// The tool called.
    pub tool: String,
    /// The workspace-relative path it was about, or empty.
    pub path: String,
    /// What it asked and what came of it, in a few words.
    pub summary: String,
}

/// The symbols of one source file as the context builder indexed them. The store keeps the row
/// as given; checking that it is sound and still describes the file is the reader's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolFile {
    /// Workspace-relative path.
    pub path: String,
    pub language: String,
    /// SHA-256 hex of the text that was indexed.
    pub hash: String,
    pub size: i64,
    pub mtime_ns: i64,
    pub indexed_ms: i64,
    /// Version of the encoding of `entries`.
    pub format: i64,
    /// The definitions, encoded by the index.
    pub entries: String,
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
    /// A tool call of an AI agent through the MCP server.
    Agent,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::File => "file",
            ActivityKind::Editor => "editor",
            ActivityKind::Diagnostic => "diagnostic",
            ActivityKind::Agent => "agent",
        }
    }

    pub(super) fn from_db(s: &str) -> Option<ActivityKind> {
        match s {
            "file" => Some(ActivityKind::File),
            "editor" => Some(ActivityKind::Editor),
            "diagnostic" => Some(ActivityKind::Diagnostic),
            "agent" => Some(ActivityKind::Agent),
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
    /// (editor); `appeared`, `resolved` (diagnostic, in this file); the tool's name (agent).
    pub action: String,
    pub path: String,
    /// A short human-readable detail: the rename target, size and language of a file; the
    /// version (and number of coalesced changes) of an editor event; `category: message` of a
    /// diagnostic; `NAME: summary` of an agent's tool call.
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

/// One request to an AI provider, or one that a budget refused or the cache answered.
///
/// The caller records it `Reserved` before sending, then again with the same `id` once it knows
/// how it ended; the second record updates the row (all fields but `at_ms`, which stays the time
/// of the first record). A `Reserved` record never overwrites a call that has already ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCall {
    /// Unique per request; the caller generates it.
    pub id: String,
    pub at_ms: i64,
    pub provider: String,
    pub model: String,
    pub fingerprint: Option<String>,
    pub category: Option<String>,
    pub status: CallStatus,
    /// The worst-case cost estimated and reserved against the budgets before sending.
    pub reserved_micros: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    /// The actual cost, from the usage the provider reported: 0 while `Reserved`, and for
    /// `Refused` and `Cached`.
    pub cost_micros: u64,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
    /// Who asked (`[store] user`, else git's `user.email`): per-user limits add up the calls of
    /// one user. `None` for calls recorded before users were. The shared store writes its own
    /// identity's user when `None`.
    pub user: Option<String>,
    /// The agent the request was made for, as policies name it (`claude-code`), whose spend
    /// limit counts it; `None` for a person's request (the editor, `acas explain`).
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// Sent (or about to be), its cost reserved, not finished yet.
    Reserved,
    Succeeded,
    Failed,
    Cancelled,
    /// Not sent: it would have exceeded a budget.
    Refused,
    /// Not sent: answered from the cache.
    Cached,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Reserved => "reserved",
            CallStatus::Succeeded => "succeeded",
            CallStatus::Failed => "failed",
            CallStatus::Cancelled => "cancelled",
            CallStatus::Refused => "refused",
            CallStatus::Cached => "cached",
        }
    }

    /// The status written as [`CallStatus::as_str`] writes it.
    pub fn parse(text: &str) -> Option<CallStatus> {
        [
            CallStatus::Reserved,
            CallStatus::Succeeded,
            CallStatus::Failed,
            CallStatus::Cancelled,
            CallStatus::Refused,
            CallStatus::Cached,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A provider's reply, kept so that the same question about the same context costs nothing the
/// second time. Entries older than the retention are deleted by [`Store::prune`](super::Store::prune).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// Hex hash of (fingerprint, hash of the context sent, model).
    pub key: String,
    pub at_ms: i64,
    pub fingerprint: String,
    pub model: String,
    pub provider: String,
    /// The reply, as JSON text.
    pub reply: String,
}

/// One event in the life of a fix the AI proposed. Each event is its own row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixOutcome {
    pub fix_id: String,
    pub at_ms: i64,
    pub fingerprint: String,
    pub category: String,
    pub provider: String,
    pub model: String,
    pub outcome: Outcome,
    pub description: Option<String>,
    /// The text the fix replaced, and its replacement: what later prompts show as an example.
    pub old: Option<String>,
    pub new: Option<String>,
    /// How the fix was verified when this happened (`parses`, `checker:NAME`,
    /// `checker-failed:NAME`), so that learning can compare the levels.
    pub verified: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Offered,
    /// The checker that reported the error no longer did with the fix applied to a scratch copy.
    Verified,
    Applied,
    /// The fingerprint was gone soon after the fix was applied.
    Resolved,
    Reverted,
    Dismissed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Offered => "offered",
            Outcome::Verified => "verified",
            Outcome::Applied => "applied",
            Outcome::Resolved => "resolved",
            Outcome::Reverted => "reverted",
            Outcome::Dismissed => "dismissed",
        }
    }

    pub(super) fn from_db(s: &str) -> Option<Outcome> {
        match s {
            "offered" => Some(Outcome::Offered),
            "verified" => Some(Outcome::Verified),
            "applied" => Some(Outcome::Applied),
            "resolved" => Some(Outcome::Resolved),
            "reverted" => Some(Outcome::Reverted),
            "dismissed" => Some(Outcome::Dismissed),
            _ => None,
        }
    }
}

/// One line of the cost report: the calls of one UTC day, provider, model and error category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostRow {
    /// `YYYY-MM-DD`, in UTC.
    pub day: String,
    pub provider: String,
    pub model: String,
    /// Empty for calls without a category.
    pub category: String,
    /// Requests sent to the provider (every status but `Refused` and `Cached`).
    pub calls: u64,
    /// Requests answered from the cache.
    pub cached: u64,
    /// Requests a budget refused.
    pub refused: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Actual cost; calls still `Reserved` count 0.
    pub cost_micros: u64,
}

/// How the fixes of one provider, model and category fared: the number of distinct fixes that
/// reached each outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixStatsRow {
    pub provider: String,
    pub model: String,
    pub category: String,
    pub offered: u64,
    pub applied: u64,
    pub resolved: u64,
    pub reverted: u64,
    pub dismissed: u64,
}
