//! Built-in workflow actions (`uses:`), each with a parameter schema.
//!
//! [`run`] executes one action with its rendered `with:` parameters and returns its output as
//! JSON; [`check_params`] validates parameters before any run. Actions reach the editor through
//! [`Editor`] and AI providers through [`Ai`], so that they work the same under `acas serve`,
//! `acas watch` and `acas workflow run`.
//!
//! Each family has its module: [`file`](self) actions confined to the workspace by [`confine`],
//! `git.*` with libgit2, `http.request` and `notify.webhook`, `editor.*`, `data.transform`, and
//! `ai.ask`, `ai.review` and `ai.plan` (the planner's, returning a plan without running it) with
//! [`EscalatorAi`], the escalation providers as [`Ai`]. Each action is described by one
//! [`schema::Spec`] table, listed in [`SPECS`], which drives the checks and the action reference
//! in `docs/workflows.md`.

mod ai;
pub mod confine;
mod data;
mod editor;
mod file;
mod git;
mod http;
pub mod schema;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

/// Makes the plan `ai.plan` returns: `{tasks, notes, definition, cost_usd, calls}`, the
/// definition's workflow named `name`. The planner implements it
/// (`workflow::planner::PlanAction`); actions only call it, so that they do not depend on the
/// planner, which depends on their specs.
pub trait Planner: Send + Sync {
    fn plan<'a>(
        &'a self,
        ai: &'a dyn Ai,
        prompt: &'a str,
        name: &'a str,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Value, ActionError>>;
}

/// Where `editor.notify` and `editor.diagnostic` go.
pub trait Editor: Send + Sync {
    /// `level` is `info`, `warning` or `error`.
    fn notify(&self, level: &str, message: &str);
    /// A diagnostic on a workspace-relative `path`, 1-based `line` and `column`.
    fn diagnostic(&self, path: &str, line: u32, column: u32, severity: &str, message: &str);
}

/// What `ai.ask`, `ai.review` and `ai.plan` get back.
#[derive(Debug, Clone, PartialEq)]
pub struct AiAnswer {
    pub text: String,
    pub provider: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub cached: bool,
}

/// Why the AI providers gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiErrorKind {
    /// No provider may be asked: none configured, or what would be sent may not leave.
    Unavailable,
    /// Every provider failed or was refused (budget, errors, invalid replies).
    Failed,
    Cancelled,
}

/// The AI providers gave no answer: a kind to match on and a message that says why and what to
/// do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AiError {
    pub kind: AiErrorKind,
    pub message: String,
}

impl AiError {
    pub fn new(kind: AiErrorKind, message: impl Into<String>) -> AiError {
        AiError { kind, message: message.into() }
    }

    pub fn cancelled() -> AiError {
        AiError::new(AiErrorKind::Cancelled, "cancelled")
    }
}

/// The escalation providers, with their budgets, as actions see them.
pub trait Ai: Send + Sync {
    fn ask<'a>(
        &'a self,
        system: &'a str,
        prompt: &'a str,
        json_schema: Option<Value>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<AiAnswer, AiError>>;

    /// Whether a workspace file may be sent at all (`no_egress` in the configuration).
    fn may_send(&self, relative_path: &str) -> bool {
        let _ = relative_path;
        true
    }
}

pub use ai::EscalatorAi;
pub use git::checkout_changes;

/// Judges the host of each redirect an HTTP action would follow: `Err` says why it is refused.
pub type HostCheck = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Everything an action may use.
#[derive(Clone)]
pub struct ActionContext {
    /// Absolute workspace root; file actions are confined to it.
    pub workspace: PathBuf,
    pub run_id: String,
    pub step_id: String,
    pub cancel: CancellationToken,
    pub editor: Arc<dyn Editor>,
    /// `None` when no provider is configured: AI actions then fail with a clear message.
    pub ai: Option<Arc<dyn Ai>>,
    /// What `ai.plan` asks for its plan.
    pub planner: Arc<dyn Planner>,
    /// The limits of every template an action renders (`[workflows] template_*`).
    pub templates: crate::workflow::template::TemplateLimits,
    /// Judges every redirect hop of `http.request` and `notify.webhook`; `None` follows them
    /// unjudged (no policy).
    pub hosts: Option<HostCheck>,
}

