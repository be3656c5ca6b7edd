/**
 * End-to-end: installs the packaged .vsix into a real VS Code (code-server), opens a copy of
 * fixtures/sample in headless Chromium, opens a broken Rust file (no other extension knows Rust,
 * so any error there is ACAS's), and checks the error squiggle, the Problems count, ACAS's status
 * bar item, that Explain and Fix with AI without a provider is refused in one error message, and
 * its Problems by Class view. Screenshots and logs go to e2e/artifacts/.
 *
 * Inputs (set by scripts/e2e.mjs): ACAS_VSIX, ACAS_SERVER_PATH; optionally CHROMIUM_PATH.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const E2E = resolve(__dirname, '..');
const REPO = resolve(E2E, '../..');
const ARTIFACTS = join(E2E, 'artifacts');
const CODE_SERVER = join(E2E, 'node_modules/.bin/code-server');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const VSIX = required('ACAS_VSIX');
const SERVER = required('ACAS_SERVER_PATH');
const STEP_MS = 90_000;

test('the extension shows ACAS diagnostics in a real VS Code', { timeout: 6 * STEP_MS }, async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'acas-e2e-'));
  const dirs = { ext: join(tmp, 'extensions'), data: join(tmp, 'user-data'), home: join(tmp, 'home'), browser: join(tmp, 'chromium') };
  const workspace = join(tmp, 'sample');
  cpSync(join(REPO, 'fixtures/sample'), workspace, { recursive: true, filter: (src) => !src.includes('/.acas') });
  mkdirSync(join(dirs.data, 'User'), { recursive: true });
  writeFileSync(join(dirs.data, 'User/settings.json'), JSON.stringify(USER_SETTINGS, null, 2));
  mkdirSync(ARTIFACTS, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, ACAS_SERVER_PATH: SERVER, HOME: dirs.home, XDG_CONFIG_HOME: join(dirs.home, '.config'), XDG_DATA_HOME: join(dirs.home, '.local/share') };
  // No AI provider: the user configuration is under the temporary home, and no keys are passed.
  for (const name of ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'GEMINI_API_KEY']) delete env[name];
  const common = ['--extensions-dir', dirs.ext, '--user-data-dir', dirs.data, '--config', join(tmp, 'config.yaml')];

  const install = spawnSync(CODE_SERVER, [...common, '--install-extension', VSIX], { env, encoding: 'utf8', timeout: STEP_MS });
  assert.equal(install.status, 0, `installing ${VSIX}:\n${install.stdout}\n${install.stderr}`);
  assert.ok(readdirSync(dirs.ext).some((d) => d.startsWith('acas.acas-')), `the extension is in ${dirs.ext}`);

  const server = new CodeServer([...common, '--bind-addr', '127.0.0.1:0', '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override'], env);
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  t.after(async () => {
    if (page) await page.screenshot({ path: join(ARTIFACTS, 'vscode.png') }).catch(() => undefined);
    await context?.close().catch(() => undefined);
    await server.stop();
    writeFileSync(join(ARTIFACTS, 'code-server.log'), server.output());
    copyAcasLog(dirs.data);
    rmSync(tmp, { recursive: true, force: true });
  });

  const url = await server.listening;
  context = await chromium.launchPersistentContext(dirs.browser, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1400, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_MS);
  await page.goto(`${url}?folder=${encodeURIComponent(workspace)}`);
  await page.locator('.monaco-workbench .part.editor').waitFor();
  await page.locator('.explorer-folders-view, .explorer-viewlet').first().waitFor();

  // Open the broken file through Quick Open, as a user would.
  await page.locator('.monaco-workbench').click({ position: { x: 700, y: 400 } });
  await openFile(page, 'src/lib.rs');

  // ACAS's squiggle, the Problems count, and ACAS's own status item.
  await page.locator('.monaco-editor .squiggly-error').first().waitFor();
  const problems = page.locator('#status\\.problems');
  await page.waitForFunction(() => /Errors?: [1-9]/.test(document.getElementById('status.problems')?.getAttribute('aria-label') ?? ''));
  assert.match((await problems.getAttribute('aria-label')) ?? '', /Errors?: [1-9]/);
  const acasItem = page.locator('.statusbar-item [aria-label^="ACAS: "], .statusbar-item[aria-label^="ACAS: "]').first();
  await page.waitForFunction(() => [...document.querySelectorAll('[aria-label^="ACAS: "]')].some((e) => /^ACAS: [1-9]\d* errors?/.test(e.getAttribute('aria-label') ?? '')));
  assert.match((await acasItem.getAttribute('aria-label')) ?? '', /^ACAS: [1-9]\d* errors?, \d+ warnings?$/);
  await page.screenshot({ path: join(ARTIFACTS, 'squiggle.png') });

  // Explain and Fix with AI on that error: with no provider configured, the server refuses and
  // the extension says so in one error message.
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('F8');
  await page.locator('.marker-widget, .zone-widget').first().waitFor();
  await page.keyboard.press('Escape');
  await runCommand(page, 'ACAS: Explain and Fix with AI');
  const refusal = page.locator('.notification-toast', { hasText: 'ACAS could not explain this' }).first();
  await refusal.waitFor();
  assert.match((await refusal.textContent()) ?? '', /provider/i);
  await page.screenshot({ path: join(ARTIFACTS, 'explain-refused.png') });
  await page.keyboard.press('Escape');

  // The Problems by Class view, through the command palette.
  await runCommand(page, 'ACAS: Show Problems by Class');
  const tree = page.locator('[id="workbench.view.extension.acas"], .pane-body').filter({ hasText: 'syntax' }).first();
  await tree.waitFor();
  await page.locator('.monaco-list-row', { hasText: /^syntax/ }).first().waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'problems-view.png') });

  // Diagnostics of another extension (VS Code's built-in TypeScript) reach ACAS and come back
  // as a problem of source `ts` in the view.
  await openFile(page, 'web/app.ts');
  await page.locator('.monaco-list-row[aria-label*=", from ts, "]').first().waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'forwarded.png') });

  // Restart the server, show its log, and see it come back with the counts.
  await runCommand(page, 'ACAS: Restart Server');
  await runCommand(page, 'ACAS: Show Output');
  const output = page.locator('.part.panel .monaco-editor .view-lines');
  // Monaco renders spaces as U+00A0, which \s matches.
  await output.filter({ hasText: /restarting\sthe\sserver[\s\S]*client\sstarted/ }).waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('[aria-label^="ACAS: "]')].some((e) => /^ACAS: [1-9]\d* errors?/.test(e.getAttribute('aria-label') ?? '')));
});

async function runCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('Control+Shift+P');
  const quickInput = page.locator('.quick-input-widget input');
  await quickInput.waitFor();
  await quickInput.fill(`>${title}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title.replace(/^ACAS: /, '') }).first().waitFor();
  await page.keyboard.press('Enter');
  await quickInput.waitFor({ state: 'hidden' });
}

async function openFile(page: Page, path: string): Promise<void> {
  const name = path.split('/').pop()!;
  await page.keyboard.press('Control+P');
  const quickInput = page.locator('.quick-input-widget input');
  await quickInput.waitFor();
  await quickInput.fill(path);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.tab.active', { hasText: name }).waitFor();
}

const USER_SETTINGS = {
  'security.workspace.trust.enabled': false,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'update.mode': 'none',
  'telemetry.telemetryLevel': 'off',
  'chat.commandCenter.enabled': false,
  'git.enabled': false,
};

/** code-server in its own process group, so stopping it stops everything it started. */
class CodeServer {
  readonly listening: Promise<string>;
  private readonly process: ChildProcess;
  private readonly chunks: string[] = [];
  private readonly exited: Promise<void>;

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.process = spawn(CODE_SERVER, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((done) => this.process.once('exit', () => done()));
    this.listening = new Promise<string>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`code-server did not listen within ${STEP_MS} ms:\n${this.output()}`)), STEP_MS);
      const onData = (chunk: Buffer) => {
        this.chunks.push(chunk.toString('utf8'));
        const match = /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(this.output());
        if (match) {
          clearTimeout(timer);
          done(match[1]);
        }
      };
      this.process.stdout!.on('data', onData);
      this.process.stderr!.on('data', onData);
      this.process.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`code-server exited with ${code}:\n${this.output()}`));
      });
    });
    this.listening.catch(() => undefined);
  }

  output(): string {
    return this.chunks.join('');
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    signalGroup(this.process.pid!, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(this.process.pid!, 'SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
    signalGroup(this.process.pid!, 'SIGKILL'); // whatever of the group outlived its leader
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone.
  }
}

/** Copies the ACAS output channel's log (VS Code writes output channels under logs/) to artifacts. */
function copyAcasLog(userData: string): void {
  const logs = join(userData, 'logs');
  let found: string[] = [];
  try {
    found = readdirSync(logs, { recursive: true, encoding: 'utf8' }).filter((f) => /output_logging_.*ACAS\.log$/.test(f));
  } catch {
    return;
  }
  const text = found.map((f) => readFileSync(join(logs, f), 'utf8')).join('\n');
  writeFileSync(join(ARTIFACTS, 'acas-output.log'), text);
  const activation = /client started [\d.]+ ms after activate\(\) began/.exec(text);
  if (activation) console.log(`activation: ${activation[0]}`);
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run the end-to-end test with \`npm run test:e2e\``);
  return value;
}
