/**
 * `ACAS: Create a Task for Agents from a Problem` (`acas.taskFromProblem`): which problem a call
 * is about, and what to say of the answer. The problem comes from the Problems view's item, a
 * fingerprint given by another command, or a pick among the open problems; the server makes the
 * task (`acas.task.fromProblem`, as `acas task from-problem` does). Pure; `extension.ts` wires it.
 */
import type { Problem, TaskFromProblemResult } from './protocol';

/** What the command may be called with: a Problems view item, a fingerprint, or nothing. */
export type Target = { kind: 'problem'; problem: Problem } | string | undefined;

/** The fingerprint `target` names, if it names one. */
export function fingerprintOf(target: unknown): string | undefined {
  if (typeof target === 'string') return target.trim() || undefined;
  if (target && typeof target === 'object' && 'problem' in target) {
    const problem = (target as { problem?: { fingerprint?: unknown } }).problem;
    if (typeof problem?.fingerprint === 'string' && problem.fingerprint) return problem.fingerprint;
  }
  return undefined;
}

/** The open problems as picks, most recent first. */
export function picks(problems: readonly Problem[]): { label: string; description: string; fingerprint: string }[] {
  return [...problems]
    .sort((a, b) => b.lastSeen - a.lastSeen)
    .map((p) => ({ label: p.message.split('\n')[0], description: `${p.category} · ${p.source}`, fingerprint: p.fingerprint }));
}

/** What to tell the user once the server answered. */
export function outcomeText(result: TaskFromProblemResult): string {
  const { task, created } = result;
  return created
    ? `ACAS made task #${task.id} for agents: ${task.title}`
    : `The problem already has the open task #${task.id}: ${task.title}`;
}
