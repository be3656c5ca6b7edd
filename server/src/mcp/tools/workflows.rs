//! `workflows`, `run_workflow`, `run_status`: the workspace's workflows, starting one by hand
//! (as the editor's and the CLI's manual runs do) and following a run.

use std::sync::Arc;

use rmcp::model::{ErrorData, Tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{plural, tool};
use crate::mcp::{Answer, Shared, internal, invalid, refused};
use crate::workflow::definition::{InputType, Workflow};
use crate::workflow::triggers::{ManualSource, Trigger};
use crate::workspace::{RefusedKind, RunState};

pub(super) const WORKFLOWS: &str = "workflows";
pub(super) const RUN_WORKFLOW: &str = "run_workflow";
pub(super) const RUN_STATUS: &str = "run_status";

/// Recent runs `workflows` lists.
const RECENT_RUNS: usize = 20;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WorkflowsArgs {}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RunWorkflowArgs {
    /// The workflow's name, as `workflows` lists it.
    workflow: String,
    /// Its inputs by name (see `workflows` for each one's type, default and whether it is required).
    #[serde(default)]
    inputs: Map<String, Value>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RunStatusArgs {
    /// The run's id, as `run_workflow` or `workflows` gave it.
    run: i64,
}

pub(super) fn tools() -> Vec<Tool> {
    vec![
        tool::<WorkflowsArgs>(
            WORKFLOWS,
            "The workspace's valid workflows (.acas/workflows) with their inputs and triggers, and the most \
             recent runs with their state.",
        ),
        tool::<RunWorkflowArgs>(
            RUN_WORKFLOW,
            "Start a run of a workflow with the inputs given; answers the run's id at once. Follow it with \
             `run_status` or by subscribing to the resource acas://runs/{id}.",
        ),
        tool::<RunStatusArgs>(
            RUN_STATUS,
            "The state of one workflow run: its status, each step's status, attempts and error.",
        ),
    ]
}

pub(super) async fn workflows(shared: &Arc<Shared>, _: WorkflowsArgs) -> Result<Answer, ErrorData> {
    let (definitions, runs, _) = shared
        .handle
        .workflows(RECENT_RUNS)
        .await
        .ok_or_else(|| internal("listing workflows failed inside ACAS; see its log"))?;
    let mut text = plural(definitions.len(), "workflow", "workflows");
    if definitions.is_empty() {
        text.push_str(" (add YAML files to .acas/workflows; `acas workflow check` validates them)");
    }
    for w in &definitions {
        let inputs: Vec<String> = w
            .inputs
            .iter()
            .map(|(name, spec)| {
                format!("{name}: {}{}", kind(spec.kind), if spec.required { "" } else { "?" })
            })
            .collect();
        text.push_str(&format!("\n{} ({})", w.name, inputs.join(", ")));
    }
    if !runs.is_empty() {
        text.push_str("\nrecent runs:");
        for run in &runs {
            text.push_str(&format!("\n  {}", run_line(run)));
        }
    }
    let data = json!({
        "workflows": definitions.iter().map(|w| workflow_json(shared, w)).collect::<Vec<_>>(),
        "recent_runs": runs.iter().map(run_json).collect::<Vec<_>>(),
    });
    Ok(Answer { text, data, path: None })
}

pub(super) async fn run_workflow(
    shared: &Arc<Shared>,
    agent: &str,
    holder: &str,
    args: RunWorkflowArgs,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Answer, ErrorData> {
    if args.workflow.trim().is_empty() {
        return Err(invalid("`workflow` is empty; `workflows` lists the names"));
    }
    if let Some(why) = crate::trust::workflows_untrusted(&shared.root) {
        return Err(refused(
            "workspace_untrusted",
            format!("{why}; an agent cannot trust a workspace for its user: ask them"),
        ));
    }
    let workflow = crate::policy::Action::Workflow { name: args.workflow.clone() };
    crate::mcp::policy::ask(shared, agent, holder, workflow, cancel).await?;
    tracing::info!(agent, workflow = %args.workflow, "an agent starts a workflow run");
    let agent = Some(shared.policy_agent(agent));
    let session = crate::policy::approvals::session_of(holder).map(str::to_owned);
    let trigger = Trigger::Manual { source: ManualSource::Agent, agent, session };
    let run = shared
        .handle
        .start_run(args.workflow.clone(), trigger, args.inputs)
        .await
        .ok_or_else(|| internal("starting the run failed inside ACAS; see its log"))?;
    let run = run.map_err(|refusal| match refusal.kind {
        RefusedKind::WorkflowNotFound | RefusedKind::InvalidInputs => {
            invalid(format!("{}; `workflows` lists the workflows and their inputs", refusal.message))
        }
        RefusedKind::InvalidWorkflow => refused("invalid_workflow", refusal.message),
        _ => refused("refused", refusal.message),
    })?;
    let text = format!(
        "started run {run} of {}; call `run_status` with run {run}, or subscribe to acas://runs/{run}",
        args.workflow
    );
    Ok(Answer {
        text,
        data: json!({ "run": run, "workflow": args.workflow, "resource": format!("acas://runs/{run}") }),
        path: None,
    })
}

pub(super) async fn run_status(shared: &Arc<Shared>, args: RunStatusArgs) -> Result<Answer, ErrorData> {
    let state = shared
        .handle
        .run_state(args.run)
        .await
        .ok_or_else(|| internal("reading the run failed inside ACAS; see its log"))?
        .ok_or_else(|| invalid(format!("no run {}; `workflows` lists the recent runs", args.run)))?;
    let mut text = run_line(&state);
    for step in &state.steps {
        let error = step.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        text.push_str(&format!(
            "\n  {} {} (attempts {}){error}",
            step.id,
            step.status.as_str(),
            step.attempts
        ));
    }
    Ok(Answer { text, data: run_json(&state), path: None })
}

fn kind(kind: InputType) -> &'static str {
    match kind {
        InputType::String => "string",
        InputType::Number => "number",
        InputType::Boolean => "boolean",
        InputType::Choice => "choice",
    }
}

fn workflow_json(shared: &Shared, w: &Workflow) -> Value {
    let inputs: Map<String, Value> = w
        .inputs
        .iter()
        .map(|(name, spec)| {
            let mut input = json!({
                "type": kind(spec.kind),
                "required": spec.required,
                "description": spec.description,
                "default": spec.default,
            });
            if !spec.options.is_empty() {
                input["options"] = json!(spec.options);
            }
            (name.clone(), input)
        })
        .collect();
    json!({ "name": w.name, "file": shared.relative(&w.file), "inputs": inputs })
}

fn run_line(run: &RunState) -> String {
    let error = run.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
    format!("run {} of {}: {}{error}", run.run, run.workflow, run.status.as_str())
}

pub(crate) fn run_json(run: &RunState) -> Value {
    json!({
        "run": run.run,
        "workflow": run.workflow,
        "status": run.status.as_str(),
        "final": run.status.is_final(),
        "error": run.error,
        "created_ms": run.created_ms,
        "finished_ms": run.finished_ms,
        "steps": run.steps.iter().map(|s| json!({
            "id": s.id, "status": s.status.as_str(), "attempts": s.attempts, "error": s.error,
        })).collect::<Vec<_>>(),
    })
}
