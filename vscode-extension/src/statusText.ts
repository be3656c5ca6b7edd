/**
 * What the status bar item says: the server state and, while it runs, the open problems by
 * severity, the AI spend and the number of running workflows. Pure formatting; the item itself lives in `statusBar.ts`.
 */
import type { Problem, SpendResult } from './protocol';
import { showsSpend, spendShort, spendTooltip } from './spendText';

export type ServerState = 'starting' | 'running' | 'stopped' | 'error';

export interface Counts {
  error: number;
  warning: number;
  information: number;
  hint: number;
}

export interface StatusView {
  text: string;
  /** What a screen reader says (the text without icons). */
  label: string;
  tooltip: string;
  /** Show with the error background. */
  alarming: boolean;
}

export function countBySeverity(problems: readonly Problem[]): Counts {
  const counts: Counts = { error: 0, warning: 0, information: 0, hint: 0 };
  for (const p of problems) {
    if (p.severity in counts) counts[p.severity as keyof Counts] += 1;
  }
  return counts;
}

/**
 * `counts` is undefined until the server has answered `acas/problems`, `spend` until it has
 * answered `acas/spend`. Spend goes into the tooltip and, once AI is set up, the text; the
 * accessible label keeps to the problems and running workflows. `workflows` (queued or running
 * runs) shows only when there are some.
 */
export function statusView(state: ServerState, counts?: Counts, detail?: string, spend?: SpendResult, workflows = 0): StatusView {
  const running = state === 'running' && workflows > 0 ? workflowsText(workflows) : undefined;
  const extra =
    (detail ? `\n${detail}` : '') +
    (state === 'running' && spend ? `\n${spendTooltip(spend).join('\n')}` : '') +
    (running ? `\n${running.tooltip}` : '');
  switch (state) {
    case 'starting':
      return { text: '$(sync~spin) ACAS', label: 'ACAS: starting', tooltip: `ACAS: starting the server${extra}`, alarming: false };
    case 'stopped':
      return { text: '$(circle-slash) ACAS', label: 'ACAS: stopped', tooltip: `ACAS: server stopped${extra}\nClick for ACAS commands`, alarming: false };
    case 'error':
      return { text: '$(error) ACAS', label: 'ACAS: failed', tooltip: `ACAS: server failed${extra}\nClick for ACAS commands`, alarming: true };
    case 'running': {
      const flows = running ? ` ${running.text}` : '';
      const flowsLabel = running ? `, ${running.tooltip}` : '';
      if (!counts) return { text: `$(check) ACAS${flows}`, label: `ACAS: running${flowsLabel}`, tooltip: `ACAS: running${extra}\nClick for ACAS commands`, alarming: false };
      const money = spend && showsSpend(spend) ? ` $(credit-card) ${spendShort(spend)}` : '';
      const text = `ACAS $(error) ${counts.error} $(warning) ${counts.warning}${money}${flows}`;
      const label = `ACAS: ${plural(counts.error, 'error')}, ${plural(counts.warning, 'warning')}${flowsLabel}`;
      const tooltip =
        `ACAS: running\n${plural(counts.error, 'error')}, ${plural(counts.warning, 'warning')}, ` +
        `${plural(counts.information, 'information', 'information')}, ${plural(counts.hint, 'hint')} ` +
        `(distinct problems)${extra}\nClick for ACAS commands`;
      return { text, label, tooltip, alarming: false };
    }
  }
}

function workflowsText(n: number): { text: string; tooltip: string } {
  return { text: `$(run-all) ${n}`, tooltip: `${plural(n, 'workflow')} running` };
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
