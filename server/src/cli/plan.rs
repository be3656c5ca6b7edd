//! `acas plan "PROMPT"`: asks the AI providers for a plan, shows it, and runs it as a workflow
//! once a person approves it.
//!
//! The plan comes from [`planner::generate`] (checked, repaired, deduplicated, without cycles)
//! and is printed with its notes. Without `--yes` the command asks `Run this plan? [y/N]` on the
//! terminal; when stdin is not a terminal it runs nothing and exits 1. An approved plan is
//! written to `.acas/plans/NAME.json` and run in the foreground by the durable engine, printed
//! like `acas workflow run` (so `acas workflow resume` finishes it after a crash). `--dry-run`
//! stops after printing the plan.
//!
//! With `--tasks`, an approved plan is not run: each of its tasks becomes a task of the agents'
//! queue (`agents::TaskQueue`, source `plan`), with its name as title, its description and action
//! as description, its priority, and its dependencies as the queue's (tasks are created after
//! those they need, so a task waits `blocked` until they are done).
//!
//! With `--webhook URL`, progress events (`plan_generated`, `task_started`, `task_completed`,
//! `task_failed`, `run_completed`) are queued in the store's outbox, signed with the secret in
//! `--webhook-secret-env`, and delivered with retries; the command waits up to
//! [`WEBHOOK_WAIT`] at its end for them to be delivered, and leaves the rest queued for the next
//! delivery task.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{EXIT_FAILED, EXIT_FOUND, EXIT_OK, ListFormat, output, workflow_run};
use crate::agents::{self, NewTask, SystemClock, Task, TaskQueue, TaskSource};
use crate::escalate::engine::Escalator;
use crate::store::{OutboxStatus, Store, StoreOptions};
use crate::workflow::actions::{Ai, EscalatorAi};
use crate::workflow::definition::{RunStatus, StepStatus};
use crate::workflow::engine::RunEvent;
use crate::workflow::outbox::{Outbox, OutboxOptions, ProgressEvent};
use crate::workflow::planner::{self, Plan, PlanErrorKind};
use crate::workspace::now_ms;

/// How long the command waits at its end for progress webhooks to be delivered.
const WEBHOOK_WAIT: Duration = Duration::from_secs(15);

pub(super) struct Args {
    pub prompt: String,
    pub yes: bool,
    /// Queue the tasks instead of running the plan.
    pub tasks: bool,
    pub dry_run: bool,
    pub provider: Option<String>,
    pub workspace: PathBuf,
    pub format: ListFormat,
    pub webhook: Option<String>,
    pub webhook_secret_env: Option<String>,
}

pub(super) fn run(args: Args) -> i32 {
    let root = match super::resolve(&args.workspace) {
        Ok((root, true)) => root,
        Ok((_, false)) => {
            output::note(&format!("acas plan: {} is not a directory", args.workspace.display()));
            return EXIT_FAILED;
        }
        Err(error) => {
            output::note(&format!("acas plan: {error}"));
            return EXIT_FAILED;
        }
    };
    // Planning records its AI calls against the budgets, and running the plan records the run.
    if let Err(code) = super::refuse_read_only("plan", &root) {
        return code;
    }
    match plan(&root, &args) {
        Ok(code) => code,
        Err(message) => {
            output::note(&format!("acas plan: {message}"));
            EXIT_FAILED
        }
    }
}

