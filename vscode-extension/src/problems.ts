/**
 * Keeps the latest answer of `acas/problems`, refreshed (debounced) whenever the editor's
 * diagnostics change, and tells the status bar and the problems view. It does not interpret
 * problems; that is the server's job.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import * as messages from './messages';
import type { Problem } from './protocol';

const REFRESH_DELAY_MS = 300;

export class ProblemsModel implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private generation = 0;
  private failureLogged = false;
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly subscription: vscode.Disposable;
  /** Undefined until the running server has answered once. */
  problems: Problem[] | undefined;
  readonly onDidChange = this.changed.event;

  constructor(private readonly log: vscode.OutputChannel) {
    this.subscription = vscode.languages.onDidChangeDiagnostics(() => this.scheduleRefresh());
  }

  /** Follows a new (running) client, or none. */
  setClient(client: LanguageClient | undefined): void {
    this.client = client;
    this.problems = undefined;
    this.generation += 1;
    this.changed.fire();
    if (client) this.scheduleRefresh(0);
  }

  scheduleRefresh(delay = REFRESH_DELAY_MS): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refresh();
    }, delay);
  }

  async refresh(): Promise<void> {
    const client = this.client;
    if (!client) return;
    const generation = this.generation;
    try {
      const problems = await client.sendRequest(messages.problems, {});
      if (generation !== this.generation) return;
      this.problems = problems;
      this.failureLogged = false;
      this.changed.fire();
    } catch (error) {
      if (!this.failureLogged) this.log.appendLine(`[acas] ${messages.problems.method} failed: ${String(error)}`);
      this.failureLogged = true;
    }
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.subscription.dispose();
    this.changed.dispose();
  }
}
