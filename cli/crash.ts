import { formatError } from '../core/errors.js';

type CrashHandler = (err: unknown) => Promise<void>;

let handler: CrashHandler | undefined;
let installed = false;

/**
 * While a long-running command runs, an error nobody caught (a bug) goes to `handle`, which reports it as an event
 * and stops cleanly, so that the terminal is given back and nothing is left half-open. Returns the unregister.
 */
export function onInternalError(handle: CrashHandler): () => void {
  handler = handle;
  return () => {
    if (handler === handle) handler = undefined;
  };
}

/** Routes unhandled rejections and uncaught exceptions to the active handler; without one, prints and exits 70. */
export function installCrashHandlers(): void {
  if (installed) return;
  installed = true;
  const crash = (err: unknown) => {
    process.exitCode = 70;
    const h = handler;
    if (h) {
      // The first crash stops the command; another one while it stops leaves at once.
      handler = undefined;
      h(err).catch((stopErr: unknown) => {
        process.stderr.write(`${formatError(stopErr)}\n`);
        process.exit(70);
      });
      return;
    }
    process.stderr.write(`${formatError(err)}\n`);
    process.exit(70);
  };
  process.on('unhandledRejection', crash);
  process.on('uncaughtException', crash);
}
