//! `acas task ...` and `acas lock ...`: the agents' task queue and path locks from the command
//! line, over `agents::TaskQueue`.
//!
//! Exit codes: 0 done; 2 the command failed (bad input, no such task, a dependency cycle, the
//! database); 4 refused because another agent holds the task or an overlapping path, or the
//! agent no longer holds the task (its lease ended); 5 `claim` found no task to give.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{EXIT_EMPTY, EXIT_FAILED, EXIT_OK, EXIT_REFUSED, ListFormat, output};
use crate::agents::postgres::PgTaskQueue;
use crate::agents::{
    Claim, ClaimRequest, Lock, NewTask, SystemClock, Task, TaskError, TaskErrorKind, TaskFilter, TaskQueue,
    TaskSource, TaskState, TaskType, Tasks,
};

/// Where and how: shared by every task and lock command.
#[derive(Args, Clone)]
pub(super) struct Common {
    /// The workspace (default: the current directory)
    #[arg(long, default_value = ".")]
    workspace: PathBuf,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    format: ListFormat,
}

#[derive(Subcommand)]
pub(super) enum TaskCommand {
    /// Add a task to the queue
    Create {
        title: String,
        #[arg(long, default_value = "")]
        description: String,
        /// fix, feature, refactor, test, docs, chore or other
        #[arg(long = "type", default_value = "other", value_parser = parse_type)]
        kind: TaskType,
        /// Higher is claimed first
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        /// A label an agent must have to claim the task (repeatable)
        #[arg(long = "label")]
        labels: Vec<String>,
        /// A path glob the task will touch, locked while it is claimed (repeatable)
        #[arg(long = "path")]
        paths: Vec<String>,
        /// A task that must be done first (repeatable)
        #[arg(long = "needs")]
        needs: Vec<i64>,
        /// Failures before the task is failed for good
        #[arg(long)]
        max_attempts: Option<u32>,
        /// Who asks for it: an agent's name (the task then comes from that agent)
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Make a task wait for other tasks (refused when it would make a cycle)
    Needs {
        id: i64,
        /// The tasks it needs
        #[arg(long = "on", required = true, num_args = 1..)]
        needs: Vec<i64>,
        #[command(flatten)]
        common: Common,
    },
    /// Add a fix task for a recorded problem, by fingerprint (or the open task it already has)
    FromProblem {
        fingerprint: String,
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        #[arg(long = "label")]
        labels: Vec<String>,
        #[arg(long = "path")]
        paths: Vec<String>,
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List tasks: those not finished, by priority
    List {
        /// Only tasks in this state (queued, claimed, running, blocked, done, failed)
        #[arg(long, value_parser = parse_state)]
        state: Option<TaskState>,
        /// Only tasks held (or last held) by this agent
        #[arg(long)]
        agent: Option<String>,
        /// Done and failed tasks too
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Show one task: its state, holder, lease, locks, needs and failures
    Show {
        id: i64,
        #[command(flatten)]
        common: Common,
    },
    /// Take the best task this agent may take, lock its paths and start its lease
    Claim {
        #[arg(long)]
        agent: String,
        /// The agent's labels (repeatable): a task is given only if each of its labels is here
        #[arg(long = "label")]
        labels: Vec<String>,
        /// How long the lease lasts without a heartbeat (1s to 24h)
        #[arg(long, default_value = "5m", value_parser = super::parse_duration)]
        ttl: Duration,
        /// Claim this task rather than the best one
        #[arg(long)]
        task: Option<i64>,
        #[command(flatten)]
        common: Common,
    },
    /// Extend the lease of a task this agent holds (the first heartbeat marks it running)
    Heartbeat {
        id: i64,
        #[arg(long)]
        agent: String,
        #[arg(long, default_value = "5m", value_parser = super::parse_duration)]
        ttl: Duration,
        #[command(flatten)]
        common: Common,
    },
    /// Mark a task this agent holds done, which unblocks the tasks that need it
    Done {
        id: i64,
        #[arg(long)]
        agent: String,
        #[command(flatten)]
        common: Common,
    },
    /// Record a failure of a task this agent holds: retried after a backoff, or failed for good
    Fail {
        id: i64,
        #[arg(long)]
        agent: String,
        /// What went wrong
        #[arg(long)]
        error: String,
        #[command(flatten)]
        common: Common,
    },
    /// Give a task this agent holds back to the queue, freeing its locks
    Release {
        id: i64,
        #[arg(long)]
        agent: String,
        #[command(flatten)]
        common: Common,
    },
    /// Put a task that failed for good back in the queue, its attempts counted afresh
    Retry {
        id: i64,
        #[command(flatten)]
        common: Common,
    },
    /// Let a blocked task go without a task it needs (one that failed for good or will not be done)
    Unblock {
        id: i64,
        /// The dependency to drop
        #[arg(long = "drop-dep", required = true)]
        drop_dep: Vec<i64>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
pub(super) enum LockCommand {
    /// List the path locks held now: glob, agent, task, lease end
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Lock more paths for a task this agent holds (refused when another agent holds an overlapping one)
    Add {
        /// The task the locks belong to
        task: i64,
        #[arg(long)]
        agent: String,
        /// Path globs, relative to the workspace
        #[arg(required = true)]
        globs: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
}

fn parse_type(text: &str) -> Result<TaskType, String> {
    TaskType::parse(text).ok_or_else(|| {
        let all: Vec<&str> = TaskType::ALL.iter().map(|t| t.as_str()).collect();
        format!("unknown task type {text:?}; use one of {}", all.join(", "))
    })
}

fn parse_state(text: &str) -> Result<TaskState, String> {
    TaskState::parse(text).ok_or_else(|| {
        format!("unknown state {text:?}; use queued, claimed, running, blocked, done or failed")
    })
}

pub(super) fn run(command: TaskCommand) -> i32 {
    match command {
        TaskCommand::Create {
            title,
            description,
            kind,
            priority,
            labels,
            paths,
            needs,
            max_attempts,
            by,
            common,
        } => {
            let (source, created_by) = match by {
                Some(agent) => (TaskSource::Agent, agent),
                None => (TaskSource::Cli, "user".to_owned()),
            };
            let new = NewTask {
                title,
                description,
                kind,
                priority,
                labels,
                paths,
                needs,
                max_attempts,
                source,
                fingerprint: None,
                created_by,
            };
            with_tasks("task create", &common, |q| q.create(&new).map(|task| show_task(&task, common.format)))
        }
        TaskCommand::Needs { id, needs, common } => with_tasks("task needs", &common, |q| {
            q.add_needs(id, &needs, "user").map(|task| show_task(&task, common.format))
        }),
        TaskCommand::FromProblem { fingerprint, priority, labels, paths, by, common } => {
            let root = match root("task from-problem", &common.workspace) {
                Ok(root) => root,
                Err(code) => return code,
            };
            let mut template = NewTask::titled("from a problem");
            template.priority = priority;
            template.labels = labels;
            template.paths = paths;
            template.created_by = by.unwrap_or_else(|| "user".to_owned());
            with_tasks("task from-problem", &common, |q| {
                q.task_for_problem(&fingerprint, &root, &template).map(|(task, created)| {
                    if !created && matches!(common.format, ListFormat::Text) {
                        output::note(&format!(
                            "acas task from-problem: the problem already has the open task #{}",
                            task.id
                        ));
                    }
                    match common.format {
                        ListFormat::Text => show_task(&task, common.format),
                        ListFormat::Json => {
                            output::line(&json!({ "created": created, "task": task }).to_string());
                            EXIT_OK
                        }
                    }
                })
            })
        }
        TaskCommand::List { state, agent, all, common } => {
            let filter = TaskFilter { state, agent, include_finished: all };
            with_tasks("task list", &common, |q| {
                q.list(&filter).map(|tasks| {
                    match common.format {
                        ListFormat::Text => {
                            let mut text =
                                String::from("   id state    prio type     holder           title\n");
                            for t in &tasks {
                                text.push_str(&format!(
                                    "{:>5} {:<8} {:>4} {:<8} {:<16} {}\n",
                                    format!("#{}", t.id),
                                    t.state.as_str(),
                                    t.priority,
                                    t.kind.as_str(),
                                    output::shown(if t.state.is_held() {
                                        t.agent.as_deref().unwrap_or("-")
                                    } else {
                                        "-"
                                    }),
                                    output::shown(&t.title)
                                ));
                            }
                            text.push_str(&format!("{} tasks", tasks.len()));
                            output::line(&text);
                        }
                        ListFormat::Json => {
                            output::line(&json!({ "tasks": tasks }).to_string());
                        }
                    }
                    EXIT_OK
                })
            })
        }
        TaskCommand::Show { id, common } => with_tasks("task show", &common, |q| {
            let task = q.get(id)?;
            show_task_in(q, &task, common.format)
        }),
        TaskCommand::Claim { agent, labels, ttl, task, common } => {
            let request = ClaimRequest { agent, labels, ttl, task };
            with_tasks("task claim", &common, |q| {
                q.claim(&request).map(|claim| match claim {
                    Claim::Claimed(task) => show_task(&task, common.format),
                    Claim::Nothing(reasons) => {
                        match common.format {
                            ListFormat::Text => {
                                let mut text = String::from("acas task claim: no task to claim");
                                if reasons.is_empty() {
                                    text.push_str(": the queue is empty");
                                }
                                for r in &reasons {
                                    text.push_str(&format!(
                                        "\n  #{} {}: {}",
                                        r.task,
                                        output::shown(&r.title),
                                        output::shown_lines(&r.reason)
                                    ));
                                }
                                output::note(&text);
                            }
                            ListFormat::Json => {
                                output::line(&json!({ "claimed": null, "unavailable": reasons }).to_string());
                            }
                        }
                        EXIT_EMPTY
                    }
                })
            })
        }
        TaskCommand::Heartbeat { id, agent, ttl, common } => with_tasks("task heartbeat", &common, |q| {
            q.heartbeat(id, &agent, ttl).map(|task| show_task(&task, common.format))
        }),
        TaskCommand::Done { id, agent, common } => with_tasks("task done", &common, |q| {
            q.done(id, &agent).map(|(task, unblocked)| match common.format {
                ListFormat::Text => {
                    let code = show_task(&task, common.format);
                    if !unblocked.is_empty() {
                        let ids: Vec<String> = unblocked.iter().map(|id| format!("#{id}")).collect();
                        output::line(&format!("unblocked: {}", ids.join(", ")));
                    }
                    code
                }
                ListFormat::Json => {
                    output::line(&json!({ "task": task, "unblocked": unblocked }).to_string());
                    EXIT_OK
                }
            })
        }),
        TaskCommand::Fail { id, agent, error, common } => with_tasks("task fail", &common, |q| {
            q.fail(id, &agent, &error).map(|task| show_task(&task, common.format))
        }),
        TaskCommand::Release { id, agent, common } => with_tasks("task release", &common, |q| {
            q.release(id, &agent).map(|task| show_task(&task, common.format))
        }),
        TaskCommand::Retry { id, common } => with_tasks("task retry", &common, |q| {
            let task = q.retry(id, "user")?;
            show_task_in(q, &task, common.format)
        }),
        TaskCommand::Unblock { id, drop_dep, common } => with_tasks("task unblock", &common, |q| {
            let mut task = q.get(id)?;
            for dep in &drop_dep {
                task = q.drop_need(id, *dep, "user")?;
            }
            show_task_in(q, &task, common.format)
        }),
    }
}

pub(super) fn run_lock(command: LockCommand) -> i32 {
    match command {
        LockCommand::List { common } => with_tasks("lock list", &common, |q| {
            q.locks().map(|locks| {
                show_locks(&locks, common.format);
                EXIT_OK
            })
        }),
        LockCommand::Add { task, agent, globs, common } => with_tasks("lock add", &common, |q| {
            q.lock(task, &agent, &globs).map(|task| {
                show_locks(&task.locks, common.format);
                EXIT_OK
            })
        }),
    }
}

fn root(command: &str, workspace: &Path) -> Result<PathBuf, i32> {
    match super::resolve(workspace) {
        Ok((root, true)) => Ok(root),
        Ok((_, false)) => {
            output::note(&format!("acas {command}: {} is not a directory", workspace.display()));
            Err(EXIT_FAILED)
        }
        Err(error) => {
            output::note(&format!("acas {command}: {error}"));
            Err(EXIT_FAILED)
        }
    }
}

/// The workspace's shared store, when `[store] url` or `ACAS_DATABASE_URL` names one; a
/// configuration that cannot be read is said on stderr, since it may name one.
fn shared_store(command: &str, common: &Common) -> Result<Option<crate::store::SharedStore>, i32> {
    let root = root(command, &common.workspace)?;
    let (config, error) = crate::config::load(&root);
    if let Some(error) = error {
        output::note(&format!("acas {command}: {}", output::shown_lines(&error.to_string())));
        return Err(EXIT_FAILED);
    }
    Ok(config.shared_store)
}

/// Runs `f` on the team's queue on the shared store when one is configured (the queue of the
/// repository, shared by its clones), else on the workspace's.
fn with_tasks(
    command: &str,
    common: &Common,
    f: impl FnOnce(&mut dyn Tasks) -> Result<i32, TaskError>,
) -> i32 {
    let shared = match shared_store(command, common) {
        Ok(shared) => shared,
        Err(code) => return code,
    };
    let Some(shared) = shared else { return local_queue(command, common, |q| f(q)) };
    let root = match root(command, &common.workspace) {
        Ok(root) => root,
        Err(code) => return code,
    };
    // Changes this command makes are recorded in the workspace's audit log, as on its own queue.
    let result = shared
        .connect()
        .map_err(TaskError::from)
        .and_then(|store| f(&mut PgTaskQueue::audited(store, Arc::new(SystemClock), &root)));
    report(command, common, result)
}

/// Opens the queue of the workspace and runs `f`; an error is said on stderr with its exit code.
fn local_queue(
    command: &str,
    common: &Common,
    f: impl FnOnce(&mut TaskQueue) -> Result<i32, TaskError>,
) -> i32 {
    let root = match root(command, &common.workspace) {
        Ok(root) => root,
        Err(code) => return code,
    };
    if let Err(code) = super::refuse_read_only(command, &root) {
        return code;
    }
    let result = TaskQueue::open(&root, Arc::new(SystemClock)).and_then(|mut queue| f(&mut queue));
    report(command, common, result)
}

/// Says an error on stderr (or as JSON) and answers the exit code.
fn report(command: &str, common: &Common, result: Result<i32, TaskError>) -> i32 {
    match result {
        Ok(code) => code,
        Err(error) => {
            match common.format {
                ListFormat::Text => {
                    output::note(&format!("acas {command}: {}", output::shown_lines(&error.to_string())))
                }
                ListFormat::Json => {
                    output::line(
                        &json!({ "error": { "kind": error.kind, "message": error.message } }).to_string(),
                    );
                }
            }
            match error.kind {
                TaskErrorKind::Conflict | TaskErrorKind::NotHolder => EXIT_REFUSED,
                _ => EXIT_FAILED,
            }
        }
    }
}

fn at(ms: i64) -> String {
    format!("{} UTC", crate::time::date_time(ms))
}

/// Shows a task, and for a blocked one what it waits for and how to let it go when a
/// dependency failed for good.
fn show_task_in(q: &mut dyn Tasks, task: &Task, format: ListFormat) -> Result<i32, TaskError> {
    let code = show_task(task, format);
    if task.state == TaskState::Blocked && matches!(format, ListFormat::Text) {
        let waiting = q.waiting_on(task.id)?;
        let mut text = String::from("  blocked: waiting for");
        for (need, state) in &waiting {
            text.push_str(&format!(" #{need} ({})", state.as_str()));
        }
        let failed: Vec<&i64> =
            waiting.iter().filter(|(_, s)| *s == TaskState::Failed).map(|(n, _)| n).collect();
        for need in failed {
            text.push_str(&format!(
                "\n  #{need} failed for good: `acas task retry {need}` queues it again, \
                 `acas task unblock {} --drop-dep {need}` lets this task go without it",
                task.id
            ));
        }
        output::line(&text);
    }
    Ok(code)
}

fn show_task(task: &Task, format: ListFormat) -> i32 {
    if let ListFormat::Json = format {
        output::line(&json!({ "task": task }).to_string());
        return EXIT_OK;
    }
    let mut text = format!(
        "#{} {} [{}, priority {}] {}\n",
        task.id,
        output::shown(&task.title),
        task.kind.as_str(),
        task.priority,
        task.state.as_str()
    );
    if task.state.is_held() {
        text.push_str(&format!(
            "  held by {}, lease until {}\n",
            output::shown(task.agent.as_deref().unwrap_or("-")),
            at(task.lease_until_ms.unwrap_or(0))
        ));
    } else if let (Some(agent), Some(finished)) = (&task.agent, task.finished_ms) {
        text.push_str(&format!("  by {}, {}\n", output::shown(agent), at(finished)));
    }
    if !task.labels.is_empty() {
        text.push_str(&format!("  labels: {}\n", output::shown(&task.labels.join(", "))));
    }
    if !task.paths.is_empty() {
        text.push_str(&format!("  paths: {}\n", output::shown(&task.paths.join(", "))));
    }
    if !task.needs.is_empty() {
        let needs: Vec<String> = task.needs.iter().map(|n| format!("#{n}")).collect();
        text.push_str(&format!("  needs: {}\n", needs.join(", ")));
    }
    if !task.locks.is_empty() {
        let locks: Vec<&str> = task.locks.iter().map(|l| l.glob.as_str()).collect();
        text.push_str(&format!("  locks: {}\n", output::shown(&locks.join(", "))));
    }
    if task.attempts > 0 {
        text.push_str(&format!("  failures: {} of {}", task.attempts, task.max_attempts));
        if let Some(error) = &task.last_error {
            text.push_str(&format!(", last: {}", output::shown(error)));
        }
        if let Some(retry) = task.retry_at_ms.filter(|_| task.state == TaskState::Queued) {
            text.push_str(&format!(", retry after {}", at(retry)));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "  from {} by {}, {}",
        task.source.as_str(),
        output::shown(&task.created_by),
        at(task.created_ms)
    ));
    if let Some(fingerprint) = &task.fingerprint {
        text.push_str(&format!(", problem {fingerprint}"));
    }
    if !task.description.is_empty() {
        text.push_str(&format!("\n\n{}", output::shown_lines(&task.description)));
    }
    output::line(&text);
    EXIT_OK
}

fn show_locks(locks: &[Lock], format: ListFormat) {
    match format {
        ListFormat::Text => {
            let mut text =
                String::from("glob                           agent            task   lease until\n");
            for l in locks {
                text.push_str(&format!(
                    "{:<30} {:<16} {:<6} {}\n",
                    output::shown(&l.glob),
                    output::shown(&l.agent),
                    format!("#{}", l.task),
                    at(l.lease_until_ms)
                ));
            }
            text.push_str(&format!("{} locks", locks.len()));
            output::line(&text);
        }
        ListFormat::Json => {
            output::line(&json!({ "locks": locks }).to_string());
        }
    }
}
