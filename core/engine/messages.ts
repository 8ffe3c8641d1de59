import type { EngineEvent } from './events.js';

/**
 * Sentences about events that more than one renderer (and the engine state) shows, written once. Pure; no colour.
 */

/** "build failed at Step 3/5 : RUN make (api/Dockerfile:4): exit 2". */
export function buildFailedLine(e: Extract<EngineEvent, { type: 'build.failed' }>): string {
  return `build failed${e.step ? ` at ${e.step}` : ''}: ${e.message}`;
}

/** "make -C web exited 2". */
export function commandExitedLine(e: Extract<EngineEvent, { type: 'sync.command' }>): string {
  return `${e.command.join(' ')} exited ${e.exitCode}`;
}
