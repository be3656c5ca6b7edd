//! Workflow steps on the team's workers, through the step queue of the shared store
//! ([`crate::store::postgres::steps`]).
//!
//! Two sides:
//! - [`Workers`] is what a run's engine uses: for each attempt of a `run:` step it asks where
//!   the step runs ([`Workers::route`]): here when no worker of the repository is connected (or
//!   the store cannot be reached), else on the queue, even when no connected worker has the
//!   step's labels (it then waits for one, and says so). [`Workers::run`] queues the attempt
//!   and waits for its result, for its timeout or for the run's cancellation; the run's state
//!   stays in the engine's own store.
//! - [`serve`] is what `acas worker` runs: it registers the worker, claims attempts its labels
//!   cover, judges each command with the workspace's policy as a local step is judged
//!   ([`super::gate`]), runs it in the workspace ([`super::process`]), heartbeats what it holds
//!   and reports each result; asked to stop, it kills what runs and returns it to the queue.
//!
//! `uses:` steps always run in their run's process. This module does not decide what a step
//! runs (the engine renders it) and keeps no run state.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::process::{self, CommandFailure};
use crate::duration::human;
use crate::store::postgres::steps::{AttemptState, ClaimedStep, StepJob, StepResult};
use crate::store::{PgStore, SharedStore, StoreError};
use crate::time::now_ms;

/// Bytes of the end of stdout and of stderr a worker sends back for a step.
pub const OUTPUT_TAIL: usize = 64 * 1024;

/// Variables of a worker's own environment that the steps it runs never get: the shared
/// store's URL (which holds its password) and libpq's credentials. A step's own `env` may
/// still set them.
const STORE_VARIABLES: &[&str] = &["ACAS_DATABASE_URL", "PGPASSWORD", "PGPASSFILE", "PGSERVICEFILE"];

/// How often a run's engine looks at an attempt it queued.
const POLL: Duration = Duration::from_millis(25);
/// How often it checks, while an attempt waits, whether a worker that can take it is connected.
const WAIT_CHECK: Duration = Duration::from_secs(1);

/// The engine's side: where `run:` steps run and how a queued one is awaited.
pub struct Workers {
    shared: SharedStore,
    store: Mutex<Option<PgStore>>,
}

/// Where an attempt runs.
pub enum Route {
    Here,
    /// On the queue, where it may wait for a worker that has its labels.
    Queue {
        store: PgStore,
    },
}

/// Why a queued attempt did not succeed.
pub struct RemoteFailure {
    pub message: String,
    pub output: Option<Value>,
    pub cancelled: bool,
}

impl Workers {
    pub fn new(shared: SharedStore) -> Workers {
        Workers { shared, store: Mutex::new(None) }
    }

    /// The store, connected on first use; `None` (said in the log) when it cannot be reached.
    fn store(&self) -> Option<PgStore> {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        if store.is_none() {
            match self.shared.connect() {
                Ok(connected) => *store = Some(connected),
                Err(e) => tracing::warn!("workflow steps run here: {e}"),
            }
        }
        store.clone()
    }

    /// Where an attempt runs. Blocks: call it off the async workers.
    pub fn route(&self) -> Route {
        let Some(store) = self.store() else { return Route::Here };
        let workers = match store.connected_workers(now_ms()) {
            Ok(workers) => workers,
            Err(e) => {
                tracing::warn!("workflow steps run here: {e}");
                return Route::Here;
            }
        };
        if workers.is_empty() {
            return Route::Here;
        }
        Route::Queue { store }
    }

