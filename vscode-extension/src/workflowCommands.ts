/**
 * The workflow commands: `ACAS: Run Workflow` (a quick pick of workflows, then a form for their
 * inputs, then `acas.workflow.run` through `workspace/executeCommand`), cancel and re-run of a
 * run (inline actions of the workflows view, `acas.workflow.cancel` and `acas.workflow.rerun`),
 * refresh and show, and the message when a run ends. The server runs the workflows; this only
 * asks and shows.
 */
import * as vscode from 'vscode';
import { ExecuteCommandRequest, State, type LanguageClient } from 'vscode-languageclient/node';
import { Commands, type PlanArgs, type PlanReadyParams, type PlanResult, type WorkflowRunArgs, type WorkflowRunParams, type WorkflowStarted, type WorkflowSummary } from './protocol';
import { errorData, errorMessage, failureError } from './errors';
import { handleOf } from './escalation';
import type { Pending } from './pending';
import { askAgain, collectInputs, type FormAsker, type PickItem } from './workflowInputs';
import { Announcements, finishedMessage, SHOW_RUN } from './workflowRuns';
import type { WorkflowNode, WorkflowTreeNode } from './workflowTree';
import type { WorkflowsModel } from './workflows';
import type { WorkflowsView } from './workflowsView';

export const COMMAND_IDS = {
  run: 'acas.runWorkflow',
  cancel: 'acas.cancelWorkflowRun',
  rerun: 'acas.rerunWorkflowRun',
  refresh: 'acas.refreshWorkflows',
  show: 'acas.showWorkflows',
  plan: 'acas.planTask',
} as const;

/** What the commands need from the running session. */
export interface WorkflowHost {
  readonly log: vscode.OutputChannel;
  /** The client, when the server runs. */
  client(): LanguageClient | undefined;
  /** The plannings' ends (`acas/planReady`), by plan id. */
  readonly plans: Pending<PlanReadyParams>;
}

export class WorkflowCommands implements vscode.Disposable {
  private readonly announcements = new Announcements();
  private readonly disposables: vscode.Disposable[];

  constructor(
    private readonly host: WorkflowHost,
    private readonly model: WorkflowsModel,
    private readonly view: WorkflowsView,
  ) {
    this.disposables = [
      vscode.commands.registerCommand(COMMAND_IDS.run, (target?: WorkflowNode | string) => this.run(target)),
      vscode.commands.registerCommand(COMMAND_IDS.cancel, (target?: WorkflowTreeNode) => this.cancel(target)),
      vscode.commands.registerCommand(COMMAND_IDS.rerun, (target?: WorkflowTreeNode) => this.rerun(target)),
      vscode.commands.registerCommand(COMMAND_IDS.refresh, () => model.refresh()),
      vscode.commands.registerCommand(COMMAND_IDS.show, () => view.show()),
      vscode.commands.registerCommand(COMMAND_IDS.plan, () => this.plan()),
      model.onDidFinish((params) => {
        const announce = this.announcements.ended(params);
        if (announce) void this.announce(announce);
      }),
    ];
  }

  /** The running client when it offers `command`; else says why not. */
  private clientFor(command: string, offered: boolean): LanguageClient | undefined {
    const client = this.host.client();
    if (client?.state !== State.Running) {
      void vscode.window.showErrorMessage('ACAS: the server is not running.', 'Show Output').then((choice) => {
        if (choice) this.host.log.show(true);
      });
      return undefined;
    }
    if (!offered) {
      void vscode.window.showErrorMessage(`ACAS: this server does not offer ${command}; update the acas binary.`);
      return undefined;
    }
    return client;
  }

  async run(target?: WorkflowNode | string): Promise<void> {
    const client = this.clientFor(Commands.workflowRun, this.model.capabilities.run);
    if (!client) return;
    await this.model.refresh();
    const workflows = this.model.workflows ?? [];
    const name = typeof target === 'string' ? target : target?.workflow.name;
    let workflow: WorkflowSummary | undefined = name === undefined ? undefined : workflows.find((w) => w.name === name);
    if (name !== undefined && !workflow) {
      void vscode.window.showErrorMessage(`ACAS: there is no valid workflow named ${name}.`);
      return;
    }
    if (!workflow) {
      if (workflows.length === 0) {
        void vscode.window.showInformationMessage('ACAS: this workspace has no valid workflows; add one as .acas/workflows/NAME.yaml.');
        return;
      }
      const items = workflows.map((w) => ({
        label: w.name,
        description: w.triggers.join(', '),
        detail: `${w.steps} step${w.steps === 1 ? '' : 's'}${w.inputs.length > 0 ? ` · inputs: ${w.inputs.map((i) => i.name).join(', ')}` : ''}`,
        workflow: w,
      }));
      const pick = await vscode.window.showQuickPick(items, { title: 'ACAS: Run Workflow', placeHolder: 'Which workflow?' });
      if (!pick) return;
      workflow = pick.workflow;
    }
    let inputs = await collectInputs(workflow.name, workflow.inputs, vscodeAsker);
    // The server checks the inputs; an input it refuses is asked again with its reason.
    while (inputs) {
      const args: WorkflowRunArgs = { workflow: workflow.name, inputs };
      const outcome = await this.send<WorkflowStarted>(client, Commands.workflowRun, args);
      if ('result' in outcome) {
        if (outcome.result) this.started(workflow.name, outcome.result.runId);
        return;
      }
      const data = errorData(outcome.error);
      const refused = data?.kind === 'invalidInputs' && data.input !== undefined && workflow.inputs.some((i) => i.name === data.input);
      if (!refused) {
        this.showError(Commands.workflowRun, `run ${workflow.name}`, outcome.error);
        return;
      }
      const reason = data.reason ?? errorMessage(outcome.error);
      this.host.log.appendLine(`[acas] ${Commands.workflowRun} refused input ${data.input}: ${reason}`);
      inputs = await askAgain(workflow.name, workflow.inputs, inputs, { input: data.input!, reason }, vscodeAsker);
    }
  }

