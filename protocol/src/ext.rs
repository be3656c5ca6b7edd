//! ACAS's custom LSP methods, prefixed `acas/`.
//!
//! Positions and ranges follow the encoding negotiated at `initialize`, as in standard LSP.

use ls_types::notification::Notification;
use ls_types::request::Request;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A zero-based position, as in LSP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

/// A half-open range, as in LSP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

/// A place in a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub uri: String,
    pub range: Range,
}

/// A diagnostic code: LSP allows a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(untagged)]
pub enum DiagnosticCode {
    Number(i64),
    String(String),
}

/// Related information of a forwarded diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RelatedInformation {
    pub location: Location,
    pub message: String,
}

/// A diagnostic another tool published, in LSP's shape (the subset ACAS reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ExternalDiagnostic {
    pub range: Range,
    /// 1 error, 2 warning, 3 information, 4 hint (LSP's `DiagnosticSeverity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub severity: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub code: Option<DiagnosticCode>,
    /// The tool inside the source that reported it, when the source is an aggregator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub source: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(optional, as = "Option<Vec<RelatedInformation>>")]
    pub related_information: Vec<RelatedInformation>,
}

/// Params of [`ExternalDiagnostics`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ExternalDiagnosticsParams {
    pub uri: String,
    /// Who published them, for example `rust-analyzer`, `ts`, `eslint`, `Pylance`.
    pub source: String,
    /// The complete current set from that source for that document (empty clears it).
    pub diagnostics: Vec<ExternalDiagnostic>,
}

/// `acas/externalDiagnostics`, client → server: the diagnostics another extension published for
/// a document. ACAS classifies, fingerprints and records them; it never republishes them.
pub enum ExternalDiagnostics {}

impl Notification for ExternalDiagnostics {
    type Params = ExternalDiagnosticsParams;
    const METHOD: &'static str = "acas/externalDiagnostics";
}

/// Params of [`Problems`]: both filters are optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", default)]
pub struct ProblemsParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub category: Option<String>,
    /// A document URI: only problems located in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub uri: Option<String>,
}

/// One classified problem, from any source, grouped by fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub fingerprint: String,
    /// `syntax`, `type`, `name`, `import`, `ownership`, `lint`, `test`, `runtime`, `build`, `other`.
    pub category: String,
    /// `error`, `warning`, `information` or `hint`.
    pub severity: String,
    pub message: String,
    pub source: String,
    pub symbol: Option<String>,
    /// How many times it appeared (went from absent to present).
    pub occurrences: u64,
    /// Unix milliseconds.
    pub first_seen: i64,
    /// Unix milliseconds.
    pub last_seen: i64,
    pub locations: Vec<Location>,
}

/// `acas/problems`, client → server request: the open problems of the workspace.
pub enum Problems {}

impl Request for Problems {
    type Params = ProblemsParams;
    type Result = Vec<Problem>;
    const METHOD: &'static str = "acas/problems";
}

/// A part of the server whose health [`Status`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Subsystem {
    Store,
    Watcher,
    Config,
    Scan,
    /// The project's checkers: `degraded` names a checker that is missing, misconfigured or
    /// failed; `busy` those running; `off` when the workspace has none.
    Checkers,
    /// The symbol indexes an escalation's context takes definitions from, one per language,
    /// loaded when the initial scan is done: `busy` while one is loaded or refreshed; `detail`
    /// says per language how many files came from the store and were parsed at start, and by the
    /// last escalation.
    Symbols,
}

/// How a [`Subsystem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum SubsystemState {
    Ok,
    /// Working (the initial scan runs).
    Busy,
    /// Working with less than asked (an invalid config file: the defaults apply).
    Degraded,
    /// Not working; `detail` says why.
    Failed,
    /// Not started, because nothing asked for it (no workspace folder).
    Off,
}

/// Health of one part of the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SubsystemStatus {
    pub name: Subsystem,
    pub state: SubsystemState,
    pub detail: Option<String>,
}

/// How many files of one language the workspace has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LanguageCount {
    pub language: String,
    pub files: u64,
}

/// Result of [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StatusResult {
    pub version: String,
    pub workspace_root: Option<String>,
    pub files_watched: u64,
    pub languages: Vec<LanguageCount>,
    pub open_documents: u64,
    pub store_bytes: u64,
    pub subsystems: Vec<SubsystemStatus>,
}