    /// Queues `job` on `store` and waits for its result, until `timeout` (from now) or
    /// `cancel`; then the attempt is taken off the queue (a worker running it stops), and a
    /// timeout is told as the step's `step_timeout`. `waiting` hears why the attempt waits,
    /// whenever that changes (`None`: it no longer waits).
    pub async fn run(
        store: PgStore,
        job: StepJob,
        timeout: Option<Duration>,
        step_timeout: Option<Duration>,
        cancel: &CancellationToken,
        waiting: &(dyn Fn(Option<String>) + Send + Sync),
    ) -> Result<Value, RemoteFailure> {
        let labels = job.labels.clone();
        let queued = {
            let store = store.clone();
            blocking(move || store.enqueue_step(&job, now_ms())).await
        };
        let id =
            queued.map_err(|e| RemoteFailure { message: e.to_string(), output: None, cancelled: false })?;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let give_up = |store: PgStore| async move {
            if let Err(e) = blocking(move || store.cancel_step(id, now_ms())).await {
                tracing::warn!("{e}");
            }
        };
        let mut told: Option<String> = None;
        let mut checked = tokio::time::Instant::now() - WAIT_CHECK;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    give_up(store).await;
                    return Err(RemoteFailure { message: "cancelled".into(), output: None, cancelled: true });
                }
                _ = sleep_until(deadline) => {
                    give_up(store).await;
                    let after = human(step_timeout.or(timeout).unwrap_or_default());
                    return Err(RemoteFailure { message: format!("timed out after {after}"), output: None, cancelled: false });
                }
                _ = tokio::time::sleep(POLL) => {}
            }
            let state = {
                let store = store.clone();
                blocking(move || store.step_state(id)).await
            };
            let state = match state {
                Ok(state) => state,
                Err(e) => {
                    // The store may come back: the deadline and the cancellation still hold.
                    tracing::warn!("{e}");
                    continue;
                }
            };
            let now = now_ms();
            let why = match state {
                AttemptState::Done { result, worker } => {
                    if told.is_some() {
                        waiting(None);
                    }
                    return result_of(result, &worker);
                }
                AttemptState::Cancelled | AttemptState::Missing => {
                    return Err(RemoteFailure {
                        message: "the attempt was taken off the shared store's queue; run the step again"
                            .into(),
                        output: None,
                        cancelled: false,
                    });
                }
                AttemptState::Claimed { lease_until_ms, .. } if lease_until_ms > now => None,
                AttemptState::Claimed { worker, .. } => {
                    // One that must not run twice fails instead (seen at the next poll).
                    let store = store.clone();
                    if let Err(e) = blocking(move || store.expire_step(id, now_ms())).await {
                        tracing::warn!("{e}");
                    }
                    Some(format!(
                        "worker {worker} stopped answering; the step waits for another worker to take it"
                    ))
                }
                AttemptState::Queued => {
                    if checked.elapsed() < WAIT_CHECK {
                        continue;
                    }
                    checked = tokio::time::Instant::now();
                    let store = store.clone();
                    match blocking(move || store.connected_workers(now_ms())).await {
                        Ok(workers) if !workers.iter().any(|w| covers(&w.labels, &labels)) => {
                            Some(waiting_message(&labels))
                        }
                        _ => None,
                    }
                }
            };
            if why != told {
                waiting(why.clone());
                told = why;
            }
        }
    }
}

fn waiting_message(labels: &[String]) -> String {
    if labels.is_empty() {
        "waiting for a worker (`acas worker`) to connect".to_owned()
    } else {
        format!(
            "waiting for a worker with labels {} (`acas worker --labels {}`)",
            labels.join(", "),
            labels.join(",")
        )
    }
}

/// Whether a worker with `worker` labels may run a step that needs `step`.
pub fn covers(worker: &[String], step: &[String]) -> bool {
    step.iter().all(|label| worker.contains(label))
}

fn result_of(result: StepResult, worker: &str) -> Result<Value, RemoteFailure> {
    let output = result.output.as_deref().and_then(|o| serde_json::from_str::<Value>(o).ok());
    if result.succeeded {
        return Ok(output.unwrap_or_else(|| json!({ "stdout": "", "stderr": "", "exit_code": 0 })));
    }
    let message = result.error.unwrap_or_else(|| format!("the step failed on worker {worker}"));
    Err(RemoteFailure { message, output, cancelled: false })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How `acas worker` works.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique among the team's workers: `host:pid` by default.
    pub name: String,
    pub labels: Vec<String>,
    /// Steps run at once. Default: 1.
    pub concurrency: usize,
    /// How long a claim and the worker's presence hold without a heartbeat; heartbeats come
    /// every third of it.
    pub lease: Duration,
    /// How often an idle worker looks for steps.
    pub poll: Duration,
    /// The workspace root (a clone of the repository): steps run there.
    pub workspace: PathBuf,
    pub host: String,
}

/// What a worker did, for its front end.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerEvent {
    Started {
        step: String,
        attempt: i32,
        claims: i32,
        run_key: String,
    },
    Finished {
        step: String,
        attempt: i32,
        succeeded: bool,
        error: Option<String>,
    },
    /// It stopped, returning what it held to the queue.
    Released {
        step: String,
        attempt: i32,
    },
}

/// A claimed attempt being run.
struct Held {
    cancel: CancellationToken,
    /// Set when the claim was lost (lease gone, attempt cancelled): nothing is reported.
    lost: Arc<std::sync::atomic::AtomicBool>,
}

