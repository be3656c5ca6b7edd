//! Mirroring the runs this process owns into the shared store, for the rest of the team.
//!
//! The engine stays the owner of its runs: it commits each change to the workspace's SQLite
//! ([`StateDb`]) first, which is what resumes a run after a crash, then tells [`TeamRuns`]
//! which run changed ([`TeamRuns::changed`], a send on a queue: nothing waits for the
//! network). A thread of its own reads the run's latest state from its own connection to that
//! database and writes it to the shared store ([`RunBoard::publish_run`]) under the run's
//! version (the id of its last audit row, which only grows). The sync is by state: a run that
//! changes ten times while the database cannot be reached is written once, in its latest
//! state, when it can be again; a state written twice changes nothing.
//!
//! When the shared store cannot be reached, runs go on here; the thread says so once in the
//! log, keeps the ids of the runs it owes, tries again from 250 ms doubling up to 5 s, and says
//! once when it is back. On start it also offers the workspace's most recent runs, so that
//! what a process that ended meanwhile could not write is written by the next one.
//!
//! What leaves the machine is redacted ([`crate::escalate::redact`]): each step's output (the
//! end of it, [`OUTPUT_TAIL`] bytes of each stream), step errors and the run's error. This
//! module neither runs nor changes runs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::error::WorkflowError;
use super::state::{RunId, RunRecord, StateDb, StepRecord};
use crate::escalate::redact::redact_text;
use crate::store::postgres::runs::{SharedDefinition, SharedRun, SharedStep};
use crate::store::{PgStore, RunBoard, SharedStore, StoreError, StoreErrorKind};
use crate::time::now_ms;

/// Bytes of the end of each output stream (and of a `uses:` step's output) that are shared.
pub const OUTPUT_TAIL: usize = 4 * 1024;

/// Bytes of a step's or run's error that are shared.
pub const ERROR_TEXT: usize = 8 * 1024;

/// Bytes read around what is shared, for the redactor to see secrets whole: a secret cut by
/// the read window is in the part that is then left out, unless it is longer than this.
const REDACT_MARGIN: usize = 16 * 1024;

/// Recent runs offered again when the mirror starts.
const CATCH_UP_RUNS: usize = 20;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The engine's side of the mirror; see the module's doc. Dropping it lets the thread write
/// what it owes (when the store can be reached) and end.
pub struct TeamRuns {
    queue: mpsc::Sender<Message>,
    shared: SharedStore,
    /// Connected on the first read ([`TeamRuns::recent`]).
    reader: Mutex<Option<PgStore>>,
}

enum Message {
    Changed(RunId),
    /// Answered `true` once every run changed before it is written.
    Flush(mpsc::SyncSender<bool>),
}

impl TeamRuns {
    /// Starts the mirror of the runs of the workspace at `workspace` into `shared`.
    pub fn spawn(
        workspace: &Path,
        shared: SharedStore,
        busy_timeout: Duration,
    ) -> Result<TeamRuns, WorkflowError> {
        let db = StateDb::open_workspace(workspace, busy_timeout)?;
        let (queue, messages) = mpsc::channel();
        let mirror = Mirror {
            db,
            workspace: workspace.to_owned(),
            shared: shared.clone(),
            store: None,
            host: crate::store::postgres::identity::host(),
            definitions: HashSet::new(),
            offline: false,
            refused: HashMap::new(),
        };
        std::thread::Builder::new()
            .name("acas-team-runs".into())
            .spawn(move || mirror.serve(messages))
            .map_err(|e| {
                WorkflowError::new(
                    super::error::WorkflowErrorKind::State,
                    format!("could not start the thread that shares workflow runs: {e}; free some memory or threads and try again"),
                )
            })?;
        Ok(TeamRuns { queue, shared, reader: Mutex::new(None) })
    }

    /// Run `run` changed: its state is written to the shared store soon.
    pub fn changed(&self, run: RunId) {
        let _ = self.queue.send(Message::Changed(run));
    }