/// `acas/status`, client → server request (no params): what the server is doing and how it is.
pub enum Status {}

impl Request for Status {
    type Params = ();
    type Result = StatusResult;
    const METHOD: &'static str = "acas/status";
}

/// Result of [`Spend`]: what AI providers cost today and this month (UTC), against the budgets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SpendResult {
    pub today_usd: f64,
    pub month_usd: f64,
    pub daily_budget_usd: Option<f64>,
    pub monthly_budget_usd: Option<f64>,
    /// Names of the configured providers, in chain order.
    pub providers: Vec<String>,
}

/// `acas/spend`, client → server request (no params): the spend shown in the status bar.
pub enum Spend {}

impl Request for Spend {
    type Params = ();
    type Result = SpendResult;
    const METHOD: &'static str = "acas/spend";
}

/// Params of [`FixFeedback`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FixFeedbackParams {
    /// The `fixId` of the quick fix, from the `acas-ai` diagnostic's `data`.
    pub fix_id: String,
    pub outcome: FixOutcome,
}

/// What the developer did with an AI fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum FixOutcome {
    Applied,
    Reverted,
    Dismissed,
}

/// `acas/fixFeedback`, client → server notification: what the developer did with an AI fix.
pub enum FixFeedback {}

impl Notification for FixFeedback {
    type Params = FixFeedbackParams;
    const METHOD: &'static str = "acas/fixFeedback";
}

/// Arguments of the `acas.escalate` command (`workspace/executeCommand`, first argument).
///
/// Either `range` (with `diagnostic` or not) or `position` alone: with a position only, the
/// server chooses which diagnostic there to explain, among its own and those forwarded with
/// `acas/externalDiagnostics` (the most severe, then the narrowest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EscalateArgs {
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub range: Option<Range>,
    /// Where the cursor is, when the client leaves the choice of diagnostic to the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub position: Option<Position>,
    /// The diagnostic to explain when the client has it (another tool's); else the one ACAS
    /// knows at `range`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub diagnostic: Option<ExternalDiagnostic>,
    /// Ask only this provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub provider: Option<String>,
    /// The `data.fingerprint` of the ACAS diagnostic to explain, as the client received it: with
    /// it the server finds the diagnostic on the line of `range` even when the client's columns
    /// are in another encoding than the one negotiated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub fingerprint: Option<String>,
}

/// Result of the `acas.escalate` command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EscalateResult {
    pub explanation: String,
    /// Set when a verified fix is offered as a quick fix.
    pub fix_id: Option<String>,
    /// Why the model's fix is not offered.
    pub fix_rejected: Option<String>,
    pub provider: String,
    pub model: String,
    pub cost_usd: f64,
    pub cached: bool,
}

/// Command names ACAS serves through `workspace/executeCommand`.
pub const ESCALATE_COMMAND: &str = "acas.escalate";

/// Cancels an escalation or a planning that is still running, by its handle.
pub const CANCEL_COMMAND: &str = "acas.cancel";

/// The answer of `acas.escalate`, given at once: the handle of the escalation, whose result
/// arrives as [`EscalationDone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EscalationStarted {
    pub escalation_id: u64,
}

/// Why work that was answered with a handle gave no result: the error's kind (as `data.kind`
/// of an error answer) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

/// Params of [`EscalationDone`]: exactly one of `result` and `error` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EscalationDoneParams {
    pub escalation_id: u64,
    /// The document the escalation was about.
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub result: Option<EscalateResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<Failure>,
}

/// `acas/escalationDone` (server → client): an escalation started by `acas.escalate` ended,
/// with its answer or why there is none.
pub enum EscalationDone {}

impl Notification for EscalationDone {
    type Params = EscalationDoneParams;
    const METHOD: &'static str = "acas/escalationDone";
}

/// Argument of `acas.cancel`: the handle `acas.escalate` or `acas.plan` answered with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CancelArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub escalation_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub plan_id: Option<u64>,
}

/// Result of `acas.cancel`: whether the work was still running (and is now cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CancelResult {
    pub cancelled: bool,
}

/// Runs the project's checkers now.
pub const RUN_CHECKERS_COMMAND: &str = "acas.runCheckers";