/// Runs a worker until `stop`: see the module's doc.
pub async fn serve(
    store: PgStore,
    options: WorkerOptions,
    stop: CancellationToken,
    events: mpsc::UnboundedSender<WorkerEvent>,
) -> Result<(), StoreError> {
    let options = Arc::new(options);
    {
        let (store, o) = (store.clone(), options.clone());
        blocking(move || store.worker_heartbeat(&o.name, &o.labels, &o.host, o.lease, now_ms())).await?;
    }
    let held: Arc<Mutex<HashMap<i64, Held>>> = Arc::default();
    let beats = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeats(store.clone(), options.clone(), held.clone(), beats.clone()));
    let mut running: JoinSet<()> = JoinSet::new();
    let result = loop {
        if stop.is_cancelled() {
            break Ok(());
        }
        let free = options.concurrency.max(1).saturating_sub(running.len());
        let claimed = if free > 0 {
            let (store, o) = (store.clone(), options.clone());
            match blocking(move || store.claim_steps(&o.name, &o.labels, free, o.lease, now_ms())).await {
                Ok(claimed) => claimed,
                Err(e) if e.kind() == crate::store::StoreErrorKind::Unreachable => {
                    tracing::warn!("{e}");
                    Vec::new()
                }
                Err(e) => break Err(e),
            }
        } else {
            Vec::new()
        };
        let got = !claimed.is_empty();
        for claim in claimed {
            let cancel = stop.child_token();
            let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
            held.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(claim.id, Held { cancel: cancel.clone(), lost: lost.clone() });
            let _ = events.send(WorkerEvent::Started {
                step: claim.job.step_id.clone(),
                attempt: claim.job.attempt,
                claims: claim.claims,
                run_key: claim.job.run_key.clone(),
            });
            let (store, options, held, events) =
                (store.clone(), options.clone(), held.clone(), events.clone());
            let stopping = stop.clone();
            running.spawn(async move {
                let id = claim.id;
                let (step, attempt) = (claim.job.step_id.clone(), claim.job.attempt);
                let result = run_claimed(&options.workspace, claim, &cancel).await;
                // Held (its lease renewed by the heartbeats) until its result is recorded.
                let _held = Unhold { held: held.clone(), id };
                if lost.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let name = options.name.clone();
                if stopping.is_cancelled() && result.is_none() {
                    match blocking(move || store.release_step(id, &name, now_ms())).await {
                        Ok(_) => {
                            let _ = events.send(WorkerEvent::Released { step, attempt });
                        }
                        Err(e) => tracing::warn!("{e}"),
                    }
                    return;
                }
                let result = result.unwrap_or_else(|| StepResult {
                    succeeded: false,
                    exit_code: None,
                    output: None,
                    error: Some("cancelled".into()),
                });
                let (succeeded, error) = (result.succeeded, result.error.clone());
                match record(&store, id, &name, result, &lost).await {
                    Ok(true) => {
                        let _ = events.send(WorkerEvent::Finished { step, attempt, succeeded, error });
                    }
                    Ok(false) => {
                        tracing::warn!(step, "the step's claim was lost before its result was recorded")
                    }
                    Err(e) => tracing::warn!("{e}"),
                }
            });
        }
        if got {
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = tokio::time::sleep(options.poll) => {}
        }
    };
    // Stopping: what runs is killed (the tokens are children of `stop`) and released.
    stop.cancel();
    while running.join_next().await.is_some() {}
    beats.cancel();
    let _ = heartbeat.await;
    let name = options.name.clone();
    if let Err(e) = blocking(move || store.worker_gone(&name)).await {
        tracing::warn!("{e}");
    }
    result
}

/// Takes an attempt out of those the heartbeats renew when dropped.
struct Unhold {
    held: Arc<Mutex<HashMap<i64, Held>>>,
    id: i64,
}

