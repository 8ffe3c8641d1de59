import { render, useApp, useInput, useWindowSize } from 'ink';
import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { EventBus } from '../../core/engine/bus.js';
import type { EngineCommands } from '../../core/engine/commands.js';
import type { EngineEvent } from '../../core/engine/events.js';
import type { EngineState } from '../../core/engine/state.js';
import { Dashboard } from './components.js';
import { initialUiState, keyIntent, uiReducer, type UiAction, type UiState } from './model.js';
import { DashboardStore } from './store.js';
import { buildView, type HeaderInfo } from './view.js';

/** The engine requests the keys can make; absent for a single pass (`up --once`). */
export type DashboardCommands = Pick<EngineCommands, 'rebuild' | 'rebuildAll' | 'setWatching' | 'swap'>;

export interface DashboardAppProps {
  store: DashboardStore;
  header: HeaderInfo;
  commands?: DashboardCommands | undefined;
  /** What `q` / Ctrl-C does before the dashboard exits: stop the loop (and clean up when asked), or abort a pass. */
  stop: () => Promise<void>;
  /** Leave once the run has finished (a single pass). */
  exitWhenFinished?: boolean;
  color: boolean;
  /** A fixed size instead of the terminal's (tests). */
  size?: { columns: number; rows: number };
  /** Told when the dashboard leaves, just before Ink unmounts it. */
  onExit?: (error?: Error) => void;
}

function message(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0] ?? text;
}

export function DashboardApp(props: DashboardAppProps) {
  const { store, commands } = props;
  const app = useApp();
  const exit = (error?: Error) => {
    props.onExit?.(error);
    app.exit(error);
  };
  const terminal = useWindowSize();
  const size = props.size ?? terminal;
  useSyncExternalStore(store.subscribe, store.getVersion);
  // Keys can come faster than frames: each one reads and writes the latest state, not the last rendered one.
  const ui = useRef<UiState>(initialUiState);
  const [, setUi] = useState<UiState>(initialUiState);
  const [, setTick] = useState(0);
  const dispatch = (action: UiAction) => {
    ui.current = uiReducer(ui.current, action);
    setUi(ui.current);
  };
  const notice = (text: string, level: 'info' | 'error' = 'info') => dispatch({ type: 'notice', text, level, at: Date.now() });

  const finished = store.engine.finished !== undefined;
  const exitWhenFinished = props.exitWhenFinished && finished;
  useEffect(() => {
    if (exitWhenFinished) exit();
  }, [exitWhenFinished]);

  const quit = () => {
    if (ui.current.quitting) {
      // A second q / Ctrl-C while stopping: leave now.
      exit();
      return;
    }
    dispatch({ type: 'quit' });
    props.stop().then(
      () => exit(),
      (err: unknown) => exit(err instanceof Error ? err : new Error(String(err))),
    );
  };

  const ask = (what: string, run: (c: DashboardCommands) => void) => {
    if (!commands) {
      notice(`${what}: only while watching (run \`devloop up\` without --once)`, 'error');
      return;
    }
    try {
      run(commands);
    } catch (err) {
      notice(`${what}: ${message(err)}`, 'error');
    }
  };

  useInput((input, key) => {
    const intent = keyIntent(input, key);
    if (intent === 'quit') return quit();
    if (ui.current.quitting || intent === undefined) return;
    const order = store.engine.order;
    const selected = order[Math.min(ui.current.selected, Math.max(0, order.length - 1))];
    switch (intent) {
      case 'up':
      case 'down':
        return dispatch({ type: 'select', delta: intent === 'up' ? -1 : 1, count: order.length });
      case 'toggle-logs':
        return dispatch({ type: 'toggle-logs' });
      case 'help':
        return dispatch({ type: 'toggle-help' });
      case 'close':
        return dispatch({ type: 'close-help' });
      case 'rebuild':
        if (selected === undefined) return;
        return ask(`rebuild ${selected}`, (c) => {
          c.rebuild(selected);
          notice(`rebuild requested: ${selected}`);
        });
      case 'rebuild-all':
        return ask('rebuild all', (c) => {
          c.rebuildAll();
          notice('rebuild requested: all services');
        });
      case 'pause': {
        const on = !(store.engine.loop?.watching ?? ui.current.watching);
        return ask(on ? 'resume watching' : 'pause watching', (c) => {
          c.setWatching(on);
          dispatch({ type: 'watching', on });
          notice(on ? 'watching resumed' : 'watching paused: changes are picked up on resume');
        });
      }
      case 'swap':
        if (selected === undefined) return;
        return ask(`swap ${selected}`, (c) => {
          c.swap(selected);
          notice(`swap requested: ${selected}`);
        });
    }
  });

  const view = buildView({
    engine: store.engine,
    activity: store.activity,
    ui: ui.current,
    header: props.header,
    size,
    now: Date.now(),
    color: props.color,
    interactive: commands !== undefined,
  });
  // Notices and "synced" states expire by themselves: one more frame then, even if nothing else happens.
  useEffect(() => {
    if (view.refreshAt === undefined) return;
    const t = setTimeout(() => setTick((n) => n + 1), Math.max(0, view.refreshAt - Date.now()) + 10);
    return () => clearTimeout(t);
  }, [view.refreshAt]);
  return <Dashboard view={view} />;
}

