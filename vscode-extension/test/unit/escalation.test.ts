/** Explain and Fix with AI: the diagnostic under the cursor, the acas.escalate argument, the message, the acas-ai fixIds. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AiSuggestions, contains, describeDiagnostic, diagnosticsAt, resultMarkdown, resultMessage, toEscalateArgs } from '../../src/escalation';
import type { EditorDiagnostic } from '../../src/forwarding';
import type { EscalateResult } from '../../src/protocol';

const URI = 'file:///ws/web/app.ts';

function range(line: number, from: number, to: number, endLine = line) {
  return { start: { line, character: from }, end: { line: endLine, character: to } };
}

function diag(source: string | undefined, message: string, r = range(3, 4, 9), extra: Partial<EditorDiagnostic> = {}): EditorDiagnostic {
  return { range: r, severity: 0, source, message, ...extra };
}

const at = (line: number, character: number) => ({ line, character });

test('contains: both ends included, across lines', () => {
  assert.ok(contains(range(3, 4, 9), at(3, 4)));
  assert.ok(contains(range(3, 4, 9), at(3, 9)));
  assert.ok(!contains(range(3, 4, 9), at(3, 10)));
  assert.ok(!contains(range(3, 4, 9), at(2, 5)));
  assert.ok(contains(range(3, 4, 1, 5), at(4, 0)));
  assert.ok(contains(range(3, 4, 4), at(3, 4)), 'a zero-width range holds its position');
});

test('a cursor on a Rust error from rust-analyzer becomes an external diagnostic with its source and code', () => {
  const d = diag('rust-analyzer', 'mismatched types', range(7, 12, 20), { code: { value: 'E0308' }, relatedInformation: [] });
  assert.deepEqual(toEscalateArgs('file:///ws/src/lib.rs', d), {
    uri: 'file:///ws/src/lib.rs',
    range: range(7, 12, 20),
    diagnostic: { range: range(7, 12, 20), severity: 1, code: 'E0308', source: 'rust-analyzer', message: 'mismatched types' },
  });
});

test('a number code and a missing source travel as they are', () => {
  const args = toEscalateArgs(URI, diag(undefined, "Type 'string' is not assignable to type 'number'.", range(0, 13, 18), { code: 2322, severity: 1 }));
  assert.deepEqual(args.diagnostic, { range: range(0, 13, 18), severity: 2, code: 2322, message: "Type 'string' is not assignable to type 'number'." });
});

test("ACAS's own diagnostic is sent by its range only (the server knows it)", () => {
  const args = toEscalateArgs(URI, diag('acas', 'expected `)`', range(1, 2, 2), { code: 'syntax' }));
  assert.deepEqual(args, { uri: URI, range: range(1, 2, 2) });
  assert.equal('diagnostic' in args, false);
});

test('the argument is plain data (no class instances leak)', () => {
  const r = range(2, 0, 3);
  const args = toEscalateArgs(URI, diag('eslint', 'm', r));
  r.start.line = 99;
  assert.equal(args.range.start.line, 2);
  assert.equal(JSON.stringify(JSON.parse(JSON.stringify(args))), JSON.stringify(args));
});

test('under the cursor: errors first, then the narrowest; AI explanations never', () => {
  const wide = diag('ts', 'wide error', range(3, 0, 30));
  const narrow = diag('eslint', 'narrow error', range(3, 4, 6));
  const warning = diag('eslint', 'a warning', range(3, 4, 5), { severity: 1 });
  const ai = diag('acas-ai', 'AI explanation', range(3, 4, 6));
  const elsewhere = diag('ts', 'other line', range(8, 0, 3));
  assert.deepEqual(diagnosticsAt([wide, warning, ai, narrow, elsewhere], at(3, 5)).map((d) => d.message), ['narrow error', 'wide error']);
  assert.deepEqual(diagnosticsAt([warning, ai, elsewhere], at(3, 5)).map((d) => d.message), ['a warning']);
  assert.deepEqual(diagnosticsAt([ai], at(3, 5)), []);
});

test('under the cursor: with nothing at the position, the diagnostics on its line', () => {
  const hint = diag('Pylance', 'unused', range(5, 0, 4), { severity: 3 });
  const info = diag('Pylance', 'info', range(5, 8, 10), { severity: 2 });
  assert.deepEqual(diagnosticsAt([hint, info], at(5, 40)).map((d) => d.message), ['info', 'unused']);
  assert.deepEqual(diagnosticsAt([hint, info], at(6, 0)), []);
});

test('a quick pick line says what, who and where', () => {
  const line = describeDiagnostic(diag('ts', "Cannot find name 'foo'.\nmore", range(9, 2, 5), { code: 2304 }));
  assert.deepEqual(line, { label: "Cannot find name 'foo'.", description: 'ts 2304 · error · line 10, column 3' });
  assert.equal(describeDiagnostic(diag(undefined, 'x', range(0, 0, 1), { severity: undefined })).description, 'problem · line 1, column 1');
});

const RESULT: EscalateResult = {
  explanation: '`area` squares `r` but the parenthesis is never closed.\n\nLonger details follow.',
  fixId: 'fix-1',
  fixRejected: null,
  provider: 'anthropic',
  model: 'claude-x',
  costUsd: 0.0123,
  cached: false,
};

test('the message: first paragraph, provider and cost, and Show Fix only with a fix', () => {
  const withFix = resultMessage(RESULT);
  assert.equal(withFix.text, 'ACAS (anthropic claude-x, $0.01): `area` squares `r` but the parenthesis is never closed. A verified fix is available as a quick fix.');
  assert.deepEqual(withFix.buttons, ['Show Fix', 'Details']);
  const rejected = resultMessage({ ...RESULT, fixId: null, fixRejected: 'the fixed file does not parse', cached: true, explanation: 'No closing paren' });
  assert.equal(rejected.text, 'ACAS (anthropic claude-x, cached, no cost): No closing paren. No fix is offered: the fixed file does not parse');
  assert.deepEqual(rejected.buttons, ['Details']);
  assert.match(resultMessage({ ...RESULT, costUsd: 0.0004 }).text, /\$0\.0004/);
});

test('the details document holds the whole explanation and why no fix', () => {
  const md = resultMarkdown({ ...RESULT, fixId: null, fixRejected: 'it changes other lines' }, 'expected `)`');
  assert.match(md, /^# expected `\)`\n/);
  assert.match(md, /Longer details follow\./);
  assert.match(md, /\*\*No fix is offered:\*\* it changes other lines/);
  assert.match(md, /anthropic · claude-x · \$0\.01/);
});

test('acas-ai suggestions keep the fixId from data, per document, replaced on each publish', () => {
  const s = new AiSuggestions();
  s.update(URI, [
    { range: range(3, 4, 9), message: 'AI: close the paren', source: 'acas-ai', data: { fixId: 'f1' } },
    { range: range(3, 4, 9), message: 'syntax', source: 'acas', data: { fingerprint: 'x', fixId: 'not-ai' } },
    { range: range(5, 0, 2), message: 'AI without fix', source: 'acas-ai', data: { fixId: '' } },
    { range: range(6, 0, 2), message: 'AI without data', source: 'acas-ai' },
    { range: range(8, 0, 2), message: 'AI: other', source: 'acas-ai', data: { fixId: 'f2' } },
  ]);
  assert.deepEqual(s.at(URI, at(3, 5)).map((x) => x.fixId), ['f1']);
  assert.deepEqual(s.at(URI, at(8, 30)).map((x) => x.fixId), ['f2'], 'the line when nothing is at the position');
  assert.deepEqual(s.at(URI, at(5, 1)), []);
  assert.deepEqual(s.at('file:///ws/other.ts', at(3, 5)), []);
  s.update(URI, [{ range: range(3, 4, 9), message: 'syntax', source: 'acas' }]);
  assert.deepEqual(s.at(URI, at(3, 5)), [], 'a new publish replaces the old one');
  s.update(URI, [{ range: range(1, 0, 1), message: 'AI', source: 'acas-ai', data: { fixId: 'f3' } }]);
  s.clear();
  assert.deepEqual(s.at(URI, at(1, 0)), []);
});
