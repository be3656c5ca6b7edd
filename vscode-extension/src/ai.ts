/**
 * The AI commands: `ACAS: Explain and Fix with AI` asks the server (`acas.escalate` through
 * `workspace/executeCommand`) about the cursor's position (the server chooses the diagnostic
 * there); the server answers at once with a handle, and the extension shows the answer when
 * `acas/escalationDone` brings it;
 * `ACAS: Dismiss AI Suggestion` sends `acas/fixFeedback`; `ACAS: Set API Key` and
 * `ACAS: Clear API Keys` manage the keys in secret storage. The server does the work (context,
 * providers, budgets, verification, the `acas-ai` diagnostic and its quick fix); this only asks
 * and shows.
 */
import * as vscode from 'vscode';
import { ExecuteCommandRequest, State, type LanguageClient } from 'vscode-languageclient/node';
import { PROVIDERS, secretKey } from './apiKeys';
import { apiKeyMayHelp, errorKind, errorMessage, failureError } from './errors';
import { AiSuggestions, doneOutcome, escalateAt, handleOf, resultMarkdown, resultMessage, type AiSuggestion } from './escalation';
import * as messages from './messages';
import type { Pending } from './pending';
import { Commands, type EscalateArgs, type EscalateResult, type EscalationDoneParams } from './protocol';

/** What the commands need from the running session. */
export interface AiHost {
  readonly log: vscode.OutputChannel;
  /** The client, when the server runs. */
  client(): LanguageClient | undefined;
  restart(): Promise<void>;
  /** After an escalation: the spend changed. */
  refreshSpend(): void;
  /** Sends the other extensions' pending diagnostics of `uri` to the server now. */
  flushDiagnostics(uri: string): void;
  /** The escalations' ends (`acas/escalationDone`), by escalation id. */
  readonly escalations: Pending<EscalationDoneParams>;
}

const DETAILS_SCHEME = 'acas-explanation';

export class AiCommands implements vscode.Disposable {
  /** The `acas-ai` diagnostics' fixIds, from the client middleware. */
  readonly suggestions = new AiSuggestions();
  private readonly details = new Map<string, string>();
  private detailsCount = 0;
  private readonly disposables: vscode.Disposable[];

  constructor(
    private readonly host: AiHost,
    private readonly secrets: vscode.SecretStorage,
  ) {
    this.disposables = [
      vscode.commands.registerCommand('acas.explainError', () => this.explain()),
      vscode.commands.registerCommand('acas.dismissSuggestion', () => this.dismiss()),
      vscode.commands.registerCommand('acas.setApiKey', () => this.setApiKey()),
      vscode.commands.registerCommand('acas.clearApiKeys', () => this.clearApiKeys()),
      vscode.workspace.registerTextDocumentContentProvider(DETAILS_SCHEME, { provideTextDocumentContent: (uri) => this.details.get(uri.path) ?? '' }),
    ];
  }

  private runningClient(): LanguageClient | undefined {
    const client = this.host.client();
    if (client?.state === State.Running) return client;
    void vscode.window.showErrorMessage('ACAS: the server is not running.', 'Show Output').then((choice) => {
      if (choice) this.host.log.show(true);
    });
    return undefined;
  }

