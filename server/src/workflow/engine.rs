//! The workflow engine: runs a [`Workflow`]'s steps as a DAG, durably.
//!
//! Each run is driven by one task that owns the run's state and makes every decision in order:
//! which steps are ready, which conditions hold, which attempt to retry and when. Steps whose
//! needs are done run in parallel up to the workflow's `max_parallel`; each attempt runs in a
//! task of its own and reports back. Every state change is committed to the store
//! ([`StateDb`]) *before* it takes effect: a step is committed `running`, its attempt counted,
//! before its command starts; its result is committed before a dependent may start. Changes that
//! happen together share one transaction.
//!
//! So a process killed at any moment leaves a run that [`Engine::resume_interrupted`] (called
//! when `acas serve` or `acas watch` starts) or [`Engine::resume`] (`acas workflow resume RUN`)
//! finishes: it is driven again from the definition text it started with, steps that ended are
//! never run again, and a step left `running` is run again (at least once, as documented)
//! without counting the interrupted attempt, unless it says `idempotent: false`: then it fails
//! with a message that says why.
//!
//! Templates are rendered off the run's task: each attempt renders its command or parameters on
//! a blocking thread, under the step's timeout and the engine's [`TemplateLimits`]; a render
//! process it started is killed when the timeout or the cancellation fires.
//!
//! Semantics, as documented in `docs/workflows.md`:
//! - A step's condition defaults to `success()`: every need succeeded, where a need that failed
//!   under `continue_on_error` counts as success and a skipped one counts as success only with
//!   `skipped_needs: success`. A condition that calls none of `success()`, `failure()`,
//!   `always()`, `cancelled()` is combined with `success()`, as GitHub Actions does. A step whose
//!   condition is false is `skipped` (or `cancelled` while the run is being cancelled).
//! - `failure()` holds when a need failed or any step of the run failed the run.
//! - `steps.ID.outcome` is `success`, `failure`, `skipped` or `cancelled`; a step that failed
//!   under `continue_on_error` has status `failed` and outcome `failure` but does not fail the
//!   run.
//! - Cancel: running steps are killed, then steps whose condition holds with `cancelled()` true
//!   (`always()`, `cancelled()`) still run, the others are `cancelled`. A run timeout kills
//!   running steps, cancels the rest and fails the run.
//! - Pause: running steps finish, no new one starts until the run is resumed.
//! - Cancel and pause requests are written to the run's row by any process; the process that
//!   runs it polls the row every [`EngineOptions::poll_interval`] (and at once when the request
//!   comes from the same process).
//!
//! The engine emits [`RunEvent`]s on an optional channel for front ends (the CLI prints them,
//! the LSP layer forwards them). It does not parse YAML: it is given a [`ParseFn`] to read a
//! stored definition back.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::actions::{ActionContext, ActionError, Ai, Editor};
use super::definition::{RunStatus, SkippedNeeds, Step, StepKind, StepStatus, Workflow};
use super::error::{WorkflowError, WorkflowErrorKind};
use super::process::{self, CommandFailure};
use super::settings::WorkflowHistory;
use super::state::{Change, Control, NewRun, Outcome, RunId, RunRecord, StateDb, StepRecord, owner_alive};
use super::template::render_process::{RenderGuard, needs_process};
use super::template::{Status, TemplateLimits, Templates};
use super::triggers::Trigger;
pub use crate::duration::human;
use crate::store::Fence;
use crate::time::now_ms;

/// Reads a stored definition back: `(file, source text) -> Workflow`. The engine calls it to
/// resume or re-run a run from the text it started with.
pub type ParseFn = Arc<dyn Fn(&Path, &str) -> Result<Workflow, WorkflowError> + Send + Sync>;

/// The [`ParseFn`] of `acas workflow validate`: parsing and validation, errors joined with
/// their line and column.
pub fn definition_parser() -> ParseFn {
    Arc::new(|file: &Path, source: &str| {
        let (workflow, problems) = super::validate::check(file, source);
        let errors: Vec<String> = problems
            .iter()
            .filter(|p| p.is_error())
            .map(|p| format!("{}:{}:{}: {}", p.file.display(), p.line, p.column, p.message))
            .collect();
        match workflow {
            Some(workflow) if errors.is_empty() => Ok(workflow),
            _ => Err(WorkflowError::new(WorkflowErrorKind::Definition, errors.join("; "))),
        }
    })
}

/// Runs a `uses:` action: `(action, rendered with, context)`. [`builtin_actions`] is the real
/// one; benchmarks give a no-op.
pub type ActionFn = Arc<
    dyn Fn(String, Map<String, Value>, ActionContext) -> BoxFuture<'static, Result<Value, ActionError>>
        + Send
        + Sync,
>;

/// The built-in actions of [`super::actions::run`].
pub fn builtin_actions() -> ActionFn {
    Arc::new(|action, with, ctx| Box::pin(async move { super::actions::run(&action, &with, &ctx).await }))
}

/// An [`Editor`] that only logs, for runs without an editor.
pub struct LogEditor;

impl Editor for LogEditor {
    fn notify(&self, level: &str, message: &str) {
        tracing::info!(level, "workflow: {message}");
    }

    fn diagnostic(&self, path: &str, line: u32, column: u32, severity: &str, message: &str) {
        tracing::info!(path, line, column, severity, "workflow diagnostic: {message}");
    }
}

/// What front ends hear about runs, in the order things happen (each after it is committed).
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// A run was created, started, paused, resumed or finished (`status` says which).
    Run { run: RunId, workflow: String, status: RunStatus, error: Option<String> },
    /// Every step of a run, in definition order, as it is created (a re-run keeps the steps that
    /// succeeded) and as its driver takes it up (a run resumed after a restart too).
    Steps { run: RunId, workflow: String, steps: Vec<StepSnapshot> },
    /// A step changed state. `attempt` counts attempts started so far; `output` is a short
    /// summary of the output JSON.
    Step {
        run: RunId,
        workflow: String,
        step: String,
        status: StepStatus,
        attempt: u32,
        error: Option<String>,
        output: Option<String>,
        /// When a failed attempt will be retried (Unix ms).
        retry_at_ms: Option<i64>,
    },
}

/// A step's state in [`RunEvent::Steps`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSnapshot {
    pub step: String,
    pub status: StepStatus,
    /// Attempts started so far.
    pub attempts: u32,
    pub error: Option<String>,
}

/// Where a new run comes from: the run it re-runs, and the lease token that must still hold
/// when a trigger started it.
struct Origin<'a> {
    rerun_of: Option<RunId>,
    fence: Option<&'a Fence>,
    /// The accepted webhook request it is for: its inbox entry is taken when the run is created.
    inbox: Option<i64>,
}

pub struct EngineOptions {
    /// Absolute workspace root: `run` steps start there, actions are confined to it.
    pub workspace: PathBuf,
    pub parse: ParseFn,
    pub actions: ActionFn,
    pub editor: Arc<dyn Editor>,
    pub ai: Option<Arc<dyn Ai>>,
    pub events: Option<mpsc::UnboundedSender<RunEvent>>,
    pub history: WorkflowHistory,
    /// How often a run checks its row for requests from other processes. Default: 100 ms.
    pub poll_interval: Duration,
    /// How often a run tells other processes that its owner is alive. Default: 5 s.
    pub heartbeat_interval: Duration,
    pub busy_timeout: Duration,
    /// What one template render may do (`[workflows] template_fuel`, `template_max_bytes`).
    pub templates: TemplateLimits,
    /// Who every run of this engine acts for, whatever started it: set when the engine runs
    /// inside a step of another run (`acas workflow run` started by a step), which it cannot
    /// leave by starting a run of its own.
    pub acting_for: Option<Actor>,
    /// The team's workers, with a shared store: `run:` steps go to them while one is connected
    /// (see [`super::workers`]). `None` runs every step here.
    pub workers: Option<Arc<super::workers::Workers>>,
    /// The shared store the runs of this engine are mirrored into, for the team to see (see
    /// [`super::team_runs`]). `None` keeps them in the workspace only.
    pub shared_runs: Option<crate::store::SharedStore>,
}

/// An agent as policies judge it, and its session (which decision records name with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub agent: String,
    pub session: Option<String>,
}

impl EngineOptions {
    pub fn new(workspace: PathBuf, parse: ParseFn) -> EngineOptions {
        EngineOptions {
            workspace,
            parse,
            actions: builtin_actions(),
            editor: Arc::new(LogEditor),
            ai: None,
            events: None,
            history: WorkflowHistory::default(),
            poll_interval: Duration::from_millis(100),
            heartbeat_interval: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            templates: TemplateLimits::default(),
            acting_for: None,
            workers: None,
            shared_runs: None,
        }
    }
}

/// A run being driven by this process.
#[derive(Debug)]
pub struct RunHandle {
    pub id: RunId,
    done: oneshot::Receiver<RunStatus>,
}

