// Generated from the Rust types in protocol/ by `UPDATE_PROTOCOL=1 cargo test -p acas-protocol`.
// Do not edit: a test fails when this file and the Rust types differ.

export type Position = { line: number, character: number, };

export type Range = { start: Position, end: Position, };

export type Location = { uri: string, range: Range, };

export type DiagnosticCode = number | string;

export type RelatedInformation = { location: Location, message: string, };

export type ExternalDiagnostic = { range: Range, 
/**
 * 1 error, 2 warning, 3 information, 4 hint (LSP's `DiagnosticSeverity`).
 */
severity?: number, code?: DiagnosticCode, 
/**
 * The tool inside the source that reported it, when the source is an aggregator.
 */
source?: string, message: string, relatedInformation?: Array<RelatedInformation>, };

export type ExternalDiagnosticsParams = { uri: string, 
/**
 * Who published them, for example `rust-analyzer`, `ts`, `eslint`, `Pylance`.
 */
source: string, 
/**
 * The complete current set from that source for that document (empty clears it).
 */
diagnostics: Array<ExternalDiagnostic>, };

export type ProblemsParams = { category?: string, 
/**
 * A document URI: only problems located in it.
 */
uri?: string, };

export type Problem = { fingerprint: string, 
/**
 * `syntax`, `type`, `name`, `import`, `ownership`, `lint`, `test`, `runtime`, `build`, `other`.
 */
category: string, 
/**
 * `error`, `warning`, `information` or `hint`.
 */
severity: string, message: string, source: string, symbol: string | null, 
/**
 * How many times it appeared (went from absent to present).
 */
occurrences: number, 
/**
 * Unix milliseconds.
 */
firstSeen: number, 
/**
 * Unix milliseconds.
 */
lastSeen: number, locations: Array<Location>, };

export type Subsystem = "store" | "watcher" | "config" | "scan" | "checkers" | "symbols";

export type SubsystemState = "ok" | "busy" | "degraded" | "failed" | "off";

export type SubsystemStatus = { name: Subsystem, state: SubsystemState, detail: string | null, };

export type LanguageCount = { language: string, files: number, };

export type StatusResult = { version: string, workspaceRoot: string | null, filesWatched: number, languages: Array<LanguageCount>, openDocuments: number, storeBytes: number, subsystems: Array<SubsystemStatus>, };

export type SpendResult = { todayUsd: number, monthUsd: number, dailyBudgetUsd: number | null, monthlyBudgetUsd: number | null, 
/**
 * Names of the configured providers, in chain order.
 */
providers: Array<string>, };

export type FixOutcome = "applied" | "reverted" | "dismissed";

export type FixFeedbackParams = { 
/**
 * The `fixId` of the quick fix, from the `acas-ai` diagnostic's `data`.
 */
fixId: string, outcome: FixOutcome, };

export type EscalateArgs = { uri: string, range?: Range, 
/**
 * Where the cursor is, when the client leaves the choice of diagnostic to the server.
 */
position?: Position, 
/**
 * The diagnostic to explain when the client has it (another tool's); else the one ACAS
 * knows at `range`.
 */
diagnostic?: ExternalDiagnostic, 
/**
 * Ask only this provider.
 */
provider?: string, 
/**
 * The `data.fingerprint` of the ACAS diagnostic to explain, as the client received it: with
 * it the server finds the diagnostic on the line of `range` even when the client's columns
 * are in another encoding than the one negotiated.
 */
fingerprint?: string, };

export type EscalateResult = { explanation: string, 
/**
 * Set when a verified fix is offered as a quick fix.
 */
fixId: string | null, 
/**
 * Why the model's fix is not offered.
 */
fixRejected: string | null, provider: string, model: string, costUsd: number, cached: boolean, };

export type EscalationStarted = { escalationId: number, };

export type Failure = { kind: ErrorKind, message: string, };

export type EscalationDoneParams = { escalationId: number, 
/**
 * The document the escalation was about.
 */
uri: string, result?: EscalateResult, error?: Failure, };

export type CancelArgs = { escalationId?: number, planId?: number, };

export type RunCheckersArgs = { names: Array<string>, };

export type RunCheckersResult = { started: Array<string>, };

export type CancelResult = { cancelled: boolean, };