fn plan(root: &Path, args: &Args) -> Result<i32, String> {
    Store::recorded(root).map_err(|e| e.to_string())?;
    let (config, error) = crate::config::load(root);
    if let Some(error) = error {
        return Err(error.to_string());
    }
    if let Some(name) = &args.webhook_secret_env
        && std::env::var_os(name).is_none()
    {
        return Err(format!("the webhook secret variable `{name}` is not set; export it or name another"));
    }
    let store = Store::open_workspace(root, StoreOptions::default()).map_err(|e| e.to_string())?;
    let env = |name: &str| std::env::var(name).ok();
    let escalator = Escalator::new(&config.escalation, &env, Some(store.clone()), args.provider.as_deref())
        .map_err(|e| e.to_string())?;
    let ai: Arc<dyn Ai> = Arc::new(EscalatorAi(Arc::new(escalator)));
    let runtime = super::runtime();
    let result = runtime.block_on(async {
        let progress = args
            .webhook
            .as_deref()
            .map(|url| Progress::start(store.clone(), url.to_owned(), args.webhook_secret_env.clone()));
        let result = plan_and_run(root, args, ai, progress.as_ref()).await;
        let delivery = match progress {
            Some(progress) => Some(progress.finish().await),
            None => None,
        };
        let (code, mut report) = result?;
        if let Some((delivered, pending, failed)) = delivery {
            match args.format {
                ListFormat::Text => {
                    let mut text = format!("progress webhooks: {delivered} delivered");
                    if failed > 0 {
                        text.push_str(&format!(", {failed} failed"));
                    }
                    if pending > 0 {
                        text.push_str(&format!(", {pending} still queued for a later retry"));
                    }
                    output::note(&text);
                }
                ListFormat::Json => {
                    report["webhooks"] =
                        json!({"delivered": delivered, "pending": pending, "failed": failed});
                }
            }
        }
        if matches!(args.format, ListFormat::Json) {
            output::line(&report.to_string());
        }
        Ok(code)
    });
    let _ = store.flush();
    // A read of stdin may still be pending on a blocking thread: do not wait for it.
    runtime.shutdown_background();
    result
}

/// Plans, asks, runs. Returns the exit code and the JSON report (`{plan, workflow, run}`).
async fn plan_and_run(
    root: &Path,
    args: &Args,
    ai: Arc<dyn Ai>,
    progress: Option<&Progress>,
) -> Result<(i32, Value), String> {
    let cancel = CancellationToken::new();
    let interrupt = cancel.clone();
    let ctrl_c = tokio::spawn(async move {
        super::stop_requested().await;
        interrupt.cancel();
    });
    let generated = planner::generate(ai.as_ref(), &args.prompt, &cancel).await;
    ctrl_c.abort();
    let plan = generated.map_err(|e| match e.kind {
        PlanErrorKind::Cancelled => "cancelled".to_owned(),
        _ => e.to_string(),
    })?;
    let ms = now_ms();
    let stamp = crate::time::date_time(ms).replace(['-', ':'], "").replace(' ', "-");
    let name = format!("plan-{stamp}-{:03}", ms.rem_euclid(1000));
    let mut report = json!({ "plan": plan.to_json(), "workflow": name, "run": null });
    if let Some(progress) = progress {
        progress.send(
            ProgressEvent::PlanGenerated,
            json!({"plan": name, "prompt": plan.prompt, "tasks": plan.tasks, "notes": plan.notes}),
        );
    }
    if matches!(args.format, ListFormat::Text) {
        output::line(&plan.render());
    }
    if args.dry_run {
        return Ok((EXIT_OK, report));
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            output::note(
                "not running the plan: stdin is not a terminal to ask on; pass --yes to run it without asking",
            );
            return Ok((EXIT_FOUND, report));
        }
        let answer = output::ask("Run this plan? [y/N] ").unwrap_or_default();
        if !matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
            output::note("the plan was not run");
            return Ok((EXIT_OK, report));
        }
    }
    if args.tasks {
        let root = root.to_owned();
        let (plan, name) = (plan.clone(), name.clone());
        let queued = tokio::task::spawn_blocking(move || queue_tasks(&root, &plan, &name))
            .await
            .map_err(|e| format!("queueing the plan's tasks stopped: {e}"))??;
        if matches!(args.format, ListFormat::Text) {
            let mut text = format!("queued {} tasks for agents (`acas task list`):", queued.len());
            for (_, task) in &queued {
                text.push_str(&format!(
                    "
  #{} {} ({})",
                    task.id,
                    task.title,
                    task.state.as_str()
                ));
                if !task.needs.is_empty() {
                    let needs: Vec<String> = task.needs.iter().map(|n| format!("#{n}")).collect();
                    text.push_str(&format!(", needs {}", needs.join(", ")));
                }
            }
            output::line(&text);
        }
        report["workflow"] = Value::Null;
        report["tasks"] = queued.iter().map(|(id, task)| json!({ "plan_task": id, "task": task })).collect();
        return Ok((EXIT_OK, report));
    }
    let (code, run) =
        execute(root, &plan, &name, args.format, ai, progress).await.map_err(|e| e.to_string())?;
    report["run"] = run;
    Ok((code, report))
}

