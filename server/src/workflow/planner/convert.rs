//! What is said to the model (the system prompt, the request, the repair and cycle questions),
//! and what a plan becomes: a workflow definition text and a rendering for a person.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::check::RUN;
use super::{Plan, PlanError, Task};
use crate::workflow::actions::SPECS;
use crate::workflow::definition::Workflow;

/// Where the definitions of planned runs are written, relative to the workspace root.
pub const PLANS_DIR: &str = ".acas/plans";

pub const SYSTEM: &str = "You are a careful senior software engineer. You plan work in a developer's workspace as a small set of tasks that a workflow engine runs as a DAG. Answer with JSON only, following the JSON Schema you are given.";

/// The request for a plan reaching `prompt`.
pub fn request(prompt: &str) -> String {
    let mut text = String::from(
        "Plan the work below as tasks. Answer with a JSON object {\"tasks\": [...]}; each task has:\n\
         - id: letters, digits, `_` and `-`, starting with a letter; unique\n\
         - name: a short title; description: what it does and why\n\
         - action: one of the actions below, or `run` to run a command\n\
         - with: the action's parameters; for `run`, {\"argv\": [\"program\", \"arg\", ...]} (no shell)\n\
         - needs: ids of the tasks that must finish first\n\
         - priority: an integer, higher for more important tasks\n\
         Paths are relative to the workspace root. A `with` string may read an earlier task's output \
         with a template such as {{ steps.ID.output.content }}, only when ID is among the task's needs. \
         Do not repeat a task; do not make tasks need each other in a cycle.\n\nActions:\n",
    );
    for spec in SPECS.iter().filter(|s| s.name != "ai.plan") {
        let params: Vec<String> = spec
            .params
            .iter()
            .map(|p| {
                format!("{} ({}{})", p.name, p.kind.describe(), if p.required { ", required" } else { "" })
            })
            .collect();
        let params = if params.is_empty() { "no parameters".to_owned() } else { params.join(", ") };
        let _ = writeln!(text, "- {}: {params}. {}", spec.name, spec.summary);
    }
    let _ = writeln!(text, "- {RUN}: argv (list of strings, required). Runs a command in the workspace.");
    let _ = write!(text, "\nThe work:\n{prompt}\n");
    text
}

/// The request again, with the invalid reply and its problems.
pub fn repair(prompt: &str, reply: &str, problems: &[String]) -> String {
    let mut text = request(prompt);
    let _ = write!(text, "\nYour previous answer was:\n{reply}\n\nIt has these problems:\n");
    for p in problems {
        let _ = writeln!(text, "- {p}");
    }
    text.push_str("\nAnswer again with the whole plan, every problem fixed.\n");
    text
}

/// The request again, with a plan whose needs form `cycles`.
pub fn uncycle(prompt: &str, tasks: &[Task], cycles: &[String]) -> String {
    let mut text = request(prompt);
    let plan = serde_json::to_string_pretty(&json!({ "tasks": tasks })).unwrap_or_default();
    let _ = write!(
        text,
        "\nThis plan has dependency cycles ({}; `a -> b` means a needs b):\n{plan}\n\nAnswer again with the whole plan, changed so that no task needs itself through others.\n",
        cycles.join(", ")
    );
    text
}

