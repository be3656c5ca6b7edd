/** Server errors: the extension reads `data.kind`, never the message. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiKeyMayHelp, errorData, errorKind, errorMessage } from '../../src/errors';

/** What vscode-jsonrpc's `ResponseError` carries. */
function responseError(message: string, data?: unknown): Error & { code: number; data?: unknown } {
  return Object.assign(new Error(message), { code: -32001, data });
}

test('the kind and the input come from data, whatever the message says', () => {
  assert.equal(errorKind(responseError('no provider could answer: claude: 401', { kind: 'providerFailed' })), 'providerFailed');
  assert.deepEqual(errorData(responseError('x', { kind: 'invalidInputs', input: 'who', reason: 'input `who` is required' })), {
    kind: 'invalidInputs',
    input: 'who',
    reason: 'input `who` is required',
  });
  // A message that mentions a provider or an API key is not a kind.
  assert.equal(errorKind(responseError('set OPENAI_API_KEY for the provider')), undefined);
  assert.equal(errorKind(responseError('x', { kind: 3 })), undefined);
  assert.equal(errorKind('a string'), undefined);
  assert.equal(errorKind(null), undefined);
  assert.equal(errorMessage(responseError('boom')), 'boom');
  assert.equal(errorMessage('plain'), 'plain');
});

test('an API key is offered for the kinds a key may fix, only', () => {
  assert.ok(apiKeyMayHelp('noProvider'));
  assert.ok(apiKeyMayHelp('providerFailed'));
  for (const kind of ['budgetExceeded', 'noEgress', 'noDiagnostic', 'invalidParams', 'internal', undefined] as const) {
    assert.ok(!apiKeyMayHelp(kind), String(kind));
  }
});