export interface RunDashboardOptions {
  bus: EventBus<EngineState, EngineEvent>;
  header: HeaderInfo;
  commands?: DashboardCommands | undefined;
  stop: () => Promise<void>;
  exitWhenFinished?: boolean;
  /** Declared port-forwards per service. */
  ports?: Record<string, string[]>;
  color: boolean;
  /** Draw on the terminal's alternate screen (restored on exit), like less or htop. */
  alternateScreen?: boolean;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  /** Called after each frame Ink commits (the benchmark counts them). */
  onFrame?: () => void;
}

export interface RunningDashboard {
  store: DashboardStore;
  /** Settles when the dashboard has exited (after `q`, or when a single pass finished). */
  exited: Promise<void>;
  /**
   * Waits up to `graceMs` for the dashboard to exit by itself (drawing its last frame), then unmounts it; rejects
   * with the error the dashboard exited with, if any. Idempotent.
   */
  close(graceMs?: number): Promise<void>;
}

/** Mounts the dashboard; it is subscribed to the bus when this resolves, so no event is missed after it. */
export function mountDashboard(opts: RunDashboardOptions): RunningDashboard {
  const store = new DashboardStore(opts.bus, opts.ports ? { ports: opts.ports } : {});
  const instance = render(
    <DashboardApp
      store={store}
      header={opts.header}
      commands={opts.commands}
      stop={opts.stop}
      color={opts.color}
      {...(opts.exitWhenFinished ? { exitWhenFinished: true } : {})}
    />,
    {
      ...(opts.stdout ? { stdout: opts.stdout } : {}),
      ...(opts.stdin ? { stdin: opts.stdin } : {}),
      exitOnCtrlC: false,
      // Engine events are already held to 20 frames a second by the store; Ink's own cap only delays key echoes.
      maxFps: 60,
      alternateScreen: !!opts.alternateScreen,
      ...(opts.onFrame ? { onRender: opts.onFrame } : {}),
    },
  );
  const exited = instance.waitUntilExit().then(
    () => store.close(),
    (err: unknown) => {
      store.close();
      throw err;
    },
  );
  let closing: Promise<void> | undefined;
  const close = (graceMs = 1000) =>
    (closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      // How the dashboard exited is reported by `exited` itself; closing only waits for it.
      await Promise.race([exited.catch(() => {}), timeout]);
      clearTimeout(timer);
      instance.unmount();
      // An error the dashboard exited with (stopping failed) surfaces here.
      await exited;
    })());
  return { store, exited, close };
}
