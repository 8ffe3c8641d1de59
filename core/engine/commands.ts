/**
 * What a user (through the terminal app's keys, or any other front end) can ask a running engine to do.
 * Front ends call these; they never mutate engine state themselves. Each returns once the request is accepted,
 * not when the work is done: progress arrives as events.
 */
export interface EngineCommands {
  /** Rebuild and redeploy one service (and what depends on it), even if its content version is unchanged. */
  rebuild(service: string): void;
  /** Rebuild and redeploy every service. */
  rebuildAll(): void;
  /** Pause or resume reacting to file changes; changes seen while paused are handled on resume. */
  setWatching(on: boolean): void;
  /** Route the service's traffic to a local process (`devloop swap`); throws a UserError while unavailable. */
  swap(service: string): void;
  /** Stop watchers, syncs, forwards and log streams; with cleanup, also remove what was deployed (`down`). */
  stop(opts?: { cleanup?: boolean }): Promise<void>;
}
