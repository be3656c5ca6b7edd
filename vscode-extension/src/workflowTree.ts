/**
 * Shapes workflows and their runs into the tree of the "Workflows" view: workflow, then its
 * recent runs (newest first), then the steps of each run; with a shared store, a "Team runs"
 * node last with the repository's runs of every clone (who, where), then their steps. Pure;
 * `workflowsView.ts` renders it, turning the icon and colour ids into theme icons.
 */
import { displayPath, localTime } from './problemTree';
import type { TeamRun, TeamStepState, WorkflowStepState, WorkflowSummary } from './protocol';
import type { RunView } from './workflowRuns';

/** Runs shown under each workflow. */
export const RUNS_PER_WORKFLOW = 10;

/** A codicon id and an optional theme colour id. */
export interface Icon {
  id: string;
  color?: string;
}

export interface WorkflowNode {
  kind: 'workflow';
  /** Stable across rebuilds, for the tree's item ids. */
  id: string;
  workflow: WorkflowSummary;
  label: string;
  description: string;
  tooltip: string;
  contextValue: 'workflow';
  runs: RunNode[];
}

export interface RunNode {
  kind: 'run';
  id: string;
  run: RunView;
  label: string;
  description: string;
  tooltip: string;
  ariaLabel: string;
  icon: Icon;
  /** `run-<status>`, for the cancel and re-run actions. */
  contextValue: string;
  steps: StepNode[];
}

export interface StepNode {
  kind: 'step';
  id: string;
  runId: number;
  step: WorkflowStepState;
  label: string;
  description: string;
  tooltip: string;
  icon: Icon;
}

/** The team's runs (with a shared store): every clone's, newest first. */
export interface TeamNode {
  kind: 'team';
  id: 'team';
  label: string;
  description: string;
  tooltip: string;
  runs: TeamRunNode[];
}

export interface TeamRunNode {
  kind: 'teamRun';
  id: string;
  run: TeamRun;
  label: string;
  description: string;
  tooltip: string;
  ariaLabel: string;
  icon: Icon;
  steps: TeamStepNode[];
}

export interface TeamStepNode {
  kind: 'teamStep';
  id: string;
  label: string;
  description: string;
  tooltip: string;
  icon: Icon;
}

export type WorkflowTreeNode = WorkflowNode | RunNode | StepNode | TeamNode | TeamRunNode | TeamStepNode;

/** Team runs shown under the "Team runs" node. */
export const TEAM_RUNS_SHOWN = 20;

export interface TreeOptions {
  /** Now, in Unix milliseconds, for relative times. */
  nowMs: number;
  /** The workspace folder's path, for short file names. */
  root?: string;
  formatTime?: (ms: number) => string;
  runsPerWorkflow?: number;
}

const RUN_ICONS: Record<string, Icon> = {
  queued: { id: 'clock' },
  running: { id: 'sync~spin' },
  paused: { id: 'debug-pause' },
  succeeded: { id: 'pass', color: 'testing.iconPassed' },
  failed: { id: 'error', color: 'testing.iconFailed' },
  cancelled: { id: 'circle-slash' },
};

const STEP_ICONS: Record<string, Icon> = {
  ...RUN_ICONS,
  pending: { id: 'circle-outline' },
  skipped: { id: 'debug-step-over' },
};

export function runIcon(status: string): Icon {
  return RUN_ICONS[status] ?? { id: 'question' };
}

export function stepIcon(status: string): Icon {
  return STEP_ICONS[status] ?? { id: 'question' };
}

/** Workflows by name; each with its runs among `runs` (newest first, as given). */
export function buildWorkflowTree(workflows: readonly WorkflowSummary[], runs: readonly RunView[], options: TreeOptions): WorkflowNode[] {
  const limit = options.runsPerWorkflow ?? RUNS_PER_WORKFLOW;
  const byWorkflow = new Map<string, RunView[]>();
  for (const run of runs) {
    const list = byWorkflow.get(run.workflow) ?? [];
    if (list.length < limit) list.push(run);
    byWorkflow.set(run.workflow, list);
  }
  return [...workflows]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((workflow) => workflowNode(workflow, byWorkflow.get(workflow.name) ?? [], options));
}

function workflowNode(workflow: WorkflowSummary, runs: RunView[], options: TreeOptions): WorkflowNode {
  const file = displayPath(workflow.uri, options.root);
  const inputs = workflow.inputs.map((i) => `${i.name} (${i.type}${i.required ? ', required' : ''})`);
  const tooltip = [
    workflow.name,
    `file: ${file}`,
    `triggers: ${workflow.triggers.length > 0 ? workflow.triggers.join(', ') : 'manual only'}`,
    `steps: ${workflow.steps}`,
    ...(inputs.length > 0 ? [`inputs: ${inputs.join(', ')}`] : []),
  ].join('\n');
  return {
    kind: 'workflow',
    id: `workflow:${workflow.name}`,
    workflow,
    label: workflow.name,
    description: workflow.triggers.join(', '),
    tooltip,
    contextValue: 'workflow',
    runs: runs.map((run) => runNode(run, options)),
  };
}

