/** Run state from acas/workflows and acas/workflowRun: the latest state by seq, ends, messages, capabilities. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunStatus, StepStatus, WorkflowRunParams, WorkflowStepState } from '../../src/protocol';
import { activeCount, Announcements, finishedMessage, RunStates, SHOW_RUN, workflowCapabilities } from '../../src/workflowRuns';

let nextSeq = 1;

function params(runId: number, status: RunStatus, overrides: Partial<WorkflowRunParams> = {}): WorkflowRunParams {
  return {
    runId,
    workflow: 'hello',
    status,
    steps: [{ id: 'say', status: stepStatus(status), attempts: 1 }],
    createdMs: runId * 1000,
    seq: nextSeq++,
    ...overrides,
  };
}

/** A step's status that goes with the run's. */
function stepStatus(status: RunStatus): StepStatus {
  return status === 'queued' || status === 'paused' ? 'pending' : status;
}

test('a run is reported ended once, at its first final state; an older state does not undo it', () => {
  const states = new RunStates();
  const late = params(1, 'running');
  assert.equal(states.apply(params(1, 'queued')), undefined);
  assert.equal(states.apply(params(1, 'failed', { error: 'boom', finishedMs: 3000 }))?.error, 'boom');
  assert.equal(states.apply(params(1, 'failed')), undefined, 'repeated');
  assert.equal(states.apply(late), undefined, 'an older state, delivered late');
  const [run] = states.all();
  assert.equal(run!.status, 'failed');
  assert.equal(run!.error, undefined, 'the latest state as it is: nothing merged');
  assert.equal(states.apply(params(2, 'succeeded'))?.runId, 2, 'a run first seen ended');
});

test('a list: its runs, plus the runs notified after it; older notified states yield to it; runs it left out go', () => {
  const states = new RunStates();
  states.apply(params(1, 'running'));
  states.apply(params(2, 'running'));
  const gone = params(9, 'succeeded');
  states.apply(gone);
  const listSeq = nextSeq++;
  states.apply(params(3, 'running'));
  states.apply(params(2, 'succeeded', { finishedMs: 2500 }));
  states.list(
    [params(2, 'running', { seq: listSeq }), params(1, 'cancelled', { seq: listSeq, finishedMs: 1500 })],
    listSeq,
  );
  const runs = states.all();
  assert.deepEqual(
    runs.map((r) => [r.runId, r.status, r.createdMs, r.finishedMs]),
    [
      [3, 'running', 3000, undefined],
      [2, 'succeeded', 2000, 2500],
      [1, 'cancelled', 1000, 1500],
    ],
  );
  assert.equal(activeCount(runs), 1);
  assert.equal(activeCount([...runs, params(4, 'queued'), params(5, 'paused')]), 2, 'queued counts, paused does not');
  assert.equal(states.apply(params(1, 'cancelled', { seq: listSeq - 1 }))?.runId, 1, 'an end the list showed first is still news once');
  assert.equal(states.all().find((r) => r.runId === 1)!.finishedMs, 1500, 'the older state did not replace the list');
  states.list([params(7, 'failed', { seq: listSeq })], listSeq);
  assert.equal(states.apply(params(7, 'failed', { seq: listSeq - 1 })), undefined, 'a run listed already ended is not news');
  states.clear();
  assert.deepEqual(states.all(), []);
});

test('only the latest 200 runs are remembered', () => {
  const states = new RunStates();
  for (let id = 1; id <= 250; id++) states.apply(params(id, 'running'));
  const runs = states.all();
  assert.equal(runs.length, 200);
  assert.equal(runs.at(-1)!.runId, 51);
});

test('messages: success is information; failure and cancel warn with Show Run and the reason', () => {
  assert.deepEqual(finishedMessage(params(4, 'succeeded')), { level: 'information', text: 'ACAS: workflow hello succeeded (run 4)', buttons: [] });
  assert.deepEqual(finishedMessage(params(5, 'failed', { error: 'timed out\nafter 60 s' })), {
    level: 'warning',
    text: 'ACAS: workflow hello failed (run 5): timed out',
    buttons: [SHOW_RUN],
  });
  const steps: WorkflowStepState[] = [{ id: 'a', status: 'succeeded', attempts: 1 }, { id: 'lint', status: 'failed', attempts: 3, error: 'exit status 1' }];
  assert.equal(finishedMessage(params(6, 'failed', { steps })).text, 'ACAS: workflow hello failed (run 6): step lint failed: exit status 1');
  assert.equal(finishedMessage(params(7, 'cancelled', { steps: [] })).text, 'ACAS: workflow hello cancelled (run 7)');
});

test('announcements: every failure, and the successes of runs started here, even when the end comes first', () => {
  const a = new Announcements();
  assert.equal(a.ended(params(1, 'failed'))?.runId, 1);
  assert.equal(a.ended(params(2, 'cancelled'))?.runId, 2);
  assert.equal(a.ended(params(3, 'succeeded')), undefined, 'started elsewhere (a trigger)');
  assert.equal(a.started(4), undefined);
  assert.equal(a.ended(params(4, 'succeeded'))?.runId, 4);
  assert.equal(a.ended(params(5, 'succeeded')), undefined, 'ended before the answer to run');
  assert.equal(a.started(5)?.runId, 5);
});

test('capabilities follow the commands the server announced', () => {
  assert.deepEqual(workflowCapabilities(undefined), { run: false, cancel: false, rerun: false });
  assert.deepEqual(workflowCapabilities(['acas.escalate']), { run: false, cancel: false, rerun: false });
  assert.deepEqual(workflowCapabilities(['acas.escalate', 'acas.workflow.run', 'acas.workflow.cancel', 'acas.workflow.rerun']), { run: true, cancel: true, rerun: true });
});
