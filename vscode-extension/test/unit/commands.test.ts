/** The extension's own commands never take a name the server registers. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Commands } from '../../src/protocol';

// The language client registers every command the server announces in
// `executeCommandProvider`; a second registration of the same name makes it fail to start.
const SERVER_COMMANDS = new Set<string>([...Object.values(Commands), 'acas.fixApplied']);
const ROOT = join(__dirname, '../../..');

test('no command the extension contributes is one of the server', () => {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    contributes: { commands: { command: string }[] };
  };
  const clashes = manifest.contributes.commands.map((c) => c.command).filter((c) => SERVER_COMMANDS.has(c));
  assert.deepEqual(clashes, []);
});

test('no command the extension registers is one of the server', () => {
  const source = readFileSync(join(ROOT, 'src/extension.ts'), 'utf8');
  const registered = [...source.matchAll(/registerCommand\(\s*'([^']+)'/g)].map((m) => m[1]);
  assert.ok(registered.length > 0, 'the extension registers commands');
  assert.deepEqual(registered.filter((c) => SERVER_COMMANDS.has(c)), []);
});