/// Argument of `acas.runCheckers` (optional): the checkers to run; none or empty runs every
/// enabled one, those in `skipCheckers` too (asked for, they run).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RunCheckersArgs {
    #[serde(default)]
    pub names: Vec<String>,
}

/// Result of `acas.runCheckers`: the checkers that started. Their problems arrive as
/// `textDocument/publishDiagnostics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RunCheckersResult {
    pub started: Vec<String>,
}

/// Runs a workflow by hand.
pub const WORKFLOW_RUN_COMMAND: &str = "acas.workflow.run";
/// Cancels a run.
pub const WORKFLOW_CANCEL_COMMAND: &str = "acas.workflow.cancel";
/// Runs a failed run again from its failed step.
pub const WORKFLOW_RERUN_COMMAND: &str = "acas.workflow.rerun";

/// Argument of `acas.workflow.run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRunArgs {
    /// The workflow's `name`.
    pub workflow: String,
    /// Values of its declared inputs, by name; missing ones take their defaults.
    #[serde(default)]
    #[ts(type = "Record<string, unknown>")]
    pub inputs: serde_json::Map<String, serde_json::Value>,
}

/// Argument of `acas.workflow.cancel` and `acas.workflow.rerun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRunRef {
    pub run_id: i64,
}

/// Result of `acas.workflow.run` and `acas.workflow.rerun`: the run that started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStarted {
    pub run_id: i64,
}

/// Creates a task for agents from a recorded problem, as `acas task from-problem` does.
pub const TASK_FROM_PROBLEM_COMMAND: &str = "acas.task.fromProblem";

/// Argument of `acas.task.fromProblem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TaskFromProblemArgs {
    /// The problem's fingerprint (`data.fingerprint` of ACAS's diagnostics), or a unique prefix
    /// of at least 6 characters.
    pub fingerprint: String,
}

/// Result of `acas.task.fromProblem`: the task, new or the problem's open one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TaskFromProblemResult {
    pub task: TaskSummary,
    /// False when the problem already had an open task, which is the one answered.
    pub created: bool,
}

/// Where a workflow run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum RunStatus {
    Queued,
    Running,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

/// Where one step of a workflow run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

/// One step of a run, as `acas/workflowRun` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStepState {
    pub id: String,
    pub status: StepStatus,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<String>,
}

/// Params of [`WorkflowRun`], and each run in [`WorkflowsResult`]: the whole state of a run.
///
/// The server owns run state: a client keeps, per run, the state with the highest `seq` it was
/// given (by a notification or a list) and shows it as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRunParams {
    pub run_id: i64,
    pub workflow: String,
    pub status: RunStatus,
    /// Every step of the run's workflow, in definition order.
    pub steps: Vec<WorkflowStepState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub finished_ms: Option<i64>,
    /// Orders the run states this server sent: a higher `seq` is the later state.
    pub seq: u64,
}

/// `acas/workflowRun` (server → client): a run changed state.
pub enum WorkflowRun {}

impl Notification for WorkflowRun {
    type Params = WorkflowRunParams;
    const METHOD: &'static str = "acas/workflowRun";
}

/// The type of a workflow input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum InputType {
    String,
    Number,
    Boolean,
    Choice,
}

/// What can start a workflow run, as its `on:` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    FileChange,
    Schedule,
    Diagnostic,
    Escalation,
    Manual,
    Webhook,
}

/// A typed input of a workflow, for the editor's input form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowInput {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: InputType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "unknown")]
    pub default: Option<serde_json::Value>,
    pub required: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(optional, as = "Option<Vec<String>>")]
    pub options: Vec<String>,
}

/// A workflow definition the workspace has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSummary {
    pub name: String,
    pub uri: String,
    /// The trigger kinds it declares.
    pub triggers: Vec<TriggerKind>,
    pub inputs: Vec<WorkflowInput>,
    pub steps: u32,
}

/// Result of [`Workflows`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowsResult {
    /// The valid workflows (invalid files are diagnostics in themselves).
    pub workflows: Vec<WorkflowSummary>,
    /// The recent runs, newest first, as [`WorkflowRunParams`].
    pub runs: Vec<WorkflowRunParams>,
    /// This list's own place in the order of run states: above every state sent before the
    /// answer, below every state sent after it. Runs read from the store carry it; runs the
    /// server told of carry their own. A client drops what it holds of runs this list leaves
    /// out, unless a later notification told it of them.
    pub seq: u64,
    /// With a shared store: the repository's recent runs from every clone on every machine
    /// (this workspace's included), newest first. Absent without one, or when it cannot be
    /// read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub team_runs: Option<Vec<TeamRun>>,
}

