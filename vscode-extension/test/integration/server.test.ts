/**
 * Drives the real `acas` binary over stdio with vscode-languageserver-protocol, the library the
 * VS Code client uses: initialize on a temp workspace, a syntax error from an open document,
 * forwarded TypeScript and Python diagnostics classified by `acas/problems`, `acas/status`,
 * `acas/spend` and a refused `acas.escalate` without providers, and a clean shutdown; and a
 * workflow listed by `acas/workflows`, run with an input through `acas.workflow.run`, and followed
 * through `acas/workflowRun` to its end. The binary is `ACAS_SERVER_PATH`, else
 * `../target/debug/acas`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  ConfigurationRequest,
  createProtocolConnection,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  PublishDiagnosticsNotification,
  RegistrationRequest,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgressCreateRequest,
  type ProtocolConnection,
  type PublishDiagnosticsParams,
} from 'vscode-languageserver-protocol/node';
import * as messages from '../../src/messages';
import {
  Commands,
  type EscalateArgs,
  type ExternalDiagnosticsParams,
  type Problem,
  type WorkflowRunArgs,
  type WorkflowRunParams,
  type WorkflowStarted,
} from '../../src/protocol';

const TIMEOUT_MS = 20_000;
const SERVER = resolve(process.env.ACAS_SERVER_PATH ?? join(__dirname, '../../../../target/debug/acas'));

const LIB_RS = `pub fn area(r: f64) -> f64 {
    std::f64::consts::PI * (r * r
}
`;
const APP_TS = `export const count: number = "three";
`;
const REPORT_PY = `def total():
    return foo
`;

test('acas serve: syntax errors, forwarded diagnostics classified, status, shutdown', async (t) => {
  assert.ok(existsSync(SERVER), `no server binary at ${SERVER}: run \`cargo build -p acas\` or set ACAS_SERVER_PATH`);
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'acas-it-')));
  const files = { lib: write(root, 'src/lib.rs', LIB_RS), app: write(root, 'web/app.ts', APP_TS), report: write(root, 'scripts/report.py', REPORT_PY) };
  // No AI provider: no user configuration and no provider keys in the environment.
  const xdg = mkdtempSync(join(tmpdir(), 'acas-it-xdg-'));
  const server = new Server(SERVER, root, xdg);
  t.after(() => {
    server.kill();
    rmSync(root, { recursive: true, force: true });
    rmSync(xdg, { recursive: true, force: true });
  });
  const { connection } = server;

  const init = await initialize(connection, root);
  const version = (init.capabilities.experimental as { acas?: { version?: string } } | undefined)?.acas?.version;
  assert.equal(typeof version, 'string', 'capabilities.experimental.acas.version');

  // A broken open document gets a syntax error.
  await connection.sendNotification(DidOpenTextDocumentNotification.type, {
    textDocument: { uri: uri(files.lib), languageId: 'rust', version: 1, text: LIB_RS },
  });
  const published = await server.diagnostics((p) => p.uri === uri(files.lib) && p.version === 1 && p.diagnostics.length > 0);
  const syntax = published.diagnostics[0];
  assert.equal(syntax.code, 'syntax');
  assert.equal(syntax.severity, 1);
  assert.equal(syntax.source, 'acas');
  assert.equal(syntax.range.start.line, 1, 'the error is on the unclosed line');

  // Forwarded diagnostics from other extensions come back classified.
  const typeError: ExternalDiagnosticsParams = {
    uri: uri(files.app),
    source: 'ts',
    diagnostics: [{ range: range(0, 13, 0, 18), severity: 1, code: 2322, message: "Type 'string' is not assignable to type 'number'." }],
  };
  const nameError: ExternalDiagnosticsParams = {
    uri: uri(files.report),
    source: 'Pylance',
    diagnostics: [{ range: range(1, 11, 1, 14), severity: 1, code: 'reportUndefinedVariable', message: '"foo" is not defined' }],
  };
  await connection.sendNotification(messages.externalDiagnostics, typeError);
  await connection.sendNotification(messages.externalDiagnostics, nameError);
  const problems = await within(connection.sendRequest(messages.problems, {}), messages.problems.method);

  const ts = only(problems, (p) => p.source === 'ts');
  assert.equal(ts.category, 'type');
  assert.equal(ts.severity, 'error');
  assert.equal(ts.message, "Type 'string' is not assignable to type 'number'.");
  assert.match(ts.fingerprint, /\S/);
  assert.equal(ts.occurrences, 1);
  assert.deepEqual(ts.locations, [{ uri: typeError.uri, range: atStart(typeError) }]);
  assert.ok(ts.firstSeen > 0 && ts.lastSeen >= ts.firstSeen, 'first and last seen are timestamps');

  const py = only(problems, (p) => p.source === 'Pylance');
  assert.equal(py.category, 'name');
  assert.equal(py.message, '"foo" is not defined');
  assert.match(py.fingerprint, /\S/);
  assert.notEqual(py.fingerprint, ts.fingerprint);
  assert.equal(py.occurrences, 1);
  assert.deepEqual(py.locations, [{ uri: nameError.uri, range: atStart(nameError) }]);

  const own = only(problems, (p) => p.source === 'acas');
  assert.equal(own.category, 'syntax');
  assert.deepEqual(own.locations.map((l) => l.uri), [uri(files.lib)]);

  // Filters, and an empty list resolves a source's problems for that document.
  const onlyTypes = await within(connection.sendRequest(messages.problems, { category: 'type' }), 'problems by category');
  assert.deepEqual(onlyTypes.map((p) => p.fingerprint), [ts.fingerprint]);
  await connection.sendNotification(messages.externalDiagnostics, { ...typeError, diagnostics: [] });
  const after = await within(connection.sendRequest(messages.problems, {}), 'problems after clearing');
  assert.deepEqual(after.filter((p) => p.source === 'ts'), [], 'the ts problem is resolved');
  assert.equal(after.filter((p) => p.source === 'Pylance').length, 1);

  const status = await within(connection.sendRequest(messages.status), messages.status.method);
  assert.equal(status.version, version);
  assert.equal(status.workspaceRoot && realpathSync(status.workspaceRoot), root);

  // AI: nothing spent and no provider; explaining is refused with a clear error.
  const spend = await within(connection.sendRequest(messages.spend), messages.spend.method);
  assert.equal(spend.todayUsd, 0);
  assert.equal(spend.monthUsd, 0);
  assert.deepEqual(spend.providers, []);
  const args: EscalateArgs = { uri: nameError.uri, range: nameError.diagnostics[0].range, diagnostic: { ...nameError.diagnostics[0], source: 'Pylance' } };
  await assert.rejects(
    within(connection.sendRequest(ExecuteCommandRequest.type, { command: Commands.escalate, arguments: [args] }), Commands.escalate),
    (error: Error & { data?: { kind?: string } }) => error.data?.kind === 'noProvider' && /provider/i.test(error.message),
  );

  await within(connection.sendRequest(ShutdownRequest.type), 'shutdown');
  await connection.sendNotification(ExitNotification.type);
  const [code] = await within(server.exited, 'exit');
  assert.equal(code, 0, `exit code; server log:\n${server.log()}`);
});

const HELLO_YAML = `name: hello
on:
  manual:
    inputs:
      who: { type: string, default: "world", description: "Whom to greet" }
      times: { type: number, default: 1 }
steps:
  - id: greet
    run: ["sh", "-c", "echo hi \\"$0\\" \\"$1\\"", "{{ inputs.who }}", "{{ inputs.times }}"]
`;
const SLOW_YAML = `name: slow
steps:
  - id: wait
    run: ["sleep", "60"]
`;

test('acas serve: a workflow listed, run with an input, followed to its end', async (t) => {
  assert.ok(existsSync(SERVER), `no server binary at ${SERVER}: run \`cargo build -p acas\` or set ACAS_SERVER_PATH`);
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'acas-it-wf-')));
  const file = write(root, '.acas/workflows/hello.yaml', HELLO_YAML);
  const slowFile = write(root, '.acas/workflows/slow.yaml', SLOW_YAML);
  const xdg = mkdtempSync(join(tmpdir(), 'acas-it-xdg-'));
  const server = new Server(SERVER, root, xdg);
  t.after(() => {
    server.kill();
    rmSync(root, { recursive: true, force: true });
    rmSync(xdg, { recursive: true, force: true });
  });
  const { connection } = server;

  // The extension enables its workflow commands from this list.
  const init = await initialize(connection, root);
  const commands = init.capabilities.executeCommandProvider?.commands ?? [];
  for (const command of [Commands.workflowRun, Commands.workflowCancel, Commands.workflowRerun]) {
    assert.ok(commands.includes(command), `${command} in executeCommandProvider.commands ${JSON.stringify(commands)}`);
  }

  const listed = await within(connection.sendRequest(messages.workflows), messages.workflows.method, () => server.log());
  const inputs = listed.workflows.flatMap((w) => w.inputs).sort((a, b) => a.name.localeCompare(b.name));
  assert.deepEqual(inputs, [
    { name: 'times', type: 'number', default: 1, required: false },
    { name: 'who', type: 'string', description: 'Whom to greet', default: 'world', required: false },
  ]);
  assert.deepEqual(
    listed.workflows.map((w) => ({ ...w, inputs: [] })).sort((a, b) => a.name.localeCompare(b.name)),
    [
      { name: 'hello', uri: uri(file), triggers: ['manual'], inputs: [], steps: 1 },
      { name: 'slow', uri: uri(slowFile), triggers: [], inputs: [], steps: 1 },
    ],
  );
  assert.deepEqual(listed.runs, []);

  const execute = (command: string, arg: unknown) => connection.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] });
  // The form leaves out the inputs left empty (`times` takes its default).
  const args: WorkflowRunArgs = { workflow: 'hello', inputs: { who: 'Ada' } };
  const started = (await within(execute(Commands.workflowRun, args), Commands.workflowRun, () => server.log())) as WorkflowStarted;
  assert.equal(typeof started.runId, 'number');

  const ended = await server.workflowRun((p) => p.runId === started.runId && ['succeeded', 'failed', 'cancelled'].includes(p.status));
  assert.equal(ended.status, 'succeeded', `run state: ${JSON.stringify(ended)}\nserver log:\n${server.log()}`);
  assert.equal(ended.workflow, 'hello');
  assert.deepEqual(ended.steps, [{ id: 'greet', status: 'succeeded', attempts: 1 }]);
  assert.equal(ended.error, undefined);
  const statuses = server.runStates(started.runId).map((p) => p.status);
  assert.ok(statuses.includes('running'), `the run was reported running before it ended: ${statuses.join(', ')}`);
  assert.equal(statuses.at(-1), 'succeeded', 'nothing after the end');

  const after = await within(connection.sendRequest(messages.workflows), `${messages.workflows.method} after the run`);
  const run = after.runs.find((r) => r.runId === started.runId);
  assert.ok(run, `run ${started.runId} in ${JSON.stringify(after.runs)}`);
  assert.equal(run.workflow, 'hello');
  assert.equal(run.status, 'succeeded');
  assert.ok(run.createdMs > 0 && run.finishedMs !== undefined && run.finishedMs >= run.createdMs, 'created and finished are timestamps');
  assert.deepEqual(run.steps, [{ id: 'greet', status: 'succeeded', attempts: 1 }], 'the list carries the steps');
  assert.ok(ended.createdMs > 0 && ended.finishedMs !== undefined, 'the notification carries the times');
  assert.ok(after.seq >= ended.seq && run.seq <= after.seq, `the list is ordered after the end it saw: ${after.seq} ${ended.seq} ${run.seq}`);

  // The view's inline actions: cancel a running run, re-run the cancelled one (a new run).
  const slow = (await within(execute(Commands.workflowRun, { workflow: 'slow', inputs: {} }), 'run slow')) as WorkflowStarted;
  await server.workflowRun((p) => p.runId === slow.runId && p.steps.some((s) => s.status === 'running'));
  await within(execute(Commands.workflowCancel, { runId: slow.runId }), Commands.workflowCancel);
  const cancelled = await server.workflowRun((p) => p.runId === slow.runId && ['succeeded', 'failed', 'cancelled'].includes(p.status));
  assert.equal(cancelled.status, 'cancelled', JSON.stringify(cancelled));
  const again = (await within(execute(Commands.workflowRerun, { runId: slow.runId }), Commands.workflowRerun)) as WorkflowStarted;
  assert.notEqual(again.runId, slow.runId, 'a re-run is a new run');
  await server.workflowRun((p) => p.runId === again.runId && p.workflow === 'slow');
  await within(execute(Commands.workflowCancel, { runId: again.runId }), `${Commands.workflowCancel} of the re-run`);
  const cancelledAgain = await server.workflowRun((p) => p.runId === again.runId && ['succeeded', 'failed', 'cancelled'].includes(p.status));
  assert.equal(cancelledAgain.status, 'cancelled');

  // What the extension shows as an error message: an unknown workflow and a wrongly typed input.
  // What the extension decides on: the kind, and for a refused input which one (the form asks it again).
  type Refusal = Error & { data?: { kind?: string; input?: string; reason?: string } };
  await assert.rejects(
    within(execute(Commands.workflowRun, { workflow: 'nope', inputs: {} }), 'run an unknown workflow'),
    (error: Refusal) => error.data?.kind === 'workflowNotFound' && /nope/.test(error.message),
  );
  await assert.rejects(
    within(execute(Commands.workflowRun, { workflow: 'hello', inputs: { times: 'abc' } }), 'run with text for a number'),
    (error: Refusal) => error.data?.kind === 'invalidInputs' && error.data.input === 'times' && /a number/.test(error.data.reason ?? ''),
  );
  // The form sends a number as it was typed; the server coerces it.
  const typed = (await within(execute(Commands.workflowRun, { workflow: 'hello', inputs: { times: ' 3 ' } }), 'run with a typed number')) as WorkflowStarted;
  const typedEnd = await server.workflowRun((p) => p.runId === typed.runId && ['succeeded', 'failed', 'cancelled'].includes(p.status));
  assert.equal(typedEnd.status, 'succeeded', JSON.stringify(typedEnd));

  await within(connection.sendRequest(ShutdownRequest.type), 'shutdown');
  await connection.sendNotification(ExitNotification.type);
  const [code] = await within(server.exited, 'exit');
  assert.equal(code, 0, `exit code; server log:\n${server.log()}`);
});

/** `initialize` on `root`, then `initialized`; the initialize result. */
async function initialize(connection: ProtocolConnection, root: string) {
  const result = await within(
    connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: uri(root),
      workspaceFolders: [{ uri: uri(root), name: 'ws' }],
      capabilities: {
        general: { positionEncodings: ['utf-16'] },
        window: { workDoneProgress: true },
        textDocument: { publishDiagnostics: { relatedInformation: true, versionSupport: true } },
      },
      initializationOptions: { logLevel: 'debug' },
    }),
    'initialize',
  );
  await connection.sendNotification(InitializedNotification.type, {});
  return result;
}

