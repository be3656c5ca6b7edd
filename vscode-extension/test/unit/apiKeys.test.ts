/** API keys: secret storage names, reading them, and the server environment built from them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROVIDERS, readKeys, secretKey, serverEnv } from '../../src/apiKeys';

test('one secret per provider, named after the variable the server reads', () => {
  assert.deepEqual(PROVIDERS.map((p) => [p.label, secretKey(p)]), [
    ['Anthropic', 'acas.ANTHROPIC_API_KEY'],
    ['OpenAI', 'acas.OPENAI_API_KEY'],
    ['Gemini', 'acas.GEMINI_API_KEY'],
  ]);
});

test('reads stored keys, leaving out missing and blank ones and trimming', async () => {
  const store: Record<string, string> = { 'acas.ANTHROPIC_API_KEY': ' sk-ant \n', 'acas.OPENAI_API_KEY': '   ', 'unrelated': 'x' };
  assert.deepEqual(await readKeys(async (k) => store[k]), { ANTHROPIC_API_KEY: 'sk-ant' });
  assert.deepEqual(await readKeys(async () => undefined), {});
});

test('stored keys go over the environment; empty ones never add or replace', () => {
  const base = { PATH: '/usr/bin', OPENAI_API_KEY: 'from-env', GEMINI_API_KEY: 'gem-env' };
  const env = serverEnv(base, { ANTHROPIC_API_KEY: 'sk-ant', OPENAI_API_KEY: 'sk-stored', GEMINI_API_KEY: '' });
  assert.deepEqual(env, { PATH: '/usr/bin', ANTHROPIC_API_KEY: 'sk-ant', OPENAI_API_KEY: 'sk-stored', GEMINI_API_KEY: 'gem-env' });
  assert.deepEqual(base, { PATH: '/usr/bin', OPENAI_API_KEY: 'from-env', GEMINI_API_KEY: 'gem-env' }, 'the base is not changed');
  const none = serverEnv({ PATH: '/bin' }, { ANTHROPIC_API_KEY: ' ', GEMINI_API_KEY: undefined, OTHER: 'x' });
  assert.deepEqual(none, { PATH: '/bin' }, 'no empty keys, nothing but provider keys');
});
