/**
 * Forwards other extensions' diagnostics to the server as `acas/externalDiagnostics`: on each
 * diagnostics change, the changed documents are debounced per URI, then `ForwardState` decides
 * what to send. Only `file:` documents are forwarded; the server works on files.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { KeyedDebouncer } from './debounce';
import { ForwardState } from './forwarding';
import { externalDiagnostics } from './messages';

const DEBOUNCE_MS = 200;

export class DiagnosticsForwarder implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private readonly state = new ForwardState();
  private readonly debouncer = new KeyedDebouncer<string>(DEBOUNCE_MS, (uri) => this.flush(uri));
  private readonly subscription: vscode.Disposable;

  constructor(private readonly log: vscode.OutputChannel) {
    this.subscription = vscode.languages.onDidChangeDiagnostics((event) => {
      if (!this.client) return;
      for (const uri of event.uris) if (uri.scheme === 'file') this.debouncer.schedule(uri.toString());
    });
  }

  /** Follows a new (running) client, or none; a new server gets every document's current set. */
  setClient(client: LanguageClient | undefined): void {
    this.client = client;
    this.state.clear();
    this.debouncer.dispose();
    if (!client) return;
    for (const [uri] of vscode.languages.getDiagnostics()) {
      if (uri.scheme === 'file') this.debouncer.schedule(uri.toString());
    }
  }

  /** Sends `uri`'s pending changes now, so that a request that follows sees them. */
  flushNow(uri: string): void {
    this.debouncer.flush(uri);
  }

  private flush(uri: string): void {
    const client = this.client;
    if (!client) return;
    const messages = this.state.update(uri, vscode.languages.getDiagnostics(vscode.Uri.parse(uri)));
    for (const params of messages) {
      client.sendNotification(externalDiagnostics, params).catch((error: unknown) => {
        this.log.appendLine(`[acas] ${externalDiagnostics.method} failed for ${uri}: ${String(error)}`);
      });
    }
  }

  dispose(): void {
    this.subscription.dispose();
    this.debouncer.dispose();
  }
}
