//! Checks that need the whole workflow, and loading every workflow of a workspace.
//!
//! [`validate`] finds unknown actions and bad action parameters, `needs` that name no step,
//! dependency cycles, template syntax errors and references to things a template cannot see
//! (`inputs.X` not declared, `steps.X` that is not a dependency), invalid cron expressions, time
//! zones and globs, and webhook paths. Every problem is located in the file. [`check`] is
//! parsing and validation together; [`load_dir`] and [`load_file`] give only workflows without
//! errors, ready to run. [`next_runs`] and [`cron_hover`] answer "when does this schedule fire".
//!
//! Nothing here runs a workflow or knows the editor.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::definition::{ACTIONS, StepKind, Workflow};
use super::parse::{self, Parsed, Pos, Problem, Severity, SourceMap, Span};
use super::template::Templates;

/// Where workflow files live, relative to the workspace root.
pub const WORKFLOWS_DIR: &str = ".acas/workflows";

/// The roots a template may read.
const ROOTS: &[&str] = &["trigger", "inputs", "env", "steps", "run", "workflow"];
/// What a template may read of a step.
const STEP_FIELDS: &[&str] = &["output", "outcome", "status"];

/// Parses and validates one workflow file's text.
pub fn check(file: &Path, source: &str) -> (Option<Workflow>, Vec<Problem>) {
    let Parsed { workflow, mut problems, map } = parse::parse_mapped(file, source);
    if let Some(workflow) = &workflow {
        // Where the schema already found a problem, what validation says of the same node
        // (usually a consequence of it) is left out.
        let located: std::collections::HashSet<(u32, u32)> =
            problems.iter().filter(|p| p.is_error()).map(|p| (p.line, p.column)).collect();
        problems.extend(
            validate_with(workflow, &map).into_iter().filter(|p| !located.contains(&(p.line, p.column))),
        );
    }
    parse::sort(&mut problems);
    (workflow, problems)
}

/// Reads and checks one file.
pub fn check_file(path: &Path) -> (Option<Workflow>, Vec<Problem>) {
    let start = Span { start: Pos { line: 1, column: 1 }, end: Pos { line: 1, column: 1 } };
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(source) => check(path, &source),
            Err(_) => (
                None,
                vec![Problem::new(
                    path,
                    start,
                    Severity::Error,
                    "this file is not UTF-8 text; save it as UTF-8",
                )],
            ),
        },
        Err(error) => (
            None,
            vec![Problem::new(path, start, Severity::Error, format!("cannot read this file: {error}"))],
        ),
    }
}

/// Checks a workflow that is already parsed. Positions come from its `source`; a workflow built
/// in code (empty `source`) gets the positions of its steps.
pub fn validate(workflow: &Workflow) -> Vec<Problem> {
    let map = if workflow.source.is_empty() {
        SourceMap::default()
    } else {
        parse::parse_mapped(&workflow.file, &workflow.source).map
    };
    let mut problems = validate_with(workflow, &map);
    parse::sort(&mut problems);
    problems
}

/// Every workflow file of a workspace (`.acas/workflows/*.yaml` and `*.yml`), sorted.
pub fn workflow_files(workspace: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(workspace.join(WORKFLOWS_DIR)) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| is_yaml(p) && p.is_file()).collect();
    files.sort();
    files
}

/// Whether `path` is a workflow file of the workspace at `root`.
pub fn is_workflow_file(root: &Path, path: &Path) -> bool {
    !root.as_os_str().is_empty() && path.parent() == Some(&root.join(WORKFLOWS_DIR)) && is_yaml(path)
}

