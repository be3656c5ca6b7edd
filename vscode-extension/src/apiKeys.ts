/**
 * API keys of the AI providers, kept in VS Code's secret storage (never in settings, never
 * logged) and given to the server as the environment variables it reads. Pure: the storage is
 * passed in.
 */

export interface KeyedProvider {
  /** Shown in the quick pick. */
  label: string;
  /** The environment variable the server reads. */
  env: string;
}

export const PROVIDERS: readonly KeyedProvider[] = [
  { label: 'Anthropic', env: 'ANTHROPIC_API_KEY' },
  { label: 'OpenAI', env: 'OPENAI_API_KEY' },
  { label: 'Gemini', env: 'GEMINI_API_KEY' },
];

/** The secret storage key of a provider's API key: `acas.ANTHROPIC_API_KEY`. */
export function secretKey(provider: KeyedProvider): string {
  return `acas.${provider.env}`;
}

/** Reads every stored key; `get` is `context.secrets.get`. Missing and blank keys are left out. */
export async function readKeys(get: (key: string) => PromiseLike<string | undefined>): Promise<Record<string, string>> {
  const keys: Record<string, string> = {};
  for (const provider of PROVIDERS) {
    const value = (await get(secretKey(provider)))?.trim();
    if (value) keys[provider.env] = value;
  }
  return keys;
}

/**
 * The server's environment: `base` (the extension host's) with the stored keys over it. A blank
 * stored key never replaces or adds anything.
 */
export function serverEnv(base: NodeJS.ProcessEnv, stored: Readonly<Record<string, string | undefined>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const provider of PROVIDERS) {
    const value = stored[provider.env]?.trim();
    if (value) env[provider.env] = value;
  }
  return env;
}
