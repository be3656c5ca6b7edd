/**
 * The ACAS status bar item: server state, problem counts (from `ProblemsModel`), AI spend
 * (from `SpendModel`) and running workflows (from `WorkflowsModel`); a click opens a quick pick
 * of ACAS's commands.
 */
import * as vscode from 'vscode';
import type { ProblemsModel } from './problems';
import type { SpendModel } from './spend';
import type { StoreStatusParams } from './protocol';
import { countBySeverity, statusView, type ServerState } from './statusText';
import { storeView } from './storeText';
import type { WorkflowsModel } from './workflows';

export const SHOW_COMMANDS = 'acas.showCommands';

const COMMANDS: { command: string; label: string; detail: string }[] = [
  { command: 'acas.explainError', label: '$(sparkle) Explain and Fix with AI', detail: 'Ask the AI providers about the diagnostic under the cursor' },
  { command: 'acas.dismissSuggestion', label: '$(close) Dismiss AI Suggestion', detail: "Tell ACAS the AI fix under the cursor is not wanted" },
  { command: 'acas.setApiKey', label: '$(key) Set API Key', detail: "Store an AI provider's API key in VS Code's secret storage" },
  { command: 'acas.clearApiKeys', label: '$(trash) Clear API Keys', detail: 'Remove the stored API keys and restart the server' },
  { command: 'acas.runWorkflow', label: '$(play) Run Workflow', detail: "Run one of the workspace's workflows, asking for its inputs" },
  { command: 'acas.showWorkflows', label: '$(run-all) Show Workflows', detail: 'Workflows and their recent runs' },
  { command: 'acas.showProblems', label: '$(list-tree) Show Problems by Class', detail: 'Open problems, grouped by category and fingerprint' },
  { command: 'acas.showOutput', label: '$(output) Show Output', detail: "The server's log" },
  { command: 'acas.restartServer', label: '$(debug-restart) Restart Server', detail: 'Stop the server, find the binary again and start it' },
];

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('acas.status', vscode.StatusBarAlignment.Left, 0);
  private readonly disposables: vscode.Disposable[] = [];
  private state: ServerState = 'starting';
  private detail: string | undefined;
  private store: StoreStatusParams | undefined;

  constructor(
    private readonly problems: ProblemsModel,
    private readonly spend: SpendModel,
    private readonly workflows: WorkflowsModel,
  ) {
    this.item.name = 'ACAS';
    this.item.command = SHOW_COMMANDS;
    this.disposables.push(
      this.item,
      problems.onDidChange(() => this.render()),
      spend.onDidChange(() => this.render()),
      workflows.onDidChange(() => this.render()),
      vscode.commands.registerCommand(SHOW_COMMANDS, () => showCommands()),
    );
    this.render();
    this.item.show();
  }

  setState(state: ServerState, detail?: string): void {
    this.state = state;
    this.detail = detail;
    this.render();
  }

  /** The team's shared store, as `acas/storeStatus` last said. */
  setStore(store: StoreStatusParams): void {
    this.store = store;
    this.render();
  }

  private render(): void {
    const counts = this.state === 'running' && this.problems.problems ? countBySeverity(this.problems.problems) : undefined;
    const running = this.state === 'running';
    const view = statusView(this.state, counts, this.detail, running ? this.spend.spend : undefined, running ? this.workflows.activeRuns : 0);
    const store = running ? storeView(this.store) : undefined;
    this.item.text = store ? `${view.text} ${store.text}` : view.text;
    this.item.tooltip = store ? `${view.tooltip}\n${store.tooltip}` : view.tooltip;
    this.item.accessibilityInformation = { label: view.label };
    this.item.backgroundColor = view.alarming ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

async function showCommands(): Promise<void> {
  const pick = await vscode.window.showQuickPick(COMMANDS, { title: 'ACAS', placeHolder: 'Choose an ACAS command' });
  if (pick) await vscode.commands.executeCommand(pick.command);
}
