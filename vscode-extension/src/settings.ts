/**
 * Reads the server settings (`acas.logLevel`, `acas.logToClient`, `acas.ignore`, `acas.maxFileSize`) into the
 * protocol's `Settings`. Only values the user set are sent, so the server's own defaults and
 * `.acas/config.toml` stay in force for the rest; ill-typed values are dropped.
 */
import type { LogLevel, Settings } from './protocol';

const LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace'];

/** `userValue(key)` returns what the user set for `acas.<key>` in any scope, or undefined. */
export function readSettings(userValue: (key: keyof Settings) => unknown): Settings {
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
  return settings;
}
