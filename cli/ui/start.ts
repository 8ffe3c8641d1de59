import type { RunningLoop } from '../../core/engine/loop.js';
import type { Session } from '../render/session.js';
import { useColor } from '../render/plain.js';
import type { DashboardCommands, RunningDashboard } from './app.js';
import type { HeaderInfo } from './view.js';

export { pickRenderer, type RendererKind } from './pick.js';

/** The header line for a session: target, context, namespace, developer, registry. */
export function headerFor(session: Pick<Session, 'target' | 'developer'>, command = 'up'): HeaderInfo {
  const t = session.target;
  return { command, target: t.kind, developer: session.developer, ...t.describe };
}

/**
 * Loads the dashboard with React's production build: the development build checks and logs every render and costs
 * several times the CPU under a flood of log lines. React picks its build from NODE_ENV when first loaded; the
 * variable is put back at once so processes devloop starts see the user's own.
 */
export async function loadDashboard(): Promise<typeof import('./app.js')> {
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    return await import('./app.js');
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
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
  const { mountDashboard } = await loadDashboard();
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

/**
 * The dashboard for `devloop up` without --once, shown from the first pass on. `q` / Ctrl-C stops the loop (with
 * --cleanup, also running `down`); a second one leaves at once, as a second Ctrl-C does in a plain terminal.
 */
export async function startLoopDashboard(session: Session, loop: RunningLoop, opts: { cleanup: boolean }): Promise<RunningDashboard> {
  let stopped = false;
  const { commands } = loop;
  const dashboard = await startDashboard(session, {
    commands: {
      rebuild: (service) => commands.rebuild(service),
      rebuildAll: () => commands.rebuildAll(),
      setWatching: (on) => commands.setWatching(on),
      swap: (service) => commands.swap(service),
    },
    stop: async () => {
      await commands.stop({ cleanup: opts.cleanup });
      stopped = true;
    },
    once: false,
  });
  dashboard.exited.then(
    () => {
      if (!stopped) process.exit(130);
    },
    // The dashboard failing to draw is reported by the app itself; the loop goes on and Ctrl-C still stops it.
    () => undefined,
  );
  return dashboard;
}
