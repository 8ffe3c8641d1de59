import { describe, expect, it } from 'vitest';
import type { EngineEvent } from './events.js';
import { EngineBus } from './state.js';

describe('EngineBus', () => {
  it('folds events into per-service state and gives late subscribers a snapshot', () => {
    const bus = new EngineBus();
    const seen: EngineEvent['type'][] = [];
    const unsubscribe = bus.subscribe((e) => seen.push(e.type));
    bus.emit({ type: 'run.started', command: 'up', target: 'remote', where: 'ctx/ns' });
    bus.emit({ type: 'plan.computed', services: [{ name: 'api', version: 'v1', image: 'r/api:v1', dependsOn: [] }, { name: 'web', version: 'v2', image: 'r/web:v2', dependsOn: ['api'] }] });
    bus.emit({ type: 'build.started', service: 'api', image: 'r/api:v1' });
    bus.emit({ type: 'build.step', service: 'api', step: 2, total: 5, instruction: 'RUN make' });
    bus.emit({ type: 'build.failed', service: 'api', step: 'Step 2/5 : RUN make (api/Dockerfile:3)', message: 'exit 2', lastLines: ['make: *** error'] });
    bus.emit({ type: 'build.blocked', service: 'web', because: 'api failed' });
    unsubscribe();
    bus.emit({ type: 'run.finished', ok: false, durationMs: 10, failed: ['api', 'web'] });

    expect(seen).toEqual(['run.started', 'plan.computed', 'build.started', 'build.step', 'build.failed', 'build.blocked']);
    let snapshot: ReturnType<EngineBus['snapshot']> | undefined;
    bus.subscribe(() => {}, (s) => (snapshot = s));
    expect(snapshot?.order).toEqual(['api', 'web']);
    expect(snapshot?.services.api).toMatchObject({ phase: 'build-failed', step: '2/5', problem: 'build failed at Step 2/5 : RUN make (api/Dockerfile:3): exit 2' });
    expect(snapshot?.services.web).toMatchObject({ phase: 'blocked', problem: 'not built: api failed' });
    expect(snapshot?.finished).toEqual({ ok: false, durationMs: 10, failed: ['api', 'web'] });
  });

  it('takes the pods of a service that was already current from the loop, not from a rollout', () => {
    const bus = new EngineBus();
    bus.emit({ type: 'plan.computed', services: [{ name: 'api', version: 'v1', image: 'r/api:v1', dependsOn: [] }] });
    bus.emit({ type: 'service.current', service: 'api', version: 'v1' });
    bus.emit({ type: 'pods.changed', service: 'api', ready: 1, total: 2 });
    expect(bus.snapshot().services.api).toMatchObject({ ready: 1, desired: 2 });
    bus.emit({ type: 'pods.changed', service: 'api', ready: 2, total: 2 });
    expect(bus.snapshot().services.api).toMatchObject({ ready: 2, desired: 2 });
  });
});
