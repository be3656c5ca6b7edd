/**
 * Keeps the latest answer of `acas/tasks`, asked again whenever the server says the queue
 * changed (`acas/tasksChanged`), and tells the Tasks view. It does not interpret tasks; the
 * server owns the queue.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import * as messages from './messages';
import type { TasksResult } from './protocol';

export class TasksModel implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private listener: vscode.Disposable | undefined;
  private generation = 0;
  private failureLogged = false;
  private readonly changed = new vscode.EventEmitter<void>();
  /** Undefined until the running server has answered once. */
  result: TasksResult | undefined;
  readonly onDidChange = this.changed.event;

  constructor(private readonly log: vscode.OutputChannel) {}

  /** Follows a new (running) client, or none. */
  setClient(client: LanguageClient | undefined): void {
    this.listener?.dispose();
    this.listener = client?.onNotification(messages.tasksChanged, () => void this.refresh());
    this.client = client;
    this.result = undefined;
    this.generation += 1;
    this.changed.fire();
    if (client) void this.refresh();
  }

  async refresh(): Promise<void> {
    const client = this.client;
    if (!client) return;
    const generation = this.generation;
    try {
      const result = await client.sendRequest(messages.tasks, {});
      if (generation !== this.generation) return;
      this.result = result;
      this.failureLogged = false;
      this.changed.fire();
    } catch (error) {
      if (!this.failureLogged) this.log.appendLine(`[acas] ${messages.tasks.method} failed: ${String(error)}`);
      this.failureLogged = true;
    }
  }

  dispose(): void {
    this.listener?.dispose();
    this.changed.dispose();
  }
}
