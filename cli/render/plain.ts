import type { EngineEvent } from '../../core/engine/events.js';
import { buildFailedLine, commandExitedLine } from '../../core/engine/messages.js';

export interface PlainOptions {
  color: boolean;
  /** Also print build output lines and per-layer delivery progress. */
  verbose: boolean;
  write: (line: string) => void;
}

const paint = (on: boolean, code: number) => (s: string) => (on ? `\u001b[${code}m${s}\u001b[0m` : s);

/** True when stdout is a terminal and NO_COLOR is not set (https://no-color.org). */
export function useColor(stream: NodeJS.WriteStream): boolean {
  return !!stream.isTTY && !('NO_COLOR' in process.env && process.env.NO_COLOR !== '');
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** One line per event (or none): what a person watching `devloop up --once` wants to see. Pure. */
export function formatEvent(e: EngineEvent, opts: Pick<PlainOptions, 'color' | 'verbose'>): string[] {
  const red = paint(opts.color, 31);
  const green = paint(opts.color, 32);
  const dim = paint(opts.color, 2);
  const bold = paint(opts.color, 1);
  const svc = (name: string) => bold(name);
  switch (e.type) {
    case 'run.started':
      return [`${e.command} → ${e.where} (${e.target})`];
    case 'plan.computed':
      return [`${e.services.length} service${e.services.length === 1 ? '' : 's'}: ${e.services.map((s) => `${s.name}@${s.version.slice(0, 12)}`).join(', ')}`];
    case 'namespace.created':
      return [`created namespace ${e.namespace}`];
    case 'service.current':
      return [`${svc(e.service)} current (${e.version.slice(0, 12)}), nothing to do`];
    case 'build.started':
      return [`${svc(e.service)} building ${e.image}`];
    case 'build.step':
      return [`${svc(e.service)} step ${e.step}/${e.total}: ${e.instruction}`];
    case 'build.log':
      return opts.verbose ? [dim(`${e.service} | ${e.line}`)] : [];
    case 'build.finished':
      return [`${svc(e.service)} built in ${seconds(e.durationMs)}`];
    case 'build.skipped':
      return [`${svc(e.service)} ${e.image} already ${e.reason === 'exists-in-registry' ? 'in the registry' : 'built'}, not rebuilt`];
    case 'build.failed':
      return [
        red(`${svc(e.service)} ${buildFailedLine(e)}`),
        ...e.lastLines.map((l) => dim(`${e.service} | ${l}`)),
      ];
    case 'build.blocked':
      return [red(`${svc(e.service)} not built: ${e.because}`)];
    case 'deliver.started':
      return [`${svc(e.service)} ${e.target === 'remote' ? 'pushing' : 'loading'} ${e.image}`];
    case 'deliver.progress':
      return opts.verbose ? [dim(`${e.service} | ${e.message}`)] : [];
    case 'deliver.finished':
      return [`${svc(e.service)} ${e.skipped ? 'already delivered' : 'delivered'}`];
    case 'deliver.failed':
      return [red(`${svc(e.service)} delivery failed: ${e.message}`)];
    case 'deploy.applied':
      return [`${svc(e.service)} applied ${e.objects.join(', ')}`];
    case 'deploy.pruned':
      return [`${svc(e.service)} pruned ${e.object}`];
    case 'deploy.failed':
      return [red(`${svc(e.service)} deploy failed: ${e.message}`)];
    case 'rollout.progress':
      return [`${svc(e.service)} ${e.ready}/${e.desired} ready${e.message ? ` (${e.message})` : ''}`];
    case 'pods.changed':
      return opts.verbose ? [dim(`${svc(e.service)} pods ${e.ready}/${e.total} ready`)] : [];
    case 'rollout.ready':
      return [green(`${svc(e.service)} ready in ${seconds(e.durationMs)}`)];
    case 'rollout.failed':
      return [red(`${svc(e.service)} ${e.reason}: ${e.message}`)];
    case 'down.deleted':
      return [`deleted ${e.object}`];
    case 'down.kept':
      return [`kept ${e.object}: ${e.reason}`];
    case 'warning':
      return [`${e.service ? `${svc(e.service)} ` : ''}warning: ${e.message}`];
    case 'run.finished':
      return [e.ok ? green(`done in ${seconds(e.durationMs)}`) : red(`failed${e.failed.length ? `: ${e.failed.join(', ')}` : ''} (${seconds(e.durationMs)})`)];
    case 'watch.started':
      return [green(`watching ${e.root} (quiet period ${e.quietMs} ms); Ctrl-C stops`)];
    case 'watch.paused':
      return [e.paused ? 'watching paused' : 'watching resumed'];
    case 'watch.batch':
      return e.decisions.map((d) => `${svc(d.service)} ${d.action}: ${d.reason}`);
    case 'watch.failed':
      return [red(`watching failed: ${e.message}`)];
    case 'pass.started':
      return [`${e.services.map(svc).join(', ')}: ${e.reason}`];
    case 'pass.finished':
      return [e.ok ? green(`updated in ${seconds(e.durationMs)}`) : red(`update failed: ${e.failed.join(', ')}; still watching`)];
    case 'config.reloaded':
      return [`${e.file} changed: reloaded (${e.services.join(', ')})`];
    case 'config.failed':
      return [red(`devloop.yaml not reloaded: ${e.message}`)];
    case 'sync.connected':
      return opts.verbose ? [dim(`${e.service} | sync ${e.mode} connected to ${e.where}`)] : [];
    case 'sync.disconnected':
      return opts.verbose ? [dim(`${e.service} | sync to ${e.where} ended: ${e.reason}`)] : [];
    case 'sync.finished':
      return [`${svc(e.service)} ${e.initial ? 'initial sync' : 'synced'} ${e.written} file${e.written === 1 ? '' : 's'}${e.deleted ? `, deleted ${e.deleted}` : ''} in ${e.durationMs} ms`];
    case 'sync.refused':
      return [red(`${svc(e.service)} not synced: ${e.path}: ${e.reason}`)];
    case 'sync.failed':
      return [red(`${svc(e.service)} sync failed${e.where ? ` (${e.where})` : ''}: ${e.message}`)];
    case 'sync.command':
      return [e.exitCode === 0 ? `${svc(e.service)} ran ${e.command.join(' ')}` : red(`${svc(e.service)} ${commandExitedLine(e)}: ${e.output}`)];
    case 'forward.ready':
      return [`${svc(e.service)} 127.0.0.1:${e.local} → ${e.where}:${e.remote}`];
    case 'forward.failed':
      return [red(`${svc(e.service)} port-forward ${e.local}:${e.remote} failed: ${e.message}`)];
    case 'log.line':
      return [`${paint(opts.color, serviceColor(e.service))(`${e.service} |`)} ${e.line}`];
    case 'loop.stopped':
      return [e.cleanup ? 'stopped; removing what was deployed' : 'stopped; the deployment keeps running'];
    case 'images.pruned':
      return [dim(`${svc(e.service)} removed ${e.images.length} image${e.images.length === 1 ? '' : 's'} from ${e.where}${opts.verbose ? `: ${e.images.join(', ')}` : ''}`)];
    case 'environment.lost':
      return [red(`${e.what}${e.redeploying ? '; deploying everything again' : ''}`)];
    case 'internal.error':
      return [red(`${e.message.split('\n')[0]} — stopping`)];
    case 'swap.started':
      return [green(`${svc(e.service)} swapped → ${e.ports.map((p) => `127.0.0.1:${p.local}${e.ports.length > 1 ? ` (port ${p.port})` : ''}`).join(', ')} (${e.mode === 'personal' ? `requests with devloop-route=${e.routeKey ?? '?'} only; ` : ''}agent ${e.agent}, lease ${e.leaseSeconds} s); Ctrl-C restores`)];
    case 'swap.traffic':
      return opts.verbose ? [dim(`${svc(e.service)} ${e.requests} request${e.requests === 1 ? '' : 's'} (${e.connections} connection${e.connections === 1 ? '' : 's'}) through the swap`)] : [];
    case 'swap.refused':
      return [red(`${svc(e.service)} ${e.message}`)];
    case 'swap.reconnecting':
      return [red(`${svc(e.service)} ${e.reason}; reconnecting to the agent`)];
    case 'swap.reconnected':
      return [green(`${svc(e.service)} swap reconnected to ${e.agent} after ${seconds(e.afterMs)}`)];
    case 'swap.restored':
      return [`${svc(e.service)} restored in ${e.namespace}${e.by === 'cluster' ? ' by the cluster' : ''}: ${e.reason}`];
    case 'swap.failed':
      return [red(`${svc(e.service)} swap: ${e.message}`)];
    case 'service.baseline':
      return [`${svc(e.service)} served by the baseline (${e.namespace} runs ${e.version.slice(0, 12)}), not forked`];
    case 'service.forked':
      return [
        `${svc(e.service)} forked: ${e.baselineVersion ? `version differs from baseline (${e.namespace}: ${e.baselineVersion.slice(0, 12)}, yours: ${e.version.slice(0, 12)})` : `the baseline ${e.namespace} does not run it`}`,
      ];
    case 'route.added':
      return [green(`${svc(e.service)} route: ${e.host} → ${e.to} for requests with devloop-route=${e.developer}`)];
    case 'route.removed':
      return [`route of ${e.developer} on ${e.host} removed (${e.reason})`];
    case 'lease.expired':
      return [`${e.developer}'s lease in ${e.namespace} ended: removed ${e.removed} object${e.removed === 1 ? '' : 's'} and their routes`];
  }
}

/** A stable colour per service name for log prefixes (red is kept for failures). */
function serviceColor(name: string): number {
  const palette = [32, 33, 34, 35, 36, 92, 93, 94, 95, 96];
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return palette[h % palette.length]!;
}

function timestamp(at: number): string {
  const d = new Date(at);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** A subscriber printing timestamped plain lines. */
export function plainRenderer(opts: PlainOptions): (e: EngineEvent) => void {
  return (e) => {
    for (const line of formatEvent(e, opts)) opts.write(`${timestamp(e.at)} ${line}\n`);
  };
}

/** A subscriber printing one JSON object per event and line. */
export function jsonRenderer(write: (line: string) => void): (e: EngineEvent) => void {
  return (e) => write(`${JSON.stringify(e)}\n`);
}
