use std::path::{Path, PathBuf};
use std::time::Duration;
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
}
#[derive(Debug, thiserror::Error)]
#[error("store error")]
pub struct StoreError {
    pub kind: StoreErrorKind,
}
#[derive(Debug)]
pub enum StoreErrorKind {
    Corrupt,
    Locked,
    NewerSchema,
    Io,
    Sqlite,
}
pub struct StoreOptions {
    pub retention: Duration,
    pub queue_batches: usize,
}
impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { retention: Duration::from_secs(30 * 86400), queue_batches: 64 }
    }
}
impl Store {
    pub fn open_workspace(root: &Path, _o: StoreOptions) -> Result<Store, StoreError> {
        Ok(Store { path: root.join(".acas/state.db") })
    }
    pub fn record(&self, _r: Vec<Record>) {}
    pub fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
    pub fn activity(&self, _q: &ActivityQuery) -> Result<Vec<ActivityRow>, StoreError> {
        Ok(vec![])
    }
    pub fn problems(&self, _q: &ProblemQuery) -> Result<Vec<ProblemRow>, StoreError> {
        Ok(vec![])
    }
    pub fn prune(&self, _now: i64) -> Result<u64, StoreError> {
        Ok(0)
    }
    pub fn size_bytes(&self) -> u64 {
        0
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn close(self) -> Result<(), StoreError> {
        Ok(())
    }
}
pub enum Record {
    File(FileEvent),
    Editor(EditorEvent),
    Diagnostics(FileDiagnostics),
}
pub struct FileEvent {
    pub at_ms: i64,
    pub kind: FileEventKind,
    pub path: String,
    pub to_path: Option<String>,
    pub size: Option<u64>,
    pub language: Option<String>,
}
#[derive(Debug, Clone, Copy)]
pub enum FileEventKind {
    Created,
    Modified,
    Deleted,
    Renamed,
}
impl FileEventKind {
    pub fn as_str(self) -> &'static str {
        "x"
    }
}
pub struct EditorEvent {
    pub at_ms: i64,
    pub kind: EditorEventKind,
    pub path: String,
    pub version: Option<i32>,
    pub language: Option<String>,
}
#[derive(Debug, Clone, Copy)]
pub enum EditorEventKind {
    Open,
    Change,
    Save,
    Close,
}
pub struct FileDiagnostics {
    pub at_ms: i64,
    pub path: String,
    pub source: String,
    pub diagnostics: Vec<DiagnosticRecord>,
}
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
#[derive(Default)]
pub struct ActivityQuery {
    pub since_ms: Option<i64>,
    pub limit: usize,
    pub path_prefix: Option<String>,
}
#[derive(Debug)]
pub struct ActivityRow {
    pub at_ms: i64,
    pub kind: ActivityKind,
    pub action: String,
    pub path: String,
    pub detail: Option<String>,
}
#[derive(Debug, Clone, Copy)]
pub enum ActivityKind {
    File,
    Editor,
    Diagnostic,
}
#[derive(Default)]
pub struct ProblemQuery {
    pub category: Option<String>,
    pub path: Option<String>,
    pub include_resolved: bool,
}
pub struct ProblemRow {
    pub fingerprint: String,
    pub category: String,
    pub severity: String,
    pub message: String,
    pub source: String,
    pub symbol: Option<String>,
    pub occurrences: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub locations: Vec<(String, u32, u32)>,
}
