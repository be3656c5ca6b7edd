/**
 * Turns the diagnostics the editor holds for a document into `acas/externalDiagnostics`
 * messages: one per source, skipping ACAS's own, with an empty list for a source that is gone,
 * and nothing for a source whose set did not change since it was last sent. No VS Code import:
 * editor diagnostics are read through a structural type.
 */
import type { DiagnosticCode, ExternalDiagnostic, ExternalDiagnosticsParams, Range } from './protocol';

/** ACAS's own sources: the server already knows these. */
export const OWN_SOURCES: ReadonlySet<string> = new Set(['acas', 'acas-ai']);
/** Source name for diagnostics that carry none. */
export const UNKNOWN_SOURCE = 'unknown';

interface RangeLike {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

/** The parts of `vscode.Diagnostic` that are forwarded (severity is VS Code's: 0 error … 3 hint). */
export interface EditorDiagnostic {
  range: RangeLike;
  severity?: number;
  code?: string | number | { value: string | number };
  source?: string;
  message: string;
  relatedInformation?: readonly { location: { uri: { toString(): string }; range: RangeLike }; message: string }[];
}

export function toExternal(d: EditorDiagnostic): ExternalDiagnostic {
  const out: ExternalDiagnostic = { range: plainRange(d.range), message: d.message };
  if (d.severity !== undefined) out.severity = d.severity + 1;
  const code: DiagnosticCode | undefined = typeof d.code === 'object' ? d.code.value : d.code;
  if (code !== undefined) out.code = code;
  if (d.relatedInformation && d.relatedInformation.length > 0) {
    out.relatedInformation = d.relatedInformation.map((r) => ({
      location: { uri: r.location.uri.toString(), range: plainRange(r.location.range) },
      message: r.message,
    }));
  }
  return out;
}

/** Groups a document's diagnostics by source, without ACAS's own. */
export function groupBySource(diagnostics: readonly EditorDiagnostic[]): Map<string, ExternalDiagnostic[]> {
  const groups = new Map<string, ExternalDiagnostic[]>();
  for (const d of diagnostics) {
    const source = d.source || UNKNOWN_SOURCE;
    if (OWN_SOURCES.has(source)) continue;
    let group = groups.get(source);
    if (!group) groups.set(source, (group = []));
    group.push(toExternal(d));
  }
  return groups;
}

/** Remembers what was last sent per document and source, to send only what changed. */
export class ForwardState {
  private readonly sent = new Map<string, Map<string, string>>();

  /** The messages that bring the server up to date with `diagnostics` for `uri`. */
  update(uri: string, diagnostics: readonly EditorDiagnostic[]): ExternalDiagnosticsParams[] {
    const groups = groupBySource(diagnostics);
    const before = this.sent.get(uri) ?? new Map<string, string>();
    const after = new Map<string, string>();
    const messages: ExternalDiagnosticsParams[] = [];
    for (const [source, list] of groups) {
      const signature = JSON.stringify(list);
      after.set(source, signature);
      if (before.get(source) !== signature) messages.push({ uri, source, diagnostics: list });
    }
    for (const source of before.keys()) {
      if (!groups.has(source)) messages.push({ uri, source, diagnostics: [] });
    }
    if (after.size > 0) this.sent.set(uri, after);
    else this.sent.delete(uri);
    return messages;
  }

  /** Forgets everything, for a new server that has been sent nothing. */
  clear(): void {
    this.sent.clear();
  }

  get documents(): number {
    return this.sent.size;
  }
}

function plainRange(r: RangeLike): Range {
  return {
    start: { line: r.start.line, character: r.start.character },
    end: { line: r.end.line, character: r.end.character },
  };
}
