/** Work answered with a handle: its end arrives as a notification, before or after the answer. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { doneOutcome, handleOf } from '../../src/escalation';
import { failureError, errorKind } from '../../src/errors';
import { KEPT, Pending } from '../../src/pending';
import type { EscalationDoneParams } from '../../src/protocol';

const DONE: EscalationDoneParams = {
  escalationId: 7,
  uri: 'file:///ws/a.rs',
  result: { explanation: 'Close it.', fixId: 'fix-1', fixRejected: null, provider: 'claude', model: 'm', costUsd: 0.001, cached: false },
};

test('a waiter gets the notification of its id, whichever comes first', async () => {
  const pending = new Pending<EscalationDoneParams>();
  const waiting = pending.wait(7);
  pending.settle(8, { ...DONE, escalationId: 8 });
  pending.settle(7, DONE);
  assert.equal((await waiting).escalationId, 7);
  // The notification overtook the command's answer: it is kept for the waiter to come.
  assert.equal((await pending.wait(8)).escalationId, 8);
  assert.equal(pending.size, 0);
});

test('results nobody waits for are bounded, and a stopped server rejects the waiters', async () => {
  const pending = new Pending<number>();
  for (let id = 0; id < KEPT + 10; id += 1) pending.settle(id, id);
  assert.equal(await pending.wait(KEPT + 9), KEPT + 9);
  const waiting = pending.wait(0);
  pending.abandon('the server stopped');
  await assert.rejects(waiting, /the server stopped/);
});

test('the handle of an answer, and the outcome of an end', () => {
  assert.equal(handleOf({ escalationId: 3 }, 'escalationId'), 3);
  assert.equal(handleOf({ planId: 4 }, 'planId'), 4);
  assert.equal(handleOf({ explanation: 'an old blocking answer' }, 'escalationId'), undefined);
  assert.equal(handleOf(null, 'planId'), undefined);
  assert.deepEqual(doneOutcome(DONE), { result: DONE.result });
  const failed = doneOutcome({ escalationId: 7, uri: DONE.uri, error: { kind: 'providerFailed', message: 'down' } });
  assert.deepEqual(failed, { failure: { kind: 'providerFailed', message: 'down' } });
  assert.deepEqual(doneOutcome({ escalationId: 7, uri: DONE.uri }), { failure: { kind: 'internal', message: 'the server gave no explanation' } });
  const error = failureError({ kind: 'budgetExceeded', message: 'over the daily budget' });
  assert.equal(errorKind(error), 'budgetExceeded');
  assert.equal(error.message, 'over the daily budget');
});
