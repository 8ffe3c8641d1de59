import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../core/engine/events.js';
import { EngineBus } from '../../core/engine/state.js';
import { Activity, cleanLine } from './activity.js';
import { emitSampleRun } from './testing.js';

function recorded(opts?: ConstructorParameters<typeof Activity>[0]) {
  const activity = new Activity(opts);
  const bus = new EngineBus();
  bus.subscribe((e) => activity.record(e));
  return { activity, bus };
}

describe('Activity', () => {
  it('leaves durations and delivery steps to the engine state (one state model)', () => {
    const { bus } = recorded();
    emitSampleRun(bus);
    expect(bus.snapshot().services.orders).toMatchObject({ lastBuildMs: 12_345, lastDeployMs: 4_100, deliverySteps: 1 });
    expect(bus.snapshot().services.web?.lastBuildMs).toBeUndefined();
    bus.emit({ type: 'deliver.started', service: 'orders', image: 'x', target: 'remote' });
    expect(bus.snapshot().services.orders?.deliverySteps).toBe(0);
  });

  it('logs events per service and overall, with the full failure detail as error lines', () => {
    const { activity, bus } = recorded();
    emitSampleRun(bus);
    expect(activity.tail('payments', 10).map((l) => [l.kind, l.text])).toEqual([
      ['event', 'building r/payments:aa11bb22cc33dd44'],
      ['error', 'build failed at Step 4/6 : RUN go build ./... (services/payments/Dockerfile:7): exit code 1'],
      ['error', './main.go:12:2: undefined: handler'],
      ['error', 'note: see the build output above'],
    ]);
    expect(activity.tail(undefined, 1)[0]).toMatchObject({ service: 'payments', text: 'note: see the build output above' });
    expect(activity.tail(undefined, 100)[0]).toMatchObject({ text: 'up → dev/shop-alice (remote)' });
    expect(activity.tail(undefined, 100)[0]!.service).toBeUndefined();
    // Per-layer push messages are counted, not logged.
    expect(activity.tail('orders', 100).some((l) => l.text.includes('Pushed'))).toBe(false);
  });

  it('stays bounded under a flood of lines', () => {
    const { activity, bus } = recorded({ perService: 50, overall: 80 });
    for (let i = 0; i < 20_000; i++) bus.emit({ type: 'build.log', service: i % 2 ? 'a' : 'b', line: `line ${i}` });
    expect(activity.linesSeen).toBe(20_000);
    expect(activity.tail('a', 1000)).toHaveLength(50);
    expect(activity.tail(undefined, 1000)).toHaveLength(80);
    expect(activity.tail('a', 1)[0]!.text).toBe('line 19999');
  });

  it('shows event types it does not know as log lines, and remembers their failures', () => {
    const { activity } = recorded();
    const later = (e: Record<string, unknown>) => activity.record({ at: 1, ...e } as unknown as EngineEvent);
    later({ type: 'pod.log', service: 'web', pod: 'web-1', line: 'listening on :3000' });
    later({ type: 'mirror.failed', service: 'web', message: 'connection reset', attempt: 3 });
    later({ type: 'tunnel.opened', service: 'web', local: 3000 });
    expect(activity.tail('web', 10).map((l) => [l.kind, l.text])).toEqual([
      ['out', 'listening on :3000'],
      ['error', 'mirror.failed message=connection reset attempt=3'],
      ['event', 'tunnel.opened local=3000'],
    ]);
    expect(activity.service('web').lastError).toBe('mirror failed: connection reset');
    later({ type: 'mirror.ready', service: 'web' });
    expect(activity.service('web').lastError).toBeUndefined();
  });

  it('logs container output and failed post-sync commands with their output', () => {
    const { activity, bus } = recorded();
    bus.emit({ type: 'log.line', service: 'web', where: 'web-1/web', line: '\u001b[32mGET /\u001b[0m 200' });
    bus.emit({ type: 'sync.command', service: 'web', where: 'web-1/web', command: ['sh', '-c', 'kill -HUP 1'], exitCode: 1, output: 'kill: no such process\n' });
    expect(activity.tail('web', 5).map((l) => [l.kind, l.text])).toEqual([
      ['out', 'GET / 200'],
      ['error', 'sh -c kill -HUP 1 exited 1'],
      ['error', 'kill: no such process'],
    ]);
  });

  it('starts with the declared ports', () => {
    expect(new Activity({ ports: { web: ['3000:80'] } }).service('web').ports).toEqual(['3000:80']);
  });

  it('strips escape sequences and control characters from lines', () => {
    expect(cleanLine('\u001b[31mred\u001b[0m\tand\r\nmore\u0007')).toBe('red  and more');
  });
});
