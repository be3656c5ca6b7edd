/**
 * What the extension knows of workflow runs: the recent runs of the latest `acas/workflows`
 * answer merged with the `acas/workflowRun` notifications seen since (which carry step states),
 * which runs are in progress, and when a run has just ended, what to tell the user. Pure; the
 * model in `workflows.ts` feeds it and the tree and status bar read it. No VS Code import.
 */
import { Commands, type RunStatus, type WorkflowRunParams, type WorkflowRunSummary, type WorkflowStepState } from './protocol';

/** Statuses a run never leaves. */
export const FINAL_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>(['succeeded', 'failed', 'cancelled']);
/** Statuses of a run that has not ended and counts as running in the status bar. */
export const ACTIVE_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>(['queued', 'running']);

/** How many runs seen through notifications are remembered. */
const LIVE_LIMIT = 200;

/** A run as the tree shows it; `steps` only when a notification told them. */
export interface RunView extends WorkflowRunSummary {
  steps?: WorkflowStepState[];
}

interface LiveRun {
  params: WorkflowRunParams;
  /** When this client first heard of the run (the list has the real creation time). */
  firstSeenMs: number;
  /** When this client saw it end. */
  finishedMs?: number;
}

export class RunStates {
  private readonly live = new Map<number, LiveRun>();
  /** Runs whose end has been announced, so that a repeated final notification stays quiet. */
  private readonly announced = new Set<number>();

  /**
   * Records one `acas/workflowRun`; returns its params when the run has just ended (the first
   * final notification of that run), else undefined.
   */
  apply(params: WorkflowRunParams, nowMs: number): WorkflowRunParams | undefined {
    const previous = this.live.get(params.runId);
    this.live.delete(params.runId);
    const final = FINAL_STATUSES.has(params.status);
    if (previous && FINAL_STATUSES.has(previous.params.status) && !final) {
      // A late notification from before the end: keep the end.
      this.live.set(params.runId, previous);
      return undefined;
    }
    this.live.set(params.runId, {
      params,
      firstSeenMs: previous?.firstSeenMs ?? nowMs,
      finishedMs: final ? (previous?.finishedMs ?? nowMs) : undefined,
    });
    while (this.live.size > LIVE_LIMIT) {
      const oldest = this.live.keys().next().value as number;
      this.live.delete(oldest);
      this.announced.delete(oldest);
    }
    if (!final || this.announced.has(params.runId)) return undefined;
    this.announced.add(params.runId);
    return params;
  }

  /** The steps of a run, when a notification told them. */
  steps(runId: number): WorkflowStepState[] | undefined {
    return this.live.get(runId)?.params.steps;
  }

  /** Forgets everything (a new server). */
  clear(): void {
    this.live.clear();
    this.announced.clear();
  }

  /**
   * The listed runs with what notifications said since, plus the runs only notifications know
   * (started after the list was fetched), newest first. An ended status wins over one that has
   * not ended; otherwise the notification, being later, wins.
   */
  merge(listed: readonly WorkflowRunSummary[]): RunView[] {
    const runs = new Map<number, RunView>();
    for (const run of listed) runs.set(run.runId, { ...run });
    for (const [runId, live] of this.live) {
      const run = runs.get(runId);
      const { params } = live;
      if (!run) {
        runs.set(runId, {
          runId,
          workflow: params.workflow,
          status: params.status,
          createdMs: live.firstSeenMs,
          finishedMs: live.finishedMs,
          error: params.error,
          steps: params.steps,
        });
        continue;
      }
      run.steps = params.steps;
      if (FINAL_STATUSES.has(run.status) && !FINAL_STATUSES.has(params.status)) continue;
      run.status = params.status;
      if (params.error !== undefined) run.error = params.error;
      if (FINAL_STATUSES.has(params.status)) run.finishedMs ??= live.finishedMs;
    }
    return [...runs.values()].sort((a, b) => b.createdMs - a.createdMs || b.runId - a.runId);
  }
}

/** Which workflow commands the server announced (`executeCommandProvider.commands`). */
export interface WorkflowCapabilities {
  run: boolean;
  cancel: boolean;
  rerun: boolean;
}

export function workflowCapabilities(commands: readonly string[] | undefined): WorkflowCapabilities {
  const has = (command: string) => commands?.includes(command) ?? false;
  return { run: has(Commands.workflowRun), cancel: has(Commands.workflowCancel), rerun: has(Commands.workflowRerun) };
}

/** How many of `runs` are queued or running. */
export function activeCount(runs: readonly RunView[]): number {
  return runs.filter((r) => ACTIVE_STATUSES.has(r.status)).length;
}

export interface FinishedMessage {
  level: 'information' | 'warning';
  text: string;
  /** Buttons of the message. */
  buttons: string[];
}

export const SHOW_RUN = 'Show Run';

/** What to tell the user about a run that has just ended. */
export function finishedMessage(params: WorkflowRunParams): FinishedMessage {
  const what = `ACAS: workflow ${params.workflow} ${params.status} (run ${params.runId})`;
  if (params.status === 'succeeded') return { level: 'information', text: what, buttons: [] };
  const failedStep = params.steps.find((s) => s.status === 'failed');
  const reason = params.error ?? (failedStep ? `step ${failedStep.id} failed${failedStep.error ? `: ${failedStep.error}` : ''}` : undefined);
  return { level: 'warning', text: reason ? `${what}: ${firstLine(reason)}` : what, buttons: [SHOW_RUN] };
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0]!.trim();
}

/**
 * Which ended runs to tell the user about: every failure and cancellation, and the successes
 * of runs started from this window (a run that ends at once may be reported before the answer
 * to the command that started it, so such a success waits for that answer).
 */
export class Announcements {
  private readonly startedHere = new Set<number>();
  private readonly quiet = new Map<number, WorkflowRunParams>();

  /** A run ended; returns it when it is to be announced now. */
  ended(params: WorkflowRunParams): WorkflowRunParams | undefined {
    if (params.status !== 'succeeded' || this.startedHere.delete(params.runId)) return params;
    this.quiet.set(params.runId, params);
    if (this.quiet.size > LIVE_LIMIT) this.quiet.delete(this.quiet.keys().next().value as number);
    return undefined;
  }

  /** This window started `runId`; returns the run when it already ended and is to be announced now. */
  started(runId: number): WorkflowRunParams | undefined {
    const ended = this.quiet.get(runId);
    if (ended) {
      this.quiet.delete(runId);
      return ended;
    }
    this.startedHere.add(runId);
    return undefined;
  }
}