/// Creates a task of the agents' queue for each task of `plan`, each after the tasks it needs;
/// returns the plan's task ids with the tasks made.
fn queue_tasks(root: &Path, plan: &Plan, name: &str) -> Result<Vec<(String, Task)>, String> {
    let mut queue = TaskQueue::open(root, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
    let mut made: HashMap<&str, Task> = HashMap::new();
    let mut order: Vec<(String, Task)> = Vec::new();
    while made.len() < plan.tasks.len() {
        let ready: Vec<&planner::Task> = plan
            .tasks
            .iter()
            .filter(|t| !made.contains_key(t.id.as_str()))
            .filter(|t| t.needs.iter().all(|n| made.contains_key(n.as_str())))
            .collect();
        if ready.is_empty() {
            return Err("the plan's dependencies do not form a DAG; plan again".to_owned());
        }
        for task in ready {
            let mut new = NewTask::titled(&clip(&task.name, agents::tasks::MAX_TITLE_CHARS));
            let action = serde_json::to_string(&task.with).unwrap_or_default();
            new.description = clip(
                &format!("{}\n\nplan {name}, task `{}`: {} {action}", task.description, task.id, task.action),
                agents::tasks::MAX_DESCRIPTION_BYTES / 4,
            );
            new.priority = task.priority;
            new.needs = task.needs.iter().map(|n| made[n.as_str()].id).collect();
            new.source = TaskSource::Plan;
            let created = queue.create(&new).map_err(|e| format!("cannot queue task `{}`: {e}", task.id))?;
            order.push((task.id.clone(), created.clone()));
            made.insert(task.id.as_str(), created);
        }
    }
    Ok(order)
}

fn clip(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// Writes the plan's workflow to `.acas/plans/NAME.json` and runs it in the foreground.
async fn execute(
    root: &Path,
    plan: &Plan,
    name: &str,
    format: ListFormat,
    ai: Arc<dyn Ai>,
    progress: Option<&Progress>,
) -> Result<(i32, Value), String> {
    let workflow = plan.to_workflow(root, name).map_err(|e| e.to_string())?;
    Plan::save(root, &workflow).map_err(|e| format!("cannot write {}: {e}", workflow.file.display()))?;
    let (engine, mut events) = workflow_run::open_with_ai(root, true, Some(ai)).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let trigger = crate::workflow::triggers::Trigger::Plan { prompt: plan.prompt.clone() };
    let handle = engine.start(&workflow, &trigger, &Map::new()).map_err(|e| e.to_string())?;
    let id = handle.id;
    let mut observe = |event: &RunEvent| {
        if let Some(progress) = progress {
            progress.step(name, event);
        }
    };
    let status = workflow_run::drive(&engine, handle, &mut events, format, &mut observe)
        .await
        .map_err(|e| e.to_string())?;
    let record = engine.db().existing_run(id).map_err(|e| e.to_string())?;
    let steps = engine.db().steps(id).map_err(|e| e.to_string())?;
    if let Some(progress) = progress {
        progress.send(
            ProgressEvent::RunCompleted,
            json!({"plan": name, "run_id": id, "status": status.as_str(), "error": record.error}),
        );
    }
    if matches!(format, ListFormat::Text) {
        output::line(&workflow_run::finished(&record, status, started));
    }
    let code = if status == RunStatus::Succeeded { EXIT_OK } else { EXIT_FOUND };
    Ok((code, workflow_run::summary(&record, &steps)))
}

/// Progress events on their way to the outbox: queued in order by one task, delivered by the
/// outbox's delivery task.
struct Progress {
    store: Store,
    attempts: tokio::sync::broadcast::Receiver<crate::workflow::outbox::Attempt>,
    queue: mpsc::UnboundedSender<(ProgressEvent, Value)>,
    queued: tokio::task::JoinHandle<Vec<i64>>,
    delivery: CancellationToken,
}

impl Progress {
    fn start(store: Store, url: String, secret_env: Option<String>) -> Progress {
        let outbox = Outbox::new(store.clone());
        let attempts = outbox.attempts();
        let delivery = CancellationToken::new();
        outbox.spawn(OutboxOptions::default(), delivery.clone());
        let (queue, mut events) = mpsc::unbounded_channel::<(ProgressEvent, Value)>();
        let queuer = outbox.clone();
        let queued = tokio::spawn(async move {
            let mut ids = Vec::new();
            while let Some((event, mut payload)) = events.recv().await {
                payload["event"] = json!(event.as_str());
                payload["time_ms"] = json!(now_ms());
                let (outbox, url, secret) = (queuer.clone(), url.clone(), secret_env.clone());
                let queued = tokio::task::spawn_blocking(move || {
                    outbox.enqueue(&url, secret.as_deref(), event, &payload)
                })
                .await;
                match queued {
                    Ok(Ok(id)) => ids.push(id),
                    Ok(Err(error)) => tracing::error!(%error, "could not queue a progress webhook"),
                    Err(error) => tracing::error!(%error, "queueing a progress webhook stopped"),
                }
            }
            ids
        });
        Progress { store, attempts, queue, queued, delivery }
    }

    fn send(&self, event: ProgressEvent, payload: Value) {
        let _ = self.queue.send((event, payload));
    }

    /// The event of a step that started or ended.
    fn step(&self, plan: &str, event: &RunEvent) {
        let RunEvent::Step { run, step, status, attempt, error, output, .. } = event else {
            return;
        };
        let kind = match status {
            StepStatus::Running => ProgressEvent::TaskStarted,
            StepStatus::Succeeded | StepStatus::Skipped => ProgressEvent::TaskCompleted,
            StepStatus::Failed | StepStatus::Cancelled => ProgressEvent::TaskFailed,
            StepStatus::Pending => return,
        };
        self.send(
            kind,
            json!({"plan": plan, "run_id": run, "task": step, "status": status.as_str(), "attempt": attempt,
                   "error": error, "output": output}),
        );
    }

    /// Waits until every queued event is delivered or given up, or [`WEBHOOK_WAIT`] passed;
    /// returns how many were delivered, are still pending, and failed.
    async fn finish(self) -> (usize, usize, usize) {
        let Progress { store, mut attempts, queue, queued, delivery } = self;
        drop(queue);
        let ids = queued.await.unwrap_or_default();
        let deadline = tokio::time::Instant::now() + WEBHOOK_WAIT;
        let counts = loop {
            let rows = ids.clone();
            let store = store.clone();
            let statuses = tokio::task::spawn_blocking(move || {
                rows.iter()
                    .map(|id| store.outbox_get(*id).ok().flatten().map(|r| r.status))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            let count = |s: OutboxStatus| statuses.iter().filter(|x| **x == Some(s)).count();
            let (delivered, failed) = (count(OutboxStatus::Delivered), count(OutboxStatus::Failed));
            let counts = (delivered, ids.len() - delivered - failed, failed);
            if counts.1 == 0 {
                break counts;
            }
            // Woken by the next attempt (a lagging receiver is woken too).
            if tokio::time::timeout_at(deadline, attempts.recv()).await.is_err() {
                break counts;
            }
        };
        delivery.cancel();
        counts
    }
}