export type WorkflowRunArgs = { 
/**
 * The workflow's `name`.
 */
workflow: string, 
/**
 * Values of its declared inputs, by name; missing ones take their defaults.
 */
inputs: Record<string, unknown>, };

export type WorkflowRunRef = { runId: number, };

export type WorkflowStarted = { runId: number, };

export type RunStatus = "queued" | "running" | "paused" | "succeeded" | "failed" | "cancelled";

export type StepStatus = "pending" | "running" | "succeeded" | "failed" | "skipped" | "cancelled";

export type WorkflowStepState = { id: string, status: StepStatus, attempts: number, error?: string, };

export type WorkflowRunParams = { runId: number, workflow: string, status: RunStatus, 
/**
 * Every step of the run's workflow, in definition order.
 */
steps: Array<WorkflowStepState>, error?: string, 
/**
 * Milliseconds since the Unix epoch.
 */
createdMs: number, finishedMs?: number, 
/**
 * Orders the run states this server sent: a higher `seq` is the later state.
 */
seq: number, };

export type InputType = "string" | "number" | "boolean" | "choice";

export type TriggerKind = "file_change" | "schedule" | "diagnostic" | "escalation" | "manual" | "webhook";

export type WorkflowInput = { name: string, type: InputType, description?: string, default?: unknown, required: boolean, options?: Array<string>, };

export type WorkflowSummary = { name: string, uri: string, 
/**
 * The trigger kinds it declares.
 */
triggers: Array<TriggerKind>, inputs: Array<WorkflowInput>, steps: number, };

export type TeamStepState = { id: string, 
/**
 * Absent when the shared store holds a status this ACAS does not know.
 */
status?: StepStatus, attempts: number, exitCode?: number, error?: string, };

export type TeamRun = { 
/**
 * Unique across machines (16 hex digits); `acas workflow status ID` shows it anywhere.
 */
id: string, 
/**
 * The run's number in the clone that started it.
 */
runId: number, workflow: string, 
/**
 * Absent when the shared store holds a status this ACAS does not know.
 */
status?: RunStatus, 
/**
 * Who started it, on which machine, in which clone (its path there).
 */
user: string, host: string, clone: string, steps: Array<TeamStepState>, error?: string, 
/**
 * Milliseconds since the Unix epoch.
 */
createdMs: number, finishedMs?: number, };

export type WorkflowsResult = { 
/**
 * The valid workflows (invalid files are diagnostics in themselves).
 */
workflows: Array<WorkflowSummary>, 
/**
 * The recent runs, newest first, as [`WorkflowRunParams`].
 */
runs: Array<WorkflowRunParams>, 
/**
 * This list's own place in the order of run states: above every state sent before the
 * answer, below every state sent after it. Runs read from the store carry it; runs the
 * server told of carry their own. A client drops what it holds of runs this list leaves
 * out, unless a later notification told it of them.
 */
seq: number, 
/**
 * With a shared store: the repository's recent runs from every clone on every machine
 * (this workspace's included), newest first. Absent without one, or when it cannot be
 * read.
 */
teamRuns?: Array<TeamRun>, };

export type TaskState = "queued" | "claimed" | "running" | "blocked" | "done" | "failed";

export type TaskLock = { 
/**
 * A glob relative to the workspace root.
 */
glob: string, agent: string, task: number, leaseUntilMs: number, };

export type TaskSummary = { id: number, title: string, description: string, 
/**
 * `fix`, `feature`, `refactor`, `test`, `docs`, `chore` or `other`.
 */
type: string, priority: number, state: TaskState, labels: Array<string>, 
/**
 * The globs it will touch.
 */
paths: Array<string>, 
/**
 * The tasks it needs first.
 */
needs: Array<number>, 
/**
 * The agent holding it (claimed, running) or that last held it.
 */
agent?: string, 
/**
 * When its lease ends, while it is held; milliseconds since the Unix epoch.
 */
leaseUntilMs?: number, 
/**
 * The globs it holds locked now.
 */
locks: Array<string>, attempts: number, maxAttempts: number, lastError?: string, 
/**
 * `cli`, `problem`, `agent` or `plan`.
 */
source: string, createdBy: string, };

export type TasksParams = { 
/**
 * Done and failed tasks too.
 */
includeFinished?: boolean, };

export type TasksResult = { 
/**
 * Those not finished first, by priority.
 */
tasks: Array<TaskSummary>, 
/**
 * Every path lock held now.
 */
locks: Array<TaskLock>, };

