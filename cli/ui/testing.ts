import { EngineBus } from '../../core/engine/state.js';

/**
 * Takes a bus through a realistic `up` run by emitting engine events: four services, one ready, one building, one
 * failed, one queued. Shared by the dashboard's tests.
 */
export function emitSampleRun(bus: EngineBus): EngineBus {
  bus.emit({ type: 'run.started', command: 'up', target: 'remote', where: 'dev/shop-alice' });
  bus.emit({
    type: 'plan.computed',
    services: [
      { name: 'orders', version: '3f2a9c1b7e55aa01', image: 'r/orders:3f2a9c1b7e55aa01', dependsOn: [] },
      { name: 'web', version: '9b8c7d6e5f4a3b2c', image: 'r/web:9b8c7d6e5f4a3b2c', dependsOn: ['orders'] },
      { name: 'payments', version: 'aa11bb22cc33dd44', image: 'r/payments:aa11bb22cc33dd44', dependsOn: [] },
      { name: 'catalog', version: 'c0ffee00c0ffee00', image: 'r/catalog:c0ffee00c0ffee00', dependsOn: [] },
    ],
  });
  bus.emit({ type: 'build.started', service: 'orders', image: 'r/orders:3f2a9c1b7e55aa01' });
  bus.emit({ type: 'build.step', service: 'orders', step: 5, total: 5, instruction: 'COPY . .' });
  bus.emit({ type: 'build.log', service: 'orders', line: 'go: downloading example.com/lib v1.2.3' });
  bus.emit({ type: 'build.finished', service: 'orders', image: 'r/orders:3f2a9c1b7e55aa01', durationMs: 12_345 });
  bus.emit({ type: 'deliver.started', service: 'orders', image: 'r/orders:3f2a9c1b7e55aa01', target: 'remote' });
  bus.emit({ type: 'deliver.progress', service: 'orders', message: 'abc: Pushed' });
  bus.emit({ type: 'deliver.finished', service: 'orders', image: 'r/orders:3f2a9c1b7e55aa01', skipped: false });
  bus.emit({ type: 'deploy.applied', service: 'orders', objects: ['Deployment/orders', 'Service/orders'] });
  bus.emit({ type: 'rollout.progress', service: 'orders', ready: 1, desired: 1 });
  bus.emit({ type: 'rollout.ready', service: 'orders', durationMs: 4_100 });
  bus.emit({ type: 'build.started', service: 'web', image: 'r/web:9b8c7d6e5f4a3b2c' });
  bus.emit({ type: 'build.step', service: 'web', step: 3, total: 7, instruction: 'RUN npm ci' });
  bus.emit({ type: 'build.log', service: 'web', line: 'added 120 packages in 3s' });
  bus.emit({ type: 'build.started', service: 'payments', image: 'r/payments:aa11bb22cc33dd44' });
  bus.emit({
    type: 'build.failed',
    service: 'payments',
    step: 'Step 4/6 : RUN go build ./... (services/payments/Dockerfile:7)',
    message: 'exit code 1',
    lastLines: ['./main.go:12:2: undefined: handler', 'note: see the build output above'],
  });
  return bus;
}
