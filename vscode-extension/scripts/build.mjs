// Builds the extension bundle (dist/extension.js) and the Node tests (out/test/**), with esbuild.
// `--production` minifies the bundle and drops source maps; tests always keep node_modules external.
import * as esbuild from 'esbuild';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const production = process.argv.includes('--production');
const root = new URL('..', import.meta.url).pathname;

function tests(dir) {
  return readdirSync(join(root, dir), { recursive: true })
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => join(root, dir, f));
}

await Promise.all([
  esbuild.build({
    entryPoints: [join(root, 'src/extension.ts')],
    outfile: join(root, 'dist/extension.js'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
    minify: production,
    sourcemap: !production,
    logLevel: 'warning',
  }),
  esbuild.build({
    entryPoints: tests('test'),
    outbase: join(root, 'test'),
    outdir: join(root, 'out/test'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    packages: 'external',
    sourcemap: 'inline',
    logLevel: 'warning',
  }),
]);
