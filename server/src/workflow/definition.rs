//! The workflow model: what a `.acas/workflows/*.yaml` file says, once parsed and validated.
//!
//! These are plain data types. Parsing YAML into them, with line and column for every problem,
//! is `parse.rs`; checking references, cycles, cron expressions and action parameters is
//! `validate.rs`; running them is `engine.rs`. Durations are already parsed (`30s`, `5m`, `1h`),
//! templates are kept as source text and rendered at run time by `template.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One workflow file.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub name: String,
    /// Absolute path of the definition file.
    pub file: PathBuf,
    /// SHA-256 (hex) of the file's bytes; every run records the hash it started with.
    pub hash: String,
    /// The source text, kept so that a resumed run uses the definition it started with.
    pub source: String,
    pub on: Triggers,
    /// Typed inputs (from `on.manual.inputs`, or a top-level `inputs`).
    pub inputs: BTreeMap<String, InputSpec>,
    /// Environment for every `run` step; values are templates.
    pub env: BTreeMap<String, String>,
    pub concurrency: Option<Concurrency>,
    /// Limit for the whole run.
    pub timeout: Option<Duration>,
    /// How many steps may run at once. Default: 4.
    pub max_parallel: usize,
    /// Labels a worker must have to run the workflow's `run:` steps (`runs_on`); a step's own
    /// `runs_on` replaces them.
    pub runs_on: Vec<String>,
    pub steps: Vec<Step>,
}

impl Workflow {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The labels a worker needs to run `step`: its own `runs_on`, else the workflow's.
    pub fn labels_of<'a>(&'a self, step: &'a Step) -> &'a [String] {
        step.runs_on.as_deref().unwrap_or(&self.runs_on)
    }
}

/// The `on:` section. Every trigger is optional; a workflow with none runs only by hand.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Triggers {
    pub file_change: Option<FileChangeTrigger>,
    pub schedule: Vec<ScheduleTrigger>,
    pub diagnostic: Option<DiagnosticTrigger>,
    pub escalation: Option<EscalationTrigger>,
    /// `manual` is always allowed; this says whether it was declared.
    pub manual: bool,
    pub webhook: Option<WebhookTrigger>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileEventKind {
    Created,
    Modified,
    Deleted,
    Renamed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileChangeTrigger {
    /// Globs relative to the workspace root; `**` crosses directories.
    pub paths: Vec<String>,
    /// Globs that exclude paths matched by `paths`.
    pub ignore: Vec<String>,
    /// Empty means every kind.
    pub events: Vec<FileEventKind>,
    /// Changes to one path within this window start one run. Default: 500 ms.
    pub debounce: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleTrigger {
    /// 5 fields (minute first) or 6 (seconds first).
    pub cron: String,
    /// IANA time zone name; `None` is UTC.
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosticTrigger {
    /// Category name as classification reports it (`syntax`, `type`, `name`, ...); `None` is any.
    pub category: Option<String>,
    /// `error`, `warning`, `information` or `hint`; `None` is any.
    pub severity: Option<String>,
    /// Path globs; empty is any.
    pub paths: Vec<String>,
    /// How long the diagnostic must stay before the workflow runs. Default: 0.
    pub persists: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationOutcome {
    /// The provider answered with a verified fix.
    Fixed,
    /// The provider answered with an explanation only.
    Explained,
    /// Every provider failed, or the budget refused.
    Failed,
    /// Any of the above.
    Any,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EscalationTrigger {
    pub outcome: EscalationOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookTrigger {
    /// The URL path under the webhook server, starting with `/`.
    pub path: String,
    /// Environment variable holding the HMAC secret.
    pub secret_env: String,
    /// How requests are signed (`scheme`); ACAS's own by default.
    pub scheme: WebhookScheme,
}

/// How an incoming webhook is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookScheme {
    /// `X-Acas-Timestamp` and `X-Acas-Signature`: the HMAC of `"{timestamp}.{body}"`, within a
    /// time window, each signature accepted once.
    #[default]
    Acas,
    /// GitHub's: `X-Hub-Signature-256`, the HMAC of the body alone, each `X-GitHub-Delivery`
    /// id accepted once.
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    String,
    Number,
    Boolean,
    Choice,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub kind: InputType,
    pub description: Option<String>,
    pub default: Option<serde_json::Value>,
    pub required: bool,
    /// Allowed values for `choice`.
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    /// A template; runs whose rendered group is equal never overlap.
    pub group: String,
    /// A new run cancels the running one instead of waiting for it.
    pub cancel_in_progress: bool,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `uses: ACTION` with `with:` parameters (templates inside strings).
    Uses { action: String, with: serde_json::Map<String, serde_json::Value> },
    /// `run: [argv...]`: no shell; each element is rendered on its own.
    Argv { argv: Vec<String>, env: BTreeMap<String, String>, cwd: Option<String> },
    /// `run: { shell: "..." }`: `sh -c`, with every interpolated value shell-quoted.
    Shell { script: String, env: BTreeMap<String, String>, cwd: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Constant,
    Linear,
    #[default]
    Exponential,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts, the first included. Default: 1 (no retry).
    pub attempts: u32,
    pub backoff: Backoff,
    /// Delay before the second attempt. Default: 1 s.
    pub delay: Duration,
    /// Upper bound on any delay. Default: 60 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            backoff: Backoff::Exponential,
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let n = attempt.max(1) - 1;
        let delay = match self.backoff {
            Backoff::Constant => self.delay,
            Backoff::Linear => self.delay.saturating_mul(n + 1),
            Backoff::Exponential => self.delay.saturating_mul(2u32.saturating_pow(n.min(30))),
        };
        delay.min(self.max_delay)
    }
}

/// Whether a skipped dependency lets a step run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkippedNeeds {
    /// A skipped dependency counts as success.
    Success,
    /// A skipped dependency skips this step too (the default, as in GitHub Actions).
    #[default]
    Skip,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    pub name: Option<String>,
    pub kind: StepKind,
    pub needs: Vec<String>,
    /// The condition as written (`always()`, `{{ steps.x.outcome == 'failure' }}`, ...). `None`
    /// means `success()`.
    pub condition: Option<String>,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    pub continue_on_error: bool,
    pub skipped_needs: SkippedNeeds,
    /// Whether running the step again after a crash is safe (`idempotent`, default true). A
    /// step that was running when its process died is run again on resume when it is, and
    /// failed with a message saying why when it is not.
    pub idempotent: bool,
    /// Labels a worker must have to run this step (`runs_on`); `None` takes the workflow's.
    pub runs_on: Option<Vec<String>>,
    /// 1-based line and column of the step's `id`, for diagnostics about a run.
    pub line: u32,
    pub column: u32,
}

/// The state of a step within a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, StepStatus::Pending | StepStatus::Running)
    }
}

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled)
    }
}

/// The names of every built-in action, for validation and completion.
pub const ACTIONS: &[&str] = &[
    "file.read",
    "file.write",
    "file.append",
    "file.copy",
    "file.move",
    "file.delete",
    "git.status",
    "git.diff",
    "git.log",
    "git.add",
    "git.commit",
    "git.branch",
    "git.checkout",
    "ai.ask",
    "ai.review",
    "ai.plan",
    "http.request",
    "notify.webhook",
    "editor.notify",
    "editor.diagnostic",
    "data.transform",
];
