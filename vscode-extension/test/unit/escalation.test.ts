/** Explain and Fix with AI: the acas.escalate argument for the cursor, the message, the acas-ai fixIds. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AiSuggestions, contains, escalateAt, resultMarkdown, resultMessage } from '../../src/escalation';
import type { EscalateResult } from '../../src/protocol';

const URI = 'file:///ws/web/app.ts';

function range(line: number, from: number, to: number, endLine = line) {
  return { start: { line, character: from }, end: { line: endLine, character: to } };
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

test('the cursor becomes a position only: the server chooses the diagnostic there', () => {
  const position = { line: 3, character: 5, extra: 'a class field' };
  const args = escalateAt(URI, position);
  assert.deepEqual(args, { uri: URI, position: { line: 3, character: 5 } });
  position.line = 99;
  assert.equal(args.position?.line, 3, 'plain data, not the editor object');
  assert.equal('range' in args || 'diagnostic' in args, false);
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
