/**
 * Entry point: finds the `acas` binary, runs it through the language client (with the stored API
 * keys in its environment), and wires the editor-only parts (diagnostics forwarding, status bar,
 * problems view, workflows view, AI and workflow commands, commands, settings).
 * It holds no analysis logic; the server owns all of that.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as vscode from 'vscode';
import { DidChangeConfigurationNotification, ExecuteCommandRequest, State, type LanguageClient } from 'vscode-languageclient/node';
import { AiCommands } from './ai';
import { readKeys, serverEnv } from './apiKeys';
import { createClient } from './client';
import { DiagnosticsForwarder } from './forwarder';
import * as messages from './messages';
import { Pending } from './pending';
import { ProblemsModel } from './problems';
import { ProblemsView } from './problemsView';
import { Commands, type EscalationDoneParams, type PlanReadyParams, type RunCheckersResult, type Settings, type TaskFromProblemResult } from './protocol';
import { resolveServerPath } from './serverPath';
import { readSettings } from './settings';
import { SpendModel } from './spend';
import { StatusBar } from './statusBar';
import { fingerprintOf, outcomeText, picks } from './taskFromProblem';
import { TasksModel } from './tasks';
import { TasksView } from './tasksView';
import { WorkflowCommands } from './workflowCommands';
import { WorkflowsModel } from './workflows';
import { WorkflowsView } from './workflowsView';

let session: Session | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const activatedAt = performance.now();
  const log = vscode.window.createOutputChannel('ACAS');
  const problems = new ProblemsModel(log);
  const spend = new SpendModel(log);
  const workflows = new WorkflowsModel(log);
  const status = new StatusBar(problems, spend, workflows);
  const view = new ProblemsView(problems);
  const workflowsView = new WorkflowsView(workflows);
  const tasks = new TasksModel(log);
  const tasksView = new TasksView(tasks);
  const forwarder = new DiagnosticsForwarder(log);
  const ends: Ends = { escalations: new Pending<EscalationDoneParams>(), plans: new Pending<PlanReadyParams>() };
  session = new Session(context, log, status, problems, spend, workflows, tasks, forwarder, ends);
  const current = session;
  const ai = new AiCommands(
    {
      log,
      client: () => current.currentClient,
      restart: () => current.restart(),
      refreshSpend: () => void spend.refresh(),
      flushDiagnostics: (uri) => forwarder.flushNow(uri),
      escalations: ends.escalations,
    },
    context.secrets,
  );
  current.ai = ai;
  const workflowCommands = new WorkflowCommands({ log, client: () => current.currentClient, plans: ends.plans }, workflows, workflowsView);
  context.subscriptions.push(
    log,
    problems,
    spend,
    workflows,
    status,
    view,
    workflowsView,
    tasks,
    tasksView,
    forwarder,
    ai,
    workflowCommands,
    vscode.commands.registerCommand('acas.restartServer', () => current.restart()),
    vscode.commands.registerCommand('acas.showOutput', () => log.show(true)),
    vscode.commands.registerCommand('acas.showProblems', () => view.reveal()),
    vscode.commands.registerCommand('acas.refreshProblems', () => problems.refresh()),
    vscode.commands.registerCommand('acas.showTasks', () => tasksView.show()),
    vscode.commands.registerCommand('acas.refreshTasks', () => tasks.refresh()),
    // Not `acas.runCheckers`: the language client registers the server's own commands by name.
    vscode.commands.registerCommand('acas.runAllCheckers', () => runCheckers(current.currentClient, log)),
    // Not `acas.task.fromProblem`, the server's own command (its code action runs that one).
    vscode.commands.registerCommand('acas.taskFromProblem', (target?: unknown) =>
      taskFromProblem(current.currentClient, problems, tasks, log, target),
    ),
    vscode.workspace.onDidChangeConfiguration((event) => current.configurationChanged(event)),
  );
  void current.start('activate() began', activatedAt);
  log.appendLine(`[acas] activate() returned after ${(performance.now() - activatedAt).toFixed(1)} ms`);
}

export async function deactivate(): Promise<void> {
  await session?.stop();
  session = undefined;
}

/** The ends of work the server answered with a handle, by handle. */
interface Ends {
  escalations: Pending<EscalationDoneParams>;
  plans: Pending<PlanReadyParams>;
}

