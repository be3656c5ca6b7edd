/** Forwarding: grouping by source, skipping ACAS's own, clearing vanished sources, no resends. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ForwardState, groupBySource, toExternal, type EditorDiagnostic } from '../../src/forwarding';

const URI = 'file:///ws/web/app.ts';

function diag(source: string | undefined, message: string, line = 0, extra: Partial<EditorDiagnostic> = {}): EditorDiagnostic {
  return { range: { start: { line, character: 2 }, end: { line, character: 8 } }, severity: 0, source, message, ...extra };
}

test('converts VS Code diagnostics to the protocol shape', () => {
  const d = diag('ts', "Type 'string' is not assignable to type 'number'.", 4, {
    code: { value: 2322 },
    relatedInformation: [{ location: { uri: { toString: () => URI }, range: diag('x', '', 1).range }, message: 'declared here' }],
  });
  assert.deepEqual(toExternal(d), {
    range: { start: { line: 4, character: 2 }, end: { line: 4, character: 8 } },
    severity: 1,
    code: 2322,
    message: "Type 'string' is not assignable to type 'number'.",
    relatedInformation: [{ location: { uri: URI, range: { start: { line: 1, character: 2 }, end: { line: 1, character: 8 } } }, message: 'declared here' }],
  });
  assert.deepEqual(toExternal({ ...diag('eslint', 'm'), severity: 3, code: 'no-unused-vars' }).severity, 4);
  assert.equal(toExternal({ ...diag('eslint', 'm'), severity: undefined }).severity, undefined);
});

test('groups by source and skips acas and acas-ai', () => {
  const groups = groupBySource([diag('ts', 'a'), diag('acas', 'syntax'), diag('eslint', 'b'), diag('ts', 'c'), diag('acas-ai', 'x'), diag(undefined, 'd')]);
  assert.deepEqual([...groups.keys()], ['ts', 'eslint', 'unknown']);
  assert.deepEqual(groups.get('ts')!.map((d) => d.message), ['a', 'c']);
});

test('sends changed sources, nothing when unchanged, and an empty list for a source that is gone', () => {
  const state = new ForwardState();
  const first = state.update(URI, [diag('ts', 'a'), diag('eslint', 'b'), diag('acas', 's')]);
  assert.deepEqual(first.map((m) => [m.source, m.diagnostics.length]), [['ts', 1], ['eslint', 1]]);
  assert.deepEqual(state.update(URI, [diag('acas', 'changed'), diag('ts', 'a'), diag('eslint', 'b')]), []);
  const second = state.update(URI, [diag('ts', 'a', 3)]);
  assert.deepEqual(second, [
    { uri: URI, source: 'ts', diagnostics: [toExternal(diag('ts', 'a', 3))] },
    { uri: URI, source: 'eslint', diagnostics: [] },
  ]);
  assert.deepEqual(state.update(URI, []), [{ uri: URI, source: 'ts', diagnostics: [] }]);
  assert.equal(state.documents, 0, 'a document without diagnostics is forgotten');
  assert.deepEqual(state.update(URI, []), []);
});

test('documents are independent, and clear() forgets what was sent', () => {
  const state = new ForwardState();
  state.update(URI, [diag('ts', 'a')]);
  assert.equal(state.update('file:///ws/other.ts', [diag('ts', 'a')]).length, 1);
  state.clear();
  assert.equal(state.update(URI, [diag('ts', 'a')]).length, 1);
});
