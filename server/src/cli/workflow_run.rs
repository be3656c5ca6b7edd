//! `acas workflow run|status|cancel|resume|rerun|history`: run workflows in the foreground and
//! look at or act on their runs.
//!
//! `run` and `resume` drive the run in this process and print each step as it ends (text) or the
//! whole run at the end (JSON); Ctrl-C cancels the run. `cancel` writes the request into the
//! run's row, which the process running it polls, and waits (up to [`CANCEL_WAIT`]) for the run
//! to end; a run whose process is gone is cancelled at once. Exit codes: 0 when the run
//! succeeded (or the request was done), 1 when it failed or was cancelled, 2 when the command
//! itself failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{EXIT_FAILED, EXIT_FOUND, EXIT_OK, ListFormat, output};
use crate::workflow::actions::{Ai, Editor};
use crate::workflow::definition::{RunStatus, StepStatus, Workflow};
use crate::workflow::engine::{
    Actor, Engine, EngineOptions, Resumed, RunEvent, RunHandle, definition_parser, human,
};
use crate::workflow::error::{WorkflowError, WorkflowErrorKind};
use crate::workflow::state::{RunId, RunRecord, StepRecord};
use crate::workflow::triggers::{ManualSource, Trigger};
use crate::workflow::{inputs, plan, validate};

/// How long a run's command waits, once the run ended, for its last state to reach the shared
/// store (it does not wait while the store cannot be reached).
const SHARE_WAIT: Duration = Duration::from_secs(5);

/// How long `acas workflow cancel` waits for the run to end.
const CANCEL_WAIT: Duration = Duration::from_secs(30);

