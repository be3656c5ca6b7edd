/**
 * End-to-end: installs the packaged .vsix into a real VS Code (code-server), opens a copy of
 * fixtures/sample in headless Chromium, opens a broken Rust file (no other extension knows Rust,
 * so any error there is ACAS's), and checks the error squiggle, the Problems count, ACAS's status
 * bar item, that Explain and Fix with AI without a provider is refused in one error message whose
 * Set API Key button stores a key in secret storage and restarts the server with it, that Explain
 * and Fix with AI then answers (from a local fake OpenAI-compatible provider) with a verified fix
 * that Show Fix applies, its Problems by Class view, and a workflow run from ACAS: Run Workflow
 * with its input form, announced and listed in the Workflows view. Screenshots and logs go to
 * e2e/artifacts/.
 *
 * Inputs (set by scripts/e2e.mjs): ACAS_VSIX, ACAS_SERVER_PATH; optionally CHROMIUM_PATH.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
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
  mkdirSync(join(workspace, '.acas/workflows'), { recursive: true });
  writeFileSync(join(workspace, '.acas/workflows/hello.yaml'), HELLO_WORKFLOW);
  mkdirSync(join(dirs.data, 'User'), { recursive: true });
  writeFileSync(join(dirs.data, 'User/settings.json'), JSON.stringify(USER_SETTINGS, null, 2));
  mkdirSync(ARTIFACTS, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, ACAS_SERVER_PATH: SERVER, HOME: dirs.home, XDG_CONFIG_HOME: join(dirs.home, '.config'), XDG_DATA_HOME: join(dirs.home, '.local/share') };
  // No AI provider: the user configuration is under the temporary home, and no keys are passed.
  // The OpenAI base URL points at a local fake, which becomes a provider once a key is stored.
  for (const name of ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'GEMINI_API_KEY']) delete env[name];
  const fake = await FakeOpenAi.start();
  env.OPENAI_BASE_URL = fake.baseUrl;
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
    await fake.stop();
    writeFileSync(join(ARTIFACTS, 'code-server.log'), server.output());
    copyAcasLog(dirs.data);
    cpSync(join(workspace, '.acas/logs'), join(ARTIFACTS, 'server-logs'), { recursive: true, force: true });
    try { cpSync(join(workspace, '.acas/logs'), join(ARTIFACTS, 'server-logs'), { recursive: true }); } catch {}
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
  await goToFirstProblem(page);
  await runCommand(page, 'ACAS: Explain and Fix with AI');
  const refusal = page.locator('.notification-toast', { hasText: 'ACAS could not explain this' }).first();
  await refusal.waitFor();
  assert.match((await refusal.textContent()) ?? '', /provider/i);
  await page.screenshot({ path: join(ARTIFACTS, 'explain-refused.png') });

  // Its Set API Key button stores an OpenAI key in secret storage and restarts the server.
  await refusal.hover();
  await refusal.locator('.monaco-button', { hasText: 'Set API Key' }).click();
  const quickInput = page.locator('.quick-input-widget input');
  await page.locator('.quick-input-widget', { hasText: 'ACAS: Set API Key' }).waitFor();
  await quickInput.fill('OpenAI');
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: 'OpenAI' }).waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget', { hasText: 'ACAS: OpenAI API key' }).waitFor();
  await quickInput.fill(FAKE_KEY);
  await page.keyboard.press('Enter');
  await page.locator('.notification-toast', { hasText: 'OpenAI API key stored' }).first().waitFor();
  await runCommand(page, 'ACAS: Show Output');
  await page
    .locator('.part.panel .monaco-editor .view-lines')
    .filter({ hasText: /client\sstarted\s[\d.]+\sms\safter\sthe\srestart\sbegan/ })
    .waitFor();

  // Now Explain and Fix with AI answers with a verified fix; Show Fix applies it.
  fake.reply(JSON.stringify({
    explanation: 'The call to `(` in `area` is never closed. Add `)` after `self.radius * self.radius`.',
    fix: { description: 'Close the parenthesis', edits: [{ old: '(self.radius * self.radius\n', new: '(self.radius * self.radius)\n' }] },
  }));
  await openFile(page, 'src/lib.rs');
  await goToFirstProblem(page);
  await runCommand(page, 'ACAS: Explain and Fix with AI');
  const answer = page.locator('.notification-toast', { hasText: 'A verified fix is available' }).first();
  await answer.waitFor();
  assert.match((await answer.textContent()) ?? '', /never closed/);
  assert.equal(fake.requests[0]?.headers.authorization, `Bearer ${FAKE_KEY}`, 'the stored key reaches the provider');
  await page.screenshot({ path: join(ARTIFACTS, 'explain-answered.png') });
  await answer.hover();
  await answer.locator('.monaco-button', { hasText: 'Show Fix' }).click();
  // The quick fix menu lists the verified fix first.
  const rows = page.locator('.action-widget .monaco-list-row');
  await whenFailing(rows.filter({ hasText: 'Apply AI fix: Close the parenthesis' }).first().waitFor(), () => describeUi(page, workspace));
  const titles = await rows.allTextContents();
  const fixAt = titles.findIndex((t) => t.includes('Apply AI fix: Close the parenthesis'));
  const explainAt = titles.findIndex((t) => t.includes('Explain and fix with AI'));
  assert.ok(fixAt >= 0 && explainAt > fixAt, `the verified fix comes first: ${titles.join(' | ')}`);
  await page.locator('.action-widget .monaco-list-row.focused', { hasText: 'Apply AI fix' }).waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.monaco-editor .view-lines', { hasText: 'self.radius * self.radius)' }).first().waitFor();
  await page.waitForFunction(() => document.querySelectorAll('.monaco-editor .squiggly-error').length === 0);
  await page.screenshot({ path: join(ARTIFACTS, 'fix-applied.png') });
  await page.keyboard.press('Control+Z');
  await page.locator('.monaco-editor .squiggly-error').first().waitFor();

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

  // ACAS: Run Workflow: pick the workflow, fill its input (prefilled with the default), and see
  // the run start and succeed; the Workflows view lists it, and clicking the workflow opens it.
  await runCommand(page, 'ACAS: Run Workflow');
  const input = page.locator('.quick-input-widget input');
  await page.locator('.quick-input-widget', { hasText: 'ACAS: Run Workflow' }).waitFor();
  await input.fill('hello');
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: 'hello' }).waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget', { hasText: 'ACAS: Run hello (1/1): who' }).waitFor();
  assert.equal(await input.inputValue(), 'world', 'the default is prefilled');
  await input.fill('e2e');
  await page.keyboard.press('Enter');
  const started = page.locator('.notification-toast', { hasText: /ACAS: workflow hello started \(run \d+\)/ }).first();
  await started.waitFor();
  const runId = /run (\d+)/.exec((await started.textContent()) ?? '')?.[1];
  assert.ok(runId, 'the message names the run');
  await page.locator('.notification-toast', { hasText: `ACAS: workflow hello succeeded (run ${runId})` }).first().waitFor();
  await runCommand(page, 'ACAS: Show Workflows');
  await page.locator(`.monaco-list-row[aria-label^="run ${runId} succeeded"]`).first().waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'workflows-view.png') });
  await page.locator('.monaco-list-row', { hasText: /^hello/ }).first().click();
  await page.locator('.tab.active', { hasText: 'hello.yaml' }).waitFor();

  // Restart the server, show its log, and see it come back with the counts.
  await runCommand(page, 'ACAS: Restart Server');
  await runCommand(page, 'ACAS: Show Output');
  const output = page.locator('.part.panel .monaco-editor .view-lines');
  // Monaco renders spaces as U+00A0, which \s matches.
  await output.filter({ hasText: /restarting\sthe\sserver[\s\S]*client\sstarted/ }).waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('[aria-label^="ACAS: "]')].some((e) => /^ACAS: [1-9]\d* errors?/.test(e.getAttribute('aria-label') ?? '')));
});

/**
 * Puts the cursor on the file's first problem as a user would (Go to Next Problem from the top)
 * and closes the problem's peek widget again, pressing Escape until it is gone: a key pressed
 * while the widget is still opening is not yet its own.
 */