  async explain(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('ACAS: open a file and put the cursor on a diagnostic to explain it.');
      return;
    }
    const client = this.runningClient();
    if (!client) return;
    const uri = editor.document.uri.toString();
    // The server chooses among the diagnostics it knows: other tools' must have reached it.
    this.host.flushDiagnostics(uri);
    const args = escalateAt(uri, editor.selection.active);
    await this.follow(args, Promise.resolve(client.sendRequest(ExecuteCommandRequest.type, { command: Commands.escalate, arguments: [args] })));
  }

  /**
   * Runs one `acas.escalate` (`run` sends it), waits for its `acas/escalationDone` and shows the
   * answer or the refusal; used by the command and, through the client middleware, by the
   * server's code action. Returns the handle's answer to the caller at once, as the server did.
   */
  escalate(args: EscalateArgs, run: () => Promise<unknown>): Promise<unknown> {
    const answer = run();
    void this.follow(args, answer);
    // A refusal is shown by `follow`, once.
    return answer.catch(() => undefined);
  }

  /** Waits for the escalation `answer` names to end, and shows how. */
  async follow(args: EscalateArgs, answer: Promise<unknown>): Promise<EscalateResult | undefined> {
    const done = answer.then((started) => {
      const id = handleOf(started, 'escalationId');
      if (id === undefined) throw new Error('the server answered acas.escalate without an escalationId; update the acas binary');
      return this.host.escalations.wait(id);
    });
    // The server reports its own progress ($/progress); this is only a quiet hint meanwhile.
    vscode.window.setStatusBarMessage('$(sync~spin) ACAS: asking the AI provider…', done);
    let result: EscalateResult;
    try {
      const outcome = doneOutcome(await done);
      if ('failure' in outcome) throw failureError(outcome.failure);
      result = outcome.result;
    } catch (error) {
      void this.showFailure(error);
      return undefined;
    } finally {
      this.host.refreshSpend();
    }
    this.host.log.appendLine(
      `[acas] ${Commands.escalate}: ${result.provider} ${result.model}, $${result.costUsd.toFixed(4)}${result.cached ? ' (cached)' : ''}, ` +
        (result.fixId ? `fix ${result.fixId} offered` : result.fixRejected ? `no fix: ${result.fixRejected}` : 'no fix'),
    );
    void this.showResult(args, result);
    return result;
  }

  private async showResult(args: EscalateArgs, result: EscalateResult): Promise<void> {
    const message = resultMessage(result);
    const choice = await vscode.window.showInformationMessage(message.text, ...message.buttons);
    const where = args.range?.start ?? args.position ?? { line: 0, character: 0 };
    const at = new vscode.Position(where.line, where.character);
    if (choice === 'Show Fix') await this.showFix(vscode.Uri.parse(args.uri), at);
    if (choice === 'Details') await this.showDetails(result, args.diagnostic?.message.split('\n', 1)[0] ?? 'ACAS: AI explanation');
  }

  private async showFailure(error: unknown): Promise<void> {
    const reason = errorMessage(error);
    const kind = errorKind(error);
    if (kind === 'noDiagnostic') {
      void vscode.window.showInformationMessage('ACAS: there is no diagnostic under the cursor to explain.');
      return;
    }
    if (kind === 'cancelled') {
      this.host.log.appendLine(`[acas] ${Commands.escalate} cancelled`);
      return;
    }
    const buttons = apiKeyMayHelp(kind) ? ['Set API Key', 'Show Output'] : ['Show Output'];
    this.host.log.appendLine(`[acas] ${Commands.escalate} failed: ${reason}`);
    const choice = await vscode.window.showErrorMessage(`ACAS could not explain this: ${reason}`, ...buttons);
    if (choice === 'Set API Key') await this.setApiKey();
    if (choice === 'Show Output') this.host.log.show(true);
  }

  /** Puts the cursor on the diagnostic and opens the quick fixes there (the `acas-ai` one among them). */
  private async showFix(uri: vscode.Uri, at: vscode.Position): Promise<void> {
    const editor = await vscode.window.showTextDocument(uri, { preserveFocus: false });
    editor.selection = new vscode.Selection(at, at);
    editor.revealRange(new vscode.Range(at, at), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    await vscode.commands.executeCommand('editor.action.quickFix');
  }

  private async showDetails(result: EscalateResult, title: string): Promise<void> {
    this.detailsCount += 1;
    const path = `/explanation-${this.detailsCount}.md`;
    this.details.set(path, resultMarkdown(result, title));
    const uri = vscode.Uri.from({ scheme: DETAILS_SCHEME, path });
    try {
      await vscode.commands.executeCommand('markdown.showPreview', uri);
    } catch {
      await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri), { preview: true });
    }
  }

  async dismiss(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const found = editor ? this.suggestions.at(editor.document.uri.toString(), editor.selection.active) : [];
    if (found.length === 0) {
      void vscode.window.showInformationMessage('ACAS: there is no AI suggestion under the cursor.');
      return;
    }
    let suggestion: AiSuggestion = found[0]!;
    if (found.length > 1) {
      const items = found.map((s) => ({ label: s.message.split('\n', 1)[0]!, description: `line ${s.range.start.line + 1}`, suggestion: s }));
      const pick = await vscode.window.showQuickPick(items, { title: 'ACAS: Dismiss AI Suggestion', placeHolder: 'Which suggestion?' });
      if (!pick) return;
      suggestion = pick.suggestion;
    }
    const client = this.runningClient();
    if (!client) return;
    try {
      await client.sendNotification(messages.fixFeedback, { fixId: suggestion.fixId, outcome: 'dismissed' });
      void vscode.window.showInformationMessage('ACAS: AI suggestion dismissed.');
    } catch (error) {
      void vscode.window.showErrorMessage(`ACAS: could not dismiss the suggestion: ${String(error)}`);
    }
  }

  async setApiKey(): Promise<void> {
    const items = await Promise.all(
      PROVIDERS.map(async (provider) => ({
        label: provider.label,
        description: (await this.secrets.get(secretKey(provider))) ? 'stored (replace)' : undefined,
        detail: `Given to the server as ${provider.env}`,
        provider,
      })),
    );
    const pick = await vscode.window.showQuickPick(items, { title: 'ACAS: Set API Key', placeHolder: 'Which AI provider?' });
    if (!pick) return;
    const key = await vscode.window.showInputBox({
      title: `ACAS: ${pick.label} API key`,
      prompt: `Stored in VS Code's secret storage and given to the ACAS server as ${pick.provider.env}`,
      password: true,
      ignoreFocusOut: true,
      validateInput: (value) => (value.trim() === '' ? 'Enter the API key' : undefined),
    });
    if (key === undefined || key.trim() === '') return;
    await this.secrets.store(secretKey(pick.provider), key.trim());
    this.host.log.appendLine(`[acas] ${pick.label} API key stored; restarting the server`);
    void vscode.window.showInformationMessage(`ACAS: ${pick.label} API key stored; restarting the server to use it.`);
    await this.host.restart();
  }

  async clearApiKeys(): Promise<void> {
    let cleared = 0;
    for (const provider of PROVIDERS) {
      if (await this.secrets.get(secretKey(provider))) cleared += 1;
      await this.secrets.delete(secretKey(provider));
    }
    if (cleared === 0) {
      void vscode.window.showInformationMessage('ACAS: no API keys are stored.');
      return;
    }
    this.host.log.appendLine(`[acas] ${cleared} stored API key(s) cleared; restarting the server`);
    void vscode.window.showInformationMessage(`ACAS: cleared ${cleared} stored API key${cleared === 1 ? '' : 's'}; restarting the server.`);
    await this.host.restart();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
