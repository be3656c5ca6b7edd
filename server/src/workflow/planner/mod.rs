//! Plan, then execute: asks the AI providers for a DAG of tasks that reaches a goal, makes it
//! safe to run, and turns it into a [`Workflow`] for the engine.
//!
//! [`generate`] asks for JSON `{"tasks": [{id, name, description, action, with, needs,
//! priority}]}` with a JSON Schema ([`check::schema`]) as the structured-output schema, then:
//!
//! 1. checks the reply against that schema and against everything a workflow must satisfy
//!    (unique ids, known actions, action parameters, `needs` that name tasks, templates), and on
//!    any problem asks once more with the problems listed; a second invalid reply is an error;
//! 2. merges identical tasks (same action and same `with`, by a hash of their canonical JSON);
//!    whoever needed the dropped one needs the kept one;
//! 3. breaks dependency cycles with a chain of strategies ([`CycleStrategy`]): drop the
//!    lowest-priority edge of each cycle; if cycles remain, ask the model for a plan without
//!    them; failing that, keep within each cycle only the edges that follow priority order.
//!
//! Everything that changed the model's plan is recorded in [`Plan::notes`]. A plan is only data:
//! [`Plan::to_workflow`] makes it a workflow (stored as JSON text, which the YAML reader reads,
//! so that a resumed run reads its definition back), and running it is up to the caller, after
//! someone approved it (`acas plan` asks on the terminal; the editor asks with a message).
//!
//! Nothing here runs tasks or knows the editor.

mod check;
mod convert;
mod graph;
#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use futures_util::future::BoxFuture;

use super::actions::{ActionError, Ai, AiError, AiErrorKind, Planner};
use super::definition::Workflow;

pub use check::{RUN, schema};
pub use convert::PLANS_DIR;
pub use graph::{Edge, fingerprint};

/// One task of a plan: a built-in action with its `with:` parameters, or `run` with
/// `with: {argv: [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub name: String,
    pub description: String,
    /// A built-in action (not `ai.plan`) or [`RUN`].
    pub action: String,
    #[serde(default)]
    pub with: Map<String, Value>,
    #[serde(default)]
    pub needs: Vec<String>,
    /// Higher is more important: it runs earlier when a cycle must be broken.
    #[serde(default)]
    pub priority: i64,
}

/// How a dependency cycle was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleStrategy {
    /// In each cycle, the edge whose dependent task has the lowest priority was dropped.
    DroppedEdges,
    /// The model was asked for a plan without the cycles, and gave one.
    AskedModel,
    /// Within each cycle, a task kept only the needs on tasks of higher priority.
    PriorityOrder,
}

impl CycleStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            CycleStrategy::DroppedEdges => "dropped_edges",
            CycleStrategy::AskedModel => "asked_model",
            CycleStrategy::PriorityOrder => "priority_order",
        }
    }
}

/// Something that changed the plan the model wrote, in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// The first reply had these problems; the model was asked to repair it, and did.
    Repaired { problems: Vec<String> },
    /// Task `dropped` did what task `kept` does (same action and inputs) and was merged into it.
    Merged { kept: String, dropped: String, fingerprint: String },
    /// The plan had dependency `cycles` (each written `a -> b -> a`, "a needs b needs a"); they
    /// were broken with `strategy`, which removed the `dropped` edges. `tried` says why earlier
    /// strategies did not do.
    Cycles { strategy: CycleStrategy, cycles: Vec<String>, dropped: Vec<Edge>, tried: Vec<String> },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Repaired { problems } => {
                write!(f, "the first plan was invalid and the model repaired it; its problems were:")?;
                for p in problems {
                    write!(f, "\n    - {p}")?;
                }
                Ok(())
            }
            Note::Merged { kept, dropped, .. } => {
                write!(
                    f,
                    "`{dropped}` does what `{kept}` does (same action and inputs): merged into `{kept}`"
                )
            }
            Note::Cycles { strategy, cycles, dropped, tried } => {
                let how = match strategy {
                    CycleStrategy::DroppedEdges => "dropped the lowest-priority edge of each cycle",
                    CycleStrategy::AskedModel => "asked the model for a plan without them",
                    CycleStrategy::PriorityOrder => "kept only the needs that follow priority order",
                };
                write!(f, "dependency cycles {}: {how}", cycles.join(", "))?;
                if !dropped.is_empty() {
                    let edges: Vec<String> = dropped.iter().map(|e| e.to_string()).collect();
                    write!(f, "; removed {}", edges.join(", "))?;
                }
                for t in tried {
                    write!(f, "\n    - {t}")?;
                }
                Ok(())
            }
        }
    }
}