fn is_yaml(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// Checks every workflow file of a workspace, in file order; a name that an earlier file
/// already uses is an error.
pub fn check_dir(workspace: &Path) -> Vec<(PathBuf, Option<Workflow>, Vec<Problem>)> {
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    workflow_files(workspace)
        .into_iter()
        .map(|file| {
            let (workflow, mut problems) = check_file(&file);
            if let Some(workflow) = &workflow
                && !workflow.name.is_empty()
            {
                match names.get(&workflow.name) {
                    Some(first) => {
                        let map = parse::parse_mapped(&file, &workflow.source).map;
                        let span = map.value("name").unwrap_or_default();
                        let first = first.file_name().map_or_else(
                            || first.display().to_string(),
                            |n| n.to_string_lossy().into_owned(),
                        );
                        problems.push(Problem::new(
                            &file,
                            span,
                            Severity::Error,
                            format!(
                                "workflow name `{}` is already used by {first}; rename one of them",
                                workflow.name
                            ),
                        ));
                    }
                    None => {
                        names.insert(workflow.name.clone(), file.clone());
                    }
                }
            }
            (file, workflow, problems)
        })
        .collect()
}

/// The valid workflows of a workspace, and every problem of every file.
pub fn load_dir(workspace: &Path) -> (Vec<Workflow>, Vec<Problem>) {
    let mut workflows = Vec::new();
    let mut all = Vec::new();
    for (_, workflow, problems) in check_dir(workspace) {
        if let Some(workflow) = workflow
            && !problems.iter().any(Problem::is_error)
        {
            workflows.push(workflow);
        }
        all.extend(problems);
    }
    (workflows, all)
}

/// One workflow, if it has no errors.
pub fn load_file(path: &Path) -> Result<Workflow, Vec<Problem>> {
    match check_file(path) {
        (Some(workflow), problems) if !problems.iter().any(Problem::is_error) => Ok(workflow),
        (_, problems) => Err(problems),
    }
}

/// The next `n` times after `after` that a cron expression (5 fields, or 6 with seconds first)
/// fires, in `timezone` (an IANA name; `None` is UTC).
pub fn next_runs(
    cron: &str,
    timezone: Option<&str>,
    after: DateTime<Utc>,
    n: usize,
) -> Result<Vec<DateTime<Tz>>, ScheduleError> {
    let tz = match timezone {
        Some(name) => time_zone(name)?,
        None => Tz::UTC,
    };
    let schedule = parse_cron(cron)?;
    let start = after.with_timezone(&tz);
    Ok(schedule.iter_after(start).take(n).collect())
}

/// What is wrong with a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleErrorKind {
    /// The cron expression does not parse.
    Cron,
    /// The time zone is not an IANA name.
    TimeZone,
}

/// A schedule that cannot be used: a kind to match on and a message that says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScheduleError {
    pub kind: ScheduleErrorKind,
    pub message: String,
}

pub(crate) fn time_zone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| {
        let close = parse::suggest(name, chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()));
        let message = match close {
            Some(close) => format!("unknown time zone `{name}`; did you mean `{close}`?"),
            None => format!("unknown time zone `{name}`; use an IANA name like `Europe/Berlin` or `UTC`"),
        };
        ScheduleError { kind: ScheduleErrorKind::TimeZone, message }
    })
}