/** The `acas serve` process, its connection, and what it published. */
class Server {
  readonly connection: ProtocolConnection;
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
  private readonly process: ChildProcess;
  private readonly stderr: Buffer[] = [];
  private readonly published: PublishDiagnosticsParams[] = [];
  private readonly runs: WorkflowRunParams[] = [];
  private readonly events = new EventEmitter();

  constructor(binary: string, cwd: string, configHome: string) {
    const env: NodeJS.ProcessEnv = { ...process.env, ACAS_LOG: 'debug', XDG_CONFIG_HOME: configHome };
    for (const name of ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'GEMINI_API_KEY']) delete env[name];
    this.process = spawn(binary, ['serve'], { cwd, stdio: ['pipe', 'pipe', 'pipe'], env });
    this.exited = once(this.process, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    this.process.stderr!.on('data', (chunk: Buffer) => this.stderr.push(chunk));
    this.connection = createProtocolConnection(new StreamMessageReader(this.process.stdout!), new StreamMessageWriter(this.process.stdin!));
    this.connection.onNotification(PublishDiagnosticsNotification.type, (params) => {
      this.published.push(params);
      this.events.emit('published');
    });
    this.connection.onNotification(messages.workflowRun, (params) => {
      this.runs.push(params);
      this.events.emit('workflowRun');
    });
    // Server → client requests a client may receive; anything else is answered "method not found".
    this.connection.onRequest(WorkDoneProgressCreateRequest.type, () => null);
    this.connection.onRequest(RegistrationRequest.type, () => null);
    this.connection.onRequest(ConfigurationRequest.type, (params) => params.items.map(() => null));
    this.connection.listen();
  }