impl RunHandle {
    /// Waits for the run to end (succeed, fail or be cancelled) and returns how it ended.
    pub async fn wait(self) -> RunStatus {
        self.done.await.unwrap_or(RunStatus::Failed)
    }
}

/// What [`Engine::resume`] did.
pub enum Resumed {
    /// The run's process was gone: this process took it over.
    Here(RunHandle),
    /// The run was paused in a live process (this one or another), which now goes on.
    Continued { owner_pid: u32 },
}

/// The engine of one workspace. Cloning is cheap.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    options: EngineOptions,
    db: StateDb,
    templates: Templates,
    /// Runs driven by this process, with the signal that wakes them for a new request.
    active: Mutex<HashMap<RunId, Arc<Notify>>>,
    /// Woken whenever a run of this process ends (concurrency groups wait on it).
    ended: Notify,
    pid: u32,
    /// Where each change of a run is mirrored for the team, with a shared store.
    team: Option<super::team_runs::TeamRuns>,
}

impl Engine {
    /// Opens the workspace's database (creating it if needed) and prunes old history.
    pub fn open(options: EngineOptions) -> Result<Engine, WorkflowError> {
        let db = StateDb::open_workspace(&options.workspace, options.busy_timeout)?;
        let templates = Templates::new(options.templates);
        let team = options.shared_runs.clone().and_then(|shared| {
            super::team_runs::TeamRuns::spawn(&options.workspace, shared, options.busy_timeout)
                .map_err(|e| tracing::warn!("workflow runs stay in this workspace: {e}"))
                .ok()
        });
        let engine = Engine {
            inner: Arc::new(Inner {
                options,
                db,
                templates,
                active: Mutex::new(HashMap::new()),
                ended: Notify::new(),
                pid: std::process::id(),
                team,
            }),
        };
        engine.prune()?;
        Ok(engine)
    }

    /// Waits until every change of a run so far is in the shared store, at most `within`;
    /// true when it is (or there is no shared store).
    pub fn flush_shared(&self, within: Duration) -> bool {
        self.inner.team.as_ref().is_none_or(|team| team.flush(within))
    }

    /// The mirror of this engine's runs in the shared store, when there is one.
    pub fn team(&self) -> Option<&super::team_runs::TeamRuns> {
        self.inner.team.as_ref()
    }

    /// The workflow state, for status and history queries.
    pub fn db(&self) -> &StateDb {
        &self.inner.db
    }

    /// Deletes history beyond the configured count and age, then vacuums. Returns the runs
    /// deleted.
    pub fn prune(&self) -> Result<u64, WorkflowError> {
        let history = self.inner.options.history;
        let before = now_ms().saturating_sub(history.keep_age.as_millis() as i64);
        self.inner.db.prune(history.keep_runs, before)
    }

    /// Starts a run of `workflow`. `inputs` are checked against its `inputs:` (defaults filled
    /// in); `trigger` is what started it, stored and given to templates as `trigger`. The run is
    /// committed `queued` before this returns; it waits for its concurrency group, if any, then
    /// runs on the current Tokio runtime.
    pub fn start(
        &self,
        workflow: &Workflow,
        trigger: &Trigger,
        inputs: &Map<String, Value>,
    ) -> Result<RunHandle, WorkflowError> {
        self.start_fenced(workflow, trigger, inputs, None, None)
    }

    /// [`Engine::start`] for a run that only the holder of the workspace lease may start: with
    /// `fence`, the run is committed only if the lease is still held under that token (checked
    /// in the same transaction); otherwise the error's kind is [`WorkflowErrorKind::Fenced`].
    /// With `inbox`, the run is for that accepted webhook request, whose inbox entry is taken in
    /// the same transaction; when it is gone (the run was started already) the error's kind is
    /// [`WorkflowErrorKind::Claimed`].
    pub fn start_fenced(
        &self,
        workflow: &Workflow,
        trigger: &Trigger,
        inputs: &Map<String, Value>,
        fence: Option<&Fence>,
        inbox: Option<i64>,
    ) -> Result<RunHandle, WorkflowError> {
        let trigger = trigger.to_value();
        let inputs = Value::Object(super::inputs::check(&workflow.inputs, inputs)?);
        let group = match &workflow.concurrency {
            Some(c) => {
                let ctx = json!({
                    "trigger": trigger, "inputs": inputs, "env": process_env(),
                    "workflow": { "name": workflow.name },
                });
                // Only substitutions (checked by validation): as cheap as the group is long.
                let group = self.inner.templates.render_str(&c.group, &ctx).map_err(|e| {
                    WorkflowError::new(WorkflowErrorKind::Definition, format!("concurrency group: {e}"))
                })?;
                Some(group)
            }
            None => None,
        };
        let steps = workflow.steps.iter().enumerate().map(|(i, s)| StepRecord::pending(&s.id, i)).collect();
        self.create_and_spawn(
            workflow,
            &trigger,
            &inputs,
            group,
            Origin { rerun_of: None, fence, inbox },
            steps,
        )
    }

    fn create_and_spawn(
        &self,
        workflow: &Workflow,
        trigger: &Value,
        inputs: &Value,
        group: Option<String>,
        origin: Origin<'_>,
        steps: Vec<StepRecord>,
    ) -> Result<RunHandle, WorkflowError> {
        let Origin { rerun_of, fence, inbox } = origin;
        let inner = &self.inner;
        let snapshot = steps
            .iter()
            .map(|s| StepSnapshot {
                step: s.step_id.clone(),
                status: s.status,
                attempts: s.attempts,
                error: s.error.clone(),
            })
            .collect();
        let new = NewRun {
            workflow: &workflow.name,
            file: &workflow.file,
            definition_hash: &workflow.hash,
            definition: &workflow.source,
            trigger,
            inputs,
            status: RunStatus::Queued,
            concurrency_group: group.as_deref(),
            rerun_of,
            owner_pid: inner.pid,
            steps,
            fence,
            inbox,
        };
        let id = {
            // Registered as driven here under the same lock that `alive` takes: a cancel that
            // finds the run before its driver starts waits for this and does not take it for an
            // orphan (which it would cancel in the store, under the driver's feet).
            let mut active = inner.lock_active();
            let id = inner.db.create_run(&new, now_ms())?;
            active.insert(id, Arc::new(Notify::new()));
            id
        };
        let spawned = self.announce_and_spawn(workflow, id, group, snapshot);
        if spawned.is_err() {
            inner.lock_active().remove(&id);
        }
        spawned
    }

    /// Tells of a new run, cancels what its concurrency group says to, and starts its driver.
    fn announce_and_spawn(
        &self,
        workflow: &Workflow,
        id: RunId,
        group: Option<String>,
        steps: Vec<StepSnapshot>,
    ) -> Result<RunHandle, WorkflowError> {
        let inner = &self.inner;
        inner.emit(RunEvent::Steps { run: id, workflow: workflow.name.clone(), steps });
        inner.emit(RunEvent::Run {
            run: id,
            workflow: workflow.name.clone(),
            status: RunStatus::Queued,
            error: None,
        });
        if let Some(group) = &group
            && workflow.concurrency.as_ref().is_some_and(|c| c.cancel_in_progress)
        {
            for other in inner.db.group_runs(group, id)? {
                match self.cancel(other.id) {
                    Err(e) if e.kind != WorkflowErrorKind::State => return Err(e),
                    _ => {}
                }
            }
        }
        let record = inner.db.existing_run(id)?;
        Ok(self.spawn(record, Arc::new(workflow.clone())))
    }

    fn spawn(&self, record: RunRecord, workflow: Arc<Workflow>) -> RunHandle {
        let (done, receiver) = oneshot::channel();
        let notify = Arc::new(Notify::new());
        self.inner.lock_active().insert(record.id, notify.clone());
        let inner = self.inner.clone();
        let id = record.id;
        tokio::spawn(async move {
            let status = match Driver::new(inner.clone(), record, workflow, notify) {
                Ok(driver) => match AssertUnwindSafe(driver.drive()).catch_unwind().await {
                    Ok(status) => status,
                    Err(_) => inner.fail_run(id, "the engine failed while driving this run; see the log"),
                },
                Err(e) => inner.fail_run(id, &e.to_string()),
            };
            inner.lock_active().remove(&id);
            inner.ended.notify_waiters();
            if let Err(e) = (Engine { inner: inner.clone() }).prune() {
                tracing::warn!("pruning the workflow history: {e}");
            }
            let _ = done.send(status);
        });
        RunHandle { id, done: receiver }
    }

    /// Takes over every run left queued or running by a process that is gone, and drives it
    /// here. Paused runs stay paused until [`Engine::resume`]. Call once at start.
    pub fn resume_interrupted(&self) -> Result<Vec<RunHandle>, WorkflowError> {
        let now = now_ms();
        let mut handles = Vec::new();
        for record in self.inner.db.unfinished()? {
            if record.status == RunStatus::Paused || self.inner.alive(&record, now) {
                continue;
            }
            if let Some(handle) = self.adopt(record)? {
                handles.push(handle);
            }
        }
        Ok(handles)
    }

