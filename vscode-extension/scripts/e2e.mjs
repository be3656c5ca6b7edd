// Runs the end-to-end test: packages the .vsix if it is missing or older than the sources,
// type-checks and builds e2e/test with esbuild, then runs it with node --test.
// Needs ../scripts/setup-e2e.sh to have run once (code-server, playwright-core, Chromium).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as esbuild from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const e2e = join(root, 'e2e');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const vsix = join(root, `acas-${version}.vsix`);
const server = resolve(process.env.ACAS_SERVER_PATH ?? join(root, '../target/debug/acas'));

for (const pkg of ['code-server', 'playwright-core']) {
  if (!existsSync(join(e2e, 'node_modules', pkg, 'package.json'))) {
    console.error(`e2e: ${pkg} is not installed in vscode-extension/e2e; run scripts/setup-e2e.sh from the repository root`);
    process.exit(1);
  }
}
if (!existsSync(server)) {
  console.error(`e2e: no server binary at ${server}; run \`cargo build -p acas\` or set ACAS_SERVER_PATH`);
  process.exit(1);
}

const inputs = [join(root, 'package.json'), join(root, '.vscodeignore'), join(root, 'scripts/build.mjs'), join(root, 'scripts/package.mjs'), ...files(join(root, 'src'))];
const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
if (!existsSync(vsix) || statSync(vsix).mtimeMs < newest) {
  run([join(root, 'scripts/package.mjs')]);
}

run([join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', e2e]);
await esbuild.build({
  entryPoints: files(join(e2e, 'test')).filter((f) => f.endsWith('.test.ts')),
  outdir: join(e2e, 'out'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  sourcemap: 'inline',
  logLevel: 'warning',
});

run(['--test', join(e2e, 'out')], { ACAS_VSIX: vsix, ACAS_SERVER_PATH: server });

/** Runs node with `args`; a failure ends this script with its status (its output says why). */
function run(args, env = {}) {
  try {
    execFileSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  } catch (error) {
    process.exit(typeof error.status === 'number' ? error.status : 1);
  }
}

function files(dir) {
  return readdirSync(dir, { recursive: true }).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}