/// A checked plan: valid tasks forming a DAG, and what was done to get there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub prompt: String,
    pub tasks: Vec<Task>,
    pub notes: Vec<Note>,
    /// What asking cost, over every call (repair and cycle questions included).
    pub cost_usd: f64,
    /// Calls made to the providers (answers from the cache included).
    pub calls: u32,
}

/// Why no plan came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanErrorKind {
    /// The providers could not answer (none configured, all failed, budget refused).
    Provider,
    /// The reply was still invalid after the repair request.
    Invalid,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct PlanError {
    pub kind: PlanErrorKind,
    pub message: String,
    /// What was wrong with the plan, one problem each (for [`PlanErrorKind::Invalid`]).
    pub problems: Vec<String>,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl PlanError {
    fn provider(error: AiError) -> PlanError {
        if error.kind == AiErrorKind::Cancelled {
            return PlanError {
                kind: PlanErrorKind::Cancelled,
                message: error.message,
                problems: Vec::new(),
            };
        }
        PlanError {
            kind: PlanErrorKind::Provider,
            message: format!("asking for a plan: {}", error.message),
            problems: Vec::new(),
        }
    }

    fn invalid(message: impl Into<String>, problems: Vec<String>) -> PlanError {
        PlanError { kind: PlanErrorKind::Invalid, message: message.into(), problems }
    }
}

/// Which cycle strategies [`generate_with`] may use; the priority-order fallback is always last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Try dropping the lowest-priority edge of each cycle first.
    pub drop_edges: bool,
    /// Ask the model to remove the cycles when dropping edges did not (or was not tried).
    pub ask_model: bool,
}

impl Default for PlanOptions {
    fn default() -> PlanOptions {
        PlanOptions { drop_edges: true, ask_model: true }
    }
}

/// Asks `ai` for a plan reaching `prompt`, with every strategy.
/// The planner as `ai.plan` runs it: the plan as JSON with the workflow that runs it, without
/// the prompt (the step's parameters already hold it).
pub struct PlanAction;

impl Planner for PlanAction {
    fn plan<'a>(
        &'a self,
        ai: &'a dyn Ai,
        prompt: &'a str,
        name: &'a str,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let plan = generate(ai, prompt, cancel).await.map_err(|e| ActionError::new(e.to_string()))?;
            let mut out = plan.to_json();
            out["definition"] = Value::String(plan.definition(name));
            if let Value::Object(map) = &mut out {
                map.remove("prompt");
            }
            Ok(out)
        })
    }
}

pub async fn generate(ai: &dyn Ai, prompt: &str, cancel: &CancellationToken) -> Result<Plan, PlanError> {
    generate_with(ai, prompt, PlanOptions::default(), cancel).await
}

/// [`generate`] with a choice of cycle strategies.
pub async fn generate_with(
    ai: &dyn Ai,
    prompt: &str,
    options: PlanOptions,
    cancel: &CancellationToken,
) -> Result<Plan, PlanError> {
    let mut asker = Asker { ai, cancel, cost_usd: 0.0, calls: 0 };
    let mut notes = Vec::new();
    let first = asker.ask(&convert::request(prompt)).await?;
    let tasks = match check::check(&first) {
        Ok(tasks) => tasks,
        Err(problems) => {
            let again = asker.ask(&convert::repair(prompt, &first, &problems)).await?;
            notes.push(Note::Repaired { problems });
            check::check(&again).map_err(|problems| {
                PlanError::invalid("the plan is still invalid after asking the model to repair it", problems)
            })?
        }
    };
    let (tasks, merged) = graph::dedup(tasks);
    notes.extend(merged);
    let tasks = break_cycles(&mut asker, prompt, tasks, options, &mut notes).await?;
    let plan = Plan { prompt: prompt.to_owned(), tasks, notes, cost_usd: asker.cost_usd, calls: asker.calls };
    // Cycle breaking may have removed a need that a template reads: check the end result.
    plan.to_workflow(Path::new("/"), "plan")?;
    Ok(plan)
}

struct Asker<'a> {
    ai: &'a dyn Ai,
    cancel: &'a CancellationToken,
    cost_usd: f64,
    calls: u32,
}

