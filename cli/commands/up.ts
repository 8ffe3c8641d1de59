import os from 'node:os';
import type { Command } from 'commander';
import { UserError } from '../../core/errors.js';
import { workDir } from '../main.js';
import { openSession, targetFlags, type CommonFlags, type Session } from '../render/session.js';
import type { LoopFlags } from './up-loop.js';

interface UpFlags extends CommonFlags, LoopFlags {
  once?: boolean;
  parallel?: string;
  timeout?: string;
}

function positiveInt(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${flag} must be a positive whole number, not "${value}"`);
  return n;
}

/** One `up` at a time for this project, developer and target (see core/engine/lock.ts). */
async function lockRun(session: Session) {
  const { acquireRunLock } = await import('../../core/engine/lock.js');
  return acquireRunLock({ project: session.project.name, developer: session.developer, where: session.target.where }, 'up');
}

export function register(program: Command): void {
  targetFlags(program.command('up'))
    .description('build what changed, deliver it and deploy it, then wait until it is ready')
    .option('--once', 'run one pass and exit (exit code 1 when a service fails)')
    .option('--parallel <n>', 'builds to run at once', String(os.availableParallelism()))
    .option('--timeout <seconds>', 'how long to wait for each service to become ready', '120')
    .option('--json', 'print one JSON object per event')
    .option('-v, --verbose', 'also print build output and push progress')
    .option('--cleanup', 'when stopped (Ctrl-C), also remove what was deployed, as `devloop down` does')
    .option('--quiet <ms>', 'quiet period before a batch of file changes is handled', '50')
    .action(async (flags: UpFlags) => {
      const parallel = positiveInt('--parallel', flags.parallel, os.availableParallelism());
      const timeoutMs = positiveInt('--timeout', flags.timeout, 120) * 1000;
      const { pickRenderer } = await import('../ui/pick.js');
      const renderer = pickRenderer({ json: flags.json, stdout: process.stdout, stdin: process.stdin, env: process.env });
      if (!flags.once) {
        const { runLoop, quietMs } = await import('./up-loop.js');
        quietMs(flags.quiet);
        const session = await openSession(workDir(program), flags, renderer !== 'dashboard', { needsServices: true });
        const lock = await lockRun(session);
        // In a terminal the dashboard shows the loop from its first pass on, with the loop's commands on its keys.
        const { startLoopDashboard } = renderer === 'dashboard' ? await import('../ui/start.js') : { startLoopDashboard: undefined };
        try {
          await runLoop({
            session,
            parallel,
            timeoutMs,
            flags,
            ...(startLoopDashboard ? { present: (loop) => startLoopDashboard(session, loop, { cleanup: !!flags.cleanup }) } : {}),
          });
        } finally {
          await lock.release();
        }
        return;
      }
      const session = await openSession(workDir(program), flags, renderer !== 'dashboard', { needsServices: true });
      const lock = await lockRun(session);
      const versions = session.versions;
      const { upOnce } = await import('../../core/engine/up.js');
      const controller = new AbortController();
      // The first Ctrl-C (or SIGTERM) stops the pass: builds are cancelled and nothing more is applied; a second
      // one leaves at once.
      const onSignal = () => {
        if (controller.signal.aborted) process.exit(130);
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      // In a terminal the pass is shown on the dashboard; q / Ctrl-C there aborts it.
      const dashboard =
        renderer === 'dashboard'
          ? await (await import('../ui/start.js')).startDashboard(session, { once: true, stop: async () => controller.abort() })
          : undefined;
      try {
        let result = await upOnce(session.bus, {
          project: session.project,
          developer: session.developer,
          target: session.target,
          versions,
          parallel,
          timeoutMs,
          signal: controller.signal,
        });
        // A tree that changed under a build (a branch switch) is planned again as it is now, a few times at most.
        for (let again = 0; again < 3 && result.changed.length > 0 && !controller.signal.aborted; again++) {
          const { contentVersions } = await import('../../core/engine/versions.js');
          result = await upOnce(session.bus, {
            project: session.project,
            developer: session.developer,
            target: session.target,
            versions: await contentVersions(session.project),
            parallel,
            timeoutMs,
            signal: controller.signal,
          });
        }
        if (!result.ok) process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await dashboard?.close();
        await lock.release();
      }
    });
}