/// Why an action failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    pub message: String,
    /// A workspace-relative file the failure is about, with a 1-based line, when known; the
    /// editor shows such failures as diagnostics on that file.
    pub location: Option<(String, u32)>,
}

impl ActionError {
    pub fn new(message: impl Into<String>) -> Self {
        ActionError { message: message.into(), location: None }
    }
}

/// A problem with a step's `with:` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblem {
    /// The parameter's key (`path`, `headers.Authorization`), or empty for the whole map.
    pub key: String,
    pub message: String,
}

/// Every action's schema, in the order of [`ACTIONS`](super::definition::ACTIONS).
pub const SPECS: &[schema::Spec] = &[
    file::READ,
    file::WRITE,
    file::APPEND,
    file::COPY,
    file::MOVE,
    file::DELETE,
    git::STATUS,
    git::DIFF,
    git::LOG,
    git::ADD,
    git::COMMIT,
    git::BRANCH,
    git::CHECKOUT,
    ai::ASK,
    ai::REVIEW,
    ai::PLAN,
    http::REQUEST,
    http::WEBHOOK,
    editor::NOTIFY,
    editor::DIAGNOSTIC,
    data::TRANSFORM,
];

/// The schema of `action`.
pub fn spec(action: &str) -> Option<&'static schema::Spec> {
    SPECS.iter().find(|s| s.name == action)
}

/// Whether the engine must pass parameter `key` of `action` to [`run`] unrendered, because the
/// action renders it itself (`data.transform`'s `map`, once per item). The validator should not
/// resolve the references of such a parameter against the run either: they read `item`.
pub fn renders_later(action: &str, key: &str) -> bool {
    spec(action).and_then(|s| s.param(key)).is_some_and(|p| p.late)
}

/// Runs `action` with its rendered parameters.
pub async fn run(action: &str, with: &Map<String, Value>, ctx: &ActionContext) -> Result<Value, ActionError> {
    let Some(spec) = spec(action) else {
        return Err(ActionError::new(unknown_action(action)));
    };
    let problems = schema::check(spec, with, false);
    if !problems.is_empty() {
        let each: Vec<String> = problems
            .iter()
            .map(|p| if p.key.is_empty() { p.message.clone() } else { format!("`{}`: {}", p.key, p.message) })
            .collect();
        return Err(ActionError::new(format!("invalid parameters for `{action}`: {}", each.join("; "))));
    }
    if ctx.cancel.is_cancelled() {
        return Err(ActionError::new("cancelled"));
    }
    let args = Args { with };
    let workspace = ctx.workspace.as_path();
    match action {
        "http.request" => http::request(&args, &ctx.cancel, ctx.hosts.as_ref()).await,
        "notify.webhook" => http::webhook(&args, &ctx.cancel, ctx.hosts.as_ref()).await,
        "ai.ask" => ai::run_ask(ctx, &args).await,
        "ai.review" => ai::run_review(ctx, &args).await,
        "ai.plan" => ai::run_plan(ctx, &args).await,
        "editor.notify" => editor::notify(ctx.editor.as_ref(), &args),
        "editor.diagnostic" => editor::diagnostic(workspace, ctx.editor.as_ref(), &args),
        "data.transform" => {
            // Rendering `map` is CPU work, maybe in a render process: it runs on the blocking
            // pool, and the render process is killed when the step's timeout or cancellation
            // drops this future.
            let (with, limits) = (with.clone(), ctx.templates);
            let guard =
                std::sync::Arc::new(crate::workflow::template::render_process::RenderGuard::default());
            let _kill = guard.kill_on_drop();
            let render = guard.clone();
            let transform = tokio::task::spawn_blocking(move || {
                render.enter(|| data::transform(&Args { with: &with }, limits))
            });
            tokio::select! {
                done = transform => done.map_err(|e| ActionError::new(format!("`data.transform` stopped unexpectedly: {e}")))?,
                _ = ctx.cancel.cancelled() => Err(ActionError::new("cancelled")),
            }
        }
        _ => {
            // File and git actions block on the disk: they run on the blocking pool.
            let action = spec.name;
            let with = with.clone();
            let workspace = ctx.workspace.clone();
            tokio::task::spawn_blocking(move || blocking(action, &workspace, &Args { with: &with }))
                .await
                .map_err(|e| ActionError::new(format!("`{action}` stopped unexpectedly: {e}")))?
        }
    }
}

