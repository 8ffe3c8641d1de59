import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { UserError } from '../../core/errors.js';
import type { EngineEventInput } from '../../core/engine/events.js';
import { workDir } from '../main.js';
import { openSession, targetFlags, type CommonFlags } from '../render/session.js';
import type { SwapRecord } from '../../core/swap/lease.js';
import type { SwapSession } from '../../core/swap/session.js';

interface SwapFlags extends CommonFlags {
  port: string[];
  personal?: boolean;
  global?: boolean;
  takeOver?: boolean;
  list?: boolean;
  allNamespaces?: boolean;
  stop?: boolean;
  envFile?: string;
  dotenv?: string;
  agentBase?: string;
}

/** The `--list` table: who swapped what, where, since when, and until when the lease runs. */
export function formatSwapList(records: SwapRecord[]): string {
  if (records.length === 0) return 'no swaps\n';
  const rows = records.map((r) => [
    r.namespace,
    r.service,
    r.mode,
    r.holder || r.developer,
    r.ports.map((p) => `${p.port}→127.0.0.1:${p.local}`).join(','),
    r.since ? new Date(r.since).toISOString().slice(0, 19).replace('T', ' ') : '-',
    r.expiresAt ? `${new Date(r.expiresAt).toISOString().slice(11, 19)}${new Date(r.expiresAt).getTime() < Date.now() ? ' (expired)' : ''}` : '-',
  ]);
  const header = ['NAMESPACE', 'SERVICE', 'MODE', 'HOLDER', 'PORTS', 'SINCE (UTC)', 'LEASE UNTIL'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return `${[header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  targetFlags(program.command('swap'))
    .description("route a Service's traffic to a process on this machine until you stop (Ctrl-C restores it)")
    .argument('[service]', 'the service (or its Service, or its workload) whose traffic to take')
    .argument('[command...]', 'after --: a command to run with the workload’s environment; the swap ends when it exits')
    .option('-p, --port <local:remote>', 'local port for a Service port (repeatable); default: the same port as the container’s', collect, [])
    .option('--personal', 'only requests carrying your routing key (the default in a shared cluster)')
    .option('--global', 'all of the Service’s traffic, everybody’s (the default in your own namespace)')
    .option('--take-over', 'replace your own swap of this Service whose devloop is gone')
    .option('--list', 'list the swaps: who, what, where, since when, until when')
    .option('-A, --all-namespaces', 'with --list: in every namespace you may read')
    .option('--stop', 'restore the Service now (also your own swap left by a crash)')
    .option('--env-file <file>', 'write the workload’s environment to this dotenv file (mode 600)')
    // Node.js exits before devloop starts when an argument `--env-file` names a file that does not exist yet
    // (nodejs/node#54232, also after the script's name): --dotenv is the same option without that trap.
    .option('--dotenv <file>', 'the same as --env-file, for a file that does not exist yet')
    .option('--agent-base <image>', 'image with node to build the swap agent FROM (default node:24-slim, or DEVLOOP_SWAP_AGENT_BASE)')
    .option('--json', 'print one JSON object per event')
    .action(async (service: string | undefined, command: string[], flags: SwapFlags) => {
      if (flags.personal && flags.global) throw new UserError('--personal and --global exclude each other', { hint: 'pick one mode' });
      if (!flags.list && !service) throw new UserError('which service to swap?', { hint: 'devloop swap <service> (devloop swap --list shows the swaps)' });
      const envFile = flags.dotenv ?? flags.envFile;
      const { parsePortRequests } = await import('../../core/swap/resolve.js');
      // Checked before anything is loaded or changed.
      const ports = parsePortRequests(flags.port);
      const session = await openSession(workDir(program), flags, true);
      if (flags.personal && !session.project.shared) {
        throw new UserError('personal mode needs shared: in devloop.yaml', { hint: 'personal swaps route by your routing key in a shared cluster; without one, swap globally in your own namespace (drop --personal)' });
      }
      const mode = flags.personal ? 'personal' : flags.global ? 'global' : undefined;
      const report = (e: EngineEventInput) => session.bus.emit(e);
      const swapContext = session.target.swapContext?.({ project: session.project, developer: session.developer }, report);
      if (!swapContext) {
        throw new UserError(`swap needs a Kubernetes target, and this one is ${session.target.where}`, { hint: 'use a kube context (--context), not --target docker' });
      }
      const swap = await import('../../core/swap/session.js');
      const lease = await import('../../core/swap/lease.js');
      const { kube, namespace } = swapContext;

      if (flags.list) {
        const records = await lease.listSwaps(kube, flags.allNamespaces ? undefined : namespace);
        process.stdout.write(flags.json ? `${JSON.stringify({ swaps: records.map(({ uid: _u, resourceVersion: _r, managedFields: _m, ...r }) => r) })}\n` : formatSwapList(records));
        return;
      }

      if (flags.stop) {
        const { planSwap } = await import('../../core/swap/resolve.js');
        const { toLabelValue } = await import('../../core/deploy/labels.js');
        const plan = await planSwap(kube, namespace, session.project.name, service!, [], async (s) => (await lease.readSwap(kube, namespace, s))?.selector).catch(() => undefined);
        const target = plan?.serviceName ?? service!;
        // This developer's personal swap of it, and its global swap (whoever holds it); --personal/--global pick one.
        const records = (
          await Promise.all([
            mode === 'global' || !swapContext.personal ? undefined : lease.readSwap(kube, namespace, target, toLabelValue(session.developer)),
            mode === 'personal' ? undefined : lease.readSwap(kube, namespace, target),
          ])
        ).filter((r): r is SwapRecord => !!r);
        if (records.length === 0) {
          process.stderr.write(`${service} is not swapped${mode ? ` (${mode})` : ''} in ${namespace}: nothing to restore\n`);
          return;
        }
        const mine = records.filter((r) => r.developer === toLabelValue(session.developer));
        if (mine.length === 0) {
          throw new UserError(`${records[0]!.service} is swapped by ${swap.describeHolder(records[0]!)}, not by you`, { hint: 'only its holder can stop it; it ends when their lease runs out' });
        }
        for (const record of mine) {
          await swap.undoSwap(kube, record, record.uid);
          report({ type: 'swap.restored', service: record.service, namespace, by: 'devloop', reason: `stopped with --stop (${record.mode})` });
        }
        return;
      }

      const abort = new AbortController();
      let stopRequested: string | undefined;
      let stop: (() => void) | undefined;
      const onSignal = (signal: NodeJS.Signals) => {
        if (stopRequested) {
          // A second Ctrl-C while restoring: leave now; the lease makes the cluster restore it.
          process.exit(130);
        }
        stopRequested = signal;
        abort.abort();
        stop?.();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      process.on('SIGHUP', onSignal);
      let active: SwapSession;
      try {
        active = await swap.SwapSession.start(swapContext, { name: service!, ports, ...(mode ? { mode } : {}), ...(flags.takeOver ? { takeOver: true } : {}), ...(flags.agentBase ? { agentBase: flags.agentBase } : {}), signal: abort.signal });
      } catch (err) {
        if (abort.signal.aborted) {
          process.exitCode = 130;
          return;
        }
        throw err;
      }

      let child: ReturnType<typeof spawn> | undefined;
      let closeEnvironment: (() => Promise<void>) | undefined;
      try {
        if (command.length > 0 || envFile) {
          const { localEnvironment, toDotenv } = await import('../../core/swap/env.js');
          const local = await localEnvironment(kube, active.plan);
          closeEnvironment = local.close;
          if (envFile) await writeFile(envFile, toDotenv(local.env), { mode: 0o600 });
          if (command.length > 0) {
            child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, ...local.env } });
          }
        }
        const childExit = child
          ? new Promise<number>((resolve) => {
              child!.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 1 : 1)));
              child!.on('error', (err) => {
                report({ type: 'swap.failed', service: active.service, message: `could not run ${command[0]}: ${err.message}` });
                resolve(127);
              });
            })
          : new Promise<never>(() => undefined);
        const stopped = new Promise<void>((resolve) => {
          stop = resolve;
          if (stopRequested) resolve();
        });
        const outcome = await Promise.race([childExit.then((code) => ({ code })), stopped.then(() => ({ code: 130 })), active.ended.then(() => ({ code: 1, ended: true }))]);
        if ('ended' in outcome) {
          process.exitCode = 1;
          return;
        }
        await active.stop(child && !stopRequested ? `${command[0]} exited with code ${outcome.code}` : 'stopped');
        process.exitCode = child && !stopRequested ? outcome.code : 0;
      } finally {
        if (child && child.exitCode === null) child.kill('SIGTERM');
        await closeEnvironment?.();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.off('SIGHUP', onSignal);
      }
    });
}
