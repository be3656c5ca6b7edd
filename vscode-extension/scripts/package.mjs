// Packages the extension as acas-<version>.vsix: a production bundle, plus the server binary as
// bin/acas when one is built (../target/release/acas, else ../target/debug/acas).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const exe = process.platform === 'win32' ? 'acas.exe' : 'acas';

execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), '--production'], { stdio: 'inherit' });

const bin = join(root, 'bin');
rmSync(bin, { recursive: true, force: true });
const server = ['release', 'debug'].map((profile) => join(root, '..', 'target', profile, exe)).find((p) => existsSync(p));
if (server) {
  mkdirSync(bin);
  copyFileSync(server, join(bin, exe));
  chmodSync(join(bin, exe), 0o755);
  console.log(`package: bundling ${server} as bin/${exe}`);
} else {
  console.warn('package: no server binary in ../target/{release,debug}; the .vsix will look for acas elsewhere');
}

const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
execFileSync(
  process.execPath,
  [vsce, 'package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '--out', join(root, `acas-${version}.vsix`)],
  { cwd: root, stdio: 'inherit' },
);