pub(crate) fn parse_cron(cron: &str) -> Result<croner::Cron, ScheduleError> {
    let error = |message| ScheduleError { kind: ScheduleErrorKind::Cron, message };
    let fields = cron.split_whitespace().count();
    let nickname = cron.trim().starts_with('@');
    if !(nickname || fields == 5 || fields == 6) {
        return Err(error(format!(
            "cron expression `{cron}` has {fields} fields; write 5 (minute hour day month weekday) or 6 (seconds first)"
        )));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(cron)
        .map_err(|e| {
            error(format!("invalid cron expression `{cron}`: {}", e.to_string().trim_end_matches('.')))
        })
}

/// The hover of a `cron:` value at `at` in a workflow file's text: its span, and Markdown with
/// the next three runs in its time zone and in UTC (or why it is invalid).
pub fn cron_hover(source: &str, at: Pos, now: DateTime<Utc>) -> Option<(Span, String)> {
    let Parsed { workflow, map, .. } = parse::parse_mapped(Path::new(""), source);
    let schedules = workflow.map(|w| w.on.schedule).unwrap_or_default();
    let (path, span, cron) = map.strings().find(|(path, span, _)| span.contains(at) && is_cron_path(path))?;
    // Which schedule it is: the list index, or the only one.
    let index = path
        .strip_prefix("on.schedule.")
        .and_then(|rest| rest.split('.').next()?.parse::<usize>().ok())
        .unwrap_or(0);
    let timezone = schedules.get(index).filter(|s| s.cron == cron).and_then(|s| s.timezone.clone());
    let mut text = format!("**Schedule** `{cron}`");
    match next_runs(cron, timezone.as_deref(), now, 3) {
        Ok(runs) => {
            let zone = timezone.as_deref().unwrap_or("UTC");
            text.push_str(&format!(": next runs ({zone})\n"));
            for run in runs {
                text.push_str(&format!("\n- {}", run.format("%a %Y-%m-%d %H:%M:%S %Z")));
                if timezone.is_some() {
                    text.push_str(&format!(" ({})", run.with_timezone(&Utc).format("%Y-%m-%d %H:%M:%S UTC")));
                }
            }
        }
        Err(error) => text.push_str(&format!("\n\n{error}")),
    }
    Some((span, text))
}

fn is_cron_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("on.schedule") else { return false };
    let parts: Vec<&str> = rest.split('.').skip(1).collect();
    match parts.as_slice() {
        [] | ["cron"] => true,
        [i] | [i, "cron"] => i.parse::<usize>().is_ok(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------

struct Checker<'a> {
    workflow: &'a Workflow,
    map: &'a SourceMap,
    problems: Vec<Problem>,
    templates: Templates,
    /// Step id -> index in `workflow.steps`.
    index: HashMap<&'a str, usize>,
    /// Each step's transitive dependencies, worked out when a template first needs them.
    ancestors: std::cell::OnceCell<Ancestors>,
}

fn validate_with(workflow: &Workflow, map: &SourceMap) -> Vec<Problem> {
    let index = workflow.steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let mut checker = Checker {
        workflow,
        map,
        problems: Vec::new(),
        templates: Templates::default(),
        index,
        ancestors: std::cell::OnceCell::new(),
    };
    checker.triggers();
    checker.steps();
    checker.problems
}

impl Checker<'_> {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.problems.push(Problem::new(&self.workflow.file, span, Severity::Error, message));
    }

    /// The span of the value at the first of `paths` that exists, else of the nearest ancestor
    /// of the first.
    fn value_at(&self, paths: &[String]) -> Span {
        paths
            .iter()
            .find(|p| self.map.has(p))
            .or(paths.first())
            .and_then(|p| self.map.value(p))
            .unwrap_or_default()
    }

    fn key_at(&self, path: &str) -> Span {
        self.map.key(path).unwrap_or_default()
    }

    /// The YAML path of step `id`, or where the step says it is when there is no source.
    fn step_path(&self, id: &str) -> String {
        match self.map.step(id) {
            Some(i) => format!("steps.{i}"),
            None => format!("steps.{id}"),
        }
    }

    fn step_span(&self, id: &str) -> Span {
        let span = self.map.value(&format!("{}.id", self.step_path(id)));
        span.unwrap_or_else(|| {
            let step = self.workflow.step(id);
            let at = step.map_or(Pos::default(), |s| Pos { line: s.line, column: s.column });
            Span { start: at, end: at }
        })
    }

    /// A path's value span, or the step's id when the source does not have it.
    fn in_step(&self, id: &str, paths: &[String]) -> Span {
        if paths.iter().any(|p| self.map.has(p)) { self.value_at(paths) } else { self.step_span(id) }
    }

    fn triggers(&mut self) {
        let on = &self.workflow.on;
        if let Some(fc) = &on.file_change {
            self.globs(&fc.paths, "on.file_change.paths");
            self.globs(&fc.ignore, "on.file_change.ignore");
        }
        if let Some(d) = &on.diagnostic {
            self.globs(&d.paths, "on.diagnostic.paths");
        }
        let list = self.map.has("on.schedule.0");
        for (i, schedule) in on.schedule.iter().enumerate() {
            let base = if list { format!("on.schedule.{i}") } else { "on.schedule".to_owned() };
            if let Err(error) = parse_cron(&schedule.cron) {
                let span = self.value_at(&[format!("{base}.cron"), base.clone()]);
                self.error(span, error.message);
            }
            if let Some(tz) = &schedule.timezone
                && let Err(error) = time_zone(tz)
            {
                let span = self.value_at(&[format!("{base}.timezone")]);
                self.error(span, error.message);
            }
        }
        if let Some(webhook) = &on.webhook
            && !webhook.path.starts_with('/')
        {
            let span = self.value_at(&["on.webhook.path".to_owned()]);
            self.error(
                span,
                format!("webhook path `{}` must start with `/`; write `/{}`", webhook.path, webhook.path),
            );
        }
        let workflow = self.workflow;
        for (name, value) in &workflow.env {
            self.template(value, false, None, self.value_at(&[format!("env.{name}")]), "env");
        }
        if let Some(concurrency) = &workflow.concurrency {
            let span = self.value_at(&["concurrency.group".to_owned(), "concurrency".to_owned()]);
            self.template(&concurrency.group, false, None, span, "the concurrency group");
            // The group is rendered when a run is asked for, before the run has a task of its
            // own: only substitutions, which cost as little as the template is long.
            if crate::workflow::template::render_process::needs_process(&concurrency.group, false) {
                self.error(
                    span,
                    "the concurrency group may only substitute values, like `deploy-{{ inputs.env }}`: \
                     no statements, filters or operators; compute anything more in a step",
                );
            }
        }
    }

    fn globs(&mut self, globs: &[String], path: &str) {
        let single = !self.map.has(&format!("{path}.0"));
        for (i, glob) in globs.iter().enumerate() {
            if let Err(error) = globset::GlobBuilder::new(glob).literal_separator(true).build() {
                let at = if single { path.to_owned() } else { format!("{path}.{i}") };
                let span = self.value_at(&[at]);
                let reason = error.kind().to_string();
                self.error(span, format!("invalid glob `{glob}`: {reason}; fix the pattern"));
            }
        }
    }

    fn steps(&mut self) {
        let workflow = self.workflow;
        let ids: HashSet<&str> = workflow.steps.iter().map(|s| s.id.as_str()).collect();
        // Unknown `needs`.
        for step in &workflow.steps {
            let base = self.step_path(&step.id);
            let single = !self.map.has(&format!("{base}.needs.0"));
            for (i, need) in step.needs.iter().enumerate() {
                if ids.contains(need.as_str()) {
                    continue;
                }
                let at = if single { format!("{base}.needs") } else { format!("{base}.needs.{i}") };
                let span = self.in_step(&step.id, &[at]);
                let message = match parse::suggest(need, ids.iter().copied()) {
                    Some(close) => format!(
                        "step `{}` needs `{need}`, which is not a step; did you mean `{close}`?",
                        step.id
                    ),
                    None => {
                        format!("step `{}` needs `{need}`, which is not a step of this workflow", step.id)
                    }
                };
                self.error(span, message);
            }
        }
        self.cycles();
        for (visible, step) in workflow.steps.iter().enumerate() {
            let base = self.step_path(&step.id);
            match &step.kind {
                StepKind::Uses { action, with } => {
                    if !ACTIONS.contains(&action.as_str()) {
                        let span = self.in_step(&step.id, &[format!("{base}.uses")]);
                        let message = match parse::suggest(action, ACTIONS.iter().copied()) {
                            Some(close) => format!("unknown action `{action}`; did you mean `{close}`?"),
                            None => {
                                format!("unknown action `{action}`; see `docs/workflows.md` for the actions")
                            }
                        };
                        self.error(span, message);
                    } else {
                        for problem in super::actions::check_params(action, with) {
                            let path = if problem.key.is_empty() {
                                format!("{base}.with")
                            } else {
                                format!("{base}.with.{}", problem.key)
                            };
                            let span = if self.map.has(&path) || self.map.has(&format!("{base}.with")) {
                                self.key_at(&path)
                            } else {
                                self.in_step(&step.id, &[format!("{base}.uses")])
                            };
                            self.error(span, problem.message);
                        }
                    }
                    // A parameter the action renders itself reads `item`: checked by its schema.
                    for (key, value) in with.iter().filter(|(k, _)| !super::actions::renders_later(action, k))
                    {
                        self.json_templates(value, &format!("{base}.with.{key}"), &step.id, visible);
                    }
                }
                StepKind::Argv { argv, env, cwd } => {
                    for (i, arg) in argv.iter().enumerate() {
                        let span = self
                            .in_step(&step.id, &[format!("{base}.run.{i}"), format!("{base}.run.argv.{i}")]);
                        self.template(arg, false, Some((&step.id, visible)), span, "the command");
                    }
                    self.run_extras(&step.id, &base, env, cwd.as_deref(), visible);
                }
                StepKind::Shell { script, env, cwd } => {
                    let span = self.in_step(&step.id, &[format!("{base}.run.shell")]);
                    self.template(script, false, Some((&step.id, visible)), span, "the script");
                    self.run_extras(&step.id, &base, env, cwd.as_deref(), visible);
                }
            }
            if let Some(condition) = &step.condition {
                let span = self.in_step(&step.id, &[format!("{base}.if")]);
                self.template(condition, true, Some((&step.id, visible)), span, "`if`");
            }
        }
    }

    fn run_extras(
        &mut self,
        id: &str,
        base: &str,
        env: &std::collections::BTreeMap<String, String>,
        cwd: Option<&str>,
        visible: usize,
    ) {
        for (name, value) in env {
            let span = self.in_step(id, &[format!("{base}.run.env.{name}")]);
            self.template(value, false, Some((id, visible)), span, "env");
        }
        if let Some(cwd) = cwd {
            let span = self.in_step(id, &[format!("{base}.run.cwd")]);
            self.template(cwd, false, Some((id, visible)), span, "`cwd`");
        }
    }

    fn json_templates(&mut self, value: &serde_json::Value, path: &str, id: &str, visible: usize) {
        match value {
            serde_json::Value::String(s) => {
                let span = self.in_step(id, &[path.to_owned()]);
                self.template(s, false, Some((id, visible)), span, "`with`");
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.json_templates(item, &format!("{path}.{i}"), id, visible);
                }
            }
            serde_json::Value::Object(map) => {
                for (key, item) in map {
                    self.json_templates(item, &format!("{path}.{key}"), id, visible);
                }
            }
            _ => {}
        }
    }

    /// Checks a template's syntax and what it reads. `step` is the step it belongs to with the
    /// steps it may read; `None` is outside any step (no `steps.*` at all).
    fn template(
        &mut self,
        source: &str,
        expression: bool,
        step: Option<(&str, usize)>,
        span: Span,
        what: &str,
    ) {
        let templated = source.contains("{{") || source.contains("{%") || source.contains("{#");
        if !(expression || templated) {
            return;
        }
        let references = match self.templates.references(source, expression) {
            Ok(references) => references,
            Err(error) => {
                self.error(span, format!("template error in {what}: {}; fix the template", error.message));
                return;
            }
        };
        let mut seen = BTreeSet::new();
        for reference in references {
            let mut parts = reference.split('.');
            let root = parts.next().unwrap_or_default();
            let second = parts.next();
            let third = parts.next();
            let message = match root {
                "inputs" => second.filter(|name| !self.workflow.inputs.contains_key(*name)).map(|name| {
                    let close = parse::suggest(name, self.workflow.inputs.keys().map(String::as_str));
                    match close {
                        Some(close) => format!("`inputs.{name}` is not a declared input; did you mean `{close}`?"),
                        None => format!("`inputs.{name}` is not a declared input; declare it under `inputs` or `on.manual.inputs`"),
                    }
                }),
                "steps" => match (step, second) {
                    (None, _) => Some(format!("{what} cannot read `steps`: no step has run when it is rendered")),
                    (Some(_), None) => None,
                    (Some((id, visible)), Some(other)) => {
                        if other == id {
                            Some(format!("step `{id}` cannot read its own result `steps.{other}`"))
                        } else if !self.index.contains_key(other) {
                            let ids = self.workflow.steps.iter().map(|s| s.id.as_str());
                            Some(match parse::suggest(other, ids) {
                                Some(close) => format!("`steps.{other}` is not a step; did you mean `{close}`?"),
                                None => format!("`steps.{other}` is not a step of this workflow"),
                            })
                        } else if !self.depends_on(visible, other) {
                            Some(format!(
                                "step `{id}` reads `steps.{other}` but does not depend on it; add `{other}` to its `needs`"
                            ))
                        } else {
                            third.filter(|field| !STEP_FIELDS.contains(field)).map(|field| {
                                format!(
                                    "`steps.{other}.{field}` does not exist; a step has {}",
                                    STEP_FIELDS.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
                                )
                            })
                        }
                    }
                },
                root if ROOTS.contains(&root) => None,
                other => Some(match parse::suggest(other, ROOTS.iter().copied()) {
                    Some(close) => format!("unknown name `{other}` in {what}; did you mean `{close}`?"),
                    None => format!(
                        "unknown name `{other}` in {what}; templates read {}",
                        ROOTS.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ")
                    ),
                }),
            };
            if let Some(message) = message
                && seen.insert(message.clone())
            {
                self.error(span, message);
            }
        }
    }

    /// Reports each dependency cycle once, naming it: `a -> b -> a`.
    fn cycles(&mut self) {
        let workflow = self.workflow;
        let index: HashMap<&str, usize> =
            workflow.steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let edges: Vec<Vec<usize>> = workflow
            .steps
            .iter()
            .map(|s| s.needs.iter().filter_map(|n| index.get(n.as_str()).copied()).collect())
            .collect();
        let mut reported: HashSet<BTreeSet<usize>> = HashSet::new();
        let found: Vec<Vec<usize>> = super::dag::cycles(&edges)
            .into_iter()
            .filter(|cycle| reported.insert(cycle.iter().copied().collect()))
            .collect();
        for cycle in found {
            // `cycle[0]` needs `cycle[1]`... and the last needs the first; read as "runs after".
            let mut names: Vec<&str> = cycle.iter().map(|&i| workflow.steps[i].id.as_str()).collect();
            names.push(names[0]);
            let first = &workflow.steps[cycle[0]];
            let next = &workflow.steps[*cycle.get(1).unwrap_or(&cycle[0])].id;
            let base = self.step_path(&first.id);
            let position = first.needs.iter().position(|n| n == next).unwrap_or(0);
            let single = !self.map.has(&format!("{base}.needs.0"));
            let at = if single { format!("{base}.needs") } else { format!("{base}.needs.{position}") };
            let span = self.in_step(&first.id, &[at]);
            self.error(
                span,
                format!("dependency cycle: {}; remove one of these `needs`", names.join(" -> ")),
            );
        }
    }
}

