/** Problems view: category, then fingerprint, then locations, in a stable order. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Problem } from '../../src/protocol';
import { buildTree, displayPath } from '../../src/problemTree';

function problem(overrides: Partial<Problem>): Problem {
  return {
    fingerprint: 'f',
    category: 'syntax',
    severity: 'error',
    message: 'missing `)`',
    source: 'acas',
    symbol: 'shapes::Circle::area',
    occurrences: 1,
    firstSeen: 1000,
    lastSeen: 2000,
    locations: [{ uri: 'file:///ws/src/lib.rs', range: { start: { line: 9, character: 61 }, end: { line: 9, character: 61 } } }],
    ...overrides,
  };
}

test('groups by category in a fixed order, then by fingerprint', () => {
  const tree = buildTree(
    [
      problem({ fingerprint: 'lint1', category: 'lint', severity: 'warning' }),
      problem({ fingerprint: 'name1', category: 'name', message: '"foo" is not defined', source: 'Pylance', symbol: null }),
      problem({ fingerprint: 'syn-old', lastSeen: 10 }),
      problem({ fingerprint: 'syn-warn', severity: 'warning', lastSeen: 99999 }),
      problem({ fingerprint: 'syn-new', lastSeen: 5000 }),
      problem({ fingerprint: 'zzz', category: 'custom' }),
    ],
    '/ws',
    (ms) => `t${ms}`,
  );
  assert.deepEqual(tree.map((c) => [c.label, c.description]), [['syntax', '3'], ['name', '1'], ['lint', '1'], ['custom', '1']]);
  assert.deepEqual(tree[0].problems.map((p) => p.problem.fingerprint), ['syn-new', 'syn-old', 'syn-warn'], 'errors first, newest first');
});

test('a problem shows message, occurrences, a tooltip with source, symbol and times, and its locations', () => {
  const [category] = buildTree([problem({ occurrences: 3 })], '/ws', (ms) => `t${ms}`);
  const [node] = category.problems;
  assert.equal(node.label, 'missing `)`');
  assert.equal(node.description, 'occurrences ×3');
  assert.equal(node.tooltip, 'source: acas\nsymbol: shapes::Circle::area\nfirst seen: t1000\nlast seen: t2000\nfingerprint: f');
  assert.equal(node.ariaLabel, 'error: missing `)`, from acas, occurrences 3');
  assert.deepEqual(node.locations.map((l) => l.label), ['src/lib.rs:10:62']);
  assert.equal(node.locations[0].location.uri, 'file:///ws/src/lib.rs');
});

test('the default time format is local time', () => {
  const [category] = buildTree([problem({})]);
  assert.match(category.problems[0].tooltip, new RegExp(`first seen: ${escape(new Date(1000).toLocaleString())}`));
});

test('location paths are relative inside the workspace, absolute outside it', () => {
  assert.equal(displayPath('file:///ws/a/b.ts', '/ws'), 'a/b.ts');
  assert.equal(displayPath('file:///elsewhere/b.ts', '/ws'), '/elsewhere/b.ts');
  assert.equal(displayPath('untitled:Untitled-1', '/ws'), 'untitled:Untitled-1');
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
