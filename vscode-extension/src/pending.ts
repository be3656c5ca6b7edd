/**
 * Results of work the server answered with a handle (`acas.escalate` answers `{ escalationId }`,
 * `acas.plan` answers `{ planId }`) and finishes later with a notification. `wait(id)` gives the
 * notification's params for that id; a notification that arrives before anyone waits for it (it
 * can overtake the command's answer) is kept for the waiter to come. No VS Code import.
 */

/** How many results nobody waits for are kept, oldest dropped first. */
export const KEPT = 64;

export class Pending<T> {
  private readonly waiting = new Map<number, { resolve: (value: T) => void; reject: (error: Error) => void }>();
  private readonly early = new Map<number, T>();

  /** The result of the work `id`, when its notification arrives (or arrived). */
  wait(id: number): Promise<T> {
    const early = this.early.get(id);
    if (early !== undefined) {
      this.early.delete(id);
      return Promise.resolve(early);
    }
    return new Promise<T>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  /** The notification of the work `id` arrived. */
  settle(id: number, value: T): void {
    const waiter = this.waiting.get(id);
    if (waiter) {
      this.waiting.delete(id);
      waiter.resolve(value);
      return;
    }
    this.early.set(id, value);
    while (this.early.size > KEPT) this.early.delete(this.early.keys().next().value as number);
  }

  /** The server stopped: nothing waited for will arrive. */
  abandon(reason: string): void {
    for (const waiter of this.waiting.values()) waiter.reject(new Error(reason));
    this.waiting.clear();
    this.early.clear();
  }

  /** How many wait. */
  get size(): number {
    return this.waiting.size;
  }
}
