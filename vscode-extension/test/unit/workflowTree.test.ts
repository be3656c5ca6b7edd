/** Workflows view: workflows by name, their recent runs newest first, then a run's steps. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TeamRun, WorkflowStepState, WorkflowSummary } from '../../src/protocol';
import type { RunView } from '../../src/workflowRuns';
import { buildTeamNode, buildWorkflowTree, duration, findRun, relativeTime, runIcon, stepIcon, TEAM_RUNS_SHOWN } from '../../src/workflowTree';

const NOW = 10_000_000;

function workflow(name: string, overrides: Partial<WorkflowSummary> = {}): WorkflowSummary {
  return { name, uri: `file:///ws/.acas/workflows/${name}.yaml`, triggers: ['manual'], inputs: [], steps: 2, ...overrides };
}

function run(runId: number, workflowName: string, overrides: Partial<RunView> = {}): RunView {
  return { runId, workflow: workflowName, status: 'succeeded', steps: [], createdMs: NOW - 120_000, finishedMs: NOW - 118_800, seq: runId, ...overrides };
}

const options = { nowMs: NOW, root: '/ws', formatTime: (ms: number) => `t${ms}` };

test('workflows sorted by name, with their triggers and a tooltip naming the file', () => {
  const tree = buildWorkflowTree(
    [
      workflow('review', { triggers: ['file_change', 'manual'], inputs: [{ name: 'who', type: 'string', required: true }] }),
      workflow('deploy', { triggers: [], steps: 1 }),
    ],
    [],
    options,
  );
  assert.deepEqual(tree.map((w) => [w.label, w.description, w.contextValue, w.id]), [
    ['deploy', '', 'workflow', 'workflow:deploy'],
    ['review', 'file_change, manual', 'workflow', 'workflow:review'],
  ]);
  assert.equal(tree[0]!.tooltip, 'deploy\nfile: .acas/workflows/deploy.yaml\ntriggers: manual only\nsteps: 1');
  assert.equal(tree[1]!.tooltip, 'review\nfile: .acas/workflows/review.yaml\ntriggers: file_change, manual\nsteps: 2\ninputs: who (string, required)');
});

test('runs go under their workflow in the given order, limited per workflow; unknown workflows are left out', () => {
  const runs = [run(5, 'a'), run(4, 'b'), run(3, 'a'), run(2, 'gone'), run(1, 'a')];
  const tree = buildWorkflowTree([workflow('a'), workflow('b')], runs, { ...options, runsPerWorkflow: 2 });
  assert.deepEqual(tree.map((w) => w.runs.map((r) => r.run.runId)), [[5, 3], [4]]);
  assert.equal(findRun(tree, 4)?.id, 'run:4');
  assert.equal(findRun(tree, 1), undefined, 'beyond the limit');
});

test('a run shows its status, relative start, duration, icon and context for the actions', () => {
  const cases: { run: RunView; label: string; description: string; icon: string; context: string }[] = [
    { run: run(7, 'a'), label: '#7 succeeded', description: '2 min ago · 1.2 s', icon: 'pass', context: 'run-succeeded' },
    { run: run(8, 'a', { status: 'failed', error: 'step lint failed' }), label: '#8 failed', description: '2 min ago · 1.2 s', icon: 'error', context: 'run-failed' },
    { run: run(9, 'a', { status: 'running', createdMs: NOW - 3000, finishedMs: undefined }), label: '#9 running', description: 'just now', icon: 'sync~spin', context: 'run-running' },
    { run: run(10, 'a', { status: 'queued', createdMs: NOW - 42_000, finishedMs: undefined }), label: '#10 queued', description: '42 s ago', icon: 'clock', context: 'run-queued' },
    { run: run(11, 'a', { status: 'paused', createdMs: NOW - 7_200_000, finishedMs: undefined }), label: '#11 paused', description: '2 h ago', icon: 'debug-pause', context: 'run-paused' },
    { run: run(12, 'a', { status: 'cancelled', createdMs: NOW - 3 * 86_400_000, finishedMs: NOW - 3 * 86_400_000 + 185_000 }), label: '#12 cancelled', description: '3 d ago · 3 min 5 s', icon: 'circle-slash', context: 'run-cancelled' },
  ];
  for (const c of cases) {
    const [node] = buildWorkflowTree([workflow('a')], [c.run], options)[0]!.runs;
    assert.deepEqual([node!.label, node!.description, node!.icon.id, node!.contextValue], [c.label, c.description, c.icon, c.context], c.label);
  }
  const [failed] = buildWorkflowTree([workflow('a')], [run(8, 'a', { status: 'failed', error: 'step lint failed' })], options)[0]!.runs;
  assert.equal(failed!.tooltip, `a, run 8: failed\nstarted: t${NOW - 120_000}\nfinished: t${NOW - 118_800} (took 1.2 s)\nerror: step lint failed`);
  assert.equal(failed!.ariaLabel, 'run 8 failed, started 2 min ago, took 1.2 s');
  assert.equal(failed!.icon.color, 'testing.iconFailed');
});

test('a run shows its steps, with status, attempts and error', () => {
  const steps: WorkflowStepState[] = [
    { id: 'read', status: 'succeeded', attempts: 1 },
    { id: 'lint', status: 'failed', attempts: 3, error: 'exit status 1' },
    { id: 'tell', status: 'pending', attempts: 0 },
  ];
  const [withSteps, without] = buildWorkflowTree([workflow('a')], [run(2, 'a', { status: 'failed', steps }), run(1, 'a')], options)[0]!.runs;
  assert.deepEqual(without!.steps, []);
  assert.deepEqual(
    withSteps!.steps.map((s) => [s.id, s.label, s.description, s.icon.id]),
    [
      ['step:2:read', 'read', 'succeeded · 1 attempt', 'pass'],
      ['step:2:lint', 'lint', 'failed · 3 attempts', 'error'],
      ['step:2:tell', 'tell', 'pending', 'circle-outline'],
    ],
  );
  assert.equal(withSteps!.steps[1]!.tooltip, 'step lint: failed\n3 attempts\nerror: exit status 1');
});

test('icons for every status, and a question mark for an unknown one', () => {
  assert.deepEqual(
    ['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled', 'bogus'].map((s) => runIcon(s).id),
    ['clock', 'sync~spin', 'debug-pause', 'pass', 'error', 'circle-slash', 'question'],
  );
  assert.deepEqual(['pending', 'skipped', 'running'].map((s) => stepIcon(s).id), ['circle-outline', 'debug-step-over', 'sync~spin']);
});

test('relative times and durations', () => {
  const cases: [number, string][] = [[0, 'just now'], [4999, 'just now'], [5000, '5 s ago'], [59_999, '59 s ago'], [60_000, '1 min ago'], [3_599_999, '59 min ago'], [3_600_000, '1 h ago'], [86_400_000, '1 d ago']];
  for (const [ago, text] of cases) assert.equal(relativeTime(NOW - ago, NOW), text, `${ago} ms ago`);
  assert.equal(relativeTime(NOW + 5000, NOW), 'just now', 'a clock slightly ahead');
  const durations: [number, string][] = [[-5, '0 ms'], [850, '850 ms'], [1000, '1.0 s'], [59_949, '59.9 s'], [60_000, '1 min 0 s'], [184_000, '3 min 4 s'], [7_500_000, '2 h 5 min']];
  for (const [ms, text] of durations) assert.equal(duration(ms), text, `${ms} ms`);
});

function teamRun(id: string, user: string, over: Partial<TeamRun> = {}): TeamRun {
  return {
    id,
    runId: 3,
    workflow: 'lint',
    status: 'succeeded',
    user,
    host: 'box',
    clone: '/src/app',
    steps: [{ id: 'check', status: 'failed', attempts: 2, exitCode: 1, error: 'exit 1' }],
    createdMs: 1_000_000,
    finishedMs: 1_002_500,
    ...over,
  };
}

test('no team runs, no team node', () => {
  assert.equal(buildTeamNode([], { nowMs: 0 }), undefined);
});

test('the team node lists every clone\'s runs with who and where, and their steps', () => {
  const node = buildTeamNode([teamRun('00000000000000aa', 'ana@x'), teamRun('00000000000000bb', 'bo@y', { clone: '/other' })], {
    nowMs: 1_060_000,
    formatTime: () => 'T',
  });
  assert.ok(node);
  assert.equal(node.description, '2 from 2 clones');
  const [first] = node.runs;
  assert.equal(first.label, 'lint #3 succeeded');
  assert.equal(first.description, 'ana@x · box · 1 min ago');
  assert.match(first.tooltip, /clone: \/src\/app/);
  assert.match(first.tooltip, /acas workflow status 00000000000000aa/);
  assert.deepEqual(first.icon, runIcon('succeeded'));
  assert.equal(first.steps[0].description, 'failed · 2 attempts');
  assert.match(first.steps[0].tooltip, /exit code 1/);
  assert.equal(first.steps[0].id, 'team:00000000000000aa:check');
});

test('a status this extension does not know shows as unknown; the list is capped', () => {
  const runs = Array.from({ length: TEAM_RUNS_SHOWN + 5 }, (_, i) =>
    teamRun(i.toString(16).padStart(16, '0'), 'ana@x', { status: undefined, steps: [{ id: 's', attempts: 0 }] }),
  );
  const node = buildTeamNode(runs, { nowMs: 0 });
  assert.ok(node);
  assert.equal(node.runs.length, TEAM_RUNS_SHOWN);
  assert.equal(node.description, `${TEAM_RUNS_SHOWN + 5} from 1 clone`);
  assert.equal(node.runs[0].label, 'lint #3 unknown');
  assert.deepEqual(node.runs[0].icon, runIcon('unknown'));
  assert.equal(node.runs[0].steps[0].description, 'unknown');
  assert.deepEqual(node.runs[0].steps[0].icon, stepIcon('unknown'));
});