fn blocking(action: &str, workspace: &std::path::Path, args: &Args<'_>) -> Result<Value, ActionError> {
    match action {
        "file.read" => file::read(workspace, args),
        "file.write" => file::write(workspace, args),
        "file.append" => file::append(workspace, args),
        "file.copy" => file::copy(workspace, args),
        "file.move" => file::rename(workspace, args),
        "file.delete" => file::delete(workspace, args),
        "git.status" => git::status(workspace, args),
        "git.diff" => git::diff(workspace, args),
        "git.log" => git::log(workspace, args),
        "git.add" => git::add(workspace, args),
        "git.commit" => git::commit(workspace, args),
        "git.branch" => git::branch(workspace, args),
        "git.checkout" => git::checkout(workspace, args),
        other => Err(ActionError::new(unknown_action(other))),
    }
}

fn unknown_action(action: &str) -> String {
    let names: Vec<&str> = super::definition::ACTIONS.to_vec();
    match schema::did_you_mean(action, &names) {
        Some(near) => format!("unknown action `{action}`; did you mean `{near}`?"),
        None => format!("unknown action `{action}`"),
    }
}

/// Checks `with:` against the action's schema. Values that are templates are checked after
/// rendering, at run time; only their presence is checked here.
pub fn check_params(action: &str, with: &Map<String, Value>) -> Vec<ParamProblem> {
    let Some(spec) = spec(action) else {
        return vec![ParamProblem { key: String::new(), message: unknown_action(action) }];
    };
    let mut problems = schema::check(spec, with, true);
    // Parameters the action renders itself: their templates' syntax is checked here.
    let templates = super::template::Templates::default();
    for param in spec.params.iter().filter(|p| p.late) {
        let mut strings = Vec::new();
        if let Some(value) = with.get(param.name) {
            collect_strings(value, &mut strings);
        }
        for s in strings.into_iter().filter(|s| schema::is_template(s)) {
            if let Err(e) = templates.references(s, false) {
                problems.push(ParamProblem { key: param.name.to_owned(), message: e.message });
            }
        }
    }
    problems
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Typed access to parameters already checked against their schema.
pub(crate) struct Args<'a> {
    with: &'a Map<String, Value>,
}

