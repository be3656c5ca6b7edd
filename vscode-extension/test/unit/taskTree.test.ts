/** Tasks view: state groups in a fixed order, tasks with holder and lease end, their locks. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TaskSummary, TasksResult } from '../../src/protocol';
import { buildTaskTree, leaseText } from '../../src/taskTree';

const NOW = 1_000_000;

function task(overrides: Partial<TaskSummary>): TaskSummary {
  return {
    id: 1,
    title: 'Fix the parser',
    description: '',
    type: 'fix',
    priority: 0,
    state: 'queued',
    labels: [],
    paths: [],
    needs: [],
    locks: [],
    attempts: 0,
    maxAttempts: 3,
    source: 'agent',
    createdBy: 'claude-code/3f9a0c12',
    ...overrides,
  };
}

function result(tasks: TaskSummary[]): TasksResult {
  return { tasks, locks: [] };
}

test('groups by state in a fixed order, leaving out empty ones, tasks by priority then id', () => {
  const tree = buildTaskTree(
    result([
      task({ id: 1, state: 'done' }),
      task({ id: 2, state: 'queued', priority: 1 }),
      task({ id: 3, state: 'queued', priority: 5 }),
      task({ id: 4, state: 'running', agent: 'a/1', leaseUntilMs: NOW + 1000 }),
      task({ id: 5, state: 'blocked', needs: [3] }),
      task({ id: 6, state: 'queued', priority: 1 }),
    ]),
    NOW,
  );
  assert.deepEqual(tree.map((g) => [g.label, g.description]), [['running', '1'], ['blocked', '1'], ['queued', '3'], ['done', '1']]);
  assert.deepEqual(tree[2].tasks.map((t) => t.task.id), [3, 2, 6]);
});

test('a held task shows its holder, its lease end and the paths it holds locked', () => {
  const [group] = buildTaskTree(
    result([
      task({
        id: 7,
        state: 'claimed',
        agent: 'claude-code/3f9a0c12',
        leaseUntilMs: NOW + 250_000,
        paths: ['src/parser/**', 'src/lex.rs'],
        locks: ['src/parser/**', 'src/lex.rs'],
        priority: 2,
      }),
    ]),
    NOW,
  );
  const [node] = group.tasks;
  assert.equal(node.label, '#7 Fix the parser');
  assert.equal(node.description, 'claude-code/3f9a0c12 · lease ends in 4 min 10 s · priority 2');
  assert.equal(node.ariaLabel, 'task 7, Fix the parser, claimed, held by claude-code/3f9a0c12');
  assert.match(node.tooltip, /held by claude-code\/3f9a0c12/);
  assert.match(node.tooltip, /paths: src\/parser\/\*\*, src\/lex\.rs/);
  assert.deepEqual(node.locks.map((l) => [l.label, l.description]), [
    ['src/parser/**', 'locked by claude-code/3f9a0c12'],
    ['src/lex.rs', 'locked by claude-code/3f9a0c12'],
  ]);
});

test('a task that is not held names no holder; a blocked one says what it needs', () => {
  const tree = buildTaskTree(
    result([task({ id: 2, state: 'blocked', needs: [1, 3], agent: 'old/1' }), task({ id: 9, state: 'failed', attempts: 3, lastError: 'tests fail', agent: 'old/1' })]),
    NOW,
  );
  assert.equal(tree[0].tasks[0].description, 'needs #1, #3');
  assert.equal(tree[1].tasks[0].description, '');
  assert.match(tree[1].tasks[0].tooltip, /last held by old\/1/);
  assert.match(tree[1].tasks[0].tooltip, /failures: 3 of 3, last: tests fail/);
});

test('a lease that is over says so until the server returns the task', () => {
  assert.equal(leaseText(NOW - 1, NOW), 'lease ended');
  assert.equal(leaseText(NOW + 1500, NOW), 'lease ends in 1.5 s');
});

test('an empty queue has no groups', () => {
  assert.deepEqual(buildTaskTree(result([]), NOW), []);
});