/** One server at a time: start, stop, restart, and follow the client's state. */
class Session {
  private client: LanguageClient | undefined;
  /** Set right after construction; receives the `acas-ai` diagnostics' data. */
  ai: AiCommands | undefined;
  /** Counts starts and stops, so that a start overtaken while it awaited gives up. */
  private generation = 0;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.OutputChannel,
    private readonly status: StatusBar,
    private readonly problems: ProblemsModel,
    private readonly spend: SpendModel,
    private readonly workflows: WorkflowsModel,
    private readonly tasks: TasksModel,
    private readonly forwarder: DiagnosticsForwarder,
    private readonly ends: Ends,
  ) {}

  get currentClient(): LanguageClient | undefined {
    return this.client;
  }

  /** `since` is when `event` happened, for the log line that says how long starting took. */
  async start(event = 'the restart began', since = performance.now()): Promise<void> {
    const generation = ++this.generation;
    this.status.setState('starting');
    const resolution = resolveServerPath({
      setting: vscode.workspace.getConfiguration('acas').get<string>('server.path'),
      env: process.env,
      extensionPath: this.context.extensionPath,
      workspaceRoot: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
      homeDir: os.homedir(),
      platform: process.platform,
      isExecutable,
    });
    for (const skipped of resolution.skipped) {
      this.log.appendLine(`[acas] skipping ${skipped.path} (from ${skipped.origin}): not an executable file`);
    }
    if (!resolution.ok) {
      this.log.appendLine(`[acas] ${resolution.message}`);
      this.status.setState('error', 'acas binary not found');
      void this.offerHelp(resolution.message);
      return;
    }
    this.log.appendLine(`[acas] starting ${resolution.path} serve (found via ${resolution.origin})`);
    // The stored keys go only into the server's environment; they are never logged.
    const keys = await readKeys((key) => this.context.secrets.get(key)).catch((error: unknown) => {
      this.log.appendLine(`[acas] reading the stored API keys failed: ${String(error)}`);
      return {};
    });
    if (generation !== this.generation) return;
    const stored = Object.keys(keys);
    if (stored.length > 0) this.log.appendLine(`[acas] API keys from secret storage: ${stored.join(', ')}`);
    this.ai?.suggestions.clear();
    const client = createClient(resolution.path, currentSettings(), this.log, {
      env: serverEnv(process.env, keys),
      onDiagnostics: (uri, diagnostics) => this.ai?.suggestions.update(uri, diagnostics),
      onEscalate: (args, run) => (this.ai ? this.ai.escalate(args, run) : run()),
    });
    this.client = client;
    client.onNotification(messages.escalationDone, (params) => this.ends.escalations.settle(params.escalationId, params));
    client.onNotification(messages.planReady, (params) => this.ends.plans.settle(params.planId, params));
    client.onNotification(messages.storeStatus, (params) => this.status.setStore(params));
    client.onDidChangeState(({ newState }) => {
      if (this.client !== client) return;
      const running = newState === State.Running;
      this.problems.setClient(running ? client : undefined);
      this.spend.setClient(running ? client : undefined);
      this.workflows.setClient(running ? client : undefined);
      this.tasks.setClient(running ? client : undefined);
      this.forwarder.setClient(running ? client : undefined);
      this.status.setState(running ? 'running' : newState === State.Starting ? 'starting' : 'stopped');
    });
    try {
      await client.start();
      this.log.appendLine(`[acas] client started ${(performance.now() - since).toFixed(1)} ms after ${event}`);
    } catch (error) {
      if (this.client !== client) return;
      // The client has already shown its own notification; say what failed in the log and status.
      this.log.appendLine(`[acas] the server ${resolution.path} failed to start: ${String(error)}`);
      this.status.setState('error', String(error));
    }
  }

  async stop(): Promise<void> {
    this.generation += 1;
    const client = this.client;
    this.client = undefined;
    this.problems.setClient(undefined);
    this.spend.setClient(undefined);
    this.workflows.setClient(undefined);
    this.forwarder.setClient(undefined);
    this.status.setState('stopped');
    this.ends.escalations.abandon('the ACAS server stopped before the AI answered');
    this.ends.plans.abandon('the ACAS server stopped before the plan was ready');
    if (!client) return;
    try {
      await client.stop(5000);
    } catch (error) {
      this.log.appendLine(`[acas] stopping the server: ${String(error)}`);
    }
    await client.dispose().catch(() => undefined);
  }

  async restart(): Promise<void> {
    const since = performance.now();
    this.log.appendLine('[acas] restarting the server');
    await this.stop();
    await this.start('the restart began', since);
  }

  configurationChanged(event: vscode.ConfigurationChangeEvent): void {
    if (event.affectsConfiguration('acas.server.path')) {
      void this.restart();
    } else if (event.affectsConfiguration('acas') && this.client?.state === State.Running) {
      const settings: { acas: Settings } = { acas: currentSettings() };
      void this.client.sendNotification(DidChangeConfigurationNotification.type, { settings });
    }
  }

  private async offerHelp(message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, 'Open Settings', 'Show Output');
    if (choice === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'acas.server.path');
    if (choice === 'Show Output') this.log.show(true);
  }
}

