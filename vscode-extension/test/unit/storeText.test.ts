/** The shared store in the status bar: said only while offline or while changes wait. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { storeView } from '../../src/storeText';

const URL = 'postgres://acas@db:5432/acas';

test('an offline store says so with the changes waiting', () => {
  const view = storeView({ url: URL, online: false, offlineSinceMs: 0, waiting: 12 }, 5 * 60000);
  assert.equal(view?.text, '$(cloud-offline) ACAS offline — 12 changes waiting');
  assert.match(view?.tooltip ?? '', /offline for 5 min/);
});

test('a reachable store with nothing waiting adds nothing', () => {
  assert.equal(storeView({ url: URL, online: true, waiting: 0 }), undefined);
  assert.equal(storeView(undefined), undefined);
  assert.equal(storeView({ url: URL, online: true, waiting: 1 })?.text, '$(cloud-upload) 1');
});
