import type { RunningLoop } from '../../core/engine/loop.js';
import { formatError, oneLine, UserError } from '../../core/errors.js';
import { onInternalError } from '../crash.js';
import type { Session } from '../render/session.js';

export interface LoopFlags {
  cleanup?: boolean;
  quiet?: string;
}

export interface LoopRun {
  session: Session & { versions: Record<string, string> };
  parallel: number;
  timeoutMs: number;
  flags: LoopFlags;
  /**
   * Shows the running loop (a renderer that also calls its commands, such as the terminal dashboard); without
   * it the session's plain or JSON renderer prints the events.
   */
  present?: (loop: RunningLoop) => Promise<{ close(): Promise<void> }>;
}

/** Parses --quiet (milliseconds, 0–10000). */
export function quietMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 10_000) throw new UserError(`--quiet must be a whole number of milliseconds between 0 and 10000, not "${value}"`);
  return n;
}

/**
 * `devloop up` without --once: the first pass, then the loop until Ctrl-C (or a renderer's stop). Ctrl-C stops
 * watchers, syncs, forwards and log streams and leaves the deployment running; --cleanup also removes it. A
 * second Ctrl-C exits at once.
 */
export async function runLoop(run: LoopRun): Promise<void> {
  const { startLoop } = await import('../../core/engine/loop.js');
  const quiet = quietMs(run.flags.quiet);
  const cleanup = !!run.flags.cleanup;
  const loop = startLoop(run.session.bus, {
    dir: run.session.project.root,
    project: run.session.project,
    developer: run.session.developer,
    target: run.session.target,
    versions: run.session.versions,
    parallel: run.parallel,
    timeoutMs: run.timeoutMs,
    ...(quiet !== undefined ? { quietMs: quiet } : {}),
  });
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    // Stopping reports its own problems as events and always settles `stopped`, which runLoop awaits.
    loop.commands.stop({ cleanup }).catch((err: unknown) => run.session.bus.emit({ type: 'warning', message: `stopping failed: ${oneLine(err)}` }));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let crashed: unknown;
  const offCrash = onInternalError(async (err) => {
    crashed = err;
    run.session.bus.emit({ type: 'internal.error', message: formatError(err) });
    await loop.commands.stop({ cleanup });
  });
  let shown: { close(): Promise<void> } | undefined;
  try {
    shown = await run.present?.(loop);
    await loop.stopped;
  } finally {
    offCrash();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await shown?.close();
  }
  // With the terminal given back, the error is said once more where it stays visible.
  if (crashed !== undefined) {
    process.stderr.write(`${formatError(crashed)}\n`);
    process.exitCode = 70;
  }
}
