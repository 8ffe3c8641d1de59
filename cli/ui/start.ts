import type { Session } from '../render/session.js';
import { useColor } from '../render/plain.js';
import type { DashboardCommands, RunningDashboard } from './app.js';
import type { HeaderInfo } from './view.js';

export { pickRenderer, type RendererKind } from './pick.js';

/** The header line for a session: target, context, namespace, developer, registry. */
export function headerFor(session: Pick<Session, 'target' | 'developer'>, command = 'up'): HeaderInfo {
  const t = session.target;
  const header: HeaderInfo = { command, target: t.kind, developer: session.developer };
  if (t.kind !== 'docker') {
    header.context = t.kube.context;
    header.namespace = t.namespace;
  }
  if (t.kind === 'remote') header.registry = t.registry;
  return header;
}

export interface StartDashboardOptions {
  /** Engine requests for the keys; absent for a single pass. */
  commands?: DashboardCommands;
  /** Run on `q` / Ctrl-C before the dashboard exits. */
  stop: () => Promise<void>;
  /** A single pass: exit when it finishes and leave the last frame on the screen. */
  once: boolean;
}

/**
 * Starts the terminal dashboard for a session. Ink and React are loaded here, only when a dashboard is shown.
 * When this resolves the dashboard is subscribed to the session's bus.
 */
export async function startDashboard(session: Session, opts: StartDashboardOptions): Promise<RunningDashboard> {
  const { mountDashboard } = await import('./app.js');
  const ports = Object.fromEntries(session.project.services.filter((s) => s.ports.length).map((s) => [s.name, s.ports]));
  return mountDashboard({
    bus: session.bus,
    header: headerFor(session),
    ...(opts.commands ? { commands: opts.commands } : {}),
    stop: opts.stop,
    exitWhenFinished: opts.once,
    ports,
    color: useColor(process.stdout),
    // A long-running session takes the whole screen and gives it back on exit; a single pass leaves its summary.
    alternateScreen: !opts.once,
  });
}
