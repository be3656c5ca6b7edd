/**
 * Shapes `acas/problems` results into the tree of the "Problems by Class" view: category, then
 * problem (one per fingerprint), then its locations. Pure; `problemsView.ts` renders it.
 */
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import type { Location, Problem } from './protocol';

/** Categories in the order users care about; unknown ones sort after, alphabetically. */
const CATEGORY_ORDER = ['syntax', 'type', 'name', 'import', 'ownership', 'build', 'test', 'runtime', 'lint', 'other'];
const SEVERITY_ORDER = ['error', 'warning', 'information', 'hint'];

export interface CategoryNode {
  kind: 'category';
  category: string;
  label: string;
  description: string;
  problems: ProblemNode[];
}

export interface ProblemNode {
  kind: 'problem';
  problem: Problem;
  label: string;
  description: string;
  tooltip: string;
  /** What a screen reader says: severity, message, source, occurrences. */
  ariaLabel: string;
  locations: LocationNode[];
}

export interface LocationNode {
  kind: 'location';
  location: Location;
  label: string;
}

export type TreeNode = CategoryNode | ProblemNode | LocationNode;

/** `root` is the workspace folder's path, for short location labels. */
export function buildTree(problems: readonly Problem[], root?: string, formatTime = localTime): CategoryNode[] {
  const byCategory = new Map<string, Problem[]>();
  for (const p of problems) {
    const list = byCategory.get(p.category) ?? [];
    list.push(p);
    byCategory.set(p.category, list);
  }
  return [...byCategory.keys()].sort(byRank(CATEGORY_ORDER)).map((category) => {
    const list = byCategory.get(category)!.slice().sort(
      (a, b) => rank(SEVERITY_ORDER, a.severity) - rank(SEVERITY_ORDER, b.severity) || b.lastSeen - a.lastSeen,
    );
    return {
      kind: 'category',
      category,
      label: category,
      description: `${list.length}`,
      problems: list.map((p) => problemNode(p, root, formatTime)),
    };
  });
}

function problemNode(problem: Problem, root: string | undefined, formatTime: (ms: number) => string): ProblemNode {
  const tooltip = [
    `source: ${problem.source}`,
    `symbol: ${problem.symbol ?? '(none)'}`,
    `first seen: ${formatTime(problem.firstSeen)}`,
    `last seen: ${formatTime(problem.lastSeen)}`,
    `fingerprint: ${problem.fingerprint}`,
  ].join('\n');
  return {
    kind: 'problem',
    problem,
    label: problem.message,
    description: `occurrences ×${problem.occurrences}`,
    tooltip,
    ariaLabel: `${problem.severity}: ${problem.message}, from ${problem.source}, occurrences ${problem.occurrences}`,
    locations: problem.locations.map((location) => locationNode(location, root)),
  };
}

function locationNode(location: Location, root: string | undefined): LocationNode {
  const { line, character } = location.range.start;
  return {
    kind: 'location',
    location,
    label: `${displayPath(location.uri, root)}:${line + 1}:${character + 1}`,
  };
}

/** A file URI as a path relative to `root` when inside it; other URIs unchanged. */
export function displayPath(uri: string, root?: string): string {
  if (!uri.startsWith('file:')) return uri;
  const file = fileURLToPath(uri);
  if (root) {
    const rel = path.relative(root, file);
    if (rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)) return rel.split(path.sep).join('/');
  }
  return file;
}

export function localTime(ms: number): string {
  return new Date(ms).toLocaleString();
}

function rank(order: readonly string[], value: string): number {
  const i = order.indexOf(value);
  return i === -1 ? order.length : i;
}

function byRank(order: readonly string[]): (a: string, b: string) => number {
  return (a, b) => rank(order, a) - rank(order, b) || a.localeCompare(b);
}
