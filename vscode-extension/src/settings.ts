/**
 * Reads the server settings (`acas.logLevel`, `acas.logToClient`, `acas.ignore`, `acas.maxFileSize`,
 * `acas.skipCheckers`) into the protocol's `Settings`. Only values the user set are sent, so the
 * server's own defaults and `.acas/config.toml` stay in force for the rest; ill-typed values are
 * dropped. `skipCheckers` left unset is filled from the installed extensions whose diagnostics
 * VS Code shows already (and the extension forwards), so that ACAS does not run those tools again.
 */
import type { LogLevel, Settings } from './protocol';

const LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace'];

/** `userValue(key)` returns what the user set for `acas.<key>` in any scope, or undefined. */
/** Extensions that run a checker themselves, and the ACAS checkers they stand for. */
export const FORWARDED_CHECKERS: readonly { extension: string; checkers: readonly string[] }[] = [
  { extension: 'rust-lang.rust-analyzer', checkers: ['cargo-check', 'clippy'] },
  { extension: 'vscode.typescript-language-features', checkers: ['tsc'] },
  { extension: 'ms-python.vscode-pylance', checkers: ['pyright'] },
  { extension: 'dbaeumer.vscode-eslint', checkers: ['eslint'] },
];

export function readSettings(
  userValue: (key: keyof Settings) => unknown,
  installed: (extension: string) => boolean = () => false,
): Settings {
  const settings: Settings = {};
  const logLevel = userValue('logLevel');
  if (typeof logLevel === 'string' && (LEVELS as readonly string[]).includes(logLevel)) {
    settings.logLevel = logLevel as LogLevel;
  }
  const logToClient = userValue('logToClient');
  if (typeof logToClient === 'boolean') settings.logToClient = logToClient;
  const ignore = userValue('ignore');
  if (Array.isArray(ignore) && ignore.every((g) => typeof g === 'string')) settings.ignore = ignore;
  const maxFileSize = userValue('maxFileSize');
  if (typeof maxFileSize === 'number' && Number.isFinite(maxFileSize) && maxFileSize >= 0) {
    settings.maxFileSize = Math.floor(maxFileSize);
  }
  const skipCheckers = userValue('skipCheckers');
  if (Array.isArray(skipCheckers) && skipCheckers.every((c) => typeof c === 'string')) {
    settings.skipCheckers = skipCheckers;
  } else if (skipCheckers === undefined) {
    const forwarded = FORWARDED_CHECKERS.filter((f) => installed(f.extension)).flatMap((f) => f.checkers);
    if (forwarded.length > 0) settings.skipCheckers = forwarded;
  }
  return settings;
}
