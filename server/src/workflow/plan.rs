//! The dry run: what a workflow would do, rendered with sample trigger data, without running
//! anything or writing to the store.
//!
//! Steps come in waves: a step's wave is one more than the latest wave of its needs, so the
//! steps of one wave may run in parallel. A template that reads the output of an earlier step
//! cannot be rendered before that step runs; it is shown as written, marked as known at run
//! time. Any other template error (an unknown input, a typo in `trigger`) is a problem.

use serde_json::{Map, Value, json};

use super::definition::{StepKind, Workflow};
use super::error::{WorkflowError, WorkflowErrorKind};
use super::template::{TemplateLimits, Templates};
use super::triggers::{ManualSource, Trigger};

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    pub id: String,
    /// 1-based: steps of one wave may run in parallel.
    pub wave: usize,
    pub needs: Vec<String>,
    pub condition: Option<String>,
    /// `run`, `shell` or the action's name.
    pub kind: String,
    /// The argv (array), the script (string) or the `with` parameters (object), rendered where
    /// possible.
    pub rendered: Value,
    /// Templates shown as written because they read step outputs.
    pub at_run_time: Vec<String>,
}

/// A trigger like the one the workflow's first declared trigger sends (file change, schedule,
/// diagnostic, escalation, webhook, in that order), or a manual start from the CLI: the same
/// [`Trigger`] type, with the same fields, as a real start.
pub fn sample_trigger(workflow: &Workflow) -> Trigger {
    let on = &workflow.on;
    if let Some(fc) = &on.file_change {
        let path = fc.paths.first().map_or("src/example.txt".to_owned(), |g| sample_path(g));
        return Trigger::FileChange { path, event: "modified".into() };
    }
    if let Some(s) = on.schedule.first() {
        return Trigger::Schedule {
            cron: s.cron.clone(),
            scheduled_at: sample_time(s.timezone.as_deref()),
            timezone: s.timezone.clone().unwrap_or_else(|| "UTC".to_owned()),
        };
    }
    if let Some(d) = &on.diagnostic {
        return Trigger::Diagnostic {
            path: d.paths.first().map_or("src/example.rs".to_owned(), |g| sample_path(g)),
            line: 1,
            category: d.category.clone().unwrap_or_else(|| "syntax".into()),
            severity: d.severity.clone().unwrap_or_else(|| "error".into()),
            fingerprint: "0000000000000000".into(),
            message: "example diagnostic".into(),
        };
    }
    if on.escalation.is_some() {
        return Trigger::Escalation {
            outcome: "failed".into(),
            path: "src/example.rs".into(),
            fingerprint: "0000000000000000".into(),
            provider: None,
            message: "example escalation".into(),
        };
    }
    if let Some(w) = &on.webhook {
        return Trigger::Webhook { path: w.path.clone(), body: json!({}), headers: json!({}), event: None };
    }
    Trigger::Manual { source: ManualSource::Cli, agent: None, session: None }
}

/// Each step's wave (1 for a step that needs nothing, one more than its latest need otherwise),
/// or `None` for a step that never becomes ready (its needs form a cycle or name unknown steps).
/// Linear in steps and needs: each step is placed once, when its last need is.
fn waves(workflow: &Workflow) -> Vec<Option<usize>> {
    let steps = &workflow.steps;
    let index: std::collections::HashMap<&str, usize> =
        steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let mut waiting = vec![0usize; steps.len()];
    let mut dependents = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        for need in &step.needs {
            match index.get(need.as_str()) {
                Some(&n) => {
                    waiting[i] = waiting[i].saturating_add(1);
                    dependents[n].push(i);
                }
                // Never ready: a need that is not a step is never met.
                None => waiting[i] = usize::MAX,
            }
        }
    }
    let mut waves: Vec<Option<usize>> = vec![None; steps.len()];
    let mut ready: Vec<usize> = (0..steps.len()).filter(|&i| waiting[i] == 0).collect();
    for &i in &ready {
        waves[i] = Some(1);
    }
    while let Some(n) = ready.pop() {
        let wave = waves[n].unwrap_or(1);
        for &d in &dependents[n] {
            waves[d] = Some(waves[d].map_or(wave + 1, |w| w.max(wave + 1)));
            if waiting[d] != usize::MAX {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(d);
                }
            }
        }
    }
    // A step some of whose needs were placed but not all is not ready.
    for (i, wave) in waves.iter_mut().enumerate() {
        if waiting[i] != 0 {
            *wave = None;
        }
    }
    waves
}