/** `ACAS: Run Checkers`: every checker of the workspace, now; their problems arrive as diagnostics. */
async function runCheckers(client: LanguageClient | undefined, log: vscode.OutputChannel): Promise<void> {
  if (!client) {
    void vscode.window.showWarningMessage('ACAS is not running; run "ACAS: Restart Server" first.');
    return;
  }
  try {
    const result = (await client.sendRequest(ExecuteCommandRequest.type, { command: Commands.runCheckers, arguments: [] })) as RunCheckersResult;
    const started = result?.started ?? [];
    log.appendLine(`[acas] ${Commands.runCheckers}: started ${started.join(', ') || 'nothing'}`);
    if (started.length === 0) void vscode.window.showInformationMessage('ACAS found no checker to run in this workspace.');
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.appendLine(`[acas] ${Commands.runCheckers} failed: ${message}`);
    void vscode.window.showErrorMessage(`ACAS could not run the checkers: ${message}`);
  }
}

/** `ACAS: Create a Task for Agents from a Problem`: the view's problem, or one picked. */
async function taskFromProblem(
  client: LanguageClient | undefined,
  problems: ProblemsModel,
  tasks: TasksModel,
  log: vscode.OutputChannel,
  target: unknown,
): Promise<void> {
  if (!client) {
    void vscode.window.showWarningMessage('ACAS is not running; run "ACAS: Restart Server" first.');
    return;
  }
  let fingerprint = fingerprintOf(target);
  if (!fingerprint) {
    const open = picks(problems.problems ?? []);
    if (open.length === 0) {
      void vscode.window.showInformationMessage('ACAS knows of no open problem to make a task of.');
      return;
    }
    fingerprint = (await vscode.window.showQuickPick(open, { placeHolder: 'The problem agents should fix' }))?.fingerprint;
    if (!fingerprint) return;
  }
  try {
    const result = (await client.sendRequest(ExecuteCommandRequest.type, {
      command: Commands.taskFromProblem,
      arguments: [{ fingerprint }],
    })) as TaskFromProblemResult;
    log.appendLine(`[acas] ${Commands.taskFromProblem}: task #${result.task.id}${result.created ? '' : ' (already open)'}`);
    void vscode.window.showInformationMessage(outcomeText(result));
    void tasks.refresh();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.appendLine(`[acas] ${Commands.taskFromProblem} failed: ${message}`);
    void vscode.window.showErrorMessage(`ACAS could not make the task: ${message}`);
  }
}

function currentSettings(): Settings {
  const config = vscode.workspace.getConfiguration('acas');
  return readSettings(
    (key) => {
      const v = config.inspect(key);
      return v?.workspaceFolderValue ?? v?.workspaceValue ?? v?.globalValue;
    },
    (extension) => vscode.extensions.getExtension(extension) !== undefined,
  );
}

function isExecutable(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
