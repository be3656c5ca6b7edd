/** Settings: only user-set, well-typed values reach the server. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readSettings } from '../../src/settings';

test('passes the values the user set', () => {
  const values: Record<string, unknown> = { logLevel: 'debug', logToClient: true, ignore: ['generated/**'], maxFileSize: 1024 };
  assert.deepEqual(readSettings((k) => values[k]), { logLevel: 'debug', logToClient: true, ignore: ['generated/**'], maxFileSize: 1024 });
});

test('sends nothing for unset values and drops ill-typed ones', () => {
  assert.deepEqual(readSettings(() => undefined), {});
  const bad: Record<string, unknown> = { logLevel: 'loud', logToClient: 'yes', ignore: ['ok', 3], maxFileSize: -1 };
  assert.deepEqual(readSettings((k) => bad[k]), {});
  assert.deepEqual(readSettings((k) => (k === 'maxFileSize' ? 10.7 : undefined)), { maxFileSize: 10 });
});

test('skips the checkers of installed extensions unless the user says which', () => {
  const installed = (id: string) => id === 'rust-lang.rust-analyzer' || id === 'dbaeumer.vscode-eslint';
  assert.deepEqual(readSettings(() => undefined, installed), { skipCheckers: ['cargo-check', 'clippy', 'eslint'] });
  assert.deepEqual(readSettings((k) => (k === 'skipCheckers' ? [] : undefined), installed), { skipCheckers: [] });
  assert.deepEqual(readSettings(() => undefined, () => false), {});
});