/// One step of a [`TeamRun`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TeamStepState {
    pub id: String,
    /// Absent when the shared store holds a status this ACAS does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub status: Option<StepStatus>,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<String>,
}

/// A run of the repository as the team's shared store has it, started in any clone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TeamRun {
    /// Unique across machines (16 hex digits); `acas workflow status ID` shows it anywhere.
    pub id: String,
    /// The run's number in the clone that started it.
    pub run_id: i64,
    pub workflow: String,
    /// Absent when the shared store holds a status this ACAS does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub status: Option<RunStatus>,
    /// Who started it, on which machine, in which clone (its path there).
    pub user: String,
    pub host: String,
    pub clone: String,
    pub steps: Vec<TeamStepState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub finished_ms: Option<i64>,
}

/// `acas/workflows` (client → server): the workspace's workflows and its recent runs.
pub enum Workflows {}

impl Request for Workflows {
    type Params = ();
    type Result = WorkflowsResult;
    const METHOD: &'static str = "acas/workflows";
}

/// Where an agents' task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum TaskState {
    Queued,
    Claimed,
    Running,
    /// Waits for tasks it needs.
    Blocked,
    Done,
    Failed,
}

/// A path lock held now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TaskLock {
    /// A glob relative to the workspace root.
    pub glob: String,
    pub agent: String,
    pub task: i64,
    pub lease_until_ms: i64,
}

/// A task of the agents' queue, as the Tasks view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TaskSummary {
    pub id: i64,
    pub title: String,
    pub description: String,
    /// `fix`, `feature`, `refactor`, `test`, `docs`, `chore` or `other`.
    #[serde(rename = "type")]
    pub kind: String,
    pub priority: i64,
    pub state: TaskState,
    pub labels: Vec<String>,
    /// The globs it will touch.
    pub paths: Vec<String>,
    /// The tasks it needs first.
    pub needs: Vec<i64>,
    /// The agent holding it (claimed, running) or that last held it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub agent: Option<String>,
    /// When its lease ends, while it is held; milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub lease_until_ms: Option<i64>,
    /// The globs it holds locked now.
    pub locks: Vec<String>,
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last_error: Option<String>,
    /// `cli`, `problem`, `agent` or `plan`.
    pub source: String,
    pub created_by: String,
}

/// Params of [`Tasks`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TasksParams {
    /// Done and failed tasks too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub include_finished: Option<bool>,
}

/// Result of [`Tasks`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TasksResult {
    /// Those not finished first, by priority.
    pub tasks: Vec<TaskSummary>,
    /// Every path lock held now.
    pub locks: Vec<TaskLock>,
}

/// `acas/tasks` (client → server): the agents' task queue and the path locks held now.
pub enum Tasks {}

impl Request for Tasks {
    type Params = TasksParams;
    type Result = TasksResult;
    const METHOD: &'static str = "acas/tasks";
}

/// `acas/tasksChanged` (server → client): a task or a lock changed, in this process or another
/// (an agent over MCP, the command line); ask `acas/tasks` again.
pub enum TasksChanged {}

impl Notification for TasksChanged {
    type Params = ();
    const METHOD: &'static str = "acas/tasksChanged";
}

/// `acas/runsChanged` (server → client): with a shared store, a workflow run of the repository
/// changed in another process, clone or machine; ask `acas/workflows` again.
pub enum RunsChanged {}

impl Notification for RunsChanged {
    type Params = ();
    const METHOD: &'static str = "acas/runsChanged";
}

/// Params of `acas/storeStatus`: the link to the team's shared store (PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatusParams {
    /// The shared store, its password masked.
    pub url: String,
    /// Whether it could be reached at the last try.
    pub online: bool,
    /// Since when it cannot be reached, while it cannot; milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub offline_since_ms: Option<i64>,
    /// Changes made meanwhile (AI calls, cached replies) waiting to be sent to it.
    pub waiting: u64,
    /// When waiting changes were last sent; milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last_sync_ms: Option<i64>,
}

