/**
 * The pure parts of `ACAS: Explain and Fix with AI` and `ACAS: Dismiss AI Suggestion`: the
 * `acas.escalate` argument for the cursor (the server chooses the diagnostic), what to tell the
 * user about the server's answer, and the `fixId`s of the server's `acas-ai` diagnostics (VS Code's
 * `Diagnostic` drops LSP's `data`, so they are kept from `publishDiagnostics`). No VS Code import.
 */
import type { EscalateArgs, EscalateResult, EscalationDoneParams, Position, Range } from './protocol';

/** Source of the server's AI explanations (a diagnostic with a quick fix). */
export const AI_SOURCE = 'acas-ai';

/** Whether `range` holds `position`, ends included (a cursor just after a token is on it). */
export function contains(range: Range, position: Position): boolean {
  return compare(range.start, position) <= 0 && compare(position, range.end) <= 0;
}

/**
 * The argument of `acas.escalate` for the cursor at `position` of document `uri`: the server
 * chooses which diagnostic there to explain, among its own and those forwarded to it.
 */
export function escalateAt(uri: string, position: Position): EscalateArgs {
  return { uri, position: { line: position.line, character: position.character } };
}

/**
 * The handle in the answer of `acas.escalate` or `acas.plan` (`{ escalationId }`, `{ planId }`),
 * or undefined when the answer has none (a server from before answers came as handles).
 */
export function handleOf(answer: unknown, key: 'escalationId' | 'planId'): number | undefined {
  if (typeof answer !== 'object' || answer === null) return undefined;
  const id = (answer as Record<string, unknown>)[key];
  return typeof id === 'number' && Number.isInteger(id) ? id : undefined;
}

/** The escalation's answer from its `acas/escalationDone`, or the failure it reports. */
export function doneOutcome(done: EscalationDoneParams): { result: EscalateResult } | { failure: NonNullable<EscalationDoneParams['error']> } {
  if (done.error) return { failure: done.error };
  if (done.result && typeof done.result.explanation === 'string') return { result: done.result };
  return { failure: { kind: 'internal', message: 'the server gave no explanation' } };
}

/** What an information message says about the server's answer, and which buttons it has. */
export function resultMessage(result: EscalateResult): { text: string; buttons: string[] } {
  const source = `${result.provider}${result.model ? ` ${result.model}` : ''}`;
  const cost = result.cached ? 'cached, no cost' : formatCost(result.costUsd);
  let text = `ACAS (${source}, ${cost}): ${oneParagraph(result.explanation)}`;
  if (result.fixId) text += ' A verified fix is available as a quick fix.';
  else if (result.fixRejected) text += ` No fix is offered: ${result.fixRejected}`;
  const buttons = result.fixId ? ['Show Fix', 'Details'] : ['Details'];
  return { text, buttons };
}

/** The explanation as a Markdown document, for `Details`. */
export function resultMarkdown(result: EscalateResult, title: string): string {
  const lines = [`# ${title}`, '', result.explanation.trim(), ''];
  if (result.fixId) lines.push('A verified fix is offered as a quick fix on the diagnostic (`acas-ai`).', '');
  else if (result.fixRejected) lines.push(`**No fix is offered:** ${result.fixRejected}`, '');
  lines.push(`*${result.provider}${result.model ? ` · ${result.model}` : ''} · ${result.cached ? 'from the cache, no cost' : formatCost(result.costUsd)}*`, '');
  return lines.join('\n');
}

function formatCost(usd: number): string {
  return usd > 0 && usd < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

/** An `acas-ai` diagnostic the server published, with the `fixId` from its `data`. */
export interface AiSuggestion {
  range: Range;
  message: string;
  fixId: string;
}

/** The diagnostics as `publishDiagnostics` carried them: the LSP data is what matters here. */
export interface PublishedDiagnostic {
  range: Range;
  message: string;
  source?: string;
  data?: unknown;
}

/** The latest `acas-ai` diagnostics with a `fixId`, per document URI. */
export class AiSuggestions {
  private readonly byUri = new Map<string, AiSuggestion[]>();

  /** Takes a document's complete published set (it replaces the previous one). */
  update(uri: string, diagnostics: readonly PublishedDiagnostic[]): void {
    const found: AiSuggestion[] = [];
    for (const d of diagnostics) {
      if (d.source !== AI_SOURCE) continue;
      const fixId = fixIdOf(d.data);
      if (fixId) found.push({ range: plain(d.range), message: d.message, fixId });
    }
    if (found.length > 0) this.byUri.set(uri, found);
    else this.byUri.delete(uri);
  }

  /** Those whose range holds `position`, else those on its line. */
  at(uri: string, position: Position): AiSuggestion[] {
    const all = this.byUri.get(uri) ?? [];
    const found = all.filter((s) => contains(s.range, position));
    return found.length > 0 ? found : all.filter((s) => s.range.start.line <= position.line && position.line <= s.range.end.line);
  }

  clear(): void {
    this.byUri.clear();
  }
}

function fixIdOf(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const fixId = (data as { fixId?: unknown }).fixId;
  return typeof fixId === 'string' && fixId !== '' ? fixId : undefined;
}

function compare(a: Position, b: Position): number {
  return a.line - b.line || a.character - b.character;
}

function plain(r: Range): Range {
  return { start: { line: r.start.line, character: r.start.character }, end: { line: r.end.line, character: r.end.character } };
}

function oneParagraph(s: string): string {
  const text = s.trim().split(/\n\s*\n/, 1)[0]!.replace(/\s+/g, ' ').trim();
  return /[.!?:]$/.test(text) ? text : `${text}.`;
}
