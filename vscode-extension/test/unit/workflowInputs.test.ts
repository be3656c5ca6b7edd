/** The Run Workflow input form: questions per input type, what is sent, the server's refusals, cancel. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InputType, WorkflowInput } from '../../src/protocol';
import { askAgain, collectInputs, NO_VALUE, pickItems, type FormAsker, type PickQuestion, type TextQuestion } from '../../src/workflowInputs';

function input(name: string, type: InputType, overrides: Partial<WorkflowInput> = {}): WorkflowInput {
  return { name, type, required: false, ...overrides };
}

/** Answers questions from a script: a string for an input box, a label for a pick, undefined to cancel. */
class Scripted implements FormAsker {
  readonly asked: (TextQuestion | PickQuestion)[] = [];
  constructor(private readonly answers: (string | undefined)[]) {}
  async text(question: TextQuestion) {
    this.asked.push(question);
    return this.answers.shift();
  }
  async pick(question: PickQuestion) {
    this.asked.push(question);
    const answer = this.answers.shift();
    return answer === undefined ? undefined : question.items.find((item) => item.label === answer);
  }
}

test('picks: booleans and choices, the default first, a no-value item for optional inputs without one', () => {
  const items = (i: WorkflowInput) => pickItems(i).map((item) => [item.label, item.value, item.description]);
  assert.deepEqual(items(input('dry', 'boolean', { default: false })), [['false', false, 'default'], ['true', true, undefined]]);
  assert.deepEqual(items(input('dry', 'boolean', { required: true })), [['true', true, undefined], ['false', false, undefined]]);
  assert.deepEqual(items(input('dry', 'boolean')), [['true', true, undefined], ['false', false, undefined], [NO_VALUE, undefined, undefined]]);
  assert.deepEqual(items(input('channel', 'choice', { options: ['stable', 'beta'], default: 'beta' })), [['beta', 'beta', 'default'], ['stable', 'stable', undefined]]);
});

test('the form asks each input in order, prefilled with defaults, and sends what was typed for the server to check', async () => {
  const inputs = [
    input('who', 'string', { default: 'world', description: 'Whom to greet' }),
    input('retries', 'number', { default: 2 }),
    input('dry_run', 'boolean', { default: false }),
    input('channel', 'choice', { options: ['stable', 'beta'], required: true }),
    input('note', 'string'),
  ];
  const asker = new Scripted(['Ada', ' 5 ', 'true', 'beta', '  ']);
  const values = await collectInputs('hello', inputs, asker);
  // Text as typed (the server coerces numbers), picks as their typed values, empty text left out.
  assert.deepEqual(values, { who: 'Ada', retries: ' 5 ', dry_run: true, channel: 'beta' });
  const [who, retries, , channel] = asker.asked as [TextQuestion, TextQuestion, PickQuestion, PickQuestion];
  assert.equal(who.title, 'ACAS: Run hello (1/5): who');
  assert.equal(who.value, 'world');
  assert.equal(who.prompt, 'Whom to greet (text)');
  assert.equal(retries.value, '2');
  assert.equal(retries.prompt, 'retries: a number');
  assert.equal(retries.validate('x'), undefined, 'the form does not validate: the server does');
  assert.deepEqual(channel.items.map((i) => i.label), ['stable', 'beta']);
});

test("an input the server refused is asked again with the server's reason, the others kept", async () => {
  const inputs = [input('who', 'string', { required: true }), input('times', 'number', { default: 1 }), input('dry', 'boolean')];
  const reason = 'input `times` expects a number, got `"many"`';
  const asker = new Scripted(['3']);
  const values = await askAgain('hello', inputs, { who: 'Ada', times: 'many', dry: true }, { input: 'times', reason }, asker);
  assert.deepEqual(values, { who: 'Ada', times: '3', dry: true });
  const [question] = asker.asked as [TextQuestion];
  assert.equal(question.title, 'ACAS: Run hello: times');
  assert.equal(question.value, 'many', 'prefilled with what was refused');
  assert.equal(question.validate('many'), reason, 'the reason shows while the refused text is unchanged');
  assert.equal(question.validate('3'), undefined);

  // A required input left out: asked again empty; emptied again, it is left out (the server says why).
  const missing = new Scripted(['']);
  assert.deepEqual(await askAgain('hello', inputs, { times: 2 }, { input: 'who', reason: 'input `who` is required' }, missing), { times: 2 });
  assert.equal((missing.asked[0] as TextQuestion).validate(''), 'input `who` is required');

  // A pick shows the reason as its placeholder.
  const pick = new Scripted(['false']);
  assert.deepEqual(await askAgain('hello', inputs, { who: 'Ada' }, { input: 'dry', reason: 'no' }, pick), { who: 'Ada', dry: false });
  assert.equal((pick.asked[0] as PickQuestion).placeHolder, 'no');

  // An input the form does not know, or a cancel, ends the form.
  assert.equal(await askAgain('hello', inputs, {}, { input: 'colour', reason: 'unknown input' }, new Scripted([])), undefined);
  assert.equal(await askAgain('hello', inputs, { who: 'x' }, { input: 'who', reason: 'r' }, new Scripted([undefined])), undefined);
});

test('cancelling any question cancels the form; no inputs asks nothing', async () => {
  const inputs = [input('who', 'string'), input('dry', 'boolean'), input('n', 'number')];
  for (let at = 0; at < inputs.length; at++) {
    const answers: (string | undefined)[] = ['x', 'true', '1'];
    answers[at] = undefined;
    const asker = new Scripted(answers);
    assert.equal(await collectInputs('w', inputs, asker), undefined, `cancelled at question ${at + 1}`);
    assert.equal(asker.asked.length, at + 1, 'nothing asked after the cancel');
  }
  const asker = new Scripted([]);
  assert.deepEqual(await collectInputs('w', [], asker), {});
  assert.equal(asker.asked.length, 0);
});
