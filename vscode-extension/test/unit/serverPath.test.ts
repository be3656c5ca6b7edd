/** Server path resolution: order, skipping, expansion, and the single not-found message. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveServerPath, type Lookup } from '../../src/serverPath';

function lookup(executables: string[], overrides: Partial<Lookup> = {}): Lookup {
  return {
    env: { PATH: '/usr/local/bin:/usr/bin' },
    extensionPath: '/ext',
    homeDir: '/home/dev',
    platform: 'linux',
    isExecutable: (file) => executables.includes(file),
    ...overrides,
  };
}

const ALL = ['/opt/setting/acas', '/opt/env/acas', '/ext/bin/acas', '/usr/bin/acas'];

test('the setting wins over everything else', () => {
  const r = resolveServerPath(lookup(ALL, { setting: '/opt/setting/acas', env: { ACAS_SERVER_PATH: '/opt/env/acas', PATH: '/usr/bin' } }));
  assert.deepEqual(r, { ok: true, origin: 'setting', path: '/opt/setting/acas', skipped: [] });
});

test('then ACAS_SERVER_PATH, then the bundled binary, then PATH', () => {
  const env = { ACAS_SERVER_PATH: '/opt/env/acas', PATH: '/usr/local/bin:/usr/bin' };
  assert.deepEqual(resolveServerPath(lookup(ALL, { env })), { ok: true, origin: 'environment', path: '/opt/env/acas', skipped: [] });
  const bundled = resolveServerPath(lookup(ALL));
  assert.deepEqual(bundled, { ok: true, origin: 'bundled', path: '/ext/bin/acas', skipped: [] });
  const onPath = resolveServerPath(lookup(['/usr/bin/acas']));
  assert.deepEqual(onPath, { ok: true, origin: 'PATH', path: '/usr/bin/acas', skipped: [] });
});

test('a configured path that is not executable is skipped and reported', () => {
  const r = resolveServerPath(lookup(['/usr/bin/acas'], { setting: '/nope/acas', env: { ACAS_SERVER_PATH: '/gone/acas', PATH: '/usr/bin' } }));
  assert.equal(r.ok, true);
  assert.equal(r.ok && r.origin, 'PATH');
  assert.deepEqual(r.skipped, [
    { origin: 'setting', path: '/nope/acas' },
    { origin: 'environment', path: '/gone/acas' },
  ]);
});

test('blank values count as unset; ~ and relative setting paths are expanded', () => {
  assert.equal(resolveServerPath(lookup(['/ext/bin/acas'], { setting: '  ', env: { ACAS_SERVER_PATH: '' } })).ok, true);
  const home = resolveServerPath(lookup(['/home/dev/bin/acas'], { setting: '~/bin/acas' }));
  assert.equal(home.ok && home.path, '/home/dev/bin/acas');
  const relative = resolveServerPath(lookup(['/work/repo/target/debug/acas'], { setting: 'target/debug/acas', workspaceRoot: '/work/repo' }));
  assert.equal(relative.ok && relative.path, '/work/repo/target/debug/acas');
});

test('Windows looks for acas.exe', () => {
  const r = resolveServerPath(lookup(['C:\\ext\\bin\\acas.exe'], { extensionPath: 'C:\\ext', platform: 'win32', env: { Path: 'C:\\Windows' } }));
  assert.equal(r.ok && r.path, 'C:\\ext\\bin\\acas.exe');
});

test('when nothing works, one message says what was tried and what to do', () => {
  const r = resolveServerPath(lookup([], { setting: '/nope/acas' }));
  assert.equal(r.ok, false);
  assert.ok(!r.ok);
  assert.equal(
    r.message,
    'ACAS cannot start: no acas server binary found; "acas.server.path" is /nope/acas, which is not an executable file. ' +
      'Set "acas.server.path" to the acas binary (build it with `cargo build --release -p acas`) or put acas on PATH, ' +
      'then run "ACAS: Restart Server"',
  );
  const bare = resolveServerPath(lookup([]));
  assert.ok(!bare.ok && bare.message.startsWith('ACAS cannot start: no acas server binary found. Set "acas.server.path"'));
  assert.match(r.message, /ACAS: Restart Server/);
});