/// The workflow definition of `tasks`, as pretty JSON (which is YAML): one step per task, in
/// task order; `run` tasks become `run: [argv...]` steps.
pub fn definition(name: &str, tasks: &[Task]) -> String {
    let steps: Vec<Value> = tasks
        .iter()
        .map(|t| {
            let mut step = Map::new();
            step.insert("id".into(), json!(t.id));
            step.insert("name".into(), json!(t.name));
            if t.action == RUN {
                step.insert("run".into(), t.with.get("argv").cloned().unwrap_or(json!([])));
            } else {
                step.insert("uses".into(), json!(t.action));
                if !t.with.is_empty() {
                    step.insert("with".into(), Value::Object(t.with.clone()));
                }
            }
            if !t.needs.is_empty() {
                step.insert("needs".into(), json!(t.needs));
            }
            Value::Object(step)
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&json!({ "name": name, "steps": steps })).unwrap_or_default();
    text.push('\n');
    text
}

pub fn to_workflow(tasks: &[Task], workspace: &Path, name: &str) -> Result<Workflow, PlanError> {
    let file = workspace.join(PLANS_DIR).join(format!("{name}.json"));
    let source = definition(name, tasks);
    let (workflow, problems) = crate::workflow::validate::check(&file, &source);
    let errors: Vec<String> = problems.into_iter().filter(|p| p.is_error()).map(|p| p.message).collect();
    match workflow {
        Some(workflow) if errors.is_empty() => Ok(workflow),
        _ => Err(PlanError::invalid("the plan does not make a valid workflow", errors)),
    }
}

/// Each task's wave: 1 for tasks without needs, else one more than its latest need's.
fn waves(tasks: &[Task]) -> Vec<usize> {
    let mut waves = vec![0usize; tasks.len()];
    for _ in 0..tasks.len() {
        for (i, t) in tasks.iter().enumerate() {
            let latest = t
                .needs
                .iter()
                .filter_map(|n| tasks.iter().position(|o| &o.id == n))
                .map(|j| waves[j])
                .max()
                .unwrap_or(0);
            waves[i] = latest + 1;
        }
    }
    waves
}

/// A command as a person would type it.
fn shell_words(argv: &[Value]) -> String {
    argv.iter()
        .map(|a| {
            let a = a.as_str().map_or_else(|| a.to_string(), str::to_owned);
            let plain =
                !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain { a } else { format!("'{}'", a.replace('\'', "'\\''")) }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn render(plan: &Plan) -> String {
    let tasks = &plan.tasks;
    let mut text = format!(
        "plan: {} task{} for: {}\n",
        tasks.len(),
        if tasks.len() == 1 { "" } else { "s" },
        plan.prompt.lines().next().unwrap_or_default()
    );
    let waves = waves(tasks);
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| waves[i]);
    let mut wave = 0;
    for i in order {
        let t = &tasks[i];
        if waves[i] != wave {
            wave = waves[i];
            let _ = writeln!(text, "wave {wave}:");
        }
        let what = if t.action == RUN {
            let argv = t.with.get("argv").and_then(Value::as_array).cloned().unwrap_or_default();
            format!("run: {}", shell_words(&argv))
        } else if t.with.is_empty() {
            t.action.clone()
        } else {
            format!("{} {}", t.action, Value::Object(t.with.clone()))
        };
        let _ = writeln!(text, "  {} ({}, priority {}): {what}", t.id, t.name, t.priority);
        if !t.description.is_empty() {
            let _ = writeln!(text, "      {}", t.description);
        }
        if !t.needs.is_empty() {
            let _ = writeln!(text, "      needs: {}", t.needs.join(", "));
        }
    }
    if !plan.notes.is_empty() {
        text.push_str("notes:\n");
        for note in &plan.notes {
            let _ = writeln!(text, "  - {note}");
        }
    }
    let cost = if plan.cost_usd > 0.0 && plan.cost_usd < 0.0001 {
        "under $0.0001".to_owned()
    } else {
        format!("${:.4}", plan.cost_usd)
    };
    let _ = write!(
        text,
        "planning cost {cost} over {} call{}",
        plan.calls,
        if plan.calls == 1 { "" } else { "s" }
    );
    let ai_tasks = tasks.iter().filter(|t| t.action.starts_with("ai.")).count();
    if ai_tasks > 0 {
        let _ = write!(
            text,
            "; running it asks the AI providers {ai_tasks} more time{}",
            if ai_tasks == 1 { "" } else { "s" }
        );
    }
    text
}
