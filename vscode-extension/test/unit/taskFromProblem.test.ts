/** `acas.taskFromProblem`: the problem a call names, the picks offered, what is said after. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Problem, TaskFromProblemResult, TaskSummary } from '../../src/protocol';
import { fingerprintOf, outcomeText, picks } from '../../src/taskFromProblem';

function problem(overrides: Partial<Problem>): Problem {
  return {
    fingerprint: 'f',
    category: 'syntax',
    severity: 'error',
    message: 'missing `)`',
    source: 'acas',
    symbol: null,
    occurrences: 1,
    firstSeen: 1000,
    lastSeen: 2000,
    locations: [],
    ...overrides,
  };
}

test('a view item, a fingerprint or nothing', () => {
  assert.equal(fingerprintOf({ kind: 'problem', problem: problem({ fingerprint: 'abcdef0123' }) }), 'abcdef0123');
  assert.equal(fingerprintOf(' abcdef '), 'abcdef');
  assert.equal(fingerprintOf(''), undefined);
  assert.equal(fingerprintOf(undefined), undefined);
  assert.equal(fingerprintOf({ kind: 'category', problems: [] }), undefined);
  assert.equal(fingerprintOf({ problem: { fingerprint: 3 } }), undefined);
});

test('picks are the open problems, most recent first, one line each', () => {
  const list = picks([
    problem({ fingerprint: 'old', lastSeen: 1, message: 'old one' }),
    problem({ fingerprint: 'new', lastSeen: 9, message: 'first line\nsecond line', source: 'Pylance', category: 'name' }),
  ]);
  assert.deepEqual(list, [
    { label: 'first line', description: 'name · Pylance', fingerprint: 'new' },
    { label: 'old one', description: 'syntax · acas', fingerprint: 'old' },
  ]);
});

test('says whether the task is new', () => {
  const task = { id: 7, title: 'Fix: missing `)`' } as TaskSummary;
  const made: TaskFromProblemResult = { task, created: true };
  assert.equal(outcomeText(made), 'ACAS made task #7 for agents: Fix: missing `)`');
  assert.equal(outcomeText({ task, created: false }), 'The problem already has the open task #7: Fix: missing `)`');
});
