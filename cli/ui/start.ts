import type { EngineCommands } from '../../core/engine/commands.js';
import { UserError } from '../../core/errors.js';
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

export interface LoopDashboard {
  /** Hands the dashboard the running loop's commands (the loop exists only after its first pass). */
  bind(loop: { commands: EngineCommands }): void;
  /** Unmounts the dashboard once the loop has stopped. */
  close(): Promise<void>;
}

/**
 * The dashboard for `devloop up` without --once, shown from before the first pass. Keys that ask for work say so
 * until the loop runs; `q` / Ctrl-C stops the loop (with --cleanup, also running `down`), a second one leaves at
 * once, as a second Ctrl-C does in a plain terminal.
 */
export async function startLoopDashboard(session: Session, opts: { cleanup: boolean }): Promise<LoopDashboard> {
  let loop: EngineCommands | undefined;
  let bound!: () => void;
  const ready = new Promise<void>((resolve) => (bound = resolve));
  const running = (): EngineCommands => {
    if (!loop) throw new UserError('the first pass is still running');
    return loop;
  };
  let stopped = false;
  const dashboard = await startDashboard(session, {
    commands: {
      rebuild: (service) => running().rebuild(service),
      rebuildAll: () => running().rebuildAll(),
      setWatching: (on) => running().setWatching(on),
      swap: (service) => running().swap(service),
    },
    stop: async () => {
      await ready;
      await loop!.stop({ cleanup: opts.cleanup });
      stopped = true;
    },
    once: false,
  });
  void dashboard.exited.then(
    () => {
      if (!stopped) process.exit(130);
    },
    () => {},
  );
  return {
    bind(l) {
      loop = l.commands;
      bound();
    },
    close: async () => {
      stopped = true;
      await dashboard.close();
    },
  };
}
