import { describe, expect, it } from 'vitest';
import { EngineBus } from '../../core/engine/state.js';
import type { ServiceState } from '../../core/engine/state.js';
import { Activity } from './activity.js';
import { initialUiState, type UiState } from './model.js';
import { emitSampleRun } from './testing.js';
import { buildView, describePhase, formatDuration, formatPorts, KEY_HINTS, KEY_HINTS_ONE_PASS, NOTICE_MS, SYNCED_MS, type ViewInput } from './view.js';

const header = { command: 'up', target: 'remote' as const, context: 'dev', namespace: 'shop-alice', developer: 'alice', registry: '127.0.0.1:5000' };

function input(over: Partial<ViewInput> & { ui?: UiState } = {}): ViewInput {
  const activity = new Activity({ ports: { orders: ['8080:8080'], web: ['3000:80'] } });
  const bus = new EngineBus();
  bus.subscribe((e) => activity.record(e));
  emitSampleRun(bus);
  return { engine: bus.snapshot(), activity, ui: initialUiState, header, size: { columns: 80, rows: 24 }, now: 1_000_000, color: false, interactive: true, ...over };
}

function manyServices(n: number, failedEvery = 0) {
  const activity = new Activity();
  const bus = new EngineBus();
  bus.subscribe((e) => activity.record(e));
  bus.emit({ type: 'run.started', command: 'up', target: 'kind', where: 'kind-dev/shop' });
  bus.emit({ type: 'plan.computed', services: Array.from({ length: n }, (_, i) => ({ name: `svc-${i}`, version: `v${i}`, image: `i${i}`, dependsOn: [] })) });
  for (let i = 0; failedEvery && i < n; i += failedEvery) bus.emit({ type: 'deploy.failed', service: `svc-${i}`, message: `boom ${i}` });
  return { activity, engine: bus.snapshot() };
}