  /**
   * `ACAS: Plan and Run a Task`: asks what to do, then `acas.plan`, which answers at once with a
   * handle. The server asks the AI providers for a plan and shows it for approval itself
   * (`window/showMessageRequest`); `acas/planReady` says how it ended. An approved plan runs as
   * a workflow and shows in the view like any run.
   */
  async plan(): Promise<void> {
    const client = this.clientFor(Commands.plan, this.model.capabilities.run);
    if (!client) return;
    const prompt = await vscode.window.showInputBox({
      title: 'ACAS: Plan and Run a Task',
      prompt: 'What should be done? ACAS asks the AI provider for a plan of steps and shows it before running anything.',
      ignoreFocusOut: true,
      validateInput: (value) => (value.trim() === '' ? 'Describe the task' : undefined),
    });
    if (prompt === undefined || prompt.trim() === '') return;
    const started = await this.execute<unknown>(client, Commands.plan, { prompt: prompt.trim() } satisfies PlanArgs, 'plan the task');
    if (started === undefined) return;
    const planId = handleOf(started, 'planId');
    if (planId === undefined) {
      this.showError(Commands.plan, 'plan the task', new Error('the server answered without a planId; update the acas binary'));
      return;
    }
    // The server shows its own progress ($/progress) and asks for approval; this waits for the end.
    let result: PlanResult;
    try {
      const ready = await this.host.plans.wait(planId);
      if (ready.error) throw failureError(ready.error);
      if (!ready.result) throw new Error('the server gave no plan');
      result = ready.result;
    } catch (error) {
      if (errorData(error)?.kind === 'cancelled') {
        this.host.log.appendLine('[acas] planning cancelled');
        return;
      }
      this.showError(Commands.plan, 'plan the task', error);
      return;
    }
    this.host.log.appendLine(`[acas] plan of ${result.tasks} task(s), $${result.costUsd.toFixed(4)}:\n${result.plan}`);
    if (result.approved && result.runId !== undefined) this.started('plan', result.runId);
    else void vscode.window.showInformationMessage('ACAS: the plan was not run.');
  }

  async cancel(target?: WorkflowTreeNode): Promise<void> {
    if (target?.kind !== 'run') return;
    const client = this.clientFor(Commands.workflowCancel, this.model.capabilities.cancel);
    if (!client) return;
    const { runId, workflow } = target.run;
    const done = await this.execute<unknown>(client, Commands.workflowCancel, { runId }, `cancel run ${runId} of ${workflow}`);
    if (done !== undefined) this.model.scheduleRefresh();
  }

  async rerun(target?: WorkflowTreeNode): Promise<void> {
    if (target?.kind !== 'run') return;
    const client = this.clientFor(Commands.workflowRerun, this.model.capabilities.rerun);
    if (!client) return;
    const { runId, workflow } = target.run;
    const started = await this.execute<WorkflowStarted>(client, Commands.workflowRerun, { runId }, `re-run run ${runId} of ${workflow}`);
    if (started) this.started(workflow, started.runId);
  }

  private started(workflow: string, runId: number): void {
    this.host.log.appendLine(`[acas] workflow ${workflow} started (run ${runId})`);
    void vscode.window.showInformationMessage(`ACAS: workflow ${workflow} started (run ${runId})`);
    this.model.scheduleRefresh();
    const ended = this.announcements.started(runId);
    if (ended) void this.announce(ended);
  }

  /** Sends one `workspace/executeCommand`; its result, or undefined after showing the error. */
  private async execute<T>(client: LanguageClient, command: string, arg: unknown, what: string): Promise<T | undefined> {
    const outcome = await this.send<T>(client, command, arg);
    if ('result' in outcome) return outcome.result;
    this.showError(command, what, outcome.error);
    return undefined;
  }

  /** Sends one `workspace/executeCommand`: its result (null for none), or the error. */
  private async send<T>(client: LanguageClient, command: string, arg: unknown): Promise<{ result: T } | { error: unknown }> {
    try {
      const result = (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] })) as T;
      return { result: result ?? (null as T) };
    } catch (error) {
      return { error };
    }
  }

  private showError(command: string, what: string, error: unknown): void {
    const reason = errorMessage(error);
    this.host.log.appendLine(`[acas] ${command} failed: ${reason}`);
    void vscode.window.showErrorMessage(`ACAS could not ${what}: ${reason}`);
  }

  private async announce(params: WorkflowRunParams): Promise<void> {
    const message = finishedMessage(params);
    this.host.log.appendLine(`[acas] ${message.text}`);
    const choice =
      message.level === 'information'
        ? await vscode.window.showInformationMessage(message.text, ...message.buttons)
        : await vscode.window.showWarningMessage(message.text, ...message.buttons);
    if (choice === SHOW_RUN) await this.view.revealRun(params.runId);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** The input form with VS Code's input box and quick pick. */
const vscodeAsker: FormAsker = {
  text: (question) =>
    Promise.resolve(
      vscode.window.showInputBox({
        title: question.title,
        prompt: question.prompt,
        value: question.value,
        placeHolder: question.placeHolder,
        ignoreFocusOut: true,
        validateInput: (text) => question.validate(text),
      }),
    ),
  pick: (question) =>
    Promise.resolve(vscode.window.showQuickPick<PickItem>(question.items, { title: question.title, placeHolder: question.placeHolder, ignoreFocusOut: true })),
};
