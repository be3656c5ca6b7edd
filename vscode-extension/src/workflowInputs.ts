/**
 * The input form of `ACAS: Run Workflow`: one question per declared input, by its type (an
 * input box for `string` and `number`, a pick for `boolean` and `choice`). The server owns
 * validation and coercion: the form sends what was typed (a number as its text), and when the
 * server refuses an input (`invalidInputs`, with the input and the reason in `data`) the form
 * asks that input again with the server's reason shown. Pure: the questions go to a
 * `FormAsker`, which the command implements with VS Code's input box and quick pick.
 */
import type { WorkflowInput } from './protocol';

export interface TextQuestion {
  title: string;
  prompt: string;
  value: string;
  placeHolder: string;
  /** The server's reason while `text` is what it refused, else undefined. */
  validate(text: string): string | undefined;
}

export interface PickItem {
  label: string;
  description?: string;
  /** The JSON value sent; undefined leaves the input out (the server's default applies). */
  value: unknown;
}

export interface PickQuestion {
  title: string;
  placeHolder: string;
  items: PickItem[];
}

/** Asks one question; undefined when the user cancelled. */
export interface FormAsker {
  text(question: TextQuestion): Promise<string | undefined>;
  pick(question: PickQuestion): Promise<PickItem | undefined>;
}

/** An input the server refused, and why (the error's `data.input` and `data.reason`). */
export interface Refusal {
  input: string;
  reason: string;
}

/** Left out of a pick for an optional input without a default. */
export const NO_VALUE = '(no value)';

/**
 * Asks for every input of `workflow` in order; the values by name, or undefined when the user
 * cancelled any question. Inputs left empty are not sent, so that their defaults apply.
 */
export async function collectInputs(workflow: string, inputs: readonly WorkflowInput[], asker: FormAsker): Promise<Record<string, unknown> | undefined> {
  const values: Record<string, unknown> = {};
  for (const [index, input] of inputs.entries()) {
    const title = `ACAS: Run ${workflow} (${index + 1}/${inputs.length}): ${input.name}`;
    const answer = await ask(input, title, defaultText(input), undefined, asker);
    if (!answer) return undefined;
    if (answer.value !== undefined) values[input.name] = answer.value;
  }
  return values;
}

/**
 * Asks again the input the server refused in `values`, with its reason; the values with the new
 * answer, or undefined when the user cancelled or the refused input is not one of `inputs`.
 */
export async function askAgain(
  workflow: string,
  inputs: readonly WorkflowInput[],
  values: Readonly<Record<string, unknown>>,
  refusal: Refusal,
  asker: FormAsker,
): Promise<Record<string, unknown> | undefined> {
  const input = inputs.find((i) => i.name === refusal.input);
  if (!input) return undefined;
  const given = values[input.name];
  const text = given === undefined ? '' : typeof given === 'string' ? given : JSON.stringify(given);
  const answer = await ask(input, `ACAS: Run ${workflow}: ${input.name}`, text, refusal, asker);
  if (!answer) return undefined;
  const next = { ...values };
  if (answer.value === undefined) delete next[input.name];
  else next[input.name] = answer.value;
  return next;
}

/** One question for `input`; `{ value }` (undefined to leave it out), or undefined when cancelled. */
async function ask(input: WorkflowInput, title: string, value: string, refusal: Refusal | undefined, asker: FormAsker): Promise<{ value: unknown } | undefined> {
  if (input.type === 'boolean' || input.type === 'choice') {
    const placeHolder = refusal ? refusal.reason : (input.description ?? `Choose ${input.name}`);
    const pick = await asker.pick({ title, placeHolder, items: pickItems(input) });
    return pick ? { value: pick.value } : undefined;
  }
  const text = await asker.text({
    title,
    prompt: promptOf(input),
    value,
    placeHolder: input.required ? `${input.name} (required)` : `${input.name} (optional: leave empty for no value)`,
    validate: (t) => (refusal && t === value ? refusal.reason : undefined),
  });
  if (text === undefined) return undefined;
  return { value: text.trim() === '' ? undefined : text };
}

/** The choices of a `boolean` or `choice` input, the default first. */
export function pickItems(input: WorkflowInput): PickItem[] {
  const values: unknown[] = input.type === 'boolean' ? [true, false] : (input.options ?? []);
  const items: PickItem[] = values.map((value) => ({ label: String(value), value }));
  const i = items.findIndex((item) => item.value === input.default);
  if (i >= 0) {
    const [item] = items.splice(i, 1);
    items.unshift({ ...item!, description: 'default' });
  } else if (!input.required) {
    items.push({ label: NO_VALUE, value: undefined });
  }
  return items;
}

function defaultText(input: WorkflowInput): string {
  if (input.default === undefined || input.default === null) return '';
  return typeof input.default === 'string' ? input.default : JSON.stringify(input.default);
}

function promptOf(input: WorkflowInput): string {
  const kind = input.type === 'number' ? 'a number' : 'text';
  return input.description ? `${input.description} (${kind})` : `${input.name}: ${kind}`;
}