  /** The first publication matching `matches`, waiting for it with a bounded timeout. */
  diagnostics(matches: (p: PublishDiagnosticsParams) => boolean): Promise<PublishDiagnosticsParams> {
    return this.first('published', this.published, matches, 'publishDiagnostics');
  }

  /** The first `acas/workflowRun` matching `matches`, waiting for it with a bounded timeout. */
  workflowRun(matches: (p: WorkflowRunParams) => boolean): Promise<WorkflowRunParams> {
    return this.first('workflowRun', this.runs, matches, messages.workflowRun.method);
  }

  /** Every `acas/workflowRun` of run `runId` so far, in arrival order. */
  runStates(runId: number): WorkflowRunParams[] {
    return this.runs.filter((p) => p.runId === runId);
  }

  private first<T>(event: string, seen: T[], matches: (item: T) => boolean, what: string): Promise<T> {
    const found = new Promise<T>((done) => {
      const check = () => {
        const hit = seen.find(matches);
        if (hit === undefined) return;
        this.events.off(event, check);
        done(hit);
      };
      this.events.on(event, check);
      check();
    });
    return within(found, what, () => JSON.stringify(seen, null, 1));
  }

  log(): string {
    return Buffer.concat(this.stderr).toString('utf8');
  }

  kill(): void {
    this.connection.dispose();
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
  }
}

function within<T>(promise: Promise<T>, what: string, context?: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`timed out after ${TIMEOUT_MS} ms waiting for ${what}${context ? `\n${context()}` : ''}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function only(problems: Problem[], matches: (p: Problem) => boolean): Problem {
  const found = problems.filter(matches);
  assert.equal(found.length, 1, `exactly one match in ${JSON.stringify(problems, null, 1)}`);
  return found[0];
}

function write(root: string, relative: string, text: string): string {
  const file = join(root, relative);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

function uri(file: string): string {
  return pathToFileURL(file).href;
}

/** Problem locations are zero-width, at the start of the diagnostic (protocol/README.md). */
function atStart(params: ExternalDiagnosticsParams) {
  const { start } = params.diagnostics[0].range;
  return { start, end: start };
}

function range(line: number, character: number, endLine: number, endCharacter: number) {
  return { start: { line, character }, end: { line: endLine, character: endCharacter } };
}