/// `acas/storeStatus` (server → client): the workspace's shared store became reachable or not,
/// or the number of changes waiting for it changed. Sent once when the server starts with a
/// shared store configured, then on each change.
pub enum StoreStatus {}

impl Notification for StoreStatus {
    type Params = StoreStatusParams;
    const METHOD: &'static str = "acas/storeStatus";
}

/// `acas/spendChanged` (server → client): with a shared store, an AI call of the team (from any
/// instance on any machine) was reserved or ended; ask `acas/spend` again.
pub enum SpendChanged {}

impl Notification for SpendChanged {
    type Params = ();
    const METHOD: &'static str = "acas/spendChanged";
}

/// Asks a model for a plan of tasks, shows it for approval, and runs it when approved.
pub const PLAN_COMMAND: &str = "acas.plan";

/// Argument of `acas.plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PlanArgs {
    /// What to do, in words.
    pub prompt: String,
}

/// Result of `acas.plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PlanResult {
    /// The plan as shown for approval: tasks in waves, and what was repaired, merged or broken.
    pub plan: String,
    pub tasks: u32,
    /// Whether the user approved it.
    pub approved: bool,
    /// The run of the approved plan; follow it through `acas/workflowRun`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub run_id: Option<i64>,
    /// What planning cost.
    pub cost_usd: f64,
}

/// The answer of `acas.plan`, given at once: the handle of the planning, whose result arrives
/// as [`PlanReady`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PlanStarted {
    pub plan_id: u64,
}

/// Params of [`PlanReady`]: exactly one of `result` and `error` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PlanReadyParams {
    pub plan_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub result: Option<PlanResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<Failure>,
}

/// `acas/planReady` (server → client): a planning started by `acas.plan` ended: the plan was
/// approved and started, or declined, or there is no plan and `error` says why.
pub enum PlanReady {}

impl Notification for PlanReady {
    type Params = PlanReadyParams;
    const METHOD: &'static str = "acas/planReady";
}

/// What went wrong, as `data.kind` of every error ACAS answers a request or command with.
/// Clients decide on it, never on the message, which is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    /// A request before `initialized`.
    NotInitialized,
    /// Not a valid request here: not JSON-RPC, nested too deep, a second `initialize`, or any
    /// request after `shutdown`.
    InvalidRequest,
    /// Arguments that do not parse, a URI that is not a local file, an unknown command.
    InvalidParams,
    /// The server failed inside; its log says more.
    Internal,
    /// The request was cancelled.
    Cancelled,
    /// No AI provider is configured (no `[[providers]]` and no API key in the environment).
    NoProvider,
    /// The AI part of `.acas/config.toml` is invalid, or names a provider that is not there.
    InvalidConfig,
    /// The file matches the `no_egress` globs, so nothing from it is sent.
    NoEgress,
    /// A budget refused every provider that could have answered.
    BudgetExceeded,
    /// Every provider failed (down, refused the key, replied with nothing usable).
    ProviderFailed,
    /// ACAS does not parse this kind of file, or could not read it.
    UnsupportedFile,
    /// There is no diagnostic at the range or position to explain.
    NoDiagnostic,
    /// No AI fix with that id is shown.
    FixNotFound,
    /// Workflows need a workspace folder and its store.
    NoWorkspace,
    /// There is no valid workflow with that name.
    WorkflowNotFound,
    /// A workflow input is missing, unknown or of the wrong type; `data.input` names it and
    /// `data.reason` says what is wrong.
    InvalidInputs,
    /// There is no run with that id.
    RunNotFound,
    /// The run is not in a state that allows the request (cancel a finished run, re-run a
    /// successful one).
    RunState,
    /// The workflow's definition cannot run (a step needs a step that is not there, a template
    /// that does not render).
    InvalidWorkflow,
    /// The model's plan stayed invalid after one repair.
    InvalidPlan,
    /// The store (`.acas/state.db`) refused: locked, corrupt, disk full.
    StoreFailed,
    /// The workspace has no checker of that name.
    CheckerNotFound,
    /// The user has not trusted the workspace to run its checkers (`acas trust`).
    WorkspaceUntrusted,
}

/// The `data` of every error ACAS answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ErrorData {
    pub kind: ErrorKind,
    /// With `invalidInputs`: the input at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub input: Option<String>,
    /// With `invalidInputs`: what is wrong with it, to show next to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reason: Option<String>,
}
