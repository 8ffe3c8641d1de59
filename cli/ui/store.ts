import type { EventBus } from '../../core/engine/bus.js';
import type { EngineEvent } from '../../core/engine/events.js';
import type { EngineState } from '../../core/engine/state.js';
import { Activity, type ActivityOptions } from './activity.js';

/** At most one redraw per this many milliseconds for engine events (20 per second). */
export const FRAME_INTERVAL_MS = 50;
/** When only log lines arrived, a slower pace is enough to follow them (10 per second), and halves the cost of a flood. */
export const LOG_FRAME_INTERVAL_MS = 100;

const LOG_EVENTS: ReadonlySet<string> = new Set(['build.log', 'log.line']);

/**
 * Subscribes to the engine bus and coalesces its events: each event is folded in at once (cheap), but React hears
 * about them at most once per frame interval (50 ms; 100 ms while only log lines arrive). The first event after a
 * quiet spell is drawn right away; idle, it holds no timer.
 */
export class DashboardStore {
  engine: EngineState;
  readonly activity: Activity;
  private version = 0;
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private deadline = Number.POSITIVE_INFINITY;
  private lastFlush = Number.NEGATIVE_INFINITY;
  private readonly unsubscribe: () => void;
  /** Frames requested of React, for the benchmark. */
  flushes = 0;

  constructor(
    bus: EventBus<EngineState, EngineEvent>,
    opts: ActivityOptions & { intervalMs?: number; logIntervalMs?: number } = {},
  ) {
    this.activity = new Activity(opts);
    this.engine = bus.snapshot();
    const interval = opts.intervalMs ?? FRAME_INTERVAL_MS;
    const logInterval = Math.max(interval, opts.logIntervalMs ?? LOG_FRAME_INTERVAL_MS);
    this.unsubscribe = bus.subscribe((event, state) => {
      this.activity.record(event);
      this.engine = state;
      const deadline = this.lastFlush + (LOG_EVENTS.has(event.type) ? logInterval : interval);
      // Schedule a frame, or bring the scheduled one forward when a state change arrives during a log flood.
      if (deadline < this.deadline) {
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.deadline = deadline;
        this.timer = setTimeout(() => this.flush(), Math.max(0, deadline - Date.now()));
      }
    });
  }

  /** For useSyncExternalStore. */
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getVersion = (): number => this.version;

  private flush(): void {
    this.timer = undefined;
    this.deadline = Number.POSITIVE_INFINITY;
    this.lastFlush = Date.now();
    this.version++;
    this.flushes++;
    for (const l of [...this.listeners]) l();
  }

  close(): void {
    this.unsubscribe();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.deadline = Number.POSITIVE_INFINITY;
  }
}
