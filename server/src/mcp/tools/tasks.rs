//! `task_create`, `task_list`, `task_show`, `task_claim`, `task_heartbeat`, `task_done`,
//! `task_fail`, `task_release`, `lock_list`, `lock_add`: the agents' task queue and path locks
//! (`agents::Tasks`: the workspace's queue, or the team's on a shared store) as tools, for the agent this session is (`mcp::agents`).
//!
//! The queue's rules are its own (claiming, leases, dependencies, locks); these tools parse the
//! arguments, call it on a blocking thread, and turn its answers into a few lines for the model
//! with the same as structured content, and its refusals into MCP errors whose message says who
//! holds what until when and whose data carries the refusal's kind.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ErrorData, JsonObject, Tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{parse, plural, tool};
use crate::agents::{
    Claim, ClaimRequest, Lock, NewTask, Task, TaskError, TaskErrorKind, TaskFilter, TaskSource, TaskState,
    TaskType,
};
use crate::mcp::{Answer, Shared, internal, invalid, refused};
use crate::time::date_time;

pub(super) const TASK_CREATE: &str = "task_create";
pub(super) const TASK_LIST: &str = "task_list";
pub(super) const TASK_SHOW: &str = "task_show";
pub(super) const TASK_CLAIM: &str = "task_claim";
pub(super) const TASK_HEARTBEAT: &str = "task_heartbeat";
pub(super) const TASK_DONE: &str = "task_done";
pub(super) const TASK_FAIL: &str = "task_fail";
pub(super) const TASK_RELEASE: &str = "task_release";
pub(super) const LOCK_LIST: &str = "lock_list";
pub(super) const LOCK_ADD: &str = "lock_add";

/// Every tool of this file, for the table's dispatch.
pub(super) const NAMES: &[&str] = &[
    TASK_CREATE,
    TASK_LIST,
    TASK_SHOW,
    TASK_CLAIM,
    TASK_HEARTBEAT,
    TASK_DONE,
    TASK_FAIL,
    TASK_RELEASE,
    LOCK_LIST,
    LOCK_ADD,
];

/// The lease a claim or heartbeat holds when the call names none.
const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// Tasks `task_list` gives by default and at most.
const DEFAULT_LIST: usize = 100;
const MAX_LIST: usize = 1000;

/// A task's type.
#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Fix,
    Feature,
    Refactor,
    Test,
    Docs,
    Chore,
    Other,
}

impl Kind {
    fn task_type(self) -> TaskType {
        match self {
            Kind::Fix => TaskType::Fix,
            Kind::Feature => TaskType::Feature,
            Kind::Refactor => TaskType::Refactor,
            Kind::Test => TaskType::Test,
            Kind::Docs => TaskType::Docs,
            Kind::Chore => TaskType::Chore,
            Kind::Other => TaskType::Other,
        }
    }
}

/// A task's state.
#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum State {
    Queued,
    Claimed,
    Running,
    Blocked,
    Done,
    Failed,
}