    /// The repository's most recent runs of every clone (at most `limit`), newest first.
    /// Blocks: call it off the async workers.
    pub fn recent(&self, limit: usize) -> Result<Vec<SharedRun>, StoreError> {
        let store = {
            let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
            match &*reader {
                Some(store) => store.clone(),
                None => {
                    let store = self.shared.connect()?;
                    *reader = Some(store.clone());
                    store
                }
            }
        };
        store.team_runs(limit)
    }

    /// Waits until every change told so far is in the shared store, at most `within`;
    /// returns whether it got there. Returns false at once while the store cannot be reached.
    pub fn flush(&self, within: Duration) -> bool {
        let (reply, answer) = mpsc::sync_channel(1);
        if self.queue.send(Message::Flush(reply)).is_err() {
            return false;
        }
        answer.recv_timeout(within).unwrap_or(false)
    }
}

/// The thread's side.
struct Mirror {
    db: StateDb,
    workspace: PathBuf,
    shared: SharedStore,
    store: Option<PgStore>,
    host: String,
    /// Definition hashes written by this thread (the store keeps each once anyway).
    definitions: HashSet<String>,
    offline: bool,
    /// Runs the store refused, with how many times in a row: tried again (the refusal may be
    /// the database going down) up to [`REFUSALS`] times.
    refused: HashMap<RunId, u32>,
}

/// Refusals in a row after which a run is not tried again until it changes.
const REFUSALS: u32 = 8;