async function goToFirstProblem(page: Page): Promise<void> {
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('F8');
  const peek = page.locator('.monaco-editor .marker-widget');
  await peek.first().waitFor();
  for (let tries = 0; (await peek.count()) > 0 && (await peek.first().isVisible()); tries++) {
    assert.ok(tries < 50, 'Escape closes the problem peek widget');
    await page.keyboard.press('Escape');
    await peek.first().waitFor({ state: 'hidden', timeout: 200 }).catch(() => undefined);
  }
}

/** Awaits `step`; when it fails, prints what `describe` finds first (CI keeps only the output). */
async function whenFailing<T>(step: Promise<T>, describe: () => Promise<string>): Promise<T> {
  try {
    return await step;
  } catch (error) {
    console.log(await describe().catch((e) => `could not describe the page: ${String(e)}`));
    throw error;
  }
}

/** What is on screen and what the server logged, for a failure's report. */
async function describeUi(page: Page, workspace: string): Promise<string> {
  const texts = async (selector: string) => (await page.locator(selector).allTextContents()).map((t) => t.trim()).filter(Boolean);
  const log = (() => {
    try {
      return readFileSync(join(workspace, '.acas/logs/serve.log'), 'utf8').split('\n').slice(-40).join('\n');
    } catch (error) {
      return String(error);
    }
  })();
  return [
    `action widget rows: ${JSON.stringify(await texts('.action-widget .monaco-list-row'))}`,
    `notifications: ${JSON.stringify(await texts('.notification-toast'))}`,
    `peek widgets: ${await page.locator('.monaco-editor .marker-widget').count()}`,
    `focused: ${await page.evaluate(() => document.activeElement?.className ?? 'nothing')}`,
    `the server's log, last lines:\n${log}`,
  ].join('\n');
}

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

