/**
 * How the status bar shows AI spend from `acas/spend`: a short `$0.12 / $2.00` (today against
 * the daily budget; `<$0.01 / $2.00` once something too small for a cent was spent) and tooltip lines with today, the month, the budgets and the providers.
 * Pure formatting.
 */
import type { SpendResult } from './protocol';

/** Dollars and cents; a spend that rounds to nothing but is not nothing shows as `<$0.01`. */
export function formatUsd(usd: number): string {
  return usd > 0 && usd < 0.005 ? '<$0.01' : `$${usd.toFixed(2)}`;
}

/** Today's spend, against the daily budget when there is one: `$0.12 / $2.00`, `$0.12`. */
export function spendShort(spend: SpendResult): string {
  const today = formatUsd(spend.todayUsd);
  return spend.dailyBudgetUsd === null ? today : `${today} / ${formatUsd(spend.dailyBudgetUsd)}`;
}

/** Whether the status bar text shows spend: once AI is set up or has cost something. */
export function showsSpend(spend: SpendResult): boolean {
  return spend.providers.length > 0 || spend.todayUsd > 0 || spend.monthUsd > 0;
}

export function spendTooltip(spend: SpendResult): string[] {
  const budget = (usd: number | null, per: string) => (usd === null ? `no ${per} budget` : `${per} budget ${formatUsd(usd)}`);
  return [
    `AI spend: today ${formatUsd(spend.todayUsd)} (${budget(spend.dailyBudgetUsd, 'daily')}), ` +
      `this month ${formatUsd(spend.monthUsd)} (${budget(spend.monthlyBudgetUsd, 'monthly')})`,
    spend.providers.length > 0 ? `AI providers: ${spend.providers.join(', ')}` : 'AI providers: none (ACAS: Set API Key)',
  ];
}
