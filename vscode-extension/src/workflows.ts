/**
 * Keeps the latest answer of `acas/workflows` and the `acas/workflowRun` notifications, and tells
 * the workflows view, the status bar and the workflow commands. The list is fetched when the
 * server starts, when a workflow file changes, after a run starts, when the server says the
 * team's runs changed (`acas/runsChanged`, with a shared store), and on demand; the
 * view is redrawn (debounced) after each notification. Which commands the server offers comes
 * from its initialize result, and sets the context keys the menus use. It does not interpret
 * workflows; that is the server's job.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { KeyedDebouncer } from './debounce';
import * as messages from './messages';
import type { TeamRun, WorkflowRunParams, WorkflowSummary } from './protocol';
import { activeCount, RunStates, workflowCapabilities, type RunView, type WorkflowCapabilities } from './workflowRuns';

const DELAY_MS = 250;
const NONE: WorkflowCapabilities = { run: false, cancel: false, rerun: false };

/** Context keys for `when` clauses: the server offers that command. */
export const CONTEXT_KEYS = { run: 'acas.workflows.canRun', cancel: 'acas.workflows.canCancel', rerun: 'acas.workflows.canRerun' } as const;

type Job = 'render' | 'refresh';

export class WorkflowsModel implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private subscription: vscode.Disposable | undefined;
  private teamSubscription: vscode.Disposable | undefined;
  private generation = 0;
  private failureLogged = false;
  private readonly states = new RunStates();
  private readonly debouncer = new KeyedDebouncer<Job>(DELAY_MS, (job) => (job === 'refresh' ? void this.refresh() : this.render()));
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly finished = new vscode.EventEmitter<WorkflowRunParams>();
  private readonly watcher = vscode.workspace.createFileSystemWatcher('**/.acas/workflows/*.{yaml,yml}');
  private readonly disposables: vscode.Disposable[];
  /** What the running server offers; nothing while none runs. */
  capabilities: WorkflowCapabilities = NONE;
  /** Undefined until the running server has answered once. */
  workflows: WorkflowSummary[] | undefined;
  /** Recent runs, newest first, as the server last told each. */
  runs: RunView[] = [];
  /** With a shared store: the repository's recent runs of every clone, as last listed. */
  teamRuns: TeamRun[] = [];
  readonly onDidChange = this.changed.event;
  /** A run has just ended (first final notification). */
  readonly onDidFinish = this.finished.event;

  constructor(private readonly log: vscode.OutputChannel) {
    const changedFile = () => this.scheduleRefresh();
    this.disposables = [
      this.watcher,
      this.watcher.onDidCreate(changedFile),
      this.watcher.onDidChange(changedFile),
      this.watcher.onDidDelete(changedFile),
      this.changed,
      this.finished,
    ];
    void this.setContext(NONE);
  }

  get serverRunning(): boolean {
    return this.client !== undefined;
  }

  /** Queued or running runs. */
  get activeRuns(): number {
    return activeCount(this.runs);
  }

  /** Follows a new (running) client, or none. */
  setClient(client: LanguageClient | undefined): void {
    this.subscription?.dispose();
    this.subscription = undefined;
    this.teamSubscription?.dispose();
    this.teamSubscription = undefined;
    this.client = client;
    this.generation += 1;
    this.failureLogged = false;
    this.states.clear();
    this.workflows = undefined;
    this.runs = [];
    this.teamRuns = [];
    this.capabilities = client ? workflowCapabilities(client.initializeResult?.capabilities.executeCommandProvider?.commands) : NONE;
    void this.setContext(this.capabilities);
    if (client && this.capabilities.run) {
      this.subscription = client.onNotification(messages.workflowRun, (params) => this.notified(params));
      this.teamSubscription = client.onNotification(messages.runsChanged, () => this.scheduleRefresh());
      void this.refresh();
    }
    this.changed.fire();
  }

  scheduleRefresh(): void {
    if (this.client && this.capabilities.run) this.debouncer.schedule('refresh');
  }

  async refresh(): Promise<void> {
    const client = this.client;
    if (!client || !this.capabilities.run) return;
    const generation = this.generation;
    try {
      const result = await client.sendRequest(messages.workflows);
      if (generation !== this.generation) return;
      this.workflows = result.workflows;
      this.states.list(result.runs, result.seq);
      this.teamRuns = result.teamRuns ?? [];
      this.failureLogged = false;
      this.render();
    } catch (error) {
      if (!this.failureLogged) this.log.appendLine(`[acas] ${messages.workflows.method} failed: ${String(error)}`);
      this.failureLogged = true;
    }
  }

  private notified(params: WorkflowRunParams): void {
    const ended = this.states.apply(params);
    this.debouncer.schedule('render');
    if (ended) this.finished.fire(ended);
  }

  private render(): void {
    this.runs = this.states.all();
    this.changed.fire();
  }

  private async setContext(capabilities: WorkflowCapabilities): Promise<void> {
    for (const [name, key] of Object.entries(CONTEXT_KEYS)) {
      await vscode.commands.executeCommand('setContext', key, capabilities[name as keyof WorkflowCapabilities]);
    }
  }

  dispose(): void {
    this.subscription?.dispose();
    this.teamSubscription?.dispose();
    this.debouncer.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