    /// How many runs [`Engine::resume_interrupted`] would take over now: unfinished, not paused,
    /// their process gone.
    pub fn interrupted_runs(&self) -> Result<usize, WorkflowError> {
        let now = now_ms();
        let unfinished = self.inner.db.unfinished()?;
        Ok(unfinished.iter().filter(|r| r.status != RunStatus::Paused && !self.inner.alive(r, now)).count())
    }

    /// Resumes run `id`: takes it over when its process is gone (clearing a pause), or tells
    /// the live process that runs it to go on after a pause.
    pub fn resume(&self, id: RunId) -> Result<Resumed, WorkflowError> {
        let record = self.inner.db.existing_run(id)?;
        if record.status.is_final() {
            return Err(WorkflowError::new(
                WorkflowErrorKind::State,
                format!(
                    "run {id} already {}; `acas workflow rerun {id}` runs it again from its failed step",
                    record.status.as_str()
                ),
            ));
        }
        if self.inner.alive(&record, now_ms()) {
            self.inner.db.set_control(id, None, now_ms())?;
            self.inner.wake(id);
            return Ok(Resumed::Continued { owner_pid: record.owner_pid.unwrap_or(self.inner.pid) });
        }
        self.inner.db.set_control(id, None, now_ms())?;
        let record = self.inner.db.existing_run(id)?;
        match self.adopt(record)? {
            Some(handle) => Ok(Resumed::Here(handle)),
            None => {
                let record = self.inner.db.existing_run(id)?;
                Ok(Resumed::Continued { owner_pid: record.owner_pid.unwrap_or(0) })
            }
        }
    }

    /// Claims an orphaned run and drives it from its stored definition. `None` when another
    /// process claimed it first.
    fn adopt(&self, record: RunRecord) -> Result<Option<RunHandle>, WorkflowError> {
        let inner = &self.inner;
        if !inner.db.claim(record.id, record.owner_pid, record.heartbeat_ms, inner.pid, now_ms())? {
            return Ok(None);
        }
        let workflow = match inner.definition(record.id) {
            Ok(workflow) => workflow,
            Err(e) => {
                inner.fail_run(record.id, &e.to_string());
                return Ok(None);
            }
        };
        let record = inner.db.existing_run(record.id)?;
        tracing::info!(run = record.id, workflow = %record.workflow, "resuming an interrupted workflow run");
        Ok(Some(self.spawn(record, Arc::new(workflow))))
    }

    /// Asks run `id` to stop: its running steps are killed, its remaining steps cancelled (or
    /// run, when their condition holds under `cancelled()`). A run whose process is gone is
    /// cancelled at once.
    pub fn cancel(&self, id: RunId) -> Result<(), WorkflowError> {
        self.request(id, Control::Cancel)?;
        let record = self.inner.db.existing_run(id)?;
        if !record.status.is_final() && !self.inner.alive(&record, now_ms()) {
            self.inner.cancel_orphan(&record)?;
        }
        Ok(())
    }

    /// Asks run `id` to pause: running steps finish, no new step starts until [`Engine::resume`].
    pub fn pause(&self, id: RunId) -> Result<(), WorkflowError> {
        self.request(id, Control::Pause)
    }

    fn request(&self, id: RunId, control: Control) -> Result<(), WorkflowError> {
        let record = self.inner.db.existing_run(id)?;
        if !self.inner.db.set_control(id, Some(control), now_ms())? {
            return Err(WorkflowError::new(
                WorkflowErrorKind::State,
                format!("run {id} already {}", record.status.as_str()),
            ));
        }
        self.inner.wake(id);
        Ok(())
    }

    /// Runs a failed or cancelled run again as a new run, from the definition, trigger and
    /// inputs it started with: steps that succeeded keep their output and are not run again.
    pub fn rerun(&self, id: RunId) -> Result<RunHandle, WorkflowError> {
        let record = self.inner.db.existing_run(id)?;
        if !matches!(record.status, RunStatus::Failed | RunStatus::Cancelled) {
            return Err(WorkflowError::new(
                WorkflowErrorKind::State,
                format!(
                    "run {id} is {}; only a failed or cancelled run can be re-run",
                    record.status.as_str()
                ),
            ));
        }
        let workflow = self.inner.definition(id)?;
        let old: HashMap<String, StepRecord> =
            self.inner.db.steps(id)?.into_iter().map(|s| (s.step_id.clone(), s)).collect();
        let steps = workflow
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| match old.get(&s.id) {
                Some(done) if done.status == StepStatus::Succeeded => {
                    StepRecord { position: i, next_attempt_ms: None, ..done.clone() }
                }
                _ => StepRecord::pending(&s.id, i),
            })
            .collect();
        self.create_and_spawn(
            &workflow,
            &record.trigger,
            &record.inputs,
            record.concurrency_group,
            Origin { rerun_of: Some(id), fence: None, inbox: None },
            steps,
        )
    }
}

impl Inner {
    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Arc<Notify>>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells of a change already committed: to the team's copy, then to the listener.
    fn emit(&self, event: RunEvent) {
        if let Some(team) = &self.team {
            let (RunEvent::Run { run, .. } | RunEvent::Steps { run, .. } | RunEvent::Step { run, .. }) =
                &event;
            team.changed(*run);
        }
        if let Some(events) = &self.options.events {
            let _ = events.send(event);
        }
    }

    fn wake(&self, id: RunId) {
        if let Some(notify) = self.lock_active().get(&id) {
            notify.notify_one();
        }
    }

    /// Whether some live process (this one included) drives the run.
    fn alive(&self, record: &RunRecord, now: i64) -> bool {
        if record.owner_pid == Some(self.pid) {
            return self.lock_active().contains_key(&record.id);
        }
        owner_alive(record.owner_pid, record.heartbeat_ms, now)
    }

    fn definition(&self, id: RunId) -> Result<Workflow, WorkflowError> {
        let (file, source) = self.db.definition(id)?;
        (self.options.parse)(&file, &source).map_err(|e| {
            WorkflowError::new(
                WorkflowErrorKind::Definition,
                format!("the definition run {id} started with no longer reads: {e}"),
            )
        })
    }

    /// Ends a run that could not be driven at all.
    fn fail_run(&self, id: RunId, error: &str) -> RunStatus {
        let change = Change::Run { run: id, status: RunStatus::Failed, error: Some(error.to_owned()) };
        if let Err(e) = self.db.apply(&[change], now_ms()) {
            tracing::error!(run = id, "recording a failed workflow run: {e}");
        }
        let workflow = self.db.run(id).ok().flatten().map(|r| r.workflow).unwrap_or_default();
        self.emit(RunEvent::Run {
            run: id,
            workflow,
            status: RunStatus::Failed,
            error: Some(error.to_owned()),
        });
        RunStatus::Failed
    }

    /// Cancels a run nobody drives: its unfinished steps and the run itself, in one transaction.
    fn cancel_orphan(&self, record: &RunRecord) -> Result<(), WorkflowError> {
        if !self.db.claim(record.id, record.owner_pid, record.heartbeat_ms, self.pid, now_ms())? {
            return Ok(());
        }
        let mut changes: Vec<Change> = self
            .db
            .steps(record.id)?
            .into_iter()
            .filter(|s| !s.status.is_final())
            .map(|s| Change::Step {
                run: record.id,
                step: StepRecord {
                    status: StepStatus::Cancelled,
                    outcome: Some(Outcome::Cancelled),
                    next_attempt_ms: None,
                    ..s
                },
            })
            .collect();
        changes.push(Change::Run { run: record.id, status: RunStatus::Cancelled, error: None });
        self.db.apply(&changes, now_ms())?;
        self.emit(RunEvent::Run {
            run: record.id,
            workflow: record.workflow.clone(),
            status: RunStatus::Cancelled,
            error: None,
        });
        Ok(())
    }
}

/// An attempt that may run on the team's workers.
struct RemoteJob {
    workers: Arc<super::workers::Workers>,
    run_key: String,
    step: String,
    attempt: u32,
    labels: Vec<String>,
    idempotent: bool,
    step_timeout: Option<Duration>,
    workflow: String,
    run: RunId,
    inner: Arc<Inner>,
}

