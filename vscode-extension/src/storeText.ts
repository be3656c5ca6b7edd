/**
 * The team's shared store in the status bar (`acas/storeStatus`): nothing while it is reached
 * and nothing waits, else a short text and a tooltip line. Pure formatting.
 */
import type { StoreStatusParams } from './protocol';

export interface StoreView {
  /** Added to the status bar text. */
  text: string;
  /** A line of the tooltip. */
  tooltip: string;
}

export function storeView(store: StoreStatusParams | undefined, now = Date.now()): StoreView | undefined {
  if (!store) return undefined;
  const waiting = `${store.waiting} ${store.waiting === 1 ? 'change' : 'changes'} waiting`;
  if (!store.online) {
    const since = store.offlineSinceMs === undefined ? '' : ` for ${minutes(now - store.offlineSinceMs)}`;
    return {
      text: `$(cloud-offline) ACAS offline — ${waiting}`,
      tooltip: `Shared store ${store.url} offline${since}: working on this machine's share of the budgets; ${waiting}`,
    };
  }
  if (store.waiting > 0) return { text: `$(cloud-upload) ${store.waiting}`, tooltip: `Shared store ${store.url}: sending ${waiting}` };
  return undefined;
}

function minutes(ms: number): string {
  const m = Math.max(0, Math.floor(ms / 60000));
  return m < 1 ? 'less than a minute' : `${m} min`;
}
