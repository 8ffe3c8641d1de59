import { describe, expect, it } from 'vitest';
import { EngineBus } from '../../core/engine/state.js';
import { Activity } from './activity.js';
import { initialUiState } from './model.js';
import { emitSampleRun } from './testing.js';
import { buildView } from './view.js';

const header = { command: 'up', target: 'remote' as const, context: 'dev', namespace: 'shop-alice', developer: 'alice', registry: '127.0.0.1:5000' };

describe('a swapped service on the dashboard', () => {
  it('shows where its traffic goes and the requests carried, until it is restored', () => {
    const activity = new Activity();
    const bus = new EngineBus();
    bus.subscribe((e) => activity.record(e));
    emitSampleRun(bus);
    const row = () => buildView({ engine: bus.snapshot(), activity, ui: initialUiState, header, size: { columns: 120, rows: 24 }, now: 1_000_000, color: false, interactive: true }).rows.find((r) => r.name === 'orders')!;
    expect(row().state).toBe('ready');
    bus.emit({ type: 'swap.started', service: 'orders', namespace: 'shop-alice', mode: 'global', ports: [{ port: 8080, targetPort: 8080, local: 3000 }], agent: 'devloop-swap-orders-1', leaseSeconds: 15 });
    expect([row().state, row().tone]).toEqual(['swapped → 127.0.0.1:3000 · 0 req', 'good']);
    bus.emit({ type: 'swap.traffic', service: 'orders', connections: 2, requests: 12 });
    expect(row().state).toBe('swapped → 127.0.0.1:3000 · 12 req');
    bus.emit({ type: 'swap.restored', service: 'orders', namespace: 'shop-alice', by: 'devloop', reason: 'stopped' });
    expect(row().state).toBe('ready');
  });

  it('says when only the developer\'s keyed requests come (a personal swap)', () => {
    const activity = new Activity();
    const bus = new EngineBus();
    bus.subscribe((e) => activity.record(e));
    emitSampleRun(bus);
    bus.emit({ type: 'swap.started', service: 'orders', namespace: 'shop', mode: 'personal', routeKey: 'alice', ports: [{ port: 8080, targetPort: 8080, local: 3000 }], agent: 'devloop-swap-orders-alice-1', leaseSeconds: 15 });
    const row = buildView({ engine: bus.snapshot(), activity, ui: initialUiState, header, size: { columns: 120, rows: 24 }, now: 1_000_000, color: false, interactive: true }).rows.find((r) => r.name === 'orders')!;
    expect(row.state).toBe('swapped (your key) → 127.0.0.1:3000 · 0 req');
  });
});
