import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../up/harness.js';
import { waitFor } from '../support/index.js';
import { answerSoon, createFixture, httpFromCluster, localHttp, SwapProcess, swapObjects, userPods, userSpecs, type Fixture } from './harness.js';

/** 3 rounds in the normal suite; 20 in the long mode (DEVLOOP_E2E_LONG=1), or DEVLOOP_SWAP_KILL_ROUNDS. */
const ROUNDS = Number(process.env.DEVLOOP_SWAP_KILL_ROUNDS ?? (process.env.DEVLOOP_E2E_LONG === '1' ? 20 : 3));

// kill -9 of devloop during a swap: nobody runs anything, and the cluster side (the agent, watching the Lease)
// puts the Service back and removes itself within the lease.
describe('devloop swap killed with -9', () => {
  let fx: Fixture;
  let local: Awaited<ReturnType<typeof localHttp>>;

  beforeAll(async () => {
    buildCli();
    fx = await createFixture('crash');
    local = await localHttp(18280);
  });

  afterAll(async () => {
    await local?.close();
    await fx?.cleanup();
  });

  it(`restores the Service from the cluster side within the lease and leaves nothing (${ROUNDS} rounds)`, { timeout: 120_000 * ROUNDS }, async () => {
    const podsBefore = await userPods(fx.namespace);
    const specsBefore = await userSpecs(fx.namespace);
    const restoreTimes: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const swap = new SwapProcess(fx, fx.developer, ['web', '--port', '18280:80']);
      try {
        await swap.event('swap.started');
        await answerSoon(fx.namespace, 'http://web/', 'local http');
        swap.kill('SIGKILL');
        const killedAt = Date.now();
        expect(await swap.exited).toBe(137);
        await waitFor(`round ${round}: web answering from its own pods again`, async () => ((await httpFromCluster(fx.namespace, 'http://web/')).startsWith('cluster web-') ? true : undefined), {
          timeoutMs: 60_000,
          intervalMs: 250,
        });
        restoreTimes.push(Date.now() - killedAt);
        await waitFor(`round ${round}: nothing of the swap left`, async () => ((await swapObjects(fx.namespace)).length === 0 ? true : undefined), {
          timeoutMs: 60_000,
          intervalMs: 500,
          describe: async () => (await swapObjects(fx.namespace)).join(', '),
        });
        expect(await userSpecs(fx.namespace), `round ${round}`).toBe(specsBefore);
      } finally {
        swap.kill('SIGKILL');
      }
    }
    console.log(`restore after kill -9: ${restoreTimes.map((t) => `${(t / 1000).toFixed(1)} s`).join(', ')}`);
    for (const t of restoreTimes) expect(t).toBeLessThanOrEqual(30_000);
    expect(await userPods(fx.namespace)).toEqual(podsBefore);
  });

  it('the next run takes over its own stale swap with --take-over, and restores it on exit', async () => {
    const first = new SwapProcess(fx, fx.developer, ['web', '--port', '18280:80']);
    await first.event('swap.started');
    first.kill('SIGKILL');
    await first.exited;
    // Within the lease: without --take-over the developer is told it is theirs and still held.
    const refused = new SwapProcess(fx, fx.developer, ['web', '--port', '18280:80']);
    expect(await refused.exited, refused.explain()).toBe(2);
    expect(refused.stderr).toMatch(/you already swap web from .* until .*\n.*--take-over/);
    const second = new SwapProcess(fx, fx.developer, ['web', '--port', '18280:80', '--take-over']);
    try {
      await second.event('swap.started');
      expect(second.events.find((e) => e.type === 'swap.restored')).toMatchObject({ reason: 'taken over' });
      await answerSoon(fx.namespace, 'http://web/', 'local http');
      second.kill('SIGINT');
      expect(await second.exited, second.explain()).toBe(0);
      expect(await swapObjects(fx.namespace)).toEqual([]);
      await answerSoon(fx.namespace, 'http://web/', /^cluster web-/);
    } finally {
      second.kill('SIGKILL');
    }
  });
});