#[derive(Subcommand)]
pub(super) enum RunCommand {
    /// Run a workflow in the foreground and print its steps as they end
    Run {
        /// The workflow's name
        name: String,
        /// An input, as NAME=VALUE (repeat for several)
        #[arg(long = "input", value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        /// Validate, render the steps with sample trigger data and print the plan; run nothing
        #[arg(long)]
        dry_run: bool,
        /// Run every step in this process, even when the team's workers are connected
        #[arg(long)]
        local: bool,
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Show a run and its steps; without RUN, the recent runs with theirs (with a shared
    /// store: of every clone of the repository)
    Status {
        /// A run of this workspace, or a run of the team by its shared id (16 hex digits)
        run: Option<String>,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Cancel a run, wherever it runs
    Cancel {
        run: RunId,
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Pause a run, wherever it runs: running steps finish, no new one starts
    Pause {
        run: RunId,
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Resume an interrupted or paused run (an interrupted one runs here, in the foreground)
    Resume {
        run: RunId,
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Run a failed or cancelled run again from its failed steps, keeping what succeeded
    Rerun {
        run: RunId,
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// List recent runs, of one workflow or of all, newest first
    History {
        name: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
}

pub(super) fn run(command: RunCommand) -> i32 {
    if matches!(command, RunCommand::Run { .. } | RunCommand::Resume { .. }) {
        super::end_orphans();
    }
    match command {
        RunCommand::Run { name, inputs, dry_run, local, workspace, format } => {
            with_root(&workspace, "run", |root| run_workflow(root, &name, &inputs, dry_run, local, format))
        }
        RunCommand::Status { run, limit, workspace, format } => {
            with_root(&workspace, "status", |root| status(root, run.as_deref(), limit, format))
        }
        RunCommand::Cancel { run, workspace, format } => {
            with_root(&workspace, "cancel", |root| cancel(root, run, format))
        }
        RunCommand::Pause { run, workspace, format } => {
            with_root(&workspace, "pause", |root| pause(root, run, format))
        }
        RunCommand::Resume { run, workspace, format } => with_root(&workspace, "resume", |root| {
            super::runtime().block_on(async {
                let (engine, mut events) = open(root, true)?;
                judge_start(root, &engine.db().existing_run(run)?.workflow).await?;
                match engine.resume(run)? {
                    Resumed::Here(handle) => follow(&engine, handle, &mut events, format).await,
                    Resumed::Continued { owner_pid } => {
                        let record = engine.db().existing_run(run)?;
                        match format {
                            ListFormat::Text => {
                                output::line(&format!("run {run} continues in process {owner_pid}"));
                            }
                            ListFormat::Json => {
                                output::line(&summary(&record, &engine.db().steps(run)?).to_string());
                            }
                        }
                        Ok(EXIT_OK)
                    }
                }
            })
        }),
        RunCommand::Rerun { run, workspace, format } => with_root(&workspace, "rerun", |root| {
            super::runtime().block_on(async {
                let (engine, mut events) = open(root, true)?;
                judge_start(root, &engine.db().existing_run(run)?.workflow).await?;
                let handle = engine.rerun(run)?;
                follow(&engine, handle, &mut events, format).await
            })
        }),
        RunCommand::History { name, limit, workspace, format } => with_root(&workspace, "history", |root| {
            if let Some(board) = super::workflow_team::board(root)? {
                super::workflow_team::print_team_runs(&board, name.as_deref(), limit, false, format)?;
                return Ok(EXIT_OK);
            }
            // Reading history creates no state where there is none.
            if !crate::store::Store::recorded(root)? {
                print_history(&[], format);
                return Ok(EXIT_OK);
            }
            if let Some(db) = read_only_db(root, "history")? {
                print_history(&db.history(name.as_deref(), limit)?, format);
                return Ok(EXIT_OK);
            }
            let (engine, _) = open(root, false)?;
            print_history(&engine.db().history(name.as_deref(), limit)?, format);
            Ok(EXIT_OK)
        }),
    }
}

/// `acas workflow status [RUN]`: one run, or the recent runs with their steps; with a shared
/// store, a run of any clone by its shared id, and the runs of every clone.
fn status(root: &Path, run: Option<&str>, limit: usize, format: ListFormat) -> Result<i32, WorkflowError> {
    use super::workflow_team::{board, is_shared_id, print_team_run, print_team_runs};
    let local: Option<RunId> = match run {
        Some(text) => match text.parse::<RunId>() {
            Ok(id) => Some(id),
            Err(_) if is_shared_id(text) => None,
            Err(_) => {
                return Err(WorkflowError::new(
                    WorkflowErrorKind::NotFound,
                    format!(
                        "`{}` names no run: give a run's number in this workspace, or a run's shared id (16 hex digits, from `acas workflow history`)",
                        output::shown(text)
                    ),
                ));
            }
        },
        None => None,
    };
    let board = board(root)?;
    if let (Some(text), Some(board)) = (run, &board)
        && is_shared_id(text)
        && print_team_run(board, text, format)?
    {
        return Ok(EXIT_OK);
    }
    let Some(id) = local else {
        if let Some(text) = run {
            return Err(WorkflowError::new(
                WorkflowErrorKind::NotFound,
                format!(
                    "there is no workflow run {text} in the team's store; `acas workflow history` lists the runs"
                ),
            ));
        }
        if let Some(board) = &board {
            print_team_runs(board, None, limit, true, format)?;
            return Ok(EXIT_OK);
        }
        return local_runs(root, limit, format);
    };
    if let Some(db) = read_only_db(root, "status")? {
        print_run(&db.existing_run(id)?, &db.steps(id)?, format);
        return Ok(EXIT_OK);
    }
    let (engine, _) = open(root, false)?;
    let record = engine.db().existing_run(id)?;
    print_run(&record, &engine.db().steps(id)?, format);
    Ok(EXIT_OK)
}

/// The workspace's recent runs with their steps.
fn local_runs(root: &Path, limit: usize, format: ListFormat) -> Result<i32, WorkflowError> {
    let print = |db: &crate::workflow::state::StateDb| -> Result<(), WorkflowError> {
        let mut runs = Vec::new();
        for record in db.history(None, limit)? {
            let steps = db.steps(record.id)?;
            runs.push((record, steps));
        }
        match format {
            ListFormat::Json => {
                let runs: Vec<Value> = runs.iter().map(|(r, s)| summary(r, s)).collect();
                output::line(&json!({ "runs": runs }).to_string());
            }
            ListFormat::Text if runs.is_empty() => {
                output::line("no workflow runs in this workspace yet");
            }
            ListFormat::Text => {
                for (record, steps) in &runs {
                    print_run(record, steps, format);
                }
            }
        }
        Ok(())
    };
    // Reading runs creates no state where there is none.
    if !crate::store::Store::recorded(root)? {
        match format {
            ListFormat::Json => output::line(&json!({ "runs": [] }).to_string()),
            ListFormat::Text => output::line("no workflow runs in this workspace yet"),
        };
        return Ok(EXIT_OK);
    }
    if let Some(db) = read_only_db(root, "status")? {
        print(&db)?;
        return Ok(EXIT_OK);
    }
    let (engine, _) = open(root, false)?;
    print(engine.db())?;
    Ok(EXIT_OK)
}

/// The run history read-only, when the state of `root` cannot be written (saying so).
fn read_only_db(
    root: &Path,
    command: &str,
) -> Result<Option<crate::workflow::state::StateDb>, WorkflowError> {
    let Some(note) = super::read_only_note(&format!("workflow {command}"), root) else { return Ok(None) };
    output::note(&note);
    let (db, wal) = crate::workflow::state::StateDb::open_read_only(root)?;
    if let Some(wal) = wal {
        output::note(&format!("acas workflow {command}: {wal}"));
    }
    Ok(Some(db))
}

/// Resolves the workspace and runs `body`, printing its error.
fn with_root(workspace: &Path, command: &str, body: impl FnOnce(&Path) -> Result<i32, WorkflowError>) -> i32 {
    let root = match super::resolve(workspace) {
        Ok((root, true)) => root,
        Ok((_, false)) => {
            output::note(&format!("acas workflow {command}: {} is not a directory", workspace.display()));
            return EXIT_FAILED;
        }
        Err(error) => {
            output::note(&format!("acas workflow {command}: {error}"));
            return EXIT_FAILED;
        }
    };
    // Everything but reading a run or the history records in the state.
    if !matches!(command, "status" | "history")
        && let Err(code) = super::refuse_read_only(&format!("workflow {command}"), &root)
    {
        return code;
    }
    body(&root).unwrap_or_else(|error| {
        output::note(&format!("acas workflow {command}: {error}"));
        EXIT_FAILED
    })
}

fn located(p: &crate::workflow::parse::Problem) -> String {
    format!("{}:{}:{}: {}", p.file.display(), p.line, p.column, p.message)
}

/// Editor notifications from actions go to stderr.
struct Terminal;

impl Editor for Terminal {
    fn notify(&self, level: &str, message: &str) {
        output::note(&format!("{level}: {message}"));
    }

    fn diagnostic(&self, path: &str, line: u32, column: u32, severity: &str, message: &str) {
        output::note(&format!("{path}:{line}:{column}: {severity}: {message}"));
    }
}

fn open(
    root: &Path,
    with_events: bool,
) -> Result<(Engine, mpsc::UnboundedReceiver<RunEvent>), WorkflowError> {
    open_with_ai(root, with_events, None)
}

/// The workspace's engine, printing to the terminal, with `ai` for the `ai.*` actions.
pub(super) fn open_with_ai(
    root: &Path,
    with_events: bool,
    ai: Option<Arc<dyn Ai>>,
) -> Result<(Engine, mpsc::UnboundedReceiver<RunEvent>), WorkflowError> {
    open_with(root, with_events, ai, true)
}

/// [`open_with_ai`]; with `workers`, `run:` steps go to the team's workers while one is
/// connected (with a shared store configured).
fn open_with(
    root: &Path,
    with_events: bool,
    ai: Option<Arc<dyn Ai>>,
    workers: bool,
) -> Result<(Engine, mpsc::UnboundedReceiver<RunEvent>), WorkflowError> {
    let (config, config_error) = crate::config::load(root);
    if let Some(error) = config_error {
        output::note(&format!("{error}; using the default workflow history settings"));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let mut options = EngineOptions::new(root.to_owned(), definition_parser());
    // Started by a step of another run: every run here acts for that run's agent.
    options.acting_for = enclosing_actor();
    options.history = config.workflows;
    options.templates = config.templates;
    options.editor = Arc::new(Terminal);
    // AI steps go through the configured providers, within their budgets, recorded in the store,
    // unless the caller brings its own.
    options.ai = ai.or_else(|| {
        let store = crate::store::Store::open_workspace(root, crate::store::StoreOptions::default()).ok();
        let env = |name: &str| std::env::var(name).ok();
        crate::escalate::engine::Escalator::new(&config.escalation, &env, store, None)
            .ok()
            .map(|e| Arc::new(crate::workflow::actions::EscalatorAi(Arc::new(e))) as Arc<dyn Ai>)
    });
    if with_events {
        options.events = Some(tx);
    }
    if workers {
        options.workers =
            config.shared_store.clone().map(|s| Arc::new(crate::workflow::workers::Workers::new(s)));
    }
    // Runs are shared with the team whether or not their steps go to workers.
    options.shared_runs = config.shared_store.clone();
    Ok((Engine::open(options)?, rx))
}

/// Who this process acts for when a command ACAS runs started it: the enclosing run's agent
/// (`unknown agent` under a checker or an AI command), so that a step cannot start a run, resume
/// or re-run one as `cli`.
fn enclosing_actor() -> Option<Actor> {
    crate::process_tree::acting_for().map(|acting| Actor { agent: acting.agent, session: acting.session })
}

/// Inside a run, starting `workflow` is judged for the enclosing run's agent, as an agent's
/// `run_workflow` is, and the decision recorded; outside one, a person starts it.
async fn judge_start(root: &Path, workflow: &str) -> Result<(), WorkflowError> {
    let Some(actor) = enclosing_actor() else { return Ok(()) };
    let owned = root.to_owned();
    let policy =
        tokio::task::spawn_blocking(move || crate::policy::Policy::load(&owned)).await.map_err(|e| {
            WorkflowError::new(WorkflowErrorKind::State, format!("reading the policy failed: {e}"))
        })?;
    let action = crate::policy::Action::Workflow { name: workflow.to_owned() };
    let cancel = tokio_util::sync::CancellationToken::new();
    crate::policy::approvals::enforce(root, &policy, &actor.agent, actor.session.as_deref(), &action, &cancel)
        .await
        .map(|_| ())
        .map_err(|refusal| WorkflowError::new(WorkflowErrorKind::State, refusal))
}

/// Finds a valid workflow by name, or says why there is none.
fn find(root: &Path, name: &str) -> Result<Workflow, WorkflowError> {
    // An unusable `.acas` would otherwise read as "no workflow named …".
    crate::store::Store::recorded(root)?;
    let checked = validate::check_dir(root);
    let mut broken = Vec::new();
    let mut unreadable = Vec::new();
    for (_, workflow, problems) in checked {
        let errors = problems.iter().filter(|p| p.is_error()).map(located);
        match workflow {
            Some(workflow) if workflow.name == name => {
                if !problems.iter().any(|p| p.is_error()) {
                    return Ok(workflow);
                }
                broken.extend(errors);
            }
            Some(_) => {}
            // A file that could not be read at all may be the one asked for.
            None => unreadable.extend(errors),
        }
    }
    let message = if !broken.is_empty() {
        format!("workflow `{name}` has errors:\n{}", broken.join("\n"))
    } else if !unreadable.is_empty() {
        format!(
            "no valid workflow named `{name}`; these workflow files could not be read:\n{}",
            unreadable.join("\n")
        )
    } else {
        format!(
            "no workflow named `{name}` in {}; `acas workflow list` shows them",
            root.join(validate::WORKFLOWS_DIR).display()
        )
    };
    Err(WorkflowError::new(WorkflowErrorKind::NotFound, message))
}

fn run_workflow(
    root: &Path,
    name: &str,
    pairs: &[String],
    dry_run: bool,
    local: bool,
    format: ListFormat,
) -> Result<i32, WorkflowError> {
    let workflow = find(root, name)?;
    let given = inputs::from_text(&workflow.inputs, pairs)?;
    if dry_run {
        let trigger = plan::sample_trigger(&workflow).to_value();
        // The configured template limits, as in a run (a broken config file is reported by the
        // run itself; the dry run uses the defaults then).
        let limits = crate::config::load(root).0.templates;
        let planned = plan::plan(&workflow, &trigger, &given, limits)?;
        print_plan(&workflow, &trigger, &planned, format);
        return Ok(EXIT_OK);
    }
    super::runtime().block_on(async {
        judge_start(root, name).await?;
        let (engine, mut events) = open_with(root, true, None, !local)?;
        let trigger = Trigger::Manual { source: ManualSource::Cli, agent: None, session: None };
        let handle = engine.start(&workflow, &trigger, &given)?;
        follow(&engine, handle, &mut events, format).await
    })
}

/// Prints a run's progress until it ends, then its summary; Ctrl-C cancels it.
async fn follow(
    engine: &Engine,
    handle: RunHandle,
    events: &mut mpsc::UnboundedReceiver<RunEvent>,
    format: ListFormat,
) -> Result<i32, WorkflowError> {
    let id = handle.id;
    let started = Instant::now();
    let status = drive(engine, handle, events, format, &mut |_| {}).await?;
    // The run's last state reaches the team before this process ends, when the store answers.
    let flushing = engine.clone();
    let _ = tokio::task::spawn_blocking(move || flushing.flush_shared(SHARE_WAIT)).await;
    let record = engine.db().existing_run(id)?;
    let steps = engine.db().steps(id)?;
    match format {
        ListFormat::Text => {
            output::line(&finished(&record, status, started));
        }
        ListFormat::Json => {
            output::line(&summary(&record, &steps).to_string());
        }
    }
    Ok(if status == RunStatus::Succeeded { EXIT_OK } else { EXIT_FOUND })
}

/// `run 7 succeeded in 1.2s`, with the run's error.
pub(super) fn finished(record: &RunRecord, status: RunStatus, started: Instant) -> String {
    let mut line = format!(
        "run {} {} in {}",
        record.id,
        status.as_str(),
        human(Duration::from_millis(started.elapsed().as_millis() as u64))
    );
    if let Some(error) = &record.error {
        line.push_str(&format!(": {error}"));
    }
    line
}

/// Follows a run until it ends, printing each step as it ends (text) and giving every event to
/// `observe`; Ctrl-C cancels the run.
pub(super) async fn drive(
    engine: &Engine,
    handle: RunHandle,
    events: &mut mpsc::UnboundedReceiver<RunEvent>,
    format: ListFormat,
    observe: &mut (dyn FnMut(&RunEvent) + Send),
) -> Result<RunStatus, WorkflowError> {
    let id = handle.id;
    let interrupted = super::stop_requested();
    tokio::pin!(interrupted);
    let mut cancelled = false;
    let done = handle.wait();
    tokio::pin!(done);
    let status = loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    if matches!(format, ListFormat::Text) { print_event(&event) }
                    observe(&event);
                }
                None => break done.await,
            },
            status = &mut done => {
                while let Ok(event) = events.try_recv() {
                    if matches!(format, ListFormat::Text) { print_event(&event) }
                    observe(&event);
                }
                break status;
            }
            _ = &mut interrupted, if !cancelled => {
                cancelled = true;
                output::note(&format!("cancelling run {id}"));
                engine.cancel(id)?;
            }
        }
    };
    Ok(status)
}

fn print_event(event: &RunEvent) {
    match event {
        RunEvent::Run { run, workflow, status, error } => match status {
            RunStatus::Running => {
                output::line(&format!("run {run} of {workflow}"));
            }
            RunStatus::Queued => {}
            RunStatus::Paused => {
                output::line(&format!("run {run} paused"));
            }
            _ if error.is_some() => {
                output::note(&format!(
                    "run {run} {}: {}",
                    status.as_str(),
                    error.as_deref().unwrap_or_default()
                ));
            }
            _ => {}
        },
        // Each step's own events say what happens to it.
        RunEvent::Steps { .. } => {}
        RunEvent::Step { step, status, attempt, error, output: out, retry_at_ms, .. } => {
            let attempts = if *attempt == 1 { "1 attempt".to_owned() } else { format!("{attempt} attempts") };
            match (status, retry_at_ms) {
                (StepStatus::Pending, Some(at)) => {
                    let wait = (*at - crate::workspace::now_ms()).max(0) as u64;
                    output::line(&format!(
                        "  retry      {step}: attempt {attempt} failed: {}; next in {}",
                        error.as_deref().unwrap_or("failed"),
                        human(Duration::from_millis(wait))
                    ));
                }
                (StepStatus::Succeeded, _) => {
                    let mut line = format!("  succeeded  {step} ({attempts})");
                    if let Some(out) = out.as_deref().filter(|o| !o.is_empty()) {
                        line.push_str(&format!(": {}", out.lines().next().unwrap_or_default()));
                    }
                    output::line(&line);
                }
                (StepStatus::Failed, _) => {
                    output::line(&format!(
                        "  failed     {step} ({attempts}): {}",
                        error.as_deref().unwrap_or("failed")
                    ));
                }
                (StepStatus::Skipped, _) => {
                    output::line(&format!("  skipped    {step}"));
                }
                (StepStatus::Cancelled, _) => {
                    output::line(&format!("  cancelled  {step}"));
                }
                // A step queued for the team's workers that waits for one (on stderr: what a
                // run prints on stdout does not depend on where its steps ran).
                (StepStatus::Running, _) if error.is_some() => {
                    output::note(&format!("  waiting    {step}: {}", error.as_deref().unwrap_or_default()));
                }
                _ => {}
            }
        }
    }
}

/// The JSON of a run: `{run_id, workflow, status, steps: [{id, status, attempts, output}]}` and
/// more.
pub(super) fn summary(record: &RunRecord, steps: &[StepRecord]) -> Value {
    let steps: Vec<Value> = steps
        .iter()
        .map(|s| {
            json!({
                "id": s.step_id,
                "status": s.status.as_str(),
                "outcome": s.outcome.map(|o| o.as_str()),
                "attempts": s.attempts,
                "output": s.output,
                "error": s.error,
                "started_ms": s.started_ms,
                "finished_ms": s.finished_ms,
            })
        })
        .collect();
    json!({
        "run_id": record.id,
        "workflow": record.workflow,
        "status": record.status.as_str(),
        "error": record.error,
        "file": record.file,
        "definition_hash": record.definition_hash,
        "trigger": record.trigger,
        "inputs": record.inputs,
        "created_ms": record.created_ms,
        "started_ms": record.started_ms,
        "finished_ms": record.finished_ms,
        "rerun_of": record.rerun_of,
        "steps": steps,
    })
}

fn print_run(record: &RunRecord, steps: &[StepRecord], format: ListFormat) {
    if matches!(format, ListFormat::Json) {
        output::line(&summary(record, steps).to_string());
        return;
    }
    let mut text = format!("run {} of {}: {}", record.id, record.workflow, record.status.as_str());
    if let Some(started) = record.started_ms {
        text.push_str(&format!(", started {}", crate::time::date_time(started)));
    }
    if let (Some(started), Some(finished)) = (record.started_ms, record.finished_ms) {
        text.push_str(&format!(
            ", took {}",
            human(Duration::from_millis((finished - started).max(0) as u64))
        ));
    }
    if let Some(error) = &record.error {
        text.push_str(&format!("\n  error: {error}"));
    }
    for s in steps {
        text.push_str(&format!("\n  {:<10} {} ({} attempts)", s.status.as_str(), s.step_id, s.attempts));
        if let Some(error) = &s.error {
            text.push_str(&format!(": {error}"));
        }
    }
    output::line(&text);
}

fn print_history(runs: &[RunRecord], format: ListFormat) {
    if matches!(format, ListFormat::Json) {
        let runs: Vec<Value> = runs
            .iter()
            .map(|r| {
                json!({
                    "run_id": r.id, "workflow": r.workflow, "status": r.status.as_str(), "error": r.error,
                    "created_ms": r.created_ms, "started_ms": r.started_ms, "finished_ms": r.finished_ms,
                    "rerun_of": r.rerun_of,
                })
            })
            .collect();
        output::line(&json!({ "runs": runs }).to_string());
        return;
    }
    let mut text = String::from("RUN  WORKFLOW              STATUS     STARTED              TOOK");
    for r in runs {
        let took = match (r.started_ms, r.finished_ms) {
            (Some(s), Some(f)) => human(Duration::from_millis((f - s).max(0) as u64)),
            _ => "-".to_owned(),
        };
        text.push_str(&format!(
            "\n{:<4} {:<21} {:<10} {:<20} {took}",
            r.id,
            r.workflow,
            r.status.as_str(),
            r.started_ms.map_or("-".to_owned(), crate::time::date_time),
        ));
    }
    output::line(&text);
}

fn print_plan(workflow: &Workflow, trigger: &Value, planned: &[plan::PlannedStep], format: ListFormat) {
    if matches!(format, ListFormat::Json) {
        let steps: Vec<Value> = planned
            .iter()
            .map(|p| {
                json!({
                    "id": p.id, "wave": p.wave, "needs": p.needs, "if": p.condition, "kind": p.kind,
                    "rendered": p.rendered, "at_run_time": p.at_run_time,
                })
            })
            .collect();
        output::line(&json!({ "workflow": workflow.name, "trigger": trigger, "steps": steps }).to_string());
        return;
    }
    let mut text = format!("dry run of {} with trigger {trigger} (nothing is run)", workflow.name);
    let mut wave = 0;
    for p in planned {
        if p.wave != wave {
            wave = p.wave;
            text.push_str(&format!("\nwave {wave}:"));
        }
        let what = match &p.rendered {
            Value::Array(argv) => {
                argv.iter().map(|a| a.as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>().join(" ")
            }
            Value::String(script) => format!("sh -c {script}"),
            other => format!("{} {other}", p.kind),
        };
        text.push_str(&format!("\n  {}: {what}", p.id));
        if let Some(condition) = &p.condition {
            text.push_str(&format!("\n      if: {condition}"));
        }
        for template in &p.at_run_time {
            text.push_str(&format!("\n      at run time: {template}"));
        }
    }
    output::line(&text);
}

/// Asks for a pause and waits (bounded) until the run is paused or has ended.
fn pause(root: &Path, run: RunId, format: ListFormat) -> Result<i32, WorkflowError> {
    let (engine, _) = open(root, false)?;
    engine.pause(run)?;
    let deadline = Instant::now() + CANCEL_WAIT;
    let record = loop {
        let record = engine.db().existing_run(run)?;
        if record.status == RunStatus::Paused || record.status.is_final() || Instant::now() >= deadline {
            break record;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    match format {
        ListFormat::Text => output::line(&format!("run {run} {}", record.status.as_str())),
        ListFormat::Json => output::line(&summary(&record, &engine.db().steps(run)?).to_string()),
    };
    Ok(if record.status == RunStatus::Paused { EXIT_OK } else { EXIT_FOUND })
}

fn cancel(root: &Path, run: RunId, format: ListFormat) -> Result<i32, WorkflowError> {
    let (engine, _) = open(root, false)?;
    engine.cancel(run)?;
    let deadline = Instant::now() + CANCEL_WAIT;
    let record = loop {
        let record = engine.db().existing_run(run)?;
        if record.status.is_final() || Instant::now() >= deadline {
            break record;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    match format {
        ListFormat::Text if record.status.is_final() => {
            output::line(&format!("run {run} {}", record.status.as_str()));
        }
        ListFormat::Text => {
            output::line(&format!("run {run}: cancel requested; it is still {}", record.status.as_str()));
        }
        ListFormat::Json => {
            output::line(&summary(&record, &engine.db().steps(run)?).to_string());
        }
    }
    Ok(if record.status == RunStatus::Cancelled { EXIT_OK } else { EXIT_FOUND })
}
