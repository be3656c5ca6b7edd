/**
 * The input form of `ACAS: Run Workflow`: one question per declared input (an input box for
 * `string` and `number`, a pick for `boolean` and `choice`), validated and coerced to the JSON
 * the server expects in `WorkflowRunArgs.inputs`. Pure: the questions go to a `FormAsker`, which
 * the command implements with VS Code's input box and quick pick. The server checks the values
 * again; this only saves a round trip.
 */
import type { WorkflowInput } from './protocol';

export interface TextQuestion {
  title: string;
  prompt: string;
  value: string;
  placeHolder: string;
  /** An error message for `text`, or undefined when it is acceptable. */
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

/** A JSON number, the form the server takes (`3`, `-1.5`, `2e3`). */
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

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
    if (input.type === 'boolean' || input.type === 'choice') {
      const pick = await asker.pick({ title, placeHolder: input.description ?? `Choose ${input.name}`, items: pickItems(input) });
      if (!pick) return undefined;
      if (pick.value !== undefined) values[input.name] = pick.value;
      continue;
    }
    const text = await asker.text({
      title,
      prompt: promptOf(input),
      value: defaultText(input),
      placeHolder: input.required ? `${input.name} (required)` : `${input.name} (optional: leave empty for no value)`,
      validate: (t) => validateText(input, t),
    });
    if (text === undefined) return undefined;
    const value = coerceText(input, text);
    if (value !== undefined) values[input.name] = value;
  }
  return values;
}

/** Why `text` is not acceptable for a `string` or `number` input, or undefined. */
export function validateText(input: WorkflowInput, text: string): string | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return input.required ? `${input.name} is required` : undefined;
  if (input.type === 'number' && !NUMBER.test(trimmed)) return `${input.name} expects a number, such as 3 or -1.5`;
  return undefined;
}

/** The value sent for an accepted `text`; undefined when empty (left out). */
export function coerceText(input: WorkflowInput, text: string): unknown {
  if (text.trim() === '') return undefined;
  if (input.type === 'number') return Number(text.trim());
  return text;
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