impl RemoteJob {
    /// Runs the command on a worker when one is connected, else here; a wait for a worker is
    /// told as a `running` step event carrying why it waits.
    async fn run(
        self,
        argv: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: &Path,
        agent: &str,
        timeout: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Result<Value, super::workers::RemoteFailure> {
        use super::workers::{RemoteFailure, Route, Workers};
        let workers = self.workers.clone();
        let route = tokio::task::spawn_blocking(move || workers.route()).await;
        let store = match route {
            Ok(Route::Queue { store }) => store,
            Ok(Route::Here) | Err(_) => {
                let label = crate::process_tree::Label {
                    run: self.run,
                    workspace: self.inner.options.workspace.clone(),
                    agent: agent.to_owned(),
                    session: None,
                    policy: Vec::new(),
                };
                return process::run(&argv, &env, cwd, timeout, Some(&label), cancel).await.map_err(|f| {
                    let (message, output, cancelled) = match f {
                        CommandFailure::Spawn(message) => (message, None, false),
                        CommandFailure::Exit { output, message } => (message, Some(output), false),
                        CommandFailure::TimedOut { output, after } => (
                            format!(
                                "timed out after {}",
                                human(self.step_timeout.or(timeout).unwrap_or(after))
                            ),
                            Some(output),
                            false,
                        ),
                        CommandFailure::Cancelled => ("cancelled".to_owned(), None, true),
                    };
                    RemoteFailure { message, output, cancelled }
                });
            }
        };
        let job = crate::store::postgres::steps::StepJob {
            run_key: self.run_key.clone(),
            step_id: self.step.clone(),
            attempt: self.attempt as i32,
            argv,
            env,
            cwd: super::workers::relative_cwd(&self.inner.options.workspace, cwd),
            timeout_ms: timeout.map(|t| t.as_millis() as i64),
            labels: self.labels.clone(),
            agent: agent.to_owned(),
            idempotent: self.idempotent,
        };
        let tell = |why: Option<String>| {
            self.inner.emit(RunEvent::Step {
                run: self.run,
                workflow: self.workflow.clone(),
                step: self.step.clone(),
                status: StepStatus::Running,
                attempt: self.attempt,
                error: why,
                output: None,
                retry_at_ms: None,
            });
        };
        Workers::run(store, job, timeout, self.step_timeout, cancel, &tell).await
    }
}

/// What one attempt of a step runs, rendered.
enum Prepared {
    Command { argv: Vec<String>, env: BTreeMap<String, String>, cwd: PathBuf },
    Action { action: String, with: Map<String, Value> },
}

/// A step's hold on the run's [`Driver::turns`], until it ends.
enum Turn {
    Alone { _held: tokio::sync::OwnedRwLockWriteGuard<()> },
    Shared { _held: tokio::sync::OwnedRwLockReadGuard<()> },
}

impl Turn {
    async fn take(turns: Arc<tokio::sync::RwLock<()>>, alone: bool) -> Turn {
        if alone {
            Turn::Alone { _held: turns.write_owned().await }
        } else {
            Turn::Shared { _held: turns.read_owned().await }
        }
    }
}

/// Why an attempt failed.
struct AttemptFailure {
    message: String,
    output: Option<Value>,
    cancelled: bool,
    /// Retrying cannot help (a template that cannot be rendered): the step fails now.
    no_retry: bool,
    /// Not a failure: the step's condition, evaluated by the attempt, was false.
    skipped: bool,
}

impl AttemptFailure {
    fn new(message: String, output: Option<Value>) -> AttemptFailure {
        AttemptFailure { message, output, cancelled: false, no_retry: false, skipped: false }
    }

    fn cancelled() -> AttemptFailure {
        AttemptFailure { cancelled: true, ..AttemptFailure::new("cancelled".into(), None) }
    }

    fn final_(message: String) -> AttemptFailure {
        AttemptFailure { no_retry: true, ..AttemptFailure::new(message, None) }
    }

    fn skipped() -> AttemptFailure {
        AttemptFailure { skipped: true, ..AttemptFailure::new(String::new(), None) }
    }
}

/// What an attempt needs to render what it runs, away from the run's task.
struct RenderJob {
    wf: Arc<Workflow>,
    step: usize,
    ctx: Value,
    env: BTreeMap<String, String>,
    workspace: PathBuf,
    templated: bool,
    /// A condition that renders in a process of its own, evaluated by the attempt under the
    /// step's timeout, with the status it sees.
    condition: Option<(String, Status)>,
}

/// How a condition is evaluated, worked out once per step.
enum Condition {
    /// `success()` (no `if:`, or exactly `success()`).
    Success,
    /// `always()`.
    Always,
    /// Calls a status function: evaluated as written.
    WithStatus(String),
    /// Calls none: `success() and (...)`.
    Plain(String),
}

impl Condition {
    fn of(step: &Step) -> Condition {
        match step.condition.as_deref().map(str::trim) {
            None | Some("success()" | "{{ success() }}") => Condition::Success,
            Some("always()" | "{{ always() }}") => Condition::Always,
            Some(c) if ["success(", "failure(", "always(", "cancelled("].iter().any(|f| c.contains(f)) => {
                Condition::WithStatus(c.to_owned())
            }
            Some(c) => Condition::Plain(c.to_owned()),
        }
    }
}

/// The task that drives one run.
struct Driver {
    inner: Arc<Inner>,
    run: RunId,
    group: Option<String>,
    started_ms: Option<i64>,
    status: RunStatus,
    wf: Arc<Workflow>,
    /// `{trigger, inputs, env, run, workflow}`; `steps` is added per render.
    base: Map<String, Value>,
    /// The workflow's rendered `env`, added to every command's environment.
    env: BTreeMap<String, String>,
    steps: Vec<StepRecord>,
    conditions: Vec<Condition>,
    /// Whether a step's command, parameters or condition need the template context.
    templated: Vec<bool>,
    /// The steps each step's templates read (`None`: all of them, e.g. `steps` as a whole), so
    /// that its context holds those only and building it does not grow with the run.
    reads: Vec<Option<Vec<usize>>>,
    needs: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    /// Needs of each step not final yet.
    waiting: Vec<usize>,
    ready: VecDeque<usize>,
    /// Steps waiting for a retry.
    delayed: Vec<usize>,
    running: usize,
    tasks: JoinSet<(usize, Result<Value, AttemptFailure>)>,
    /// Steps whose paths the policy judged run alone ([`super::gate::runs_alone`]): they hold this
    /// for writing from their decision to their end, every other step holds it for reading.
    turns: Arc<tokio::sync::RwLock<()>>,
    cancel: CancellationToken,
    /// A step failed the run.
    failed: Option<String>,
    cancelling: bool,
    timed_out: bool,
    paused: bool,
    notify: Arc<Notify>,
    /// Events to send once the changes that caused them are committed.
    events: Vec<RunEvent>,
    /// Attempts to start once their `running` state is committed.
    pending_starts: Vec<(usize, RenderJob)>,
}

impl Driver {
    fn new(
        inner: Arc<Inner>,
        record: RunRecord,
        wf: Arc<Workflow>,
        notify: Arc<Notify>,
    ) -> Result<Driver, WorkflowError> {
        let index: HashMap<&str, usize> =
            wf.steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let mut needs = vec![Vec::new(); wf.steps.len()];
        let mut dependents = vec![Vec::new(); wf.steps.len()];
        for (i, step) in wf.steps.iter().enumerate() {
            for need in &step.needs {
                let Some(&n) = index.get(need.as_str()) else {
                    return Err(WorkflowError::new(
                        WorkflowErrorKind::Definition,
                        format!("step `{}` needs `{need}`, which is not a step of this workflow", step.id),
                    ));
                };
                needs[i].push(n);
                dependents[n].push(i);
            }
        }
        let stored: HashMap<String, StepRecord> =
            inner.db.steps(record.id)?.into_iter().map(|s| (s.step_id.clone(), s)).collect();
        let steps: Vec<StepRecord> = wf
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| stored.get(&s.id).cloned().unwrap_or_else(|| StepRecord::pending(&s.id, i)))
            .collect();

        // The workflow's `env` is rendered when the run starts (see `render_env`).
        let mut base = Map::new();
        base.insert("trigger".into(), record.trigger.clone());
        base.insert("inputs".into(), record.inputs.clone());
        base.insert("run".into(), json!({ "id": record.id }));
        base.insert("workflow".into(), json!({ "name": wf.name }));
        base.insert("env".into(), Value::Object(process_env()));
        let env = BTreeMap::new();

        let templated: Vec<bool> = wf.steps.iter().map(needs_context).collect();
        let reads = wf
            .steps
            .iter()
            .zip(&templated)
            .map(
                |(step, &templated)| {
                    if templated { step_reads(step, &index, &inner.templates) } else { Some(Vec::new()) }
                },
            )
            .collect();
        let conditions = wf.steps.iter().map(Condition::of).collect();
        Ok(Driver {
            run: record.id,
            group: record.concurrency_group,
            started_ms: record.started_ms,
            status: record.status,
            waiting: needs.iter().map(Vec::len).collect(),
            needs,
            dependents,
            steps,
            conditions,
            templated,
            reads,
            base,
            env,
            wf,
            inner,
            ready: VecDeque::new(),
            delayed: Vec::new(),
            running: 0,
            tasks: JoinSet::new(),
            turns: Arc::default(),
            cancel: CancellationToken::new(),
            failed: None,
            cancelling: record.control == Some(Control::Cancel),
            timed_out: false,
            paused: record.control == Some(Control::Pause),
            notify,
            events: Vec::new(),
            pending_starts: Vec::new(),
        })
    }

