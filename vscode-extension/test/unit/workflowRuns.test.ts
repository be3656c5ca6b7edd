/** Run state from acas/workflows and acas/workflowRun: merging, ends, messages, capabilities. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunStatus, StepStatus, WorkflowRunParams, WorkflowRunSummary, WorkflowStepState } from '../../src/protocol';
import { activeCount, Announcements, finishedMessage, RunStates, SHOW_RUN, workflowCapabilities } from '../../src/workflowRuns';

function params(runId: number, status: RunStatus, overrides: Partial<WorkflowRunParams> = {}): WorkflowRunParams {
  return { runId, workflow: 'hello', status, steps: [{ id: 'say', status: stepStatus(status), attempts: 1 }], ...overrides };
}

/** A step's status that goes with the run's. */
function stepStatus(status: RunStatus): StepStatus {
  return status === 'queued' || status === 'paused' ? 'pending' : status;
}

function listed(runId: number, status: RunStatus, overrides: Partial<WorkflowRunSummary> = {}): WorkflowRunSummary {
  return { runId, workflow: 'hello', status, createdMs: runId * 1000, ...overrides };
}

test('a run is reported ended once, at its first final notification; a late one does not undo it', () => {
  const states = new RunStates();
  assert.equal(states.apply(params(1, 'queued'), 100), undefined);
  assert.equal(states.apply(params(1, 'running'), 200), undefined);
  assert.equal(states.apply(params(1, 'failed', { error: 'boom' }), 300)?.error, 'boom');
  assert.equal(states.apply(params(1, 'failed'), 400), undefined, 'repeated');
  assert.equal(states.apply(params(1, 'running'), 500), undefined, 'late');
  const [run] = states.merge([]);
  assert.equal(run!.status, 'failed');
  assert.equal(run!.createdMs, 100, 'first seen');
  assert.equal(run!.finishedMs, 300, 'seen ended');
  assert.equal(states.apply(params(2, 'succeeded'), 600)?.runId, 2, 'a run first seen ended');
});

test('merge: notifications update listed runs, add unlisted ones, and an ended listed run stays ended', () => {
  const states = new RunStates();
  states.apply(params(3, 'running'), 9000);
  states.apply(params(2, 'succeeded'), 9100);
  states.apply(params(1, 'running'), 9200);
  const runs = states.merge([listed(2, 'running'), listed(1, 'cancelled', { finishedMs: 1500 })]);
  assert.deepEqual(
    runs.map((r) => [r.runId, r.status, r.createdMs, r.finishedMs, r.steps?.[0]?.status]),
    [
      [3, 'running', 9000, undefined, 'running'],
      [2, 'succeeded', 2000, 9100, 'succeeded'],
      [1, 'cancelled', 1000, 1500, 'running'],
    ],
  );
  assert.equal(activeCount(runs), 1);
  assert.equal(activeCount([...runs, { ...listed(4, 'queued') }, { ...listed(5, 'paused') }]), 2, 'queued counts, paused does not');
  assert.deepEqual(states.steps(3), [{ id: 'say', status: 'running', attempts: 1 }]);
  states.clear();
  assert.deepEqual(states.merge([]), []);
});

test('only the latest 200 runs are remembered', () => {
  const states = new RunStates();
  for (let id = 1; id <= 250; id++) states.apply(params(id, 'running'), id);
  const runs = states.merge([]);
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