const HELLO_WORKFLOW = `name: hello
on:
  manual:
    inputs:
      who: { type: string, default: "world" }
steps:
  - id: greet
    run: ["sh", "-c", "echo hi \\"$0\\"", "{{ inputs.who }}"]
`;

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

const FAKE_KEY = 'sk-e2e-stored-in-secret-storage';

/**
 * A local OpenAI-compatible provider: answers each chat completion with the next scripted text,
 * streamed in the recorded wire format of fixtures/providers/openai_stream.sse.
 */
class FakeOpenAi {
  readonly requests: IncomingMessage[] = [];
  private readonly replies: string[] = [];
  private constructor(private readonly server: Server, readonly baseUrl: string) {}

  static async start(): Promise<FakeOpenAi> {
    const fixture = readFileSync(join(REPO, 'fixtures/providers/openai_stream.sse'), 'utf8');
    let fake: FakeOpenAi | undefined;
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        fake!.requests.push(request);
        const text = fake!.replies.shift();
        if (text === undefined) {
          response.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"no scripted reply","type":"server_error"}}');
          return;
        }
        const escaped = JSON.stringify(text).slice(1, -1);
        const body = fixture
          .replaceAll('{{model}}', 'gpt-4o-mini')
          .replaceAll('{{text}}', escaped)
          .replaceAll('{{input_tokens}}', '900')
          .replaceAll('{{cached_tokens}}', '0')
          .replaceAll('{{output_tokens}}', '80')
          .replaceAll('{{total_tokens}}', '980');
        response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }).end(body);
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('the fake provider has no port');
    fake = new FakeOpenAi(server, `http://127.0.0.1:${address.port}/v1`);
    return fake;
  }

  reply(text: string): void {
    this.replies.push(text);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((done) => this.server.close(() => done()));
  }
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run the end-to-end test with \`npm run test:e2e\``);
  return value;
}