    async fn drive(mut self) -> RunStatus {
        match self.drive_inner().await {
            Ok(status) => status,
            Err(e) => {
                tracing::error!(run = self.run, "workflow run stopped: {e}");
                self.cancel.cancel();
                while self.tasks.join_next().await.is_some() {}
                self.inner.fail_run(self.run, &e.to_string())
            }
        }
    }

    async fn drive_inner(&mut self) -> Result<RunStatus, WorkflowError> {
        let mut tick = tokio::time::interval(self.inner.options.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if !self.wait_for_group(&mut tick).await? {
            return self.finish();
        }
        let mut changes = self.recover();
        self.events.push(RunEvent::Steps {
            run: self.run,
            workflow: self.wf.name.clone(),
            steps: self
                .steps
                .iter()
                .map(|s| StepSnapshot {
                    step: s.step_id.clone(),
                    status: s.status,
                    attempts: s.attempts,
                    error: s.error.clone(),
                })
                .collect(),
        });
        let status = if self.paused { RunStatus::Paused } else { RunStatus::Running };
        changes.insert(0, Change::Run { run: self.run, status, error: None });
        if self.started_ms.is_none() {
            self.started_ms = Some(now_ms());
        }
        let deadline = self.wf.timeout.map(|t| {
            let started = self.started_ms.unwrap_or_else(now_ms);
            let left = (started + t.as_millis() as i64 - now_ms()).max(0);
            tokio::time::Instant::now() + Duration::from_millis(left as u64)
        });
        self.render_env(deadline).await?;
        self.status = status;
        self.events.push(RunEvent::Run {
            run: self.run,
            workflow: self.wf.name.clone(),
            status,
            error: None,
        });
        self.schedule(&mut changes);
        self.commit(changes)?;

        let mut last_heartbeat = Instant::now();
        loop {
            if self.running == 0 && self.ready.is_empty() && self.delayed.is_empty() {
                break;
            }
            let next_retry = self.next_retry();
            let mut changes = Vec::new();
            tokio::select! {
                Some(joined) = self.tasks.join_next(), if self.running > 0 => {
                    self.completed(joined, &mut changes);
                    while let Some(joined) = self.tasks.try_join_next() {
                        self.completed(joined, &mut changes);
                    }
                }
                _ = sleep_until_ms(next_retry), if next_retry.is_some() => {
                    self.retries_due();
                }
                _ = self.notify.notified() => self.poll_control(&mut changes)?,
                _ = tick.tick() => {
                    self.poll_control(&mut changes)?;
                    if last_heartbeat.elapsed() >= self.inner.options.heartbeat_interval {
                        self.inner.db.heartbeat(self.run, now_ms())?;
                        last_heartbeat = Instant::now();
                    }
                }
                _ = sleep_until(deadline), if deadline.is_some() && !self.timed_out => {
                    self.timed_out = true;
                    self.start_cancelling(&mut changes);
                }
            }
            self.schedule(&mut changes);
            self.commit(changes)?;
        }
        self.finish()
    }

    /// Renders the workflow's `env` (each value sees the process environment) on a blocking
    /// thread, under the run's timeout: a render process still running when it fires is killed
    /// and the run fails naming the timeout.
    async fn render_env(&mut self, deadline: Option<tokio::time::Instant>) -> Result<(), WorkflowError> {
        if self.wf.env.is_empty() {
            return Ok(());
        }
        let inner = self.inner.clone();
        let wf = self.wf.clone();
        let base = Value::Object(self.base.clone());
        let guard = Arc::new(RenderGuard::default());
        let _kill = guard.kill_on_drop();
        let render_guard = guard.clone();
        let render = tokio::task::spawn_blocking(move || {
            render_guard.enter(|| {
                let mut env = BTreeMap::new();
                for (key, template) in &wf.env {
                    let value = inner
                        .templates
                        .render_str(template, &base)
                        .map_err(|e| format!("env `{key}`: {e}"))?;
                    env.insert(key.clone(), value);
                }
                Ok::<_, String>(env)
            })
        });
        let definition = |message: String| WorkflowError::new(WorkflowErrorKind::Definition, message);
        let env = tokio::select! {
            joined = render => match joined {
                Ok(Ok(env)) => env,
                Ok(Err(message)) => return Err(definition(message)),
                Err(e) => return Err(definition(format!("rendering the workflow's env failed: {e}"))),
            },
            _ = sleep_until(deadline), if deadline.is_some() => {
                let after = human(self.wf.timeout.unwrap_or_default());
                return Err(definition(format!(
                    "the run timed out after {after} (its `timeout`) while rendering the workflow's env"
                )));
            }
        };
        if let Some(Value::Object(ctx)) = self.base.get_mut("env") {
            for (key, value) in &env {
                ctx.insert(key.clone(), Value::String(value.clone()));
            }
        }
        self.env = env;
        Ok(())
    }

    /// Waits until no other live run of the concurrency group is running or queued before this
    /// one. Returns false when this run was cancelled while it waited.
    async fn wait_for_group(&mut self, tick: &mut tokio::time::Interval) -> Result<bool, WorkflowError> {
        let Some(group) = self.group.clone() else { return Ok(true) };
        let inner = self.inner.clone();
        loop {
            let ended = inner.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let now = now_ms();
            let blocked = self.inner.db.group_runs(&group, self.run)?.iter().any(|other| {
                (other.id < self.run || matches!(other.status, RunStatus::Running | RunStatus::Paused))
                    && self.inner.alive(other, now)
            });
            if !blocked {
                return Ok(true);
            }
            if self.inner.db.control(self.run)?.1 == Some(Control::Cancel) {
                self.cancelling = true;
                let changes = self.cancel_all_unstarted();
                self.commit(changes)?;
                return Ok(false);
            }
            tokio::select! {
                _ = &mut ended => {}
                _ = self.notify.notified() => {}
                _ = tick.tick() => self.inner.db.heartbeat(self.run, now_ms())?,
            }
        }
    }

    /// Works out where a run stands from its stored steps: a step left `running` by a killed
    /// process runs again without counting that attempt, unless it is not idempotent.
    fn recover(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for i in 0..self.steps.len() {
            let step = &self.steps[i];
            if step.status.is_final() {
                if step.status == StepStatus::Failed
                    && !self.wf.steps[i].continue_on_error
                    && self.failed.is_none()
                {
                    self.failed = Some(failure_message(&self.wf.steps[i].id, step.error.as_deref()));
                }
                for &d in &self.dependents[i] {
                    self.waiting[d] -= 1;
                }
            }
        }
        for i in 0..self.steps.len() {
            let step = &self.steps[i];
            if step.status == StepStatus::Pending && self.waiting[i] == 0 {
                if step.next_attempt_ms.is_some() {
                    self.delayed.push(i);
                } else {
                    self.ready.push_back(i);
                }
            }
        }
        // Last, so that what they change joins the queues above only once.
        for i in 0..self.steps.len() {
            if self.steps[i].status != StepStatus::Running {
                continue;
            }
            if self.wf.steps[i].idempotent {
                // At least once: the interrupted attempt does not count against its retries.
                let step = &mut self.steps[i];
                step.status = StepStatus::Pending;
                step.attempts = step.attempts.saturating_sub(1);
                step.next_attempt_ms = None;
                step.error = None;
                changes.push(Change::Step { run: self.run, step: step.clone() });
                tracing::info!(run = self.run, step = %step.step_id, "running an interrupted step again");
                self.ready.push_back(i);
            } else {
                self.steps[i].error = Some(format!(
                    "interrupted: the process running this step stopped, and the step is not run again \
                     because it sets `idempotent: false`; check what it did, then `acas workflow rerun {}` \
                     runs it again",
                    self.run
                ));
                self.finalize(i, StepStatus::Failed, Outcome::Failure, &mut changes);
            }
        }
        changes
    }

    fn set_status(&mut self, status: RunStatus) {
        if self.status != status {
            self.status = status;
            if status == RunStatus::Running && self.started_ms.is_none() {
                self.started_ms = Some(now_ms());
            }
            self.events.push(RunEvent::Run {
                run: self.run,
                workflow: self.wf.name.clone(),
                status,
                error: None,
            });
        }
    }

    /// Reads the run's row for a cancel or pause request.
    fn poll_control(&mut self, changes: &mut Vec<Change>) -> Result<(), WorkflowError> {
        let (_, control) = self.inner.db.control(self.run)?;
        match control {
            Some(Control::Cancel) if !self.cancelling => self.start_cancelling(changes),
            Some(Control::Pause) if !self.paused && !self.cancelling => {
                self.paused = true;
                changes.push(Change::Run { run: self.run, status: RunStatus::Paused, error: None });
                self.set_status(RunStatus::Paused);
            }
            None if self.paused => {
                self.paused = false;
                changes.push(Change::Run { run: self.run, status: RunStatus::Running, error: None });
                self.set_status(RunStatus::Running);
            }
            _ => {}
        }
        Ok(())
    }

    /// Kills running steps and turns waiting retries into cancelled steps; `schedule` then
    /// decides the ready steps with `cancelled()` true.
    fn start_cancelling(&mut self, changes: &mut Vec<Change>) {
        self.cancelling = true;
        self.paused = false;
        self.cancel.cancel();
        self.cancel = CancellationToken::new();
        for i in std::mem::take(&mut self.delayed) {
            self.finalize(i, StepStatus::Cancelled, Outcome::Cancelled, changes);
        }
    }

    fn cancel_all_unstarted(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for i in 0..self.steps.len() {
            if !self.steps[i].status.is_final() {
                self.steps[i].next_attempt_ms = None;
                self.steps[i].status = StepStatus::Cancelled;
                self.steps[i].outcome = Some(Outcome::Cancelled);
                changes.push(Change::Step { run: self.run, step: self.steps[i].clone() });
            }
        }
        changes
    }

    fn next_retry(&self) -> Option<i64> {
        self.delayed.iter().filter_map(|&i| self.steps[i].next_attempt_ms).min()
    }

    fn retries_due(&mut self) {
        let now = now_ms();
        let (due, later): (Vec<usize>, Vec<usize>) =
            self.delayed.iter().partition(|&&i| self.steps[i].next_attempt_ms.is_none_or(|at| at <= now));
        self.delayed = later;
        self.ready.extend(due);
    }

    /// The template context of step `i`, whose `steps` holds the ended steps it reads.
    fn context(&self, i: usize) -> Value {
        let mut steps = Map::new();
        let all: Vec<usize>;
        let reads = match &self.reads[i] {
            Some(reads) => reads,
            None => {
                all = (0..self.steps.len()).collect();
                &all
            }
        };
        for &n in reads {
            let (def, step) = (&self.wf.steps[n], &self.steps[n]);
            if step.status.is_final() {
                steps.insert(
                    def.id.clone(),
                    json!({
                        "status": step.status.as_str(),
                        "outcome": step.outcome.map(Outcome::as_str),
                        "output": step.output.clone().unwrap_or(Value::Null),
                        "attempts": step.attempts,
                    }),
                );
            }
        }
        let mut ctx = self.base.clone();
        ctx.insert("steps".into(), Value::Object(steps));
        Value::Object(ctx)
    }

    fn status_of(&self, i: usize) -> Status {
        let mut success = !self.cancelling;
        let mut failure = self.failed.is_some();
        for &n in &self.needs[i] {
            let need = &self.steps[n];
            let ok = match need.status {
                StepStatus::Succeeded => true,
                StepStatus::Failed => self.wf.steps[n].continue_on_error,
                StepStatus::Skipped => self.wf.steps[i].skipped_needs == SkippedNeeds::Success,
                _ => false,
            };
            success &= ok;
            failure |= need.status == StepStatus::Failed && !self.wf.steps[n].continue_on_error;
        }
        Status { success, failure, cancelled: self.cancelling }
    }

    /// Decides ready steps: skips those whose condition is false, starts the others up to
    /// `max_parallel` (their `running` state joins `changes`, committed before they start).
    fn schedule(&mut self, changes: &mut Vec<Change>) {
        let limit = self.wf.max_parallel.max(1);
        let mut start = Vec::new();
        while let Some(&i) = self.ready.front() {
            if self.paused && !self.cancelling {
                break;
            }
            if self.timed_out {
                self.ready.pop_front();
                self.finalize(i, StepStatus::Cancelled, Outcome::Cancelled, changes);
                continue;
            }
            let ctx = if self.templated[i] { Some(self.context(i)) } else { None };
            let ctx_ref = ctx.as_ref().unwrap_or(&Value::Null);
            let status = self.status_of(i);
            let templates = &self.inner.templates;
            // A condition that can repeat values renders in a process of its own, which takes
            // time: the attempt evaluates it, under the step's timeout and cancellation. Plain
            // ones cost as little as they are long and are evaluated here.
            let mut deferred = None;
            let mut evaluate = |c: &String| {
                if needs_process(c, true) {
                    deferred = Some((c.clone(), status));
                    Ok(true)
                } else {
                    templates.condition(c, ctx_ref, status)
                }
            };
            let go = match &self.conditions[i] {
                Condition::Success => Ok(status.success),
                Condition::Always => Ok(true),
                Condition::WithStatus(c) => evaluate(c),
                Condition::Plain(c) => {
                    if status.success {
                        evaluate(c)
                    } else {
                        Ok(false)
                    }
                }
            };
            match go {
                Ok(false) => {
                    self.ready.pop_front();
                    let (s, o) = if self.cancelling {
                        (StepStatus::Cancelled, Outcome::Cancelled)
                    } else {
                        (StepStatus::Skipped, Outcome::Skipped)
                    };
                    self.finalize(i, s, o, changes);
                    continue;
                }
                Err(e) => {
                    self.ready.pop_front();
                    self.fail_now(
                        i,
                        format!("condition `{}`: {e}", self.wf.steps[i].condition.as_deref().unwrap_or("")),
                        changes,
                    );
                    continue;
                }
                Ok(true) => {}
            }
            if self.running + start.len() >= limit {
                break;
            }
            self.ready.pop_front();
            let step = &mut self.steps[i];
            step.status = StepStatus::Running;
            step.attempts += 1;
            step.next_attempt_ms = None;
            step.error = None;
            changes.push(Change::Step { run: self.run, step: step.clone() });
            self.push_step_event(i, None);
            let job = RenderJob {
                wf: self.wf.clone(),
                step: i,
                ctx: ctx.unwrap_or(Value::Null),
                env: self.env.clone(),
                workspace: self.inner.options.workspace.clone(),
                templated: self.templated[i],
                condition: deferred,
            };
            start.push((i, job));
        }
        // The spawned attempts wait for `commit`: they start only once their state is stored.
        self.pending_starts.extend(start);
    }

    /// Commits `changes`, then sends their events and starts the attempts they record.
    fn commit(&mut self, changes: Vec<Change>) -> Result<(), WorkflowError> {
        self.inner.db.apply(&changes, now_ms())?;
        for event in self.events.drain(..) {
            self.inner.emit(event);
        }
        for (i, job) in std::mem::take(&mut self.pending_starts) {
            self.spawn_attempt(i, job);
        }
        Ok(())
    }

    fn spawn_attempt(&mut self, i: usize, job: RenderJob) {
        let step = &self.wf.steps[i];
        let timeout = step.timeout;
        let step_timeout = step.timeout;
        let inner = self.inner.clone();
        let cancel = self.cancel.child_token();
        let options = &self.inner.options;
        let workspace = options.workspace.clone();
        let mut action_ctx = ActionContext {
            workspace: workspace.clone(),
            run_id: self.run.to_string(),
            step_id: step.id.clone(),
            cancel: cancel.clone(),
            editor: options.editor.clone(),
            ai: options.ai.clone(),
            planner: Arc::new(super::planner::PlanAction),
            templates: options.templates,
            hosts: None,
        };
        let actions = options.actions.clone();
        let turns = self.turns.clone();
        let actor = match &options.acting_for {
            Some(actor) => actor.clone(),
            None => policy_agent(self.base.get("trigger").unwrap_or(&Value::Null)),
        };
        let label = crate::process_tree::Label {
            run: self.run,
            workspace: workspace.clone(),
            agent: actor.agent.clone(),
            session: actor.session.clone(),
            policy: Vec::new(),
        };
        let remote = options.workers.clone().map(|workers| RemoteJob {
            workers,
            run_key: super::workers::run_key(&workspace, self.run, self.started_ms),
            step: step.id.clone(),
            attempt: self.steps[i].attempts,
            labels: self.wf.labels_of(step).to_vec(),
            idempotent: step.idempotent,
            step_timeout: step.timeout,
            workflow: self.wf.name.clone(),
            run: self.run,
            inner: self.inner.clone(),
        });
        self.running += 1;
        self.tasks.spawn(async move {
            let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
            // Rendering is CPU work bounded by the template limits; it runs on a blocking thread
            // so that neither this runtime's workers nor the run's task wait for it, and the
            // step's timeout and cancellation apply to it.
            // A template that can repeat values renders in a process of its own; the guard kills
            // it when the timeout or the cancellation fires, and the thread returns.
            let prepared = if job.templated || job.condition.is_some() {
                let guard = Arc::new(RenderGuard::default());
                let _kill = guard.kill_on_drop();
                let render_guard = guard.clone();
                let render = tokio::task::spawn_blocking(move || render_guard.enter(|| prepare(&job, &inner.templates)));
                tokio::select! {
                    joined = render => match joined {
                        Ok(Ok(Some(prepared))) => prepared,
                        Ok(Ok(None)) => return (i, Err(AttemptFailure::skipped())),
                        Ok(Err(message)) => return (i, Err(AttemptFailure::final_(message))),
                        Err(e) => return (i, Err(AttemptFailure::final_(format!("rendering the step's templates failed: {e}")))),
                    },
                    _ = sleep_until(deadline), if deadline.is_some() => {
                        let after = human(timeout.unwrap_or_default());
                        return (i, Err(AttemptFailure::final_(format!("timed out after {after} while rendering its templates"))));
                    }
                    _ = cancel.cancelled() => return (i, Err(AttemptFailure::cancelled())),
                }
            } else {
                match prepare(&job, &inner.templates) {
                    Ok(Some(prepared)) => prepared,
                    Ok(None) => return (i, Err(AttemptFailure::skipped())),
                    Err(message) => return (i, Err(AttemptFailure::final_(message))),
                }
            };
            // The policy is asked about what the step is about to do, as rendered.
            let step = match &prepared {
                Prepared::Command { argv, env, cwd } => super::gate::Step::Command { argv, env, cwd },
                Prepared::Action { action, with } => super::gate::Step::Action { action, with },
            };
            // A step whose paths are judged waits until no other step of the run runs, and none
            // starts until it ended: nothing of the run changes those paths between the decision
            // and the write. The wait does not count against its timeout.
            let waiting = tokio::time::Instant::now();
            let _turn = tokio::select! {
                turn = Turn::take(turns, super::gate::runs_alone(&workspace, &step)) => turn,
                _ = cancel.cancelled() => return (i, Err(AttemptFailure::cancelled())),
            };
            let deadline = deadline.map(|d| d + waiting.elapsed());
            match super::gate::judge(&workspace, &actor.agent, actor.session.as_deref(), step, &cancel).await {
                Ok(hosts) => action_ctx.hosts = hosts,
                Err(_) if cancel.is_cancelled() => return (i, Err(AttemptFailure::cancelled())),
                Err(refusal) => return (i, Err(AttemptFailure::final_(refusal))),
            }
            // What is left of the step's timeout once its templates are rendered.
            let timeout = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
            let result = match prepared {
                Prepared::Command { argv, env, cwd } if remote.is_some() => {
                    let remote = remote.expect("checked just above");
                    remote.run(argv, env, &cwd, &actor.agent, timeout, &cancel).await.map_err(|f| {
                        if f.cancelled {
                            AttemptFailure::cancelled()
                        } else {
                            AttemptFailure::new(f.message, f.output)
                        }
                    })
                }
                Prepared::Command { argv, env, cwd } => {
                    process::run(&argv, &env, &cwd, timeout, Some(&label), &cancel).await.map_err(|f| match f {
                        CommandFailure::Spawn(message) => AttemptFailure::new(message, None),
                        CommandFailure::Exit { output, message } => AttemptFailure::new(message, Some(output)),
                        CommandFailure::TimedOut { output, after } => {
                            let after = step_timeout.unwrap_or(after);
                            AttemptFailure::new(format!("timed out after {}", human(after)), Some(output))
                        }
                        CommandFailure::Cancelled => AttemptFailure::cancelled(),
                    })
                }
                Prepared::Action { action, with } => {
                    let run = actions(action, with, action_ctx);
                    let deadline = async {
                        match timeout {
                            Some(t) => tokio::time::sleep(t).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        result = run => result.map_err(|e| AttemptFailure::new(e.message, None)),
                        _ = deadline => {
                            cancel.cancel();
                            Err(AttemptFailure::new(format!("timed out after {}", human(step_timeout.unwrap_or_default())), None))
                        }
                        _ = cancel.cancelled() => Err(AttemptFailure::cancelled()),
                    }
                }
            };
            (i, result)
        });
    }

    fn completed(
        &mut self,
        joined: Result<(usize, Result<Value, AttemptFailure>), tokio::task::JoinError>,
        changes: &mut Vec<Change>,
    ) {
        self.running -= 1;
        let (i, result) = match joined {
            Ok(done) => done,
            Err(e) => {
                // A panicking attempt: find no index; fail the run loudly.
                tracing::error!(run = self.run, "a workflow step task failed: {e}");
                self.failed.get_or_insert_with(|| format!("a step crashed: {e}"));
                return;
            }
        };
        let now = now_ms();
        match result {
            Ok(output) => {
                self.steps[i].output = Some(output);
                self.finalize(i, StepStatus::Succeeded, Outcome::Success, changes);
            }
            Err(failure) => self.attempt_failed(i, failure, now, changes),
        }
    }

    /// Records a failed attempt: retried later when attempts are left (and the run goes on),
    /// otherwise the step fails.
    fn attempt_failed(&mut self, i: usize, failure: AttemptFailure, now: i64, changes: &mut Vec<Change>) {
        if failure.skipped {
            // The attempt only found the condition false: the step did not run.
            self.steps[i].attempts = self.steps[i].attempts.saturating_sub(1);
            let (s, o) = if self.cancelling {
                (StepStatus::Cancelled, Outcome::Cancelled)
            } else {
                (StepStatus::Skipped, Outcome::Skipped)
            };
            self.finalize(i, s, o, changes);
            return;
        }
        let policy = &self.wf.steps[i].retry;
        let step = &mut self.steps[i];
        step.output = failure.output;
        step.error = Some(failure.message);
        if failure.cancelled || self.cancelling {
            self.finalize(i, StepStatus::Cancelled, Outcome::Cancelled, changes);
        } else if !failure.no_retry && step.attempts < policy.attempts {
            let delay = policy.delay_after(step.attempts);
            let at = now + (delay + jitter(delay, self.run, i, step.attempts)).as_millis() as i64;
            step.status = StepStatus::Pending;
            step.next_attempt_ms = Some(at);
            changes.push(Change::Step { run: self.run, step: step.clone() });
            self.push_step_event(i, Some(at));
            self.delayed.push(i);
        } else {
            self.finalize(i, StepStatus::Failed, Outcome::Failure, changes);
        }
    }

    /// Fails step `i` without running it (a template or condition that cannot be evaluated):
    /// counted as an attempt, never retried.
    fn fail_now(&mut self, i: usize, message: String, changes: &mut Vec<Change>) {
        self.steps[i].attempts += 1;
        self.steps[i].error = Some(message);
        self.finalize(i, StepStatus::Failed, Outcome::Failure, changes);
    }

    /// Records step `i` as ended and makes dependents whose needs are all done ready.
    fn finalize(&mut self, i: usize, status: StepStatus, outcome: Outcome, changes: &mut Vec<Change>) {
        let step = &mut self.steps[i];
        step.status = status;
        step.outcome = Some(outcome);
        step.next_attempt_ms = None;
        changes.push(Change::Step { run: self.run, step: step.clone() });
        if status == StepStatus::Failed && !self.wf.steps[i].continue_on_error && self.failed.is_none() {
            self.failed = Some(failure_message(&self.wf.steps[i].id, self.steps[i].error.as_deref()));
        }
        self.push_step_event(i, None);
        for &d in &self.dependents[i] {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 && self.steps[d].status == StepStatus::Pending {
                self.ready.push_back(d);
            }
        }
    }

    fn push_step_event(&mut self, i: usize, retry_at_ms: Option<i64>) {
        if self.inner.options.events.is_none() {
            return;
        }
        let step = &self.steps[i];
        self.events.push(RunEvent::Step {
            run: self.run,
            workflow: self.wf.name.clone(),
            step: step.step_id.clone(),
            status: step.status,
            attempt: step.attempts,
            error: step.error.clone(),
            output: step.output.as_ref().map(summary),
            retry_at_ms,
        });
    }

    fn finish(&mut self) -> Result<RunStatus, WorkflowError> {
        // Steps that could never become ready (a need left unfinished) are cancelled.
        let mut changes = self.cancel_all_unstarted();
        let (status, error) = if self.timed_out {
            let after = self.wf.timeout.map(human).unwrap_or_default();
            (RunStatus::Failed, Some(format!("the run timed out after {after}")))
        } else if self.cancelling {
            (RunStatus::Cancelled, None)
        } else if let Some(failed) = &self.failed {
            (RunStatus::Failed, Some(failed.clone()))
        } else {
            (RunStatus::Succeeded, None)
        };
        changes.push(Change::Run { run: self.run, status, error: error.clone() });
        self.inner.db.apply(&changes, now_ms())?;
        self.events.push(RunEvent::Run { run: self.run, workflow: self.wf.name.clone(), status, error });
        for event in self.events.drain(..) {
            self.inner.emit(event);
        }
        Ok(status)
    }
}

/// Renders what attempt `job.step` runs; `None` when its deferred condition is false. Plain CPU
/// work, run on a blocking thread when the step has templates.
fn prepare(job: &RenderJob, templates: &Templates) -> Result<Option<Prepared>, String> {
    let ctx = &job.ctx;
    if let Some((condition, status)) = &job.condition {
        match templates.condition(condition, ctx, *status) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(format!("condition `{condition}`: {e}")),
        }
    }
    prepare_run(job, templates).map(Some)
}

/// Renders what attempt `job.step` runs.
fn prepare_run(job: &RenderJob, templates: &Templates) -> Result<Prepared, String> {
    let step = &job.wf.steps[job.step];
    let ctx = &job.ctx;
    let render = |s: &str| -> Result<String, String> {
        if has_template(s) {
            templates.render_str(s, ctx).map_err(|e| e.to_string())
        } else {
            Ok(s.to_owned())
        }
    };
    let command_env = |env: &BTreeMap<String, String>| -> Result<BTreeMap<String, String>, String> {
        let mut all = job.env.clone();
        for (k, v) in env {
            all.insert(k.clone(), render(v).map_err(|e| format!("env `{k}`: {e}"))?);
        }
        Ok(all)
    };
    let cwd = |cwd: &Option<String>| -> Result<PathBuf, String> {
        match cwd {
            Some(dir) => Ok(job.workspace.join(render(dir).map_err(|e| format!("cwd: {e}"))?)),
            None => Ok(job.workspace.clone()),
        }
    };
    match &step.kind {
        StepKind::Argv { argv, env, cwd: dir } => Ok(Prepared::Command {
            argv: argv
                .iter()
                .enumerate()
                .map(|(n, a)| render(a).map_err(|e| format!("run[{n}]: {e}")))
                .collect::<Result<_, _>>()?,
            env: command_env(env)?,
            cwd: cwd(dir)?,
        }),
        StepKind::Shell { script, env, cwd: dir } => {
            let script = if has_template(script) {
                templates.render_shell(script, ctx).map_err(|e| format!("run.shell: {e}"))?
            } else {
                script.clone()
            };
            Ok(Prepared::Command {
                argv: vec!["sh".into(), "-c".into(), script],
                env: command_env(env)?,
                cwd: cwd(dir)?,
            })
        }
        StepKind::Uses { action, with } => {
            // Parameters the action renders itself (`data.transform`'s `map`) stay as written.
            let (late, now): (Map<String, Value>, Map<String, Value>) =
                with.clone().into_iter().partition(|(k, _)| super::actions::renders_later(action, k));
            let now = Value::Object(now);
            let rendered = if job.templated {
                templates.render_value(&now, ctx).map_err(|e| format!("with: {e}"))?
            } else {
                now
            };
            let Value::Object(mut with) = rendered else { return Err("with: not a map".to_owned()) };
            with.extend(late);
            Ok(Prepared::Action { action: action.clone(), with })
        }
    }
}

/// Who a run acts for, as policies name agents: the agent that started it by hand through the
/// MCP server, `cli` or `editor` for the other manual starts, `workflow` for triggers.
fn policy_agent(trigger: &Value) -> Actor {
    let actor = |agent: &str| Actor { agent: agent.to_owned(), session: None };
    if trigger.get("kind").and_then(Value::as_str) != Some("manual") {
        return actor("workflow");
    }
    match trigger.get("source").and_then(Value::as_str) {
        Some("agent") => match trigger.get("agent").and_then(Value::as_str) {
            Some(agent) => Actor {
                agent: crate::policy::agent_from_client(agent),
                session: trigger.get("session").and_then(Value::as_str).map(str::to_owned),
            },
            None => actor("unknown agent"),
        },
        Some("editor") => actor("editor"),
        _ => actor("cli"),
    }
}

fn failure_message(step: &str, error: Option<&str>) -> String {
    match error {
        Some(e) => format!("step `{step}` failed: {e}"),
        None => format!("step `{step}` failed"),
    }
}

fn has_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

fn value_has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => has_template(s),
        Value::Array(items) => items.iter().any(value_has_template),
        Value::Object(map) => map.values().any(value_has_template),
        _ => false,
    }
}