/// A path that a glob matches: `src/**/*.py` -> `src/example.py`.
fn sample_path(glob: &str) -> String {
    let path = glob.replace("**/", "").replace("**", "example").replace('*', "example").replace('?', "x");
    path.trim_start_matches('/').to_owned()
}

/// The plan of `workflow` for `trigger` and checked `inputs`, in wave order, its templates
/// rendered under `limits` (the configured `[workflows] template_*`, as in a run).
pub fn plan(
    workflow: &Workflow,
    trigger: &Value,
    inputs: &Map<String, Value>,
    limits: TemplateLimits,
) -> Result<Vec<PlannedStep>, WorkflowError> {
    let templates = Templates::new(limits);
    let inputs = super::inputs::check(&workflow.inputs, inputs)?;
    let env: Map<String, Value> = std::env::vars().map(|(k, v)| (k, Value::String(v))).collect();
    let mut ctx = json!({
        "trigger": trigger, "inputs": inputs, "env": env, "steps": {},
        "run": { "id": 0 }, "workflow": { "name": workflow.name },
    });
    for (k, v) in &workflow.env {
        let value = templates
            .render_str(v, &ctx)
            .map_err(|e| WorkflowError::new(WorkflowErrorKind::Definition, format!("env `{k}`: {e}")))?;
        ctx["env"][k] = Value::String(value);
    }

    let waves = waves(workflow);
    let mut problems = Vec::new();
    let mut planned = Vec::new();
    for (i, step) in workflow.steps.iter().enumerate() {
        let Some(wave) = waves[i] else {
            problems.push(format!(
                "step `{}` never becomes ready: its needs form a cycle or name unknown steps",
                step.id
            ));
            continue;
        };
        let mut at_run_time = Vec::new();
        let mut render = |source: &str, shell: bool| -> Value {
            if !(source.contains("{{") || source.contains("{%")) {
                return json!(source);
            }
            let result =
                if shell { templates.render_shell(source, &ctx) } else { templates.render_str(source, &ctx) };
            match result {
                Ok(text) => json!(text),
                Err(_) if source.contains("steps.") => {
                    at_run_time.push(source.to_owned());
                    json!(source)
                }
                Err(e) => {
                    problems.push(format!("step `{}`: `{source}`: {e}", step.id));
                    json!(source)
                }
            }
        };
        let (kind, rendered) = match &step.kind {
            StepKind::Argv { argv, .. } => {
                ("run".to_owned(), Value::Array(argv.iter().map(|a| render(a, false)).collect()))
            }
            StepKind::Shell { script, .. } => ("shell".to_owned(), render(script, true)),
            StepKind::Uses { action, with } => {
                let with = with.iter().map(|(k, v)| (k.clone(), render_deep(v, &mut render))).collect();
                (action.clone(), Value::Object(with))
            }
        };
        planned.push(PlannedStep {
            id: step.id.clone(),
            wave,
            needs: step.needs.clone(),
            condition: step.condition.clone(),
            kind,
            rendered,
            at_run_time,
        });
    }
    if !problems.is_empty() {
        return Err(WorkflowError::new(WorkflowErrorKind::Definition, problems.join("\n")));
    }
    planned.sort_by_key(|p| p.wave);
    Ok(planned)
}

fn render_deep(value: &Value, render: &mut dyn FnMut(&str, bool) -> Value) -> Value {
    match value {
        Value::String(s) => render(s, false),
        Value::Array(items) => Value::Array(items.iter().map(|v| render_deep(v, render)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), render_deep(v, render))).collect())
        }
        other => other.clone(),
    }
}