impl State {
    fn task_state(self) -> TaskState {
        match self {
            State::Queued => TaskState::Queued,
            State::Claimed => TaskState::Claimed,
            State::Running => TaskState::Running,
            State::Blocked => TaskState::Blocked,
            State::Done => TaskState::Done,
            State::Failed => TaskState::Failed,
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateArgs {
    /// A short title (at most 200 characters). Required unless `from_problem` is given.
    #[serde(default)]
    title: Option<String>,
    /// What to do and how to know it is done.
    #[serde(default)]
    description: String,
    /// The kind of work (default `other`; `fix` for a task made from a problem).
    #[serde(default, rename = "type")]
    kind: Option<Kind>,
    /// Higher is claimed first (default 0).
    #[serde(default)]
    priority: i64,
    /// Labels an agent must all have to claim the task.
    #[serde(default)]
    labels: Vec<String>,
    /// Path globs relative to the workspace root (`src/parser/**`) the task will touch; locked
    /// while it is claimed.
    #[serde(default)]
    paths: Vec<String>,
    /// Ids of tasks that must be done first.
    #[serde(default)]
    needs: Vec<i64>,
    /// Failures before the task fails for good (default 3).
    #[serde(default)]
    max_attempts: Option<u32>,
    /// A problem's fingerprint (as `problems` lists it, or a unique prefix of 6 characters or
    /// more): makes a fix task for it, or returns the open task it already has.
    #[serde(default)]
    from_problem: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListArgs {
    /// Only tasks in this state (then finished ones too, when that state is one).
    #[serde(default)]
    state: Option<State>,
    /// Only tasks held (or last held) by this agent, as tasks name their holder.
    #[serde(default)]
    agent: Option<String>,
    /// Only tasks this session holds or last held.
    #[serde(default)]
    mine: bool,
    /// Done and failed tasks too.
    #[serde(default)]
    all: bool,
    /// At most this many (default 100, at most 1000), those not finished first by priority.
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct IdArgs {
    /// The task's id.
    id: i64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ClaimArgs {
    /// This agent's labels: a task is given only when each of its labels is among them.
    #[serde(default)]
    labels: Vec<String>,
    /// How long the lease lasts without a heartbeat: `30s`, `5m`, `1h` (1s to 24h, default 5m).
    #[serde(default)]
    ttl: Option<String>,
    /// Claim this task rather than the best available one.
    #[serde(default)]
    task: Option<i64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct HeartbeatArgs {
    /// The task's id.
    id: i64,
    /// The new lease from now: `30s`, `5m`, `1h` (1s to 24h, default 5m).
    #[serde(default)]
    ttl: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FailArgs {
    /// The task's id.
    id: i64,
    /// What went wrong, for whoever retries it.
    error: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LockListArgs {}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LockAddArgs {
    /// The task (held by this agent) the locks belong to.
    task: i64,
    /// Path globs relative to the workspace root; all are locked or none.
    globs: Vec<String>,
}

pub(super) fn tools() -> Vec<Tool> {
    vec![
        tool::<CreateArgs>(
            TASK_CREATE,
            "Add a task to the workspace's shared queue (title, description, type, priority, labels, the path \
             globs it will touch, the tasks it needs first), or a fix task for a recorded problem by its \
             fingerprint. A task that needs unfinished tasks waits as `blocked`.",
        ),
        tool::<ListArgs>(
            TASK_LIST,
            "The tasks in the queue, those not finished first by priority: state, holder, lease end, locks.",
        ),
        tool::<IdArgs>(TASK_SHOW, "One task: its state, holder, lease, locks, dependencies and failures."),
        tool::<ClaimArgs>(
            TASK_CLAIM,
            "Take the best task this agent may work on now (highest priority, dependencies done, labels \
             matching, paths not locked by another agent), lock its paths and start a lease. Call \
             `task_heartbeat` before the lease ends, then `task_done`, `task_fail` or `task_release`. When \
             nothing can be given, the answer says why for each task.",
        ),
        tool::<HeartbeatArgs>(
            TASK_HEARTBEAT,
            "Extend the lease of a task this agent holds (the first heartbeat marks it running). A lease that \
             ends returns the task to the queue and frees its locks.",
        ),
        tool::<IdArgs>(TASK_DONE, "Mark a task this agent holds done; answers the tasks it unblocked."),
        tool::<FailArgs>(
            TASK_FAIL,
            "Record a failure of a task this agent holds: it is retried after a backoff, or failed for good \
             once out of attempts.",
        ),
        tool::<IdArgs>(TASK_RELEASE, "Give a task this agent holds back to the queue, freeing its locks."),
        tool::<LockListArgs>(LOCK_LIST, "The path locks held now: glob, agent, task, lease end."),
        tool::<LockAddArgs>(
            LOCK_ADD,
            "Lock more path globs for a task this agent holds, all or none; refused, naming the holder and \
             when its lease ends, when another agent holds an overlapping lock.",
        ),
    ]
}

/// Calls tool `name` of this file for the agent `holder`.
pub(super) async fn call(
    shared: &Arc<Shared>,
    holder: &str,
    name: &str,
    arguments: JsonObject,
) -> Result<Answer, ErrorData> {
    let holder = holder.to_owned();
    match name {
        TASK_CREATE => create(shared, holder, parse(name, arguments)?).await,
        TASK_LIST => list(shared, holder, parse(name, arguments)?).await,
        TASK_SHOW => {
            let IdArgs { id } = parse(name, arguments)?;
            let task = queue(shared, move |q| q.get(id)).await?;
            Ok(one("", &task))
        }
        TASK_CLAIM => claim(shared, holder, parse(name, arguments)?).await,
        TASK_HEARTBEAT => {
            let HeartbeatArgs { id, ttl } = parse(name, arguments)?;
            let ttl = ttl_of(ttl.as_deref())?;
            let task = queue(shared, move |q| q.heartbeat(id, &holder, ttl)).await?;
            Ok(one("lease extended: ", &task))
        }
        TASK_DONE => {
            let IdArgs { id } = parse(name, arguments)?;
            let (task, unblocked) = queue(shared, move |q| q.done(id, &holder)).await?;
            let mut answer = one("done: ", &task);
            if !unblocked.is_empty() {
                let ids: Vec<String> = unblocked.iter().map(|id| format!("#{id}")).collect();
                answer.text.push_str(&format!("\nunblocked: {} (now queued)", ids.join(", ")));
            }
            answer.data["unblocked"] = json!(unblocked);
            Ok(answer)
        }
        TASK_FAIL => {
            let FailArgs { id, error } = parse(name, arguments)?;
            let task = queue(shared, move |q| q.fail(id, &holder, &error)).await?;
            let prefix =
                if task.state == TaskState::Failed { "failed for good: " } else { "failure recorded: " };
            Ok(one(prefix, &task))
        }
        TASK_RELEASE => {
            let IdArgs { id } = parse(name, arguments)?;
            let task = queue(shared, move |q| q.release(id, &holder)).await?;
            Ok(one("released: ", &task))
        }
        LOCK_LIST => {
            let LockListArgs {} = parse(name, arguments)?;
            let locks = queue(shared, |q| q.locks()).await?;
            Ok(locks_answer(&locks))
        }
        LOCK_ADD => {
            let LockAddArgs { task, globs } = parse(name, arguments)?;
            let task = queue(shared, move |q| q.lock(task, &holder, &globs)).await?;
            Ok(one("locked: ", &task))
        }
        _ => Err(invalid(format!("no tool named `{name}`"))),
    }
}

async fn create(shared: &Arc<Shared>, holder: String, args: CreateArgs) -> Result<Answer, ErrorData> {
    let mut new = NewTask::titled(args.title.as_deref().unwrap_or(""));
    new.description = args.description;
    new.kind = args.kind.map_or(TaskType::Other, Kind::task_type);
    new.priority = args.priority;
    new.labels = args.labels;
    new.paths = args.paths;
    new.needs = args.needs;
    new.max_attempts = args.max_attempts;
    new.source = TaskSource::Agent;
    new.created_by = holder;
    match args.from_problem {
        Some(fingerprint) => {
            if args.title.is_some() || !new.needs.is_empty() {
                return Err(invalid(
                    "`from_problem` makes the title from the problem and takes no `title` or `needs`; \
                     add dependencies with a separate task or leave `from_problem` out",
                ));
            }
            let root = shared.root.clone();
            let (task, created) =
                queue(shared, move |q| q.task_for_problem(&fingerprint, &root, &new)).await?;
            let mut answer =
                one(if created { "created: " } else { "the problem already has the open task " }, &task);
            answer.data["created"] = json!(created);
            Ok(answer)
        }
        None => {
            if args.title.is_none() {
                return Err(invalid("`title` is missing: give the task a short title, or `from_problem`"));
            }
            let task = queue(shared, move |q| q.create(&new)).await?;
            let mut answer = one("created: ", &task);
            answer.data["created"] = json!(true);
            Ok(answer)
        }
    }
}

async fn list(shared: &Arc<Shared>, holder: String, args: ListArgs) -> Result<Answer, ErrorData> {
    let limit = args.limit.unwrap_or(DEFAULT_LIST);
    if limit == 0 || limit > MAX_LIST {
        return Err(invalid(format!("`limit` must be between 1 and {MAX_LIST}; it was {limit}")));
    }
    if args.mine && args.agent.is_some() {
        return Err(invalid("give `mine` or `agent`, not both"));
    }
    let agent = if args.mine { Some(holder.clone()) } else { args.agent };
    let filter = TaskFilter { state: args.state.map(State::task_state), agent, include_finished: args.all };
    let mut tasks = queue(shared, move |q| q.list(&filter)).await?;
    let total = tasks.len();
    tasks.truncate(limit);
    let mut text = format!("{} (you are {holder})", plural(total, "task", "tasks"));
    if tasks.len() < total {
        text.push_str(&format!("; the first {} listed", tasks.len()));
    }
    for task in &tasks {
        text.push('\n');
        text.push_str(&line(task));
    }
    let data =
        json!({ "agent": holder, "total": total, "tasks": tasks.iter().map(task_json).collect::<Vec<_>>() });
    Ok(Answer { text, data, path: None })
}

async fn claim(shared: &Arc<Shared>, holder: String, args: ClaimArgs) -> Result<Answer, ErrorData> {
    let ttl = ttl_of(args.ttl.as_deref())?;
    let request = ClaimRequest { agent: holder.clone(), labels: args.labels, ttl, task: args.task };
    match queue(shared, move |q| q.claim(&request)).await? {
        Claim::Claimed(task) => {
            let mut answer = one("claimed: ", &task);
            answer.text.push_str(&format!(
                "\nyou are {holder}; call task_heartbeat with id {} within {}s to keep it",
                task.id,
                ttl.as_secs()
            ));
            answer.data["claimed"] = json!(true);
            answer.data["agent"] = json!(holder);
            Ok(answer)
        }
        Claim::Nothing(reasons) => {
            let mut text = String::from("no task to claim");
            if reasons.is_empty() {
                text.push_str(": the queue has no task that is not finished (task_create adds one)");
            }
            for r in &reasons {
                text.push_str(&format!("\n  #{} {}: {}", r.task, r.title, r.reason));
            }
            let data = json!({ "claimed": false, "agent": holder, "unavailable": reasons });
            Ok(Answer { text, data, path: None })
        }
    }
}

/// Runs `f` on the workspace's task queue (the team's with a shared store), its error as an
/// MCP error.
async fn queue<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&mut dyn crate::agents::Tasks) -> Result<T, TaskError> + Send + 'static,
) -> Result<T, ErrorData> {
    shared.agents.with_queue(f).await.map_err(error)
}

/// The queue's refusal as an MCP error: the arguments' fault (invalid params), another agent's
/// hold or a state that does not allow it (invalid request, `data.kind` saying which), or ACAS's.
fn error(e: TaskError) -> ErrorData {
    let kind = match e.kind {
        TaskErrorKind::NotFound | TaskErrorKind::Invalid | TaskErrorKind::Cycle => {
            return invalid(e.message);
        }
        TaskErrorKind::Store => return internal(e.message),
        TaskErrorKind::Conflict => "conflict",
        TaskErrorKind::NotHolder => "not_holder",
        TaskErrorKind::WrongState => "wrong_state",
    };
    refused(kind, e.message)
}

fn ttl_of(text: Option<&str>) -> Result<Duration, ErrorData> {
    match text {
        None => Ok(DEFAULT_TTL),
        Some(text) => crate::duration::parse(text).map_err(|e| {
            invalid(format!("`ttl` {text:?} is not a duration ({e}); give one such as 30s, 5m or 1h"))
        }),
    }
}

fn at(ms: i64) -> String {
    format!("{} UTC", date_time(ms))
}

/// One task in one line.
fn line(task: &Task) -> String {
    let mut text = format!(
        "#{} [{}] \"{}\" ({}, priority {})",
        task.id,
        task.state.as_str(),
        task.title,
        task.kind.as_str(),
        task.priority
    );
    if task.state.is_held() {
        text.push_str(&format!(
            " held by {} until {}",
            task.agent.as_deref().unwrap_or("?"),
            at(task.lease_until_ms.unwrap_or(0))
        ));
    }
    if !task.needs.is_empty() {
        let needs: Vec<String> = task.needs.iter().map(|n| format!("#{n}")).collect();
        text.push_str(&format!(" needs {}", needs.join(", ")));
    }
    if !task.paths.is_empty() {
        text.push_str(&format!(" paths {}", task.paths.join(", ")));
    }
    text
}

/// An answer about one task: its line, its details, and the task as structured content.
fn one(prefix: &str, task: &Task) -> Answer {
    let mut text = format!("{prefix}{}", line(task));
    if !task.locks.is_empty() {
        let locks: Vec<&str> = task.locks.iter().map(|l| l.glob.as_str()).collect();
        text.push_str(&format!("\nlocks: {}", locks.join(", ")));
    }
    if task.attempts > 0 {
        text.push_str(&format!("\nfailures: {} of {}", task.attempts, task.max_attempts));
        if let Some(error) = &task.last_error {
            text.push_str(&format!(", last: {error}"));
        }
        if let Some(retry) = task.retry_at_ms.filter(|_| task.state == TaskState::Queued) {
            text.push_str(&format!(", retry after {}", at(retry)));
        }
    }
    if !task.description.is_empty() {
        text.push_str(&format!("\n{}", task.description));
    }
    Answer { text, data: json!({ "task": task_json(task) }), path: None }
}

fn task_json(task: &Task) -> Value {
    let mut value = serde_json::to_value(task).unwrap_or(Value::Null);
    if let Some(until) = task.lease_until_ms.filter(|_| task.state.is_held()) {
        value["lease_until"] = json!(at(until));
    }
    value
}

fn locks_answer(locks: &[Lock]) -> Answer {
    let mut text = plural(locks.len(), "path lock", "path locks");
    for l in locks {
        text.push_str(&format!(
            "\n{} locked by {} for task #{} \"{}\" until {}",
            l.glob,
            l.agent,
            l.task,
            l.task_title,
            at(l.lease_until_ms)
        ));
    }
    Answer { text, data: json!({ "locks": locks }), path: None }
}
