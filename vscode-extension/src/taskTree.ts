/**
 * Shapes `acas/tasks` answers into the tree of the "Agents' Tasks" view: state groups (running,
 * claimed, blocked, queued, failed, done), then each task with its holder and when its lease
 * ends, then the paths it holds locked. Pure; `tasksView.ts` renders it.
 */
import type { TaskState, TaskSummary, TasksResult } from './protocol';
import { duration, type Icon } from './workflowTree';

/** The groups, in the order they are shown. */
export const STATE_ORDER: readonly TaskState[] = ['running', 'claimed', 'blocked', 'queued', 'failed', 'done'];

export interface StateNode {
  kind: 'state';
  id: string;
  state: TaskState;
  label: string;
  description: string;
  icon: Icon;
  tasks: TaskNode[];
}

export interface TaskNode {
  kind: 'task';
  id: string;
  task: TaskSummary;
  label: string;
  description: string;
  tooltip: string;
  ariaLabel: string;
  locks: LockNode[];
}

export interface LockNode {
  kind: 'lock';
  id: string;
  glob: string;
  label: string;
  description: string;
}

export type TaskTreeNode = StateNode | TaskNode | LockNode;

const STATE_ICON: Record<TaskState, Icon> = {
  running: { id: 'sync', color: 'charts.blue' },
  claimed: { id: 'person', color: 'charts.blue' },
  blocked: { id: 'debug-pause', color: 'charts.yellow' },
  queued: { id: 'circle-outline' },
  failed: { id: 'error', color: 'testing.iconFailed' },
  done: { id: 'pass', color: 'testing.iconPassed' },
};

/** Groups with at least one task, in [`STATE_ORDER`]; tasks by priority, then id. */
export function buildTaskTree(result: TasksResult, nowMs: number): StateNode[] {
  const groups: StateNode[] = [];
  for (const state of STATE_ORDER) {
    const tasks = result.tasks
      .filter((t) => t.state === state)
      .sort((a, b) => b.priority - a.priority || a.id - b.id)
      .map((t) => taskNode(t, nowMs));
    if (tasks.length === 0) continue;
    groups.push({ kind: 'state', id: `state:${state}`, state, label: state, description: `${tasks.length}`, icon: STATE_ICON[state], tasks });
  }
  return groups;
}

function held(task: TaskSummary): boolean {
  return task.state === 'claimed' || task.state === 'running';
}

/** `lease ends in 4 min 10 s`, or `lease ended` once it is past (until the server returns the task). */
export function leaseText(leaseUntilMs: number, nowMs: number): string {
  return leaseUntilMs > nowMs ? `lease ends in ${duration(leaseUntilMs - nowMs)}` : 'lease ended';
}

function taskNode(task: TaskSummary, nowMs: number): TaskNode {
  const parts: string[] = [];
  if (held(task) && task.agent) parts.push(task.agent);
  if (held(task) && task.leaseUntilMs !== undefined) parts.push(leaseText(task.leaseUntilMs, nowMs));
  if (task.state === 'blocked' && task.needs.length > 0) parts.push(`needs ${task.needs.map((n) => `#${n}`).join(', ')}`);
  if (task.priority !== 0) parts.push(`priority ${task.priority}`);
  const tooltip = [
    `#${task.id} ${task.title}`,
    `${task.type}, ${task.state}, priority ${task.priority}`,
    held(task) && task.agent ? `held by ${task.agent}` : task.agent ? `last held by ${task.agent}` : undefined,
    task.paths.length > 0 ? `paths: ${task.paths.join(', ')}` : undefined,
    task.needs.length > 0 ? `needs: ${task.needs.map((n) => `#${n}`).join(', ')}` : undefined,
    task.labels.length > 0 ? `labels: ${task.labels.join(', ')}` : undefined,
    task.attempts > 0 ? `failures: ${task.attempts} of ${task.maxAttempts}${task.lastError ? `, last: ${task.lastError}` : ''}` : undefined,
    `from ${task.source} by ${task.createdBy}`,
    task.description || undefined,
  ]
    .filter((line): line is string => line !== undefined)
    .join('\n');
  const holder = held(task) && task.agent ? `, held by ${task.agent}` : '';
  return {
    kind: 'task',
    id: `task:${task.id}`,
    task,
    label: `#${task.id} ${task.title}`,
    description: parts.join(' · '),
    tooltip,
    ariaLabel: `task ${task.id}, ${task.title}, ${task.state}${holder}`,
    locks: task.locks.map((glob) => ({
      kind: 'lock',
      id: `task:${task.id}:lock:${glob}`,
      glob,
      label: glob,
      description: task.agent ? `locked by ${task.agent}` : 'locked',
    })),
  };
}