/// The dry run's sample schedule time, 09:00 on Monday 5 January 2026 in `timezone` (UTC when
/// none or unknown), written as a schedule trigger writes it.
fn sample_time(timezone: Option<&str>) -> String {
    use chrono::TimeZone;
    let tz: chrono_tz::Tz = timezone.and_then(|t| t.parse().ok()).unwrap_or(chrono_tz::UTC);
    tz.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().map_or_else(
        || "2026-01-05T09:00:00+00:00".to_owned(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::engine::tests_support::{argv_step, workflow};

    #[test]
    fn waves_rendering_and_run_time_templates() {
        let mut wf = workflow(vec![
            argv_step("lint", &[], &["ruff", "check", "{{ trigger.path }}"]),
            argv_step("a", &[], &["echo", "{{ inputs.who }}"]),
            argv_step("b", &["lint", "a"], &["echo", "{{ steps.lint.output.exit_code }}"]),
        ]);
        wf.on.file_change = Some(crate::workflow::definition::FileChangeTrigger {
            paths: vec!["src/**/*.py".into()],
            ignore: vec![],
            events: vec![],
            debounce: std::time::Duration::from_millis(500),
        });
        wf.inputs.insert(
            "who".into(),
            crate::workflow::definition::InputSpec {
                kind: crate::workflow::definition::InputType::String,
                description: None,
                default: Some(json!("world")),
                required: false,
                options: vec![],
            },
        );
        let trigger = sample_trigger(&wf);
        assert_eq!(
            trigger.to_value(),
            json!({"kind": "file_change", "path": "src/example.py", "event": "modified"})
        );
        let planned = plan(&wf, &trigger.to_value(), &Map::new(), TemplateLimits::default()).unwrap();
        let shown: Vec<String> = planned
            .iter()
            .map(|p| format!("{} {} {} {:?}", p.wave, p.id, p.rendered, p.at_run_time))
            .collect();
        assert_eq!(
            shown,
            [
                r#"1 lint ["ruff","check","src/example.py"] []"#,
                r#"1 a ["echo","world"] []"#,
                r#"2 b ["echo","{{ steps.lint.output.exit_code }}"] ["{{ steps.lint.output.exit_code }}"]"#,
            ]
        );

        let broken = workflow(vec![argv_step("x", &[], &["echo", "{{ trigger.nothing }}"])]);
        let error =
            plan(&broken, &sample_trigger(&broken).to_value(), &Map::new(), TemplateLimits::default())
                .unwrap_err();
        assert!(error.message.starts_with("step `x`: `{{ trigger.nothing }}`:"), "{}", error.message);
    }
}

#[cfg(test)]
mod wave_props {
    use super::waves;
    use crate::workflow::engine::tests_support::{argv_step, workflow};
    use proptest::prelude::*;

    /// The waves as the definition says them: repeat "one more than the latest need" until
    /// nothing changes.
    fn fixed_point(needs: &[Vec<String>]) -> Vec<Option<usize>> {
        let mut waves: Vec<Option<usize>> = vec![None; needs.len()];
        for _ in 0..needs.len() {
            for i in 0..needs.len() {
                let of: Option<Vec<usize>> = needs[i]
                    .iter()
                    .map(|n| n.strip_prefix('s')?.parse::<usize>().ok().filter(|&p| p < needs.len()))
                    .map(|p| p.and_then(|p| waves[p]))
                    .collect();
                if let Some(of) = of {
                    waves[i] = Some(of.into_iter().max().unwrap_or(0) + 1);
                }
            }
        }
        waves
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any graph (cycles, unknown needs, repeated needs): the linear computation gives the
        /// waves of the definition.
        #[test]
        fn waves_match_the_definition(graph in prop::collection::vec(prop::collection::vec(0usize..14, 0..4), 1..12)) {
            let needs: Vec<Vec<String>> =
                graph.iter().map(|ns| ns.iter().map(|n| format!("s{n}")).collect()).collect();
            let steps = needs
                .iter()
                .enumerate()
                .map(|(i, ns)| {
                    let ns: Vec<&str> = ns.iter().map(String::as_str).collect();
                    argv_step(&format!("s{i}"), &ns, &["true"])
                })
                .collect();
            prop_assert_eq!(waves(&workflow(steps)), fixed_point(&needs));
        }
    }
}