function runNode(run: RunView, options: TreeOptions): RunNode {
  const formatTime = options.formatTime ?? localTime;
  const started = relativeTime(run.createdMs, options.nowMs);
  const took = run.finishedMs !== undefined ? duration(run.finishedMs - run.createdMs) : undefined;
  const tooltip = [
    `${run.workflow}, run ${run.runId}: ${run.status}`,
    `started: ${formatTime(run.createdMs)}`,
    ...(run.finishedMs !== undefined ? [`finished: ${formatTime(run.finishedMs)} (took ${took})`] : []),
    ...(run.error ? [`error: ${run.error}`] : []),
  ].join('\n');
  return {
    kind: 'run',
    id: `run:${run.runId}`,
    run,
    label: `#${run.runId} ${run.status}`,
    description: took ? `${started} · ${took}` : started,
    tooltip,
    ariaLabel: `run ${run.runId} ${run.status}, started ${started}${took ? `, took ${took}` : ''}`,
    icon: runIcon(run.status),
    contextValue: `run-${run.status}`,
    steps: run.steps.map((step) => stepNode(run.runId, step)),
  };
}

function stepNode(runId: number, step: WorkflowStepState): StepNode {
  const attempts = step.attempts === 1 ? '1 attempt' : `${step.attempts} attempts`;
  return {
    kind: 'step',
    id: `step:${runId}:${step.id}`,
    runId,
    step,
    label: step.id,
    description: step.attempts > 0 ? `${step.status} · ${attempts}` : step.status,
    tooltip: [`step ${step.id}: ${step.status}`, attempts, ...(step.error ? [`error: ${step.error}`] : [])].join('\n'),
    icon: stepIcon(step.status),
  };
}

/**
 * The "Team runs" node for `runs` (the server's `teamRuns`, newest first), or none when there
 * are none. A status this extension does not know (absent) shows as `unknown`.
 */
export function buildTeamNode(runs: readonly TeamRun[], options: TreeOptions): TeamNode | undefined {
  if (runs.length === 0) return undefined;
  const shown = runs.slice(0, TEAM_RUNS_SHOWN);
  const clones = new Set(runs.map((r) => `${r.user}@${r.host}:${r.clone}`)).size;
  return {
    kind: 'team',
    id: 'team',
    label: 'Team runs',
    description: `${runs.length} from ${clones === 1 ? '1 clone' : `${clones} clones`}`,
    tooltip: 'Recent runs of this repository in every clone that shares its store, newest first',
    runs: shown.map((run) => teamRunNode(run, options)),
  };
}

function teamRunNode(run: TeamRun, options: TreeOptions): TeamRunNode {
  const formatTime = options.formatTime ?? localTime;
  const status = run.status ?? 'unknown';
  const started = relativeTime(run.createdMs, options.nowMs);
  const took = run.finishedMs !== undefined ? duration(run.finishedMs - run.createdMs) : undefined;
  const tooltip = [
    `${run.workflow}, run ${run.runId} of ${run.user} on ${run.host}: ${status}`,
    `clone: ${run.clone}`,
    `id: ${run.id} (acas workflow status ${run.id})`,
    `started: ${formatTime(run.createdMs)}`,
    ...(run.finishedMs !== undefined ? [`finished: ${formatTime(run.finishedMs)} (took ${took})`] : []),
    ...(run.error ? [`error: ${run.error}`] : []),
  ].join('\n');
  return {
    kind: 'teamRun',
    id: `team:${run.id}`,
    run,
    label: `${run.workflow} #${run.runId} ${status}`,
    description: `${run.user} · ${run.host} · ${started}`,
    tooltip,
    ariaLabel: `${run.workflow} run ${run.runId} of ${run.user} on ${run.host}, ${status}, started ${started}`,
    icon: runIcon(status),
    steps: run.steps.map((step) => teamStepNode(run.id, step)),
  };
}

function teamStepNode(runId: string, step: TeamStepState): TeamStepNode {
  const status = step.status ?? 'unknown';
  const attempts = step.attempts === 1 ? '1 attempt' : `${step.attempts} attempts`;
  return {
    kind: 'teamStep',
    id: `team:${runId}:${step.id}`,
    label: step.id,
    description: step.attempts > 0 ? `${status} · ${attempts}` : status,
    tooltip: [
      `step ${step.id}: ${status}`,
      attempts,
      ...(step.exitCode !== undefined ? [`exit code ${step.exitCode}`] : []),
      ...(step.error ? [`error: ${step.error}`] : []),
    ].join('\n'),
    icon: stepIcon(status),
  };
}

/** `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`. */
export function relativeTime(ms: number, nowMs: number): string {
  const seconds = Math.floor(Math.max(0, nowMs - ms) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

/** `850 ms`, `1.2 s`, `3 min 4 s`, `2 h 5 min`. */
export function duration(ms: number): string {
  const clamped = Math.max(0, Math.round(ms));
  if (clamped < 1000) return `${clamped} ms`;
  if (clamped < 60_000) return `${(clamped / 1000).toFixed(1)} s`;
  const seconds = Math.floor(clamped / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

/** The node of run `runId` in `tree`. */
export function findRun(tree: readonly WorkflowNode[], runId: number): RunNode | undefined {
  for (const workflow of tree) {
    const run = workflow.runs.find((r) => r.run.runId === runId);
    if (run) return run;
  }
  return undefined;
}