impl Drop for Unhold {
    fn drop(&mut self) {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// How many times a worker tries to record a result before it records only that it could not.
const RECORD_TRIES: u32 = 8;
/// The longest wait between two tries.
const RECORD_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Records `result` of attempt `id`, trying again with a growing wait while the store refuses
/// it or cannot be reached, as long as the claim holds (`lost` unset). When the store answers
/// but still refuses it after [`RECORD_TRIES`] tries, records the failure to record instead, so that the attempt
/// ends rather than being run again when its lease runs out.
async fn record(
    store: &PgStore,
    id: i64,
    worker: &str,
    result: StepResult,
    lost: &std::sync::atomic::AtomicBool,
) -> Result<bool, StoreError> {
    let mut wait = Duration::from_millis(100);
    let (mut tries, mut warned) = (0, false);
    loop {
        let (s, w, r) = (store.clone(), worker.to_owned(), result.clone());
        let error = match blocking(move || s.finish_step(id, &w, &r, now_ms())).await {
            Ok(recorded) => return Ok(recorded),
            Err(e) => e,
        };
        // While the store cannot be reached, the result waits for it (the claim decides, once
        // it is back); a store that refuses it is tried a bounded number of times.
        if error.kind() != crate::store::StoreErrorKind::Unreachable {
            tries += 1;
        }
        if lost.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        if tries >= RECORD_TRIES {
            tracing::warn!("{error}");
            let failed = StepResult {
                succeeded: false,
                exit_code: result.exit_code,
                output: None,
                error: Some(format!(
                    "the step ended but the shared store refused its result ({error}); run the step again"
                )),
            };
            let (s, w) = (store.clone(), worker.to_owned());
            return blocking(move || s.finish_step(id, &w, &failed, now_ms())).await;
        }
        if !warned {
            tracing::warn!("{error}; trying again");
            warned = true;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RECORD_BACKOFF_MAX);
    }
}

/// Renews the worker's presence and the lease of every attempt it holds, every third of the
/// lease; an attempt whose claim is lost is stopped.
async fn heartbeats(
    store: PgStore,
    options: Arc<WorkerOptions>,
    held: Arc<Mutex<HashMap<i64, Held>>>,
    stop: CancellationToken,
) {
    let every = (options.lease / 3).max(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let ids: Vec<i64> = held.lock().unwrap_or_else(PoisonError::into_inner).keys().copied().collect();
        let (store2, o) = (store.clone(), options.clone());
        let beat = blocking(move || {
            store2.worker_heartbeat(&o.name, &o.labels, &o.host, o.lease, now_ms())?;
            let mut lost = Vec::new();
            for id in ids {
                if !store2.heartbeat_step(id, &o.name, o.lease, now_ms())? {
                    lost.push(id);
                }
            }
            Ok::<_, StoreError>(lost)
        })
        .await;
        match beat {
            Ok(lost) => {
                let held = held.lock().unwrap_or_else(PoisonError::into_inner);
                for id in lost {
                    if let Some(h) = held.get(&id) {
                        h.lost.store(true, std::sync::atomic::Ordering::SeqCst);
                        h.cancel.cancel();
                    }
                }
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

/// Judges and runs a claimed attempt in `workspace`; `None` when it was cancelled before it
/// ended (the worker stops, or the claim was lost).
async fn run_claimed(workspace: &Path, claim: ClaimedStep, cancel: &CancellationToken) -> Option<StepResult> {
    let job = claim.job;
    let failed = |message: String| StepResult {
        succeeded: false,
        exit_code: None,
        output: None,
        error: Some(message),
    };
    let cwd = match confined(workspace, &job.cwd) {
        Ok(cwd) => cwd,
        Err(message) => return Some(failed(message)),
    };
    let step = super::gate::Step::Command { argv: &job.argv, env: &job.env, cwd: &cwd };
    match super::gate::judge(workspace, &job.agent, None, step, cancel).await {
        Ok(_) => {}
        Err(_) if cancel.is_cancelled() => return None,
        Err(refusal) => return Some(failed(refusal)),
    }
    let timeout = job.timeout_ms.map(|ms| Duration::from_millis(ms.max(0) as u64));
    let ended = process::run_hiding(&job.argv, &job.env, STORE_VARIABLES, &cwd, timeout, None, cancel).await;
    Some(match ended {
        Ok(output) => StepResult {
            succeeded: true,
            exit_code: Some(0),
            output: Some(tail(output).to_string()),
            error: None,
        },
        Err(CommandFailure::Cancelled) => return None,
        Err(CommandFailure::Spawn(message)) => failed(message),
        Err(CommandFailure::Exit { output, message }) => StepResult {
            succeeded: false,
            exit_code: output["exit_code"].as_i64().map(|c| c as i32),
            output: Some(tail(output).to_string()),
            error: Some(message),
        },
        Err(CommandFailure::TimedOut { output, after }) => StepResult {
            succeeded: false,
            exit_code: None,
            output: Some(tail(output).to_string()),
            error: Some(format!("timed out after {}", human(timeout.unwrap_or(after)))),
        },
    })
}

/// `workspace/relative`, refusing a directory that leaves the workspace.
fn confined(workspace: &Path, relative: &str) -> Result<PathBuf, String> {
    let path = Path::new(relative);
    let escapes = path.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes {
        return Err(format!(
            "the step's working directory `{relative}` is outside the workspace; a worker runs steps inside its clone only"
        ));
    }
    // A link inside the clone may point out of it: the directory the step would really run in
    // is the one judged.
    let joined = workspace.join(path);
    let real = joined
        .canonicalize()
        .map_err(|e| format!("the step's working directory `{relative}` cannot be used: {e}"))?;
    let root = workspace.canonicalize().map_err(|e| format!("the clone cannot be read: {e}"))?;
    match real.strip_prefix(&root) {
        // Spelled under the workspace as the caller names it, for the policy's relative paths.
        Ok(inside) => Ok(workspace.join(inside)),
        Err(_) => Err(format!(
            "the step's working directory `{relative}` leads outside the workspace (to {}); a worker runs steps inside its clone only",
            real.display()
        )),
    }
}

/// The output with the last [`OUTPUT_TAIL`] bytes of stdout and stderr.
fn tail(mut output: Value) -> Value {
    let mut dropped = output["truncated_bytes"].as_u64().unwrap_or(0);
    for stream in ["stdout", "stderr"] {
        if let Some(text) = output[stream].as_str()
            && text.len() > OUTPUT_TAIL
        {
            let mut start = text.len() - OUTPUT_TAIL;
            while !text.is_char_boundary(start) {
                start += 1;
            }
            dropped += start as u64;
            output[stream] = Value::String(text[start..].to_owned());
        }
    }
    if dropped > 0 {
        output["truncated_bytes"] = json!(dropped);
    }
    output
}

/// The key that names run `run` of the workspace at `workspace` on this machine, across the
/// team: host, workspace path, run id and when the run started.
pub fn run_key(workspace: &Path, run: i64, started_ms: Option<i64>) -> String {
    format!("{}:{}#{run}@{}", crate::store::host_name(), workspace.display(), started_ms.unwrap_or_default())
}

/// `cwd` relative to `workspace`, as a worker takes it (empty for the root).
pub fn relative_cwd(workspace: &Path, cwd: &Path) -> String {
    cwd.strip_prefix(workspace).map_or_else(|_| cwd.display().to_string(), |p| p.display().to_string())
}

/// Labels from `--labels a,b`: trimmed, sorted, without duplicates; an error names a bad one.
pub fn parse_labels(text: &str) -> Result<Vec<String>, String> {
    let mut labels: Vec<String> =
        text.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    for label in &labels {
        let fine = label.len() <= 64
            && label.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !fine {
            return Err(format!(
                "label `{label}` cannot be used: a label is 1 to 64 letters, digits, `_`, `-` or `.`"
            ));
        }
    }
    labels.sort();
    labels.dedup();
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_route_and_working_directories_stay_inside() {
        let l = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(covers(&l(&["gpu", "linux"]), &l(&["linux"])));
        assert!(covers(&l(&["linux"]), &l(&[])));
        assert!(!covers(&l(&["linux"]), &l(&["gpu"])));
        assert_eq!(parse_labels(" linux, gpu,linux ").unwrap(), l(&["gpu", "linux"]));
        assert!(parse_labels("a b").is_err());
        let clone = tempfile::tempdir().unwrap();
        let ws = clone.path();
        std::fs::create_dir_all(ws.join("sub/dir")).unwrap();
        assert_eq!(confined(ws, "").unwrap(), ws.join(""));
        assert_eq!(confined(ws, "sub/dir").unwrap(), ws.join("sub/dir"));
        assert!(confined(ws, "missing").is_err(), "a directory that is not there");
        assert!(confined(ws, "../other").is_err());
        assert!(confined(ws, "/etc").is_err());
        assert_eq!(relative_cwd(Path::new("/ws"), Path::new("/ws/sub")), "sub");
    }

    #[test]
    fn the_output_tail_is_kept() {
        let long = "x".repeat(OUTPUT_TAIL + 5) + "end";
        let out = tail(json!({ "stdout": long, "stderr": "e", "exit_code": 0 }));
        assert!(out["stdout"].as_str().unwrap().ends_with("end"));
        assert_eq!(out["stdout"].as_str().unwrap().len(), OUTPUT_TAIL);
        assert_eq!(out["truncated_bytes"], 8);
        assert_eq!(out["stderr"], "e");
    }

    #[test]
    fn a_working_directory_through_a_link_out_of_the_clone_is_refused() {
        let clone = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(clone.path().join("inside")).unwrap();
        std::os::unix::fs::symlink(outside.path(), clone.path().join("out")).unwrap();
        std::os::unix::fs::symlink(clone.path().join("inside"), clone.path().join("in")).unwrap();
        let refused = confined(clone.path(), "out").unwrap_err();
        assert!(refused.contains("leads outside the workspace"), "{refused}");
        assert!(confined(clone.path(), "out/sub").is_err());
        let real = confined(clone.path(), "in").unwrap();
        assert_eq!(real, clone.path().join("inside"));
        assert!(confined(clone.path(), "../x").is_err());
    }
}
