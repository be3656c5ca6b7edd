/**
 * What the extension knows of workflow runs, as the server tells it: per run, the state with the
 * highest `seq` from an `acas/workflowRun` notification or an `acas/workflows` list, shown as it
 * is (the server owns run state; nothing is merged here); which runs are in progress; and when a
 * run has just ended, what to tell the user. Pure; the model in `workflows.ts` feeds it and the
 * tree and status bar read it. No VS Code import.
 */
import { Commands, type RunStatus, type WorkflowRunParams } from './protocol';

/** Statuses a run never leaves. */
export const FINAL_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>(['succeeded', 'failed', 'cancelled']);
/** Statuses of a run that has not ended and counts as running in the status bar. */
export const ACTIVE_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>(['queued', 'running']);

/** How many runs are remembered. */
const LIMIT = 200;

/** A run as the tree shows it. */
export type RunView = WorkflowRunParams;

export class RunStates {
  private readonly runs = new Map<number, WorkflowRunParams>();
  /** Runs whose end has been announced, so that a repeated final notification stays quiet. */
  private readonly announced = new Set<number>();

  /**
   * Records one `acas/workflowRun`; returns its params when the run has just ended (the first
   * final state of that run this client was told), else undefined.
   */
  apply(params: WorkflowRunParams): WorkflowRunParams | undefined {
    this.keep(params);
    // An end is news once, even when a list made after it arrived first.
    if (!FINAL_STATUSES.has(params.status) || this.announced.has(params.runId)) return undefined;
    this.announced.add(params.runId);
    return params;
  }

  /**
   * Takes an `acas/workflows` list: its runs, and the runs a notification told of after the list
   * was made (`seq` above the list's); what the list leaves out and no later notification told
   * of is dropped (pruned by the server).
   */
  list(runs: readonly WorkflowRunParams[], seq: number): void {
    const listed = new Set(runs.map((r) => r.runId));
    for (const [runId, run] of this.runs) {
      if (!listed.has(runId) && run.seq <= seq) this.runs.delete(runId);
    }
    for (const run of runs) {
      // A run that ended before this client heard of it is not news.
      if (FINAL_STATUSES.has(run.status) && !this.runs.has(run.runId)) this.announced.add(run.runId);
      this.keep(run);
    }
  }

  /** The runs, newest first. */
  all(): RunView[] {
    return [...this.runs.values()].sort((a, b) => b.createdMs - a.createdMs || b.runId - a.runId);
  }

  /** Forgets everything (a new server). */
  clear(): void {
    this.runs.clear();
    this.announced.clear();
  }

  /** Keeps `run` unless a later state of it is known. */
  private keep(run: WorkflowRunParams): void {
    const known = this.runs.get(run.runId);
    if (known && known.seq > run.seq) return;
    this.runs.delete(run.runId);
    this.runs.set(run.runId, run);
    while (this.runs.size > LIMIT) {
      const oldest = this.runs.keys().next().value as number;
      this.runs.delete(oldest);
      this.announced.delete(oldest);
    }
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
    if (this.quiet.size > LIMIT) this.quiet.delete(this.quiet.keys().next().value as number);
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
