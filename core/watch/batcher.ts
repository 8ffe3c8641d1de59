/**
 * Collects items until nothing new arrived for `quietMs`, then hands them over at once. A steady stream of changes
 * (a branch switch, a code generator) still flushes after `maxWaitMs`, so the loop never starves.
 */
export class QuietBatcher<T> {
  private pending: T[] = [];
  private quietTimer: NodeJS.Timeout | undefined;
  private firstAt: number | undefined;
  private held = false;

  constructor(
    private readonly flush: (items: T[]) => void,
    private readonly quietMs: number,
    private readonly maxWaitMs = Math.max(1000, quietMs * 10),
  ) {}

  add(item: T): void {
    this.pending.push(item);
    this.firstAt ??= Date.now();
    if (this.held) return;
    clearTimeout(this.quietTimer);
    const waited = Date.now() - this.firstAt;
    const delay = waited >= this.maxWaitMs ? 0 : Math.min(this.quietMs, this.maxWaitMs - waited);
    this.quietTimer = setTimeout(() => this.release(), delay);
  }

  /** While held, items accumulate and nothing is flushed; `resume()` flushes what came in meanwhile. */
  hold(): void {
    this.held = true;
    clearTimeout(this.quietTimer);
  }

  resume(): void {
    this.held = false;
    if (this.pending.length > 0) this.release();
  }

  /** Drops pending items and timers. */
  clear(): void {
    clearTimeout(this.quietTimer);
    this.pending = [];
    this.firstAt = undefined;
  }

  private release(): void {
    clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    const items = this.pending;
    this.pending = [];
    this.firstAt = undefined;
    if (items.length > 0) this.flush(items);
  }
}
