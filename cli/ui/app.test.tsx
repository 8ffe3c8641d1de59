import { render } from 'ink-testing-library';
import { describe, expect, it, vi } from 'vitest';
import { EngineBus } from '../../core/engine/state.js';
import { UserError } from '../../core/errors.js';
import { DashboardApp, type DashboardCommands } from './app.js';
import { DashboardStore } from './store.js';
import { emitSampleRun } from './testing.js';

const UP = '\u001b[A';
const DOWN = '\u001b[B';
const ENTER = '\r';

/** Test double for the watch loop's EngineCommands (the loop itself runs in the e2e test): records each request. */
class RecordingCommands implements DashboardCommands {
  calls: string[] = [];
  rebuild(service: string): void {
    this.calls.push(`rebuild ${service}`);
  }
  rebuildAll(): void {
    this.calls.push('rebuildAll');
  }
  setWatching(on: boolean): void {
    this.calls.push(`setWatching ${on}`);
  }
  swap(service: string): void {
    this.calls.push(`swap ${service}`);
    throw new UserError('swap is not available yet');
  }
}

function setup(opts: { commands?: DashboardCommands; exitWhenFinished?: boolean } = {}) {
  const bus = new EngineBus();
  const store = new DashboardStore(bus, { ports: { orders: ['8080:8080'] } });
  emitSampleRun(bus);
  let stops = 0;
  let exited!: () => void;
  const exit = new Promise<void>((resolve) => (exited = resolve));
  const app = render(
    <DashboardApp
      store={store}
      header={{ command: 'up', target: 'kind', context: 'kind-dev', namespace: 'shop-alice', developer: 'alice' }}
      commands={opts.commands}
      stop={async () => {
        stops++;
      }}
      color={false}
      size={{ columns: 80, rows: 24 }}
      onExit={() => exited()}
      {...(opts.exitWhenFinished ? { exitWhenFinished: true } : {})}
    />,
  );
  const press = async (keys: string, expected: RegExp) => {
    app.stdin.write(keys);
    await vi.waitFor(() => expect(app.lastFrame()).toMatch(expected));
  };
  return { bus, store, app, press, stops: () => stops, exit };
}

describe('dashboard app', () => {
  it('turns keys into engine requests and shows what happened', async () => {
    const commands = new RecordingCommands();
    const { app, press, stops, exit } = setup({ commands });
    expect(app.lastFrame()).toMatch(/❯ orders/);
    await press(DOWN, /❯ web/);
    await press('r', /rebuild requested: web/);
    await press('a', /rebuild requested: all services/);
    await press('p', /❚❚ paused/);
    expect(app.lastFrame()).toMatch(/watching paused/);
    await press('p', /● first pass/);
    await press(DOWN, /❯ payments/);
    await press('s', /swap payments: swap is not available yet/);
    await press(UP, /❯ web/);
    await press(ENTER, /─ logs · web ─/);
    await press(ENTER, /─ logs · all services ─/);
    await press('?', /─ keys ─/);
    await press('\u001b', /─ logs · all services ─/);
    expect(commands.calls).toEqual(['rebuild web', 'rebuildAll', 'setWatching false', 'setWatching true', 'swap payments']);
    app.stdin.write('q');
    await vi.waitFor(() => expect(stops()).toBe(1));
    await exit;
  });

  it('quits on Ctrl-C too', async () => {
    const { app, stops, exit } = setup({ commands: new RecordingCommands() });
    app.stdin.write('\u0003');
    await exit;
    expect(stops()).toBe(1);
  });

  it('explains that work requests need the watch loop during a single pass, and exits when the pass finishes', async () => {
    const { app, bus, press, exit } = setup({ exitWhenFinished: true });
    expect(app.lastFrame()).toMatch(/● running/);
    await press('r', /rebuild orders: only while watching/);
    await press('s', /swap orders: only while watching/);
    bus.emit({ type: 'run.finished', ok: false, durationMs: 1234, failed: ['payments'] });
    await exit;
    expect(app.frames.filter((f) => f.trim()).at(-1)).toMatch(/✗ failed: payments/);
  });

  it('draws new engine events, coalescing a burst into one frame', async () => {
    const { app, bus, store } = setup();
    await vi.waitFor(() => expect(store.flushes).toBe(1));
    for (let i = 0; i < 5000; i++) bus.emit({ type: 'build.log', service: 'web', line: `npm line ${i}` });
    bus.emit({ type: 'build.step', service: 'web', step: 6, total: 7, instruction: 'RUN npm run build' });
    await vi.waitFor(() => expect(app.lastFrame()).toMatch(/building 6\/7/));
    expect(app.lastFrame()).toMatch(/web\s+│ npm line 4999/);
    expect(store.flushes).toBe(2);
    app.unmount();
  });
});