describe('dashboard view model', () => {
  it('has a row per service with state, tag, durations, pods and ports', () => {
    const v = buildView(input());
    expect(v.rows.map((r) => [r.name, r.state, r.tone, r.tag, r.build, r.deploy, r.pods, r.ports])).toEqual([
      ['orders', 'ready', 'good', '3f2a9c1b7e', '12.3s', '4.1s', '1/1', '8080'],
      ['web', 'building 3/7', 'busy', '9b8c7d6e5f', '–', '–', '–', '3000→80'],
      ['payments', 'failed', 'bad', 'aa11bb22cc', '–', '–', '–', '–'],
      ['catalog', 'queued', 'dim', 'c0ffee00c0', '–', '–', '–', '–'],
    ]);
    expect(v.rows[1]!.progress).toEqual({ done: 3, total: 7 });
    expect(v.rows[0]!.selected).toBe(true);
    expect(v.rows[2]!.error).toBe('build failed at Step 4/6 : RUN go build ./... (services/payments/Dockerfile:7): exit code 1');
    expect(v.rows.filter((r) => r.error)).toHaveLength(1);
    expect(v.target).toBe('context dev · namespace shop-alice · developer alice · registry 127.0.0.1:5000');
    expect(v.status).toEqual({ text: '● first pass', tone: 'busy' });
    expect(v.footer.text).toBe(KEY_HINTS);
    expect(JSON.parse(JSON.stringify(v))).toEqual(v);
  });

  it('names each engine phase in dashboard words, and shows later phases as they are named', () => {
    const s = (phase: string, extra: Partial<ServiceState> = {}) => ({ name: 'x', version: '', image: '', phase, log: [], built: false, applied: false, ...extra }) as ServiceState;
    expect(describePhase(s('delivering'), 'remote', 3)).toEqual({ state: 'pushing 3 layers', tone: 'busy' });
    expect(describePhase(s('delivering'), 'kind', 0)).toEqual({ state: 'loading', tone: 'busy' });
    expect(describePhase(s('rolling-out', { ready: 1, desired: 3 }), 'kind', 0)).toEqual({ state: 'deploying', tone: 'busy', progress: { done: 1, total: 3 } });
    expect(describePhase(s('blocked'), 'kind', 0).tone).toBe('bad');
    expect(describePhase(s('current'), 'kind', 0).state).toBe('ready');
    expect(describePhase(s('syncing'), 'kind', 0)).toEqual({ state: 'syncing', tone: 'busy' });
    expect(describePhase(s('swapped'), 'kind', 0)).toEqual({ state: 'swapped', tone: 'good' });
    expect(describePhase(s('sync-failed'), 'kind', 0).tone).toBe('bad');
  });

  it('shows all services or the selected one in the log pane, as tall as the space left', () => {
    const all = buildView(input());
    expect(all.pane.title).toBe('logs · all services');
    const lines = 'lines' in all.pane ? all.pane.lines : [];
    expect(lines.at(-1)).toEqual({ service: 'payments', text: 'note: see the build output above', kind: 'error' });
    const one = buildView(input({ ui: { ...initialUiState, logs: 'selected', selected: 1 } }));
    expect(one.pane.title).toBe('logs · web');
    expect('lines' in one.pane && one.pane.lines.map((l) => l.text)).toEqual(['building r/web:9b8c7d6e5f4a3b2c', 'step 3/7: RUN npm ci', 'added 120 packages in 3s']);
    expect('lines' in one.pane && one.pane.lines.every((l) => l.service === undefined)).toBe(true);
    const help = buildView(input({ ui: { ...initialUiState, help: true } }));
    expect('help' in help.pane && help.pane.help.map(([k]) => k)).toContain('q  Ctrl-C');
  });

  it('fits 80×24 with many services: a window around the selection and a count of the rest', () => {
    const { activity, engine } = manyServices(40, 3);
    for (const selected of [0, 17, 39]) {
      const v = buildView({ ...input(), engine, activity, ui: { ...initialUiState, selected } });
      const lines = 5 + v.rows.reduce((n, r) => n + (r.error ? 2 : 1), 0) + 1 + ('lines' in v.pane ? v.pane.lines.length : 0);
      expect(lines).toBeLessThanOrEqual(23);
      expect(v.rows.some((r) => r.name === `svc-${selected}` && r.selected)).toBe(true);
      expect(v.hiddenAbove + v.rows.length + v.hiddenBelow).toBe(40);
      expect(v.rows.length).toBeGreaterThan(3);
    }
  });

  it('shows a notice for a while, then the key hints again', () => {
    const ui: UiState = { ...initialUiState, notice: { text: 'swap: not available yet', level: 'error', at: 1000 } };
    expect(buildView(input({ ui, now: 1000 + NOTICE_MS - 1 })).footer).toEqual({ text: 'swap: not available yet', tone: 'bad' });
    expect(buildView(input({ ui, now: 1000 + NOTICE_MS })).footer.text).toBe(KEY_HINTS);
    // The app is told when to draw again for the notice to go.
    expect(buildView(input({ ui, now: 1000 })).refreshAt).toBe(1000 + NOTICE_MS);
    expect(buildView(input({ ui, now: 1000 + NOTICE_MS })).refreshAt).toBeUndefined();
  });

  it('reports a single pass as running, then done or failed; quitting says it is stopping', () => {
    expect(buildView(input({ interactive: false })).status.text).toBe('● running');
    expect(buildView(input({ interactive: false })).footer.text).toBe(KEY_HINTS_ONE_PASS);
    const { engine, activity } = manyServices(1);
    const finished = { ...engine, finished: { ok: false, durationMs: 2500, failed: ['svc-0'] } };
    expect(buildView({ ...input({ interactive: false }), engine: finished, activity }).status).toEqual({ text: '✗ failed: svc-0', tone: 'bad' });
    expect(buildView({ ...input({ interactive: false }), engine: { ...finished, finished: { ok: true, durationMs: 2500, failed: [] } }, activity }).status.text).toBe('✓ done in 2.5s');
    expect(buildView(input({ ui: { ...initialUiState, watching: false } })).status.text).toBe('❚❚ paused');
    expect(buildView(input({ ui: { ...initialUiState, quitting: true } })).status.text).toBe('stopping…');
  });

  it('drops columns in a narrow terminal and keeps name and state', () => {
    const v = buildView(input({ size: { columns: 50, rows: 12 } }));
    expect(v.target).toBe('ctx dev · ns shop-alice · dev alice · registry 127.0.0.1:5000');
    expect(v.columns.name + v.columns.state + 2).toBeLessThanOrEqual(50);
    expect(Object.values(v.columns).reduce((a, b) => a + b, 2)).toBeLessThanOrEqual(50);
    expect(v.columns.ports).toBe(0);
  });

  it('shows the running loop: updating, paused, syncs, forwards and a devloop.yaml problem', () => {
    const base = input();
    const bus = new EngineBus();
    const activity = new Activity({ ports: { orders: ['8080:8080'] } });
    bus.subscribe((e) => activity.record(e));
    emitSampleRun(bus);
    bus.emit({ type: 'watch.started', root: '/repo', quietMs: 50 });
    bus.emit({ type: 'forward.ready', service: 'orders', local: 8080, remote: 8080, where: 'pod/orders-1' });
    bus.emit({ type: 'forward.failed', service: 'orders', local: 9090, remote: 90, message: 'no ready pod' });
    bus.emit({ type: 'sync.finished', service: 'orders', where: 'pod/orders-1', written: 2, deleted: 1, durationMs: 40, initial: false });
    bus.emit({ type: 'sync.failed', service: 'catalog', message: 'receiver exited' });
    bus.emit({ type: 'pass.started', services: ['web'], reason: 'web/src/app.ts changed' });
    const at = bus.snapshot().services.orders!.sync!.lastAt!;
    const v = buildView({ ...base, engine: bus.snapshot(), activity, now: at + 10 });
    expect(v.status.text).toBe('● updating web');
    const orders = v.rows.find((r) => r.name === 'orders')!;
    expect([orders.state, orders.ports]).toEqual(['synced 3 files', '8080,9090✗']);
    expect(v.refreshAt).toBe(at + SYNCED_MS);
    expect(v.rows.find((r) => r.name === 'catalog')!.error).toBe('sync failed: receiver exited');
    expect(buildView({ ...base, engine: bus.snapshot(), activity, now: at + 60_000 }).rows[0]!.state).toBe('ready');
    bus.emit({ type: 'pass.finished', ok: true, durationMs: 900, failed: [] });
    bus.emit({ type: 'watch.paused', paused: true });
    bus.emit({ type: 'config.failed', message: 'devloop.yaml:3:5: services[0].name must be a DNS label' });
    const paused = buildView({ ...base, engine: bus.snapshot(), activity });
    expect(paused.status.text).toBe('❚❚ paused');
    expect(paused.banner).toBe('devloop.yaml not reloaded: devloop.yaml:3:5: services[0].name must be a DNS label');
  });

  it('formats durations and ports', () => {
    expect([undefined, 850, 12_345, 125_000].map(formatDuration)).toEqual(['–', '850ms', '12.3s', '2m05s']);
    expect(formatPorts(['8080:8080', '3000:80', '9090'])).toBe('8080,3000→80,9090');
  });
});