impl Mirror {
    fn serve(mut self, messages: mpsc::Receiver<Message>) {
        let mut owed: BTreeSet<RunId> = BTreeSet::new();
        if let Ok(recent) = self.db.history(None, CATCH_UP_RUNS) {
            owed.extend(recent.iter().map(|r| r.id));
        }
        if let Ok(unfinished) = self.db.unfinished() {
            owed.extend(unfinished.iter().map(|r| r.id));
        }
        let mut flushes: Vec<mpsc::SyncSender<bool>> = Vec::new();
        let mut backoff = FIRST_BACKOFF;
        let mut next_try = Instant::now();
        let mut open = true;
        while open || !owed.is_empty() {
            // Wait for news, or for the next try when runs are owed.
            let message = if owed.is_empty() {
                messages.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                messages.recv_timeout(next_try.saturating_duration_since(Instant::now()))
            };
            let offline = self.offline;
            let mut take = |message: Message, owed: &mut BTreeSet<RunId>| match message {
                Message::Changed(run) => {
                    owed.insert(run);
                }
                // Nobody waits for a store that is away: what is owed is written later.
                Message::Flush(reply) if offline => {
                    let _ = reply.send(false);
                }
                Message::Flush(reply) => flushes.push(reply),
            };
            match message {
                Ok(message) => take(message, &mut owed),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
            while let Ok(message) = messages.try_recv() {
                take(message, &mut owed);
            }
            if !open && self.offline {
                // The process ends and the store is away: the next process writes these.
                return;
            }
            if owed.is_empty() || Instant::now() < next_try && open {
                if owed.is_empty() {
                    for reply in flushes.drain(..) {
                        let _ = reply.send(true);
                    }
                }
                continue;
            }
            if self.push(&mut owed) {
                backoff = FIRST_BACKOFF;
                next_try = Instant::now();
            } else {
                next_try = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if !open {
                    return;
                }
            }
            if owed.is_empty() {
                for reply in flushes.drain(..) {
                    let _ = reply.send(true);
                }
            }
        }
    }

    /// Writes every owed run; false when the store cannot be reached (the rest stay owed).
    fn push(&mut self, owed: &mut BTreeSet<RunId>) -> bool {
        let store = match &self.store {
            Some(store) => store.clone(),
            None => match self.shared.connect() {
                Ok(store) => {
                    self.store = Some(store.clone());
                    store
                }
                Err(e) => {
                    self.went_offline(&e.to_string());
                    return false;
                }
            },
        };
        while let Some(&run) = owed.iter().next() {
            let snapshot = match self.snapshot(run) {
                Ok(Some(snapshot)) => snapshot,
                Ok(None) => {
                    owed.remove(&run);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(run, "could not read a workflow run to share it: {e}");
                    owed.remove(&run);
                    continue;
                }
            };
            let (shared, definition) = snapshot;
            let definition = definition.filter(|d| !self.definitions.contains(&d.hash));
            match RunBoard::publish_run(&store, &shared, definition.as_ref(), now_ms()) {
                Ok(_) => {
                    if let Some(d) = definition {
                        self.definitions.insert(d.hash);
                    }
                    self.refused.remove(&run);
                    owed.remove(&run);
                }
                Err(e) if e.kind() == StoreErrorKind::Unreachable => {
                    self.went_offline(&e.to_string());
                    return false;
                }
                Err(e) => {
                    let times = self.refused.entry(run).or_default();
                    *times += 1;
                    if *times < REFUSALS {
                        return false;
                    }
                    tracing::warn!(
                        run,
                        "the shared store refused workflow run {run} {REFUSALS} times; it is written again when it changes: {e}"
                    );
                    self.refused.remove(&run);
                    owed.remove(&run);
                }
            }
        }
        if self.offline {
            self.offline = false;
            tracing::info!(store = %self.shared.url, "reached the shared store again; shared the workflow runs kept meanwhile");
        }
        true
    }

    fn went_offline(&mut self, why: &str) {
        if !self.offline {
            tracing::warn!("workflow runs are kept here until the shared store can be reached again: {why}");
            self.offline = true;
        }
    }

    /// The run's latest state as the team sees it, and its definition; `None` when it is gone.
    #[allow(clippy::type_complexity)]
    fn snapshot(&self, run: RunId) -> Result<Option<(SharedRun, Option<SharedDefinition>)>, WorkflowError> {
        // The version first: the state read after it is at least that new, and any later
        // change has a higher version and is written again.
        let version = self.db.version(run)?;
        let Some(record) = self.db.run(run)? else { return Ok(None) };
        let steps = self.db.steps(run)?;
        let definition = self.db.definition(run).ok().map(|(_, source)| SharedDefinition {
            name: record.workflow.clone(),
            hash: record.definition_hash.clone(),
            // A secret written into a workflow file stays on this machine, as a step's output does.
            source: redacted(&source),
        });
        Ok(Some((
            shared_run(&record, &steps, version, &self.workspace, &self.host, &self.shared),
            definition,
        )))
    }
}

/// The id of a run across machines: 16 hex digits of the SHA-256 of the machine, the
/// workspace's path, the run's local id and when it was created.
pub fn shared_id(host: &str, workspace: &Path, local_id: RunId, created_ms: i64) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{host}\0{}\0{local_id}\0{created_ms}", workspace.display()));
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn shared_run(
    record: &RunRecord,
    steps: &[StepRecord],
    version: i64,
    workspace: &Path,
    host: &str,
    shared: &SharedStore,
) -> SharedRun {
    SharedRun {
        id: shared_id(host, workspace, record.id, record.created_ms),
        local_id: record.id,
        user: shared.identity.user.clone(),
        host: host.to_owned(),
        clone: workspace.display().to_string(),
        workflow: record.workflow.clone(),
        definition_hash: record.definition_hash.clone(),
        trigger: record.trigger.get("kind").and_then(Value::as_str).unwrap_or("unknown").to_owned(),
        status: record.status.as_str().to_owned(),
        error: record.error.as_deref().map(error_text),
        created_ms: record.created_ms,
        started_ms: record.started_ms,
        finished_ms: record.finished_ms,
        version,
        steps: steps
            .iter()
            .map(|s| SharedStep {
                step_id: s.step_id.clone(),
                position: s.position.min(i32::MAX as usize) as i32,
                status: s.status.as_str().to_owned(),
                attempts: s.attempts.min(i32::MAX as u32) as i32,
                started_ms: s.started_ms,
                finished_ms: s.finished_ms,
                exit_code: s
                    .output
                    .as_ref()
                    .and_then(|o| o.get("exit_code"))
                    .and_then(Value::as_i64)
                    .and_then(|c| i32::try_from(c).ok()),
                error: s.error.as_deref().map(error_text),
                output_tail: s.output.as_ref().map(output_tail),
            })
            .collect(),
    }
}

/// The text with every secret replaced.
fn redacted(text: &str) -> String {
    redact_text(text, false).0
}

/// The start of an error, redacted: at most [`ERROR_TEXT`] bytes, redacted within a window
/// [`REDACT_MARGIN`] longer, so that the cost does not grow with the error.
fn error_text(text: &str) -> String {
    let window = head(text, ERROR_TEXT + REDACT_MARGIN);
    head(&redacted(window), ERROR_TEXT).to_owned()
}

/// The end of a stream, redacted: at most [`OUTPUT_TAIL`] bytes, redacted within a window
/// [`REDACT_MARGIN`] longer (a step may keep a megabyte of each stream).
fn stream_tail(text: &str) -> String {
    let window = tail(text, OUTPUT_TAIL + REDACT_MARGIN);
    tail(&redacted(window), OUTPUT_TAIL).to_owned()
}

/// The first `limit` bytes of `text` at most, at a character boundary.
fn head(text: &str, limit: usize) -> &str {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The last `limit` bytes of `text` at most, at a character boundary.
fn tail(text: &str, limit: usize) -> &str {
    let mut start = text.len().saturating_sub(limit);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The end of a step's output, redacted: each of `stdout` and `stderr` of a `run:` step, or the
/// JSON of a `uses:` step's output.
fn output_tail(output: &Value) -> String {
    let stream = |name: &str| output.get(name).and_then(Value::as_str);
    match (stream("stdout"), stream("stderr")) {
        (None, None) => stream_tail(&output.to_string()),
        (out, err) => {
            let mut text = stream_tail(out.unwrap_or_default());
            let err = stream_tail(err.unwrap_or_default());
            if !err.is_empty() {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str("[stderr]\n");
                text.push_str(&err);
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_tails_are_redacted_then_cut_at_a_character() {
        // Made at run time: the server's own source holds no secret (see the redactor's tests).
        let secret = &format!("ghp_{}", "0123456789abcdefghijABCDEFGHIJ012345");
        let out = serde_json::json!({"stdout": format!("token {secret}\n"), "stderr": "é".repeat(OUTPUT_TAIL), "exit_code": 1});
        let text = output_tail(&out);
        assert!(!text.contains(secret), "{text}");
        assert!(text.starts_with("token "), "{text}");
        assert!(text.contains("[stderr]\n"));
        assert!(text.len() <= 2 * OUTPUT_TAIL + 16);
        // A secret anywhere in the window read is redacted, however long the stream; what is
        // shared of an error is its start.
        let long = format!("{}{secret}{}", "x".repeat(1 << 20), "y".repeat(OUTPUT_TAIL + 100));
        assert!(!output_tail(&serde_json::json!({"stdout": long})).contains("ghp_"));
        let near_end = format!("{}{secret} end", "x".repeat(1 << 20));
        let shared = output_tail(&serde_json::json!({"stdout": near_end}));
        assert!(!shared.contains("ghp_") && shared.ends_with(" end"), "{shared:.80}");
        let error = error_text(&format!("failed: {secret} {}", "é".repeat(ERROR_TEXT)));
        assert!(error.starts_with("failed: ") && !error.contains("ghp_") && error.len() <= ERROR_TEXT);
        assert_eq!(shared_id("h", Path::new("/w"), 1, 2), shared_id("h", Path::new("/w"), 1, 2));
        assert_ne!(shared_id("h", Path::new("/w"), 1, 2), shared_id("h", Path::new("/x"), 1, 2));
    }
}