/// The steps that `step`'s templates read, by index; `None` when they read `steps` as a whole
/// or cannot be analysed (then every step is in its context).
fn step_reads(step: &Step, index: &HashMap<&str, usize>, templates: &Templates) -> Option<Vec<usize>> {
    let mut sources: Vec<(&str, bool)> = Vec::new();
    fn strings<'a>(value: &'a Value, out: &mut Vec<(&'a str, bool)>) {
        match value {
            Value::String(s) => out.push((s, false)),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    match &step.kind {
        StepKind::Uses { with, .. } => with.values().for_each(|v| strings(v, &mut sources)),
        StepKind::Argv { argv, env, cwd } => {
            sources.extend(argv.iter().map(|a| (a.as_str(), false)));
            sources.extend(env.values().map(|v| (v.as_str(), false)));
            sources.extend(cwd.iter().map(|c| (c.as_str(), false)));
        }
        StepKind::Shell { script, env, cwd } => {
            sources.push((script, false));
            sources.extend(env.values().map(|v| (v.as_str(), false)));
            sources.extend(cwd.iter().map(|c| (c.as_str(), false)));
        }
    }
    if let Some(condition) = &step.condition {
        sources.push((condition, true));
    }
    let mut reads = Vec::new();
    for (source, expression) in sources {
        if !expression && !has_template(source) {
            continue;
        }
        for reference in templates.references(source, expression).ok()? {
            let mut parts = reference.split('.');
            if parts.next() != Some("steps") {
                continue;
            }
            let &n = index.get(parts.next()?)?;
            reads.push(n);
        }
    }
    reads.sort_unstable();
    reads.dedup();
    Some(reads)
}

/// Whether rendering step `step` or its condition needs the template context.
fn needs_context(step: &Step) -> bool {
    let condition = step.condition.as_deref().is_some_and(|c| {
        !matches!(Condition::of(step), Condition::Success | Condition::Always) || has_template(c)
    });
    let env = |env: &BTreeMap<String, String>, cwd: &Option<String>| {
        env.values().any(|v| has_template(v)) || cwd.as_deref().is_some_and(has_template)
    };
    condition
        || match &step.kind {
            StepKind::Uses { with, .. } => with.values().any(value_has_template),
            StepKind::Argv { argv, env: e, cwd } => argv.iter().any(|a| has_template(a)) || env(e, cwd),
            StepKind::Shell { script, env: e, cwd } => has_template(script) || env(e, cwd),
        }
}

/// The process environment, as the `env` of templates.
fn process_env() -> Map<String, Value> {
    std::env::vars().map(|(k, v)| (k, Value::String(v))).collect()
}

/// Up to a fifth of `delay`, different per run, step and attempt, so that retries of many
/// steps failing together spread out.
fn jitter(delay: Duration, run: RunId, step: usize, attempt: u32) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut x = (run as u64) ^ ((step as u64) << 20) ^ (u64::from(attempt) << 40) ^ u64::from(nanos);
    // xorshift64*
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
    let fraction = (r as f64) / ((1u64 << 53) as f64);
    delay.mul_f64(0.2 * fraction)
}

/// The first 200 characters of a value's JSON.
fn summary(output: &Value) -> String {
    let text = match output.get("stdout").and_then(Value::as_str) {
        Some(stdout) => stdout.trim_end().to_owned(),
        None => output.to_string(),
    };
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

async fn sleep_until_ms(at_ms: Option<i64>) {
    let wait = at_ms.map_or(0, |at| (at - now_ms()).max(0));
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;

/// Workflows built in code, for tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use crate::workflow::definition::{RetryPolicy, SkippedNeeds, Step, StepKind, Triggers, Workflow};

    pub fn workflow(steps: Vec<Step>) -> Workflow {
        Workflow {
            name: "test".into(),
            file: PathBuf::from("/nowhere/.acas/workflows/test.yaml"),
            hash: "0".repeat(64),
            source: "test".into(),
            on: Triggers::default(),
            inputs: BTreeMap::new(),
            env: BTreeMap::new(),
            concurrency: None,
            timeout: None,
            max_parallel: 4,
            runs_on: Vec::new(),
            steps,
        }
    }

    pub fn argv_step(id: &str, needs: &[&str], argv: &[&str]) -> Step {
        Step {
            id: id.into(),
            name: None,
            kind: StepKind::Argv {
                argv: argv.iter().map(|s| s.to_string()).collect(),
                env: BTreeMap::new(),
                cwd: None,
            },
            needs: needs.iter().map(|s| s.to_string()).collect(),
            condition: None,
            retry: RetryPolicy::default(),
            timeout: None,
            continue_on_error: false,
            skipped_needs: SkippedNeeds::Skip,
            idempotent: true,
            runs_on: None,
            line: 1,
            column: 1,
        }
    }
}
