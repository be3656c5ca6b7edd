/**
 * Creates the language client that runs `acas serve` over stdio, with the settings as
 * `initializationOptions` and the languages ACAS parses as its document selector.
 */
import * as vscode from 'vscode';
import { LanguageClient, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import type { Settings } from './protocol';

export const LANGUAGES = ['rust', 'typescript', 'typescriptreact', 'javascript', 'javascriptreact', 'python', 'go', 'json'];

export function createClient(serverPath: string, settings: Settings, outputChannel: vscode.OutputChannel): LanguageClient {
  const run = { command: serverPath, args: ['serve'] };
  const serverOptions: ServerOptions = { run, debug: run };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.map((language) => ({ scheme: 'file', language })),
    initializationOptions: settings,
    outputChannel,
    // Settings changes are sent by the extension itself (see extension.ts), in the `acas` shape.
  };
  return new LanguageClient('acas', 'ACAS', serverOptions, clientOptions);
}
