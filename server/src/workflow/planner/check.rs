//! Checking a plan the model wrote: the JSON Schema first ([`schema`], validated with the
//! `jsonschema` crate, no remote references), then what the schema cannot say: unique ids, and
//! everything the workflow validator finds once the tasks are written as a workflow (unknown
//! actions, action parameters, `needs` that name no task, template syntax and references).
//! Dependency cycles are not problems here: the planner breaks them.
//!
//! Every problem is a sentence naming its task, ready to be sent back to the model.

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

use serde_json::{Value, json};

use super::Task;
use crate::workflow::definition::ACTIONS;

/// The action of a task that runs a command: `with: {argv: [...]}`, no shell.
pub const RUN: &str = "run";

/// Most tasks a plan may have.
const MAX_TASKS: usize = 50;

/// The actions a task may use: the built-in ones but `ai.plan`, and [`RUN`].
pub fn actions() -> Vec<&'static str> {
    ACTIONS.iter().copied().filter(|a| *a != "ai.plan").chain([RUN]).collect()
}

/// The JSON Schema of a plan, sent to the model as the structured-output schema and checked
/// against its reply.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["tasks"],
        "properties": {
            "tasks": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_TASKS,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["id", "name", "description", "action", "with", "needs", "priority"],
                    "properties": {
                        "id": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]{0,63}$" },
                        "name": { "type": "string", "minLength": 1 },
                        "description": { "type": "string" },
                        "action": { "type": "string", "enum": actions() },
                        "with": { "type": "object" },
                        "needs": { "type": "array", "items": { "type": "string" } },
                        "priority": { "type": "integer" }
                    },
                    "if": { "properties": { "action": { "const": RUN } } },
                    "then": {
                        "properties": {
                            "with": {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["argv"],
                                "properties": {
                                    "argv": {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": { "type": "string" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

static VALIDATOR: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| jsonschema::validator_for(&schema()).expect("the plan schema is a valid JSON Schema"));

/// The tasks of a reply, or every problem found in it.
pub fn check(reply: &str) -> Result<Vec<Task>, Vec<String>> {
    let value = parse_json(reply).map_err(|e| vec![format!("the reply is not JSON: {e}")])?;
    let problems: Vec<String> = VALIDATOR
        .iter_errors(&value)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "the plan".to_owned() } else { format!("`{at}`") };
            format!("{at}: {e}")
        })
        .collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    let tasks: Vec<Task> = serde_json::from_value(value["tasks"].clone())
        .map_err(|e| vec![format!("the tasks do not read as tasks: {e}")])?;

    let mut seen = HashSet::new();
    let twice: Vec<String> = tasks
        .iter()
        .filter(|t| !seen.insert(t.id.as_str()))
        .map(|t| format!("task id `{}` is used more than once; give every task an id of its own", t.id))
        .collect();
    if !twice.is_empty() {
        return Err(twice);
    }
    let problems = workflow_problems(&tasks);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(tasks)
}

/// What the workflow validator finds in the tasks, each problem given to its task (by the line
/// it is on in the definition text), cycles left out.
fn workflow_problems(tasks: &[Task]) -> Vec<String> {
    let source = super::convert::definition("plan", tasks);
    let (workflow, problems) = crate::workflow::validate::check(Path::new("plan.json"), &source);
    let steps = workflow.map(|w| w.steps).unwrap_or_default();
    problems
        .into_iter()
        .filter(|p| p.is_error() && !p.message.starts_with("dependency cycle:"))
        .map(|p| {
            let step = steps.iter().rev().find(|s| s.line <= p.line);
            match step {
                Some(step) => format!("task `{}`: {}", step.id, p.message),
                None => p.message,
            }
        })
        .collect()
}

/// The JSON of a reply, with or without a Markdown code fence around it.
fn parse_json(text: &str) -> Result<Value, serde_json::Error> {
    let trimmed = text.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.trim_end().strip_suffix("```"))
        .unwrap_or(trimmed);
    serde_json::from_str(unfenced.trim())
}
