/** Status bar text for each server state, with problem counts by severity. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Problem } from '../../src/protocol';
import { countBySeverity, statusView } from '../../src/statusText';

function problem(severity: string): Problem {
  return { fingerprint: severity, category: 'syntax', severity, message: 'm', source: 'acas', symbol: null, occurrences: 1, firstSeen: 0, lastSeen: 0, locations: [] };
}

test('counts problems by severity', () => {
  const counts = countBySeverity(['error', 'error', 'warning', 'hint', 'bogus'].map(problem));
  assert.deepEqual(counts, { error: 2, warning: 1, information: 0, hint: 1 });
});

test('running shows counts; before the first answer it shows a check', () => {
  const view = statusView('running', { error: 2, warning: 1, information: 0, hint: 3 });
  assert.equal(view.text, 'ACAS $(error) 2 $(warning) 1');
  assert.equal(view.label, 'ACAS: 2 errors, 1 warning');
  assert.match(view.tooltip, /2 errors, 1 warning, 0 information, 3 hints/);
  assert.equal(view.alarming, false);
  assert.equal(statusView('running').text, '$(check) ACAS');
});

test('starting, stopped and error states', () => {
  assert.equal(statusView('starting').text, '$(sync~spin) ACAS');
  assert.equal(statusView('starting').label, 'ACAS: starting');
  assert.equal(statusView('stopped').text, '$(circle-slash) ACAS');
  const error = statusView('error', undefined, 'acas binary not found');
  assert.equal(error.text, '$(error) ACAS');
  assert.equal(error.alarming, true);
  assert.match(error.tooltip, /acas binary not found/);
});

test('running workflows show when there are some, only while the server runs', () => {
  const counts = { error: 1, warning: 0, information: 0, hint: 0 };
  assert.equal(statusView('running', counts, undefined, undefined, 0).text, 'ACAS $(error) 1 $(warning) 0');
  const two = statusView('running', counts, undefined, undefined, 2);
  assert.equal(two.text, 'ACAS $(error) 1 $(warning) 0 $(run-all) 2');
  assert.equal(two.label, 'ACAS: 1 error, 0 warnings, 2 workflows running');
  assert.match(two.tooltip, /\n2 workflows running\n/);
  const one = statusView('running', undefined, undefined, undefined, 1);
  assert.equal(one.text, '$(check) ACAS $(run-all) 1');
  assert.equal(one.label, 'ACAS: running, 1 workflow running');
  assert.equal(statusView('stopped', undefined, undefined, undefined, 3).text, '$(circle-slash) ACAS');
  assert.doesNotMatch(statusView('stopped', undefined, undefined, undefined, 3).tooltip, /workflow/);
});
