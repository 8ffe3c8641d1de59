/**
 * Collects items and hands them over in batches. The first item after a quiet spell goes out after only `leadMs`
 * when nothing follows it (a single saved file reaches the container at once); when more follow within that window,
 * the batch collects until nothing new arrived for `quietMs` (a branch switch, a formatter run over many files,
 * stays one batch). A steady stream still flushes after `maxWaitMs`, so the loop never starves.
 */
export class QuietBatcher<T> {
  private pending: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  private firstAt: number | undefined;
  /** Within the lead window of the first item: nothing else has arrived yet. */
  private leading = false;
  private held = false;

  constructor(
    private readonly flush: (items: T[]) => void,
    private readonly quietMs: number,
    private readonly maxWaitMs = Math.max(1000, quietMs * 10),
    private readonly leadMs = Math.min(5, quietMs),
  ) {}

  add(item: T): void {
    const first = this.pending.length === 0;
    this.pending.push(item);
    this.firstAt ??= Date.now();
    if (this.held) return;
    clearTimeout(this.timer);
    if (first) {
      this.leading = true;
      this.timer = setTimeout(() => this.release(), this.leadMs);
      return;
    }
    // More than one: a burst. Collect until it has been quiet for quietMs (bounded by maxWaitMs).
    this.leading = false;
    const waited = Date.now() - this.firstAt;
    const delay = waited >= this.maxWaitMs ? 0 : Math.min(this.quietMs, this.maxWaitMs - waited);
    this.timer = setTimeout(() => this.release(), delay);
  }

  /** While held, items accumulate and nothing is flushed; `resume()` flushes what came in meanwhile. */
  hold(): void {
    this.held = true;
    clearTimeout(this.timer);
  }

  resume(): void {
    this.held = false;
    if (this.pending.length > 0) this.release();
  }

  /** Drops pending items and timers. */
  clear(): void {
    clearTimeout(this.timer);
    this.pending = [];
    this.firstAt = undefined;
    this.leading = false;
  }

  private release(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const items = this.pending;
    this.pending = [];
    this.firstAt = undefined;
    this.leading = false;
    if (items.length > 0) this.flush(items);
  }
}