impl Checker<'_> {
    /// Whether step `step` depends on step `other`, directly or through other steps.
    fn depends_on(&self, step: usize, other: &str) -> bool {
        let Some(&other) = self.index.get(other) else { return false };
        let needs = &self.workflow.steps[step].needs;
        if needs.iter().any(|n| self.index.get(n.as_str()) == Some(&other)) {
            return true;
        }
        self.ancestors.get_or_init(|| Ancestors::of(self.workflow, &self.index)).contains(step, other)
    }
}

/// Each step's transitive dependencies: one bit set per step over step indices, worked out in
/// dependency order in time and space proportional to steps × steps / 64. Steps on a cycle (an
/// error reported on its own) keep what could be worked out.
struct Ancestors {
    words: usize,
    bits: Vec<u64>,
}

impl Ancestors {
    fn of(workflow: &Workflow, index: &HashMap<&str, usize>) -> Ancestors {
        let n = workflow.steps.len();
        let words = n.div_ceil(64);
        let mut bits = vec![0u64; n * words];
        let mut waiting = vec![0usize; n];
        let mut dependents = vec![Vec::new(); n];
        for (i, step) in workflow.steps.iter().enumerate() {
            for need in &step.needs {
                if let Some(&j) = index.get(need.as_str()) {
                    waiting[i] += 1;
                    dependents[j].push(i);
                }
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        while let Some(done) = ready.pop() {
            for &d in &dependents[done] {
                for w in 0..words {
                    let from = bits[done * words + w];
                    bits[d * words + w] |= from;
                }
                bits[d * words + done / 64] |= 1 << (done % 64);
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(d);
                }
            }
        }
        Ancestors { words, bits }
    }

    fn contains(&self, step: usize, other: usize) -> bool {
        self.bits[step * self.words + other / 64] & (1 << (other % 64)) != 0
    }
}

#[cfg(test)]
mod tests;
