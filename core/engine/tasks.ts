/**
 * The owner of background work: every task started through a TaskGroup is awaited by `settled()` (which stopping
 * calls), and a task that fails is reported through `onFailure` instead of becoming an unhandled rejection.
 */
export class TaskGroup {
  private readonly running = new Set<Promise<void>>();
  private readonly serials = new Map<string, Promise<void>>();

  constructor(private readonly onFailure: (what: string, err: unknown) => void) {}

  /** Starts `work` now; its failure is reported, never thrown. */
  run(what: string, work: () => Promise<unknown>): void {
    const task: Promise<void> = Promise.resolve()
      .then(work)
      .then(
        () => undefined,
        (err: unknown) => this.onFailure(what, err),
      )
      .finally(() => this.running.delete(task));
    this.running.add(task);
  }

  /** Runs `work` after everything queued before it on the same lane (one at a time, in order). */
  serial(lane: string, what: string, work: () => Promise<unknown>): void {
    const previous = this.serials.get(lane) ?? Promise.resolve();
    const next: Promise<void> = previous
      .then(work)
      .then(
        () => undefined,
        (err: unknown) => this.onFailure(what, err),
      )
      .finally(() => {
        this.running.delete(next);
        if (this.serials.get(lane) === next) this.serials.delete(lane);
      });
    this.serials.set(lane, next);
    this.running.add(next);
  }

  /** How many tasks are still running. */
  get size(): number {
    return this.running.size;
  }

  /** Resolves when every task, including those started meanwhile, has settled. */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }
}
