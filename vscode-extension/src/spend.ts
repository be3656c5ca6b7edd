/**
 * Keeps the latest answer of `acas/spend`: asked when the server starts, after each
 * `acas.escalate`, when the server says the team's spend changed (`acas/spendChanged`), and
 * every minute while the window has focus (and on regaining it). A server
 * without `acas/spend` just leaves it undefined.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import * as messages from './messages';
import type { SpendResult } from './protocol';

const INTERVAL_MS = 60_000;

export class SpendModel implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private listener: vscode.Disposable | undefined;
  private generation = 0;
  private failureLogged = false;
  private lastAsked = 0;
  private readonly timer = setInterval(() => {
    if (vscode.window.state.focused) void this.refresh();
  }, INTERVAL_MS);
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly subscription = vscode.window.onDidChangeWindowState((state) => {
    if (state.focused && Date.now() - this.lastAsked >= INTERVAL_MS) void this.refresh();
  });
  /** Undefined until the running server has answered once. */
  spend: SpendResult | undefined;
  readonly onDidChange = this.changed.event;

  constructor(private readonly log: vscode.OutputChannel) {}

  /** Follows a new (running) client, or none. */
  setClient(client: LanguageClient | undefined): void {
    this.client = client;
    this.listener?.dispose();
    this.listener = client?.onNotification(messages.spendChanged, () => void this.refresh());
    this.spend = undefined;
    this.generation += 1;
    this.failureLogged = false;
    this.changed.fire();
    if (client) void this.refresh();
  }

  async refresh(): Promise<void> {
    const client = this.client;
    if (!client) return;
    const generation = this.generation;
    this.lastAsked = Date.now();
    try {
      const spend = await client.sendRequest(messages.spend);
      if (generation !== this.generation) return;
      this.spend = spend;
      this.failureLogged = false;
      this.changed.fire();
    } catch (error) {
      if (!this.failureLogged) this.log.appendLine(`[acas] ${messages.spend.method} failed: ${String(error)}`);
      this.failureLogged = true;
    }
  }

  dispose(): void {
    clearInterval(this.timer);
    this.listener?.dispose();
    this.subscription.dispose();
    this.changed.dispose();
  }
}