impl Asker<'_> {
    async fn ask(&mut self, prompt: &str) -> Result<String, PlanError> {
        if self.cancel.is_cancelled() {
            return Err(PlanError::provider(AiError::cancelled()));
        }
        let answer = self
            .ai
            .ask(convert::SYSTEM, prompt, Some(schema()), self.cancel)
            .await
            .map_err(PlanError::provider)?;
        self.calls += 1;
        self.cost_usd += answer.cost_usd;
        Ok(answer.text)
    }
}

async fn break_cycles(
    asker: &mut Asker<'_>,
    prompt: &str,
    tasks: Vec<Task>,
    options: PlanOptions,
    notes: &mut Vec<Note>,
) -> Result<Vec<Task>, PlanError> {
    let found = graph::cycles(&tasks);
    if found.is_empty() {
        return Ok(tasks);
    }
    let cycles: Vec<String> = found.iter().map(|c| graph::describe(c)).collect();
    let mut tried = Vec::new();
    if options.drop_edges {
        let dropped = graph::lowest_priority_edges(&tasks, &found);
        let fixed = graph::without(&tasks, &dropped);
        let left = graph::cycles(&fixed);
        if left.is_empty() {
            notes.push(Note::Cycles { strategy: CycleStrategy::DroppedEdges, cycles, dropped, tried });
            return Ok(fixed);
        }
        let left: Vec<String> = left.iter().map(|c| graph::describe(c)).collect();
        tried.push(format!(
            "dropping the lowest-priority edge of each cycle left the cycles {}",
            left.join(", ")
        ));
    }
    if options.ask_model {
        match ask_without_cycles(asker, prompt, &tasks, &cycles).await {
            Ok((revised, merged)) => {
                let dropped = graph::removed_edges(&tasks, &revised);
                notes.extend(merged);
                notes.push(Note::Cycles { strategy: CycleStrategy::AskedModel, cycles, dropped, tried });
                return Ok(revised);
            }
            Err(e) if e.kind == PlanErrorKind::Cancelled => return Err(e),
            Err(e) => tried.push(format!("the model's plan without cycles could not be used: {e}")),
        }
    }
    let dropped = graph::against_priority(&tasks);
    let fixed = graph::without(&tasks, &dropped);
    notes.push(Note::Cycles { strategy: CycleStrategy::PriorityOrder, cycles, dropped, tried });
    Ok(fixed)
}

/// Asks the model to remove `cycles` from `tasks`: its reply must be valid and acyclic.
async fn ask_without_cycles(
    asker: &mut Asker<'_>,
    prompt: &str,
    tasks: &[Task],
    cycles: &[String],
) -> Result<(Vec<Task>, Vec<Note>), PlanError> {
    let reply = asker.ask(&convert::uncycle(prompt, tasks, cycles)).await?;
    let revised = check::check(&reply).map_err(|problems| PlanError::invalid("it is invalid", problems))?;
    let (revised, merged) = graph::dedup(revised);
    let left = graph::cycles(&revised);
    if !left.is_empty() {
        let left: Vec<String> = left.iter().map(|c| graph::describe(c)).collect();
        return Err(PlanError::invalid(format!("it still has the cycles {}", left.join(", ")), Vec::new()));
    }
    Ok((revised, merged))
}

impl Plan {
    /// The workflow that runs this plan, named `name`, as if read from
    /// `WORKSPACE/.acas/plans/NAME.json` ([`PLANS_DIR`]); its `source` is that file's text
    /// ([`Plan::definition`]), which the engine's definition parser reads back on resume.
    pub fn to_workflow(&self, workspace: &Path, name: &str) -> Result<Workflow, PlanError> {
        convert::to_workflow(&self.tasks, workspace, name)
    }

    /// Writes `workflow` (from [`Plan::to_workflow`]) to its file under [`PLANS_DIR`], a new
    /// file, without following symbolic links there ([`crate::files::create_beneath`]).
    pub fn save(workspace: &Path, workflow: &Workflow) -> std::io::Result<std::path::PathBuf> {
        let name = workflow.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        crate::files::create_beneath(workspace, PLANS_DIR, &name, workflow.source.as_bytes())
    }

    /// The definition text of [`Plan::to_workflow`]: the workflow as JSON, which is YAML.
    pub fn definition(&self, name: &str) -> String {
        convert::definition(name, &self.tasks)
    }

    /// The plan for a person: tasks in waves that may run in parallel, then the notes.
    pub fn render(&self) -> String {
        convert::render(self)
    }

    /// `{prompt, tasks, notes, cost_usd, calls}`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
