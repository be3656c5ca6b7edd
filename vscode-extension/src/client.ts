/**
 * Creates the language client that runs `acas serve` over stdio, with the settings as
 * `initializationOptions`, the languages ACAS parses as its document selector, and the given
 * environment (the stored API keys over the extension host's).
 */
import * as vscode from 'vscode';
import { LanguageClient, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import type { PublishedDiagnostic } from './escalation';
import { Commands, type EscalateArgs, type Settings } from './protocol';

export const LANGUAGES = ['rust', 'typescript', 'typescriptreact', 'javascript', 'javascriptreact', 'python', 'go', 'json'];

export interface ClientHooks {
  env: NodeJS.ProcessEnv;
  /** Sees each `publishDiagnostics` with the LSP `data` the client keeps on its diagnostics. */
  onDiagnostics(uri: string, diagnostics: readonly PublishedDiagnostic[]): void;
  /**
   * Runs `acas.escalate` when VS Code invokes it (the server's "Explain and fix with AI" code
   * action), so that its answer is shown like the command's.
   */
  onEscalate(args: EscalateArgs, run: () => Promise<unknown>): Promise<unknown>;
}

export function createClient(serverPath: string, settings: Settings, outputChannel: vscode.OutputChannel, hooks: ClientHooks): LanguageClient {
  const run = { command: serverPath, args: ['serve'], options: { env: hooks.env } };
  const serverOptions: ServerOptions = { run, debug: run };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.map((language) => ({ scheme: 'file', language })),
    initializationOptions: settings,
    outputChannel,
    middleware: {
      handleDiagnostics(uri, diagnostics, next) {
        // vscode-languageclient's diagnostics (ProtocolDiagnostic) carry `data`; VS Code's copies do not.
        hooks.onDiagnostics(uri.toString(), diagnostics.map((d) => ({ range: d.range, message: d.message, source: d.source, data: (d as { data?: unknown }).data })));
        next(uri, diagnostics);
      },
      executeCommand(command, args, next) {
        if (command !== Commands.escalate || args.length !== 1) return next(command, args);
        return hooks.onEscalate(args[0] as EscalateArgs, async () => next(command, args));
      },
    },
    // Settings changes are sent by the extension itself (see extension.ts), in the `acas` shape.
  };
  return new LanguageClient('acas', 'ACAS', serverOptions, clientOptions);
}