export type StoreStatusParams = { 
/**
 * The shared store, its password masked.
 */
url: string, 
/**
 * Whether it could be reached at the last try.
 */
online: boolean, 
/**
 * Since when it cannot be reached, while it cannot; milliseconds since the Unix epoch.
 */
offlineSinceMs?: number, 
/**
 * Changes made meanwhile (AI calls, cached replies) waiting to be sent to it.
 */
waiting: number, 
/**
 * When waiting changes were last sent; milliseconds since the Unix epoch.
 */
lastSyncMs?: number, };

export type TaskFromProblemArgs = { 
/**
 * The problem's fingerprint (`data.fingerprint` of ACAS's diagnostics), or a unique prefix
 * of at least 6 characters.
 */
fingerprint: string, };

export type TaskFromProblemResult = { task: TaskSummary, 
/**
 * False when the problem already had an open task, which is the one answered.
 */
created: boolean, };

export type PlanArgs = { 
/**
 * What to do, in words.
 */
prompt: string, };

export type PlanResult = { 
/**
 * The plan as shown for approval: tasks in waves, and what was repaired, merged or broken.
 */
plan: string, tasks: number, 
/**
 * Whether the user approved it.
 */
approved: boolean, 
/**
 * The run of the approved plan; follow it through `acas/workflowRun`.
 */
runId?: number, 
/**
 * What planning cost.
 */
costUsd: number, };

export type PlanStarted = { planId: number, };

export type PlanReadyParams = { planId: number, result?: PlanResult, error?: Failure, };

export type ErrorKind = "notInitialized" | "invalidRequest" | "invalidParams" | "internal" | "cancelled" | "noProvider" | "invalidConfig" | "noEgress" | "budgetExceeded" | "providerFailed" | "unsupportedFile" | "noDiagnostic" | "fixNotFound" | "noWorkspace" | "workflowNotFound" | "invalidInputs" | "runNotFound" | "runState" | "invalidWorkflow" | "invalidPlan" | "storeFailed" | "checkerNotFound" | "workspaceUntrusted";

export type ErrorData = { kind: ErrorKind, 
/**
 * With `invalidInputs`: the input at fault.
 */
input?: string, 
/**
 * With `invalidInputs`: what is wrong with it, to show next to it.
 */
reason?: string, };

export type LogLevel = "error" | "warn" | "info" | "debug" | "trace";

export type Settings = { 
/**
 * Log level of the server: `error`, `warn`, `info`, `debug` or `trace`.
 */
logLevel?: LogLevel, 
/**
 * Also send the server's log, at `logLevel`, to the editor as `window/logMessage`.
 */
logToClient?: boolean, 
/**
 * Extra ignore globs (gitignore syntax), on top of `.gitignore`, `.ignore` and `.acas/ignore`.
 */
ignore?: Array<string>, 
/**
 * Files larger than this many bytes are not parsed.
 */
maxFileSize?: number, 
/**
 * Checkers not to run on start or on save, because the editor shows their diagnostics
 * already (rust-analyzer runs `cargo check`, tsserver `tsc`, Pylance `pyright`, the ESLint
 * extension `eslint`). `acas.runCheckers` still runs them.
 */
skipCheckers?: Array<string>, };

/** Method names of ACAS's LSP extensions. */
export const Methods = {
  externalDiagnostics: "acas/externalDiagnostics",
  problems: "acas/problems",
  status: "acas/status",
  spend: "acas/spend",
  fixFeedback: "acas/fixFeedback",
  workflowRun: "acas/workflowRun",
  workflows: "acas/workflows",
  escalationDone: "acas/escalationDone",
  planReady: "acas/planReady",
  tasks: "acas/tasks",
  tasksChanged: "acas/tasksChanged",
  runsChanged: "acas/runsChanged",
  storeStatus: "acas/storeStatus",
  spendChanged: "acas/spendChanged",
} as const;

/** Commands ACAS serves through `workspace/executeCommand`. */
export const Commands = {
  escalate: "acas.escalate",
  workflowRun: "acas.workflow.run",
  workflowCancel: "acas.workflow.cancel",
  workflowRerun: "acas.workflow.rerun",
  plan: "acas.plan",
  cancel: "acas.cancel",
  runCheckers: "acas.runCheckers",
  taskFromProblem: "acas.task.fromProblem",
} as const;
