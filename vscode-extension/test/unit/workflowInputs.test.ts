/** The Run Workflow input form: questions per input type, validation, coercion, cancel. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WorkflowInput } from '../../src/protocol';
import { coerceText, collectInputs, NO_VALUE, pickItems, validateText, type FormAsker, type PickQuestion, type TextQuestion } from '../../src/workflowInputs';

function input(name: string, type: string, overrides: Partial<WorkflowInput> = {}): WorkflowInput {
  return { name, type, required: false, ...overrides };
}

/** Answers questions from a script: a string for an input box, a label for a pick, undefined to cancel. */
class Scripted implements FormAsker {
  readonly asked: (TextQuestion | PickQuestion)[] = [];
  constructor(private readonly answers: (string | undefined)[]) {}
  async text(question: TextQuestion) {
    this.asked.push(question);
    const answer = this.answers.shift();
    if (answer !== undefined) assert.equal(question.validate(answer), undefined, `the script's answer ${answer} is valid`);
    return answer;
  }
  async pick(question: PickQuestion) {
    this.asked.push(question);
    const answer = this.answers.shift();
    return answer === undefined ? undefined : question.items.find((item) => item.label === answer);
  }
}

test('text validation: required, numbers as JSON numbers, optional empty', () => {
  const cases: [WorkflowInput, string, string | undefined][] = [
    [input('who', 'string', { required: true }), '', 'who is required'],
    [input('who', 'string', { required: true }), '   ', 'who is required'],
    [input('who', 'string', { required: true }), 'world', undefined],
    [input('who', 'string'), '', undefined],
    [input('n', 'number'), '3', undefined],
    [input('n', 'number'), '-1.5', undefined],
    [input('n', 'number'), ' 2e3 ', undefined],
    [input('n', 'number'), 'abc', 'n expects a number, such as 3 or -1.5'],
    [input('n', 'number'), '0x10', 'n expects a number, such as 3 or -1.5'],
    [input('n', 'number'), '1.', 'n expects a number, such as 3 or -1.5'],
    [input('n', 'number'), '', undefined],
    [input('n', 'number', { required: true }), '', 'n is required'],
  ];
  for (const [i, text, expected] of cases) assert.equal(validateText(i, text), expected, `${i.name} ${i.type} ${JSON.stringify(text)}`);
});

test('text coercion: numbers parsed, strings kept as typed, empty left out', () => {
  assert.equal(coerceText(input('n', 'number'), ' -1.5 '), -1.5);
  assert.equal(coerceText(input('who', 'string'), ' a b '), ' a b ');
  assert.equal(coerceText(input('who', 'string'), ''), undefined);
  assert.equal(coerceText(input('n', 'number'), ' '), undefined);
});

test('picks: booleans and choices, the default first, a no-value item for optional inputs without one', () => {
  const items = (i: WorkflowInput) => pickItems(i).map((item) => [item.label, item.value, item.description]);
  assert.deepEqual(items(input('dry', 'boolean', { default: false })), [['false', false, 'default'], ['true', true, undefined]]);
  assert.deepEqual(items(input('dry', 'boolean', { required: true })), [['true', true, undefined], ['false', false, undefined]]);
  assert.deepEqual(items(input('dry', 'boolean')), [['true', true, undefined], ['false', false, undefined], [NO_VALUE, undefined, undefined]]);
  assert.deepEqual(items(input('channel', 'choice', { options: ['stable', 'beta'], default: 'beta' })), [['beta', 'beta', 'default'], ['stable', 'stable', undefined]]);
});

test('the form asks each input in order, prefilled with defaults, and returns typed values', async () => {
  const inputs = [
    input('who', 'string', { default: 'world', description: 'Whom to greet' }),
    input('retries', 'number', { default: 2 }),
    input('dry_run', 'boolean', { default: false }),
    input('channel', 'choice', { options: ['stable', 'beta'], required: true }),
    input('note', 'string'),
  ];
  const asker = new Scripted(['Ada', '5', 'true', 'beta', '']);
  const values = await collectInputs('hello', inputs, asker);
  assert.deepEqual(values, { who: 'Ada', retries: 5, dry_run: true, channel: 'beta' });
  const [who, retries, , channel] = asker.asked as [TextQuestion, TextQuestion, PickQuestion, PickQuestion];
  assert.equal(who.title, 'ACAS: Run hello (1/5): who');
  assert.equal(who.value, 'world');
  assert.equal(who.prompt, 'Whom to greet (text)');
  assert.equal(retries.value, '2');
  assert.equal(retries.prompt, 'retries: a number');
  assert.equal(retries.validate('x'), 'retries expects a number, such as 3 or -1.5');
  assert.deepEqual(channel.items.map((i) => i.label), ['stable', 'beta']);
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