impl Args<'_> {
    fn value(&self, name: &str) -> Option<&Value> {
        self.with.get(name).filter(|v| !v.is_null())
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.value(name)?.as_str()
    }

    fn need_str(&self, name: &str) -> Result<&str, ActionError> {
        self.str(name).ok_or_else(|| ActionError::new(format!("`{name}` is missing")))
    }

    /// A string, or a number or boolean as text.
    fn text(&self, name: &str) -> Option<String> {
        match self.value(name)? {
            Value::String(s) => Some(s.clone()),
            other @ (Value::Number(_) | Value::Bool(_)) => Some(other.to_string()),
            _ => None,
        }
    }

    fn need_text(&self, name: &str) -> Result<String, ActionError> {
        self.text(name).ok_or_else(|| ActionError::new(format!("`{name}` is missing")))
    }

    fn u64(&self, name: &str) -> Option<u64> {
        self.value(name)?.as_u64()
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.value(name)?.as_bool()
    }

    fn duration(&self, name: &str) -> Option<Duration> {
        match self.value(name)? {
            Value::String(s) => schema::parse_duration(s),
            other => other.as_f64().and_then(|s| crate::duration::from_secs_f64(s).ok()),
        }
    }

    fn strings(&self, name: &str) -> Option<Vec<String>> {
        Some(self.value(name)?.as_array()?.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
    }

    fn string_map(&self, name: &str) -> Option<Vec<(String, String)>> {
        Some(
            self.value(name)?
                .as_object()?
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect(),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tokio_util::sync::CancellationToken;

    use super::*;

    /// An action's result, comparable in tests.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Outcome {
        Ok(Value),
        Err(String),
    }

    impl Outcome {
        /// The output; panics with the error when the action failed.
        pub fn ok(self) -> Value {
            match self {
                Outcome::Ok(v) => v,
                Outcome::Err(e) => panic!("the action failed: {e}"),
            }
        }

        /// The error message; panics with the output when the action succeeded.
        pub fn err(self) -> String {
            match self {
                Outcome::Ok(v) => panic!("the action succeeded with {v}"),
                Outcome::Err(e) => e,
            }
        }
    }

    /// Records what reaches the editor, one line each.
    #[derive(Default)]
    pub struct Recorded(Mutex<Vec<String>>);

    impl Editor for Recorded {
        fn notify(&self, level: &str, message: &str) {
            self.0.lock().unwrap().push(format!("notify {level}: {message}"));
        }
        fn diagnostic(&self, path: &str, line: u32, column: u32, severity: &str, message: &str) {
            self.0.lock().unwrap().push(format!("diagnostic {path}:{line}:{column} {severity}: {message}"));
        }
    }

    thread_local! {
        static EDITORS: std::cell::RefCell<Vec<Arc<Recorded>>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// Stands in for the planner where a test does not plan (the planner's tests run `ai.plan`).
    struct NoPlanner;

    impl Planner for NoPlanner {
        fn plan<'a>(
            &'a self,
            _ai: &'a dyn Ai,
            _prompt: &'a str,
            _name: &'a str,
            _cancel: &'a CancellationToken,
        ) -> BoxFuture<'a, Result<Value, ActionError>> {
            Box::pin(async { Err(ActionError::new("no planner in this test")) })
        }
    }

    /// A context on `workspace` with a recording editor, no AI provider and no planner.
    pub fn context(workspace: &Path) -> ActionContext {
        let editor = Arc::new(Recorded::default());
        EDITORS.with(|e| e.borrow_mut().push(editor.clone()));
        ActionContext {
            workspace: workspace.to_path_buf(),
            run_id: "run".into(),
            step_id: "step".into(),
            cancel: CancellationToken::new(),
            editor,
            ai: None,
            planner: Arc::new(NoPlanner),
            templates: crate::workflow::template::TemplateLimits::default(),
            hosts: None,
        }
    }

    /// What reached the editor of a context made by [`context`] on this thread.
    pub fn editor_log(ctx: &ActionContext) -> Vec<String> {
        EDITORS.with(|editors| {
            let editors = editors.borrow();
            let ours = editors
                .iter()
                .find(|e| std::ptr::addr_eq(Arc::as_ptr(*e), Arc::as_ptr(&ctx.editor)))
                .expect("a context made by `context`");
            ours.0.lock().unwrap().clone()
        })
    }

    pub async fn run_async(workspace: &Path, action: &str, with: Value) -> Outcome {
        run_ctx(&context(workspace), action, with).await
    }

    async fn run_ctx(ctx: &ActionContext, action: &str, with: Value) -> Outcome {
        let with = with.as_object().expect("parameters are an object").clone();
        match run(action, &with, ctx).await {
            Ok(v) => Outcome::Ok(v),
            Err(e) => Outcome::Err(e.message),
        }
    }

    /// Runs an action to completion on a runtime of its own.
    pub fn run_with(ctx: &ActionContext, action: &str, with: Value) -> Outcome {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run_ctx(ctx, action, with))
    }

    pub fn run_in(workspace: &Path, action: &str, with: Value) -> Outcome {
        run_with(&context(workspace), action, with)
    }

    #[test]
    fn every_action_has_a_schema() {
        let names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
        assert_eq!(names, crate::workflow::definition::ACTIONS);
        for spec in SPECS {
            let mut seen = std::collections::HashSet::new();
            for p in spec.params {
                assert!(seen.insert(p.name), "{}: `{}` twice", spec.name, p.name);
                assert!(
                    !(p.required && p.default.is_some()),
                    "{}: `{}` required with a default",
                    spec.name,
                    p.name
                );
            }
        }
    }

    /// `(key, message)` of each problem `check_params` finds.
    fn check(action: &str, with: Value) -> Vec<(String, String)> {
        let mut got: Vec<(String, String)> =
            check_params(action, with.as_object().unwrap()).into_iter().map(|p| (p.key, p.message)).collect();
        got.sort();
        got
    }

    #[test]
    fn parameters_are_checked_before_the_run() {
        let pair = |k: &str, m: &str| (k.to_owned(), m.to_owned());
        assert_eq!(check("file.read", json!({"path": "{{ trigger.path }}"})), []);
        assert_eq!(
            check("file.read", json!({"paht": "a"})),
            [
                pair("paht", "`file.read` has no parameter `paht`; did you mean `path`?"),
                pair("path", "`file.read` needs `path`")
            ]
        );
        assert_eq!(
            check("file.write", json!({"path": "a", "content": "x", "create_dirs": "yes"})),
            [pair("create_dirs", "`create_dirs` must be `true` or `false`, not the string \"yes\"")]
        );
        assert_eq!(
            check("git.add", json!({"paths": "src"})),
            [pair("paths", "`paths` must be a list of strings, not the string \"src\"")]
        );
        assert_eq!(check("git.status", json!({"x": 1})), [pair("x", "`git.status` takes no parameters")]);
        assert_eq!(
            check("file.raed", json!({})),
            [pair("", "unknown action `file.raed`; did you mean `file.read`?")]
        );
        assert_eq!(check("ai.review", json!({})), [pair("", "`ai.review` needs `path` or `content`")]);
        assert_eq!(check("data.transform", json!({"input": 1, "map": {"a": "{{ item.x }}"}})), []);
        let broken = check("data.transform", json!({"input": 1, "map": {"a": "{{ item.x "}}));
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].0, "map");
        assert!(renders_later("data.transform", "map"));
        assert!(!renders_later("data.transform", "input"));
        assert!(!renders_later("file.read", "path"));
    }

    #[test]
    fn rendered_values_are_checked_again_at_run_time() {
        let ws = tempfile::tempdir().unwrap();
        // A template that rendered to a list where a string belongs.
        let got = run_in(ws.path(), "file.read", json!({"path": ["a", "b"]})).err();
        assert_eq!(got, "invalid parameters for `file.read`: `path`: `path` must be a string, not a list");
        let got = run_in(ws.path(), "file.read", json!({"path": "a.txt", "max_bytes": "{{ x }}"})).err();
        assert!(got.contains("`max_bytes` must be a non-negative integer"), "{got}");
    }

    #[test]
    fn a_cancelled_run_starts_no_action() {
        let ws = tempfile::tempdir().unwrap();
        let ctx = context(ws.path());
        ctx.cancel.cancel();
        assert_eq!(
            run_with(&ctx, "file.write", json!({"path": "a", "content": "x"})),
            Outcome::Err("cancelled".into())
        );
        assert!(!ws.path().join("a").exists());
    }

    /// The `## Actions` section of `docs/workflows.md` is generated from the schemas; run with
    /// `UPDATE_DOCS=1` to rewrite it.
    #[test]
    fn the_action_reference_matches_the_schemas() {
        const BEGIN: &str = "<!-- actions:begin -->";
        const END: &str = "<!-- actions:end -->";
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/workflows.md");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = format!(
            "{BEGIN}\n<!-- Generated from server/src/workflow/actions by `UPDATE_DOCS=1 cargo test -p acas --lib workflow::actions`; do not edit by hand. -->\n\n{}{END}",
            schema::docs(SPECS)
        );
        let current = match (text.find(BEGIN), text.find(END)) {
            (Some(b), Some(e)) if b < e => Some(&text[b..e + END.len()]),
            _ => None,
        };
        if current == Some(generated.as_str()) {
            return;
        }
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let updated = match current {
                Some(current) => text.replacen(current, &generated, 1),
                None => {
                    let mut text = if text.is_empty() { "# Workflows\n".to_owned() } else { text.clone() };
                    if !text.ends_with('\n') {
                        text.push('\n');
                    }
                    format!("{text}\n## Actions\n\n{generated}\n")
                }
            };
            std::fs::write(&path, updated).unwrap();
            return;
        }
        panic!(
            "docs/workflows.md does not match the action schemas; run `UPDATE_DOCS=1 cargo test -p acas --lib workflow::actions` and commit the result"
        );
    }
}
