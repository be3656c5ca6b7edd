/**
 * The pure parts of `ACAS: Explain and Fix with AI` and `ACAS: Dismiss AI Suggestion`: which
 * diagnostics are under the cursor, the `acas.escalate` argument for one, what to tell the user
 * about the server's answer, and the `fixId`s of the server's `acas-ai` diagnostics (VS Code's
 * `Diagnostic` drops LSP's `data`, so they are kept from `publishDiagnostics`). No VS Code import.
 */
import { OWN_SOURCES, toExternal, type EditorDiagnostic } from './forwarding';
import type { EscalateArgs, EscalateResult, Position, Range } from './protocol';

/** Source of the server's AI explanations (a diagnostic with a quick fix). */
export const AI_SOURCE = 'acas-ai';

/** VS Code's `DiagnosticSeverity.Error`. */
const ERROR = 0;

/** Whether `range` holds `position`, ends included (a cursor just after a token is on it). */
export function contains(range: Range, position: Position): boolean {
  return compare(range.start, position) <= 0 && compare(position, range.end) <= 0;
}

/**
 * The diagnostics to offer for the cursor: those whose range holds it, else those on its line;
 * never the server's own AI explanations; only errors when there are any; most severe first,
 * then the narrowest. One result means no question; several mean a quick pick.
 */
export function diagnosticsAt<D extends EditorDiagnostic>(diagnostics: readonly D[], position: Position): D[] {
  const candidates = diagnostics.filter((d) => d.source !== AI_SOURCE);
  let found = candidates.filter((d) => contains(d.range, position));
  if (found.length === 0) found = candidates.filter((d) => d.range.start.line <= position.line && position.line <= d.range.end.line);
  const errors = found.filter((d) => d.severity === ERROR);
  if (errors.length > 0) found = errors;
  return [...found].sort((a, b) => (a.severity ?? 9) - (b.severity ?? 9) || width(a.range) - width(b.range) || compare(a.range.start, b.range.start));
}

/**
 * The argument of `acas.escalate` for diagnostic `d` of document `uri`. ACAS's own diagnostics
 * are known to the server by their range; another tool's travel whole, with their source.
 */
export function toEscalateArgs(uri: string, d: EditorDiagnostic): EscalateArgs {
  const external = toExternal(d);
  const args: EscalateArgs = { uri, range: external.range };
  if (d.source && OWN_SOURCES.has(d.source)) return args;
  if (d.source) external.source = d.source;
  args.diagnostic = external;
  return args;
}

/** One line for a quick pick of diagnostics. */
export function describeDiagnostic(d: EditorDiagnostic): { label: string; description: string } {
  const code = typeof d.code === 'object' ? d.code.value : d.code;
  const severity = ['error', 'warning', 'information', 'hint'][d.severity ?? -1] ?? 'problem';
  const where = `line ${d.range.start.line + 1}, column ${d.range.start.character + 1}`;
  const origin = [d.source, code].filter((x) => x !== undefined && x !== '').join(' ');
  return { label: firstLine(d.message), description: [origin || undefined, severity, where].filter(Boolean).join(' · ') };
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

/** A size for ordering ranges: lines first, then characters. */
function width(r: Range): number {
  return (r.end.line - r.start.line) * 1_000_000 + (r.end.character - r.start.character);
}

function plain(r: Range): Range {
  return { start: { line: r.start.line, character: r.start.character }, end: { line: r.end.line, character: r.end.character } };
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0]!.trim();
}

function oneParagraph(s: string): string {
  const text = s.trim().split(/\n\s*\n/, 1)[0]!.replace(/\s+/g, ' ').trim();
  return /[.!?:]$/.test(text) ? text : `${text}.`;
}
