import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, devloop, explain } from '../up/harness.js';
import { kube } from '../support/index.js';
import { createFixture, SwapProcess, swapObjects, type Fixture } from './harness.js';

// `devloop down` while the developer's swap runs: the swap is restored first (removing the workloads under it would
// leave a Service that selects the agent), and nothing of it or of the developer's objects is left.
describe('devloop down during a swap', () => {
  let fx: Fixture;
  let swap: SwapProcess | undefined;

  beforeAll(async () => {
    buildCli();
    fx = await createFixture('down');
  });

  afterAll(async () => {
    swap?.kill('SIGKILL');
    await fx?.cleanup();
  });

  it('restores the swap, then removes everything of the developer’s, and the swap process ends', async () => {
    swap = new SwapProcess(fx, fx.developer, ['web', '--port', '18390:80']);
    await swap.event('swap.started');
    expect((await swapObjects(fx.namespace)).length).toBeGreaterThan(0);
    const run = await devloop(fx.repo, fx.developer, ['down', '--namespace', fx.namespace, '--keep-namespace', '--json']);
    expect(run.code, explain(run)).toBe(0);
    expect(run.events.find((e) => e.type === 'swap.restored')).toMatchObject({ service: 'web', reason: 'devloop down' });
    expect(await swapObjects(fx.namespace)).toEqual([]);
    const left = await kube().apps.listNamespacedDeployment({ namespace: fx.namespace, labelSelector: `devloop.dev/developer=${fx.developer}` });
    expect(left.items.map((d) => d.metadata?.name)).toEqual([]);
    // The swap notices that its lease is gone and ends on its own.
    const code = await Promise.race([swap.exited, new Promise<string>((r) => setTimeout(() => r('still running after 30 s'), 30_000))]);
    expect(code, swap.explain()).not.toBe('still running after 30 s');
  }, 300_000);
});
