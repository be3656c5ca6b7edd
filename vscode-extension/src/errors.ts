/**
 * What the server's errors tell the extension: `data.kind` (the protocol's `ErrorKind`) and, for
 * `invalidInputs`, the input at fault and why. The extension decides on the kind, never on the
 * message, which is for people. No VS Code import.
 */
import type { ErrorData, ErrorKind, Failure } from './protocol';

/** The `data` of a server error (a `ResponseError` of vscode-jsonrpc), when it has a kind. */
export function errorData(error: unknown): ErrorData | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const data = (error as { data?: unknown }).data;
  if (typeof data !== 'object' || data === null) return undefined;
  return typeof (data as { kind?: unknown }).kind === 'string' ? (data as ErrorData) : undefined;
}

export function errorKind(error: unknown): ErrorKind | undefined {
  return errorData(error)?.kind;
}

/** The error's message, to show. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether storing an API key may fix an escalation that failed with `kind`. */
export function apiKeyMayHelp(kind: ErrorKind | undefined): boolean {
  return kind === 'noProvider' || kind === 'providerFailed';
}

/**
 * A failure a notification reported (`acas/escalationDone`, `acas/planReady`) as an error with
 * the same `data.kind` as an error answer, so that the same code shows both.
 */
export function failureError(failure: Failure): Error {
  return Object.assign(new Error(failure.message), { data: { kind: failure.kind } satisfies ErrorData });
}
