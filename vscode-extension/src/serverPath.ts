/**
 * Finds the `acas` binary: the `acas.server.path` setting, else `ACAS_SERVER_PATH`, else the
 * binary bundled in the extension (`bin/acas`), else `acas` on `PATH`. The first candidate that
 * is an executable file wins. File-system checks are injected, so this module never touches the
 * disk itself and does not start anything.
 */
import * as path from 'node:path';

export type Origin = 'setting' | 'environment' | 'bundled' | 'PATH';

export interface Candidate {
  origin: Origin;
  path: string;
}

export interface Lookup {
  /** The `acas.server.path` setting, if set. */
  setting?: string;
  env: Record<string, string | undefined>;
  extensionPath: string;
  /** Where relative setting paths are resolved: the first workspace folder, if any. */
  workspaceRoot?: string;
  homeDir: string;
  platform: NodeJS.Platform;
  isExecutable(file: string): boolean;
}

export type Resolution =
  | { ok: true; path: string; origin: Origin; skipped: Candidate[] }
  | { ok: false; message: string; skipped: Candidate[] };

const SETTING = 'acas.server.path';
const ENV = 'ACAS_SERVER_PATH';

/** Every place to look, in order. */
export function candidates(lookup: Lookup): Candidate[] {
  const exe = lookup.platform === 'win32' ? 'acas.exe' : 'acas';
  const p = lookup.platform === 'win32' ? path.win32 : path.posix;
  const out: Candidate[] = [];
  const setting = lookup.setting?.trim();
  if (setting) out.push({ origin: 'setting', path: expand(setting, lookup, p) });
  const env = lookup.env[ENV]?.trim();
  if (env) out.push({ origin: 'environment', path: expand(env, lookup, p) });
  out.push({ origin: 'bundled', path: p.join(lookup.extensionPath, 'bin', exe) });
  const dirs = (lookup.env.PATH ?? lookup.env.Path ?? '').split(p.delimiter).filter((d) => d !== '');
  for (const dir of dirs) out.push({ origin: 'PATH', path: p.join(dir, exe) });
  return out;
}

export function resolveServerPath(lookup: Lookup): Resolution {
  const skipped: Candidate[] = [];
  for (const candidate of candidates(lookup)) {
    if (lookup.isExecutable(candidate.path)) return { ok: true, ...candidate, skipped };
    // A missing bundled binary or a miss in one PATH directory is normal; a configured path is not.
    if (candidate.origin === 'setting' || candidate.origin === 'environment') skipped.push(candidate);
  }
  return { ok: false, message: notFoundMessage(skipped), skipped };
}

function notFoundMessage(skipped: Candidate[]): string {
  const tried = skipped.map((c) => `${describe(c.origin)} is ${c.path}, which is not an executable file`);
  const why = tried.length > 0 ? `; ${tried.join('; ')}` : '';
  return (
    `ACAS cannot start: no acas server binary found${why}. ` +
    `Set "${SETTING}" to the acas binary (build it with \`cargo build --release -p acas\`) or put acas on PATH, ` +
    `then run "ACAS: Restart Server"`
  );
}

function describe(origin: Origin): string {
  return origin === 'setting' ? `"${SETTING}"` : origin === 'environment' ? ENV : origin;
}

function expand(file: string, lookup: Lookup, p: path.PlatformPath): string {
  if (file === '~' || file.startsWith('~/')) file = p.join(lookup.homeDir, file.slice(1));
  if (!p.isAbsolute(file) && lookup.workspaceRoot) file = p.join(lookup.workspaceRoot, file);
  return file;
}
