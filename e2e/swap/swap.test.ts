import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../up/harness.js';
import { waitFor } from '../support/index.js';
import { answerSoon, createFixture, grpcFromCluster, httpFromCluster, localGrpc, localHttp, SwapProcess, swapObjects, userPods, userSpecs, type Fixture } from './harness.js';

// Global swap on the host cluster: the agent image is built by devloop from the local node:24-slim and pushed to
// the local registry; a pod in the cluster calls the Service, the answer comes from a process on this machine.
describe('devloop swap (global)', () => {
  let fx: Fixture;

  beforeAll(async () => {
    buildCli();
    fx = await createFixture('global');
  });

  afterAll(async () => {
    await fx?.cleanup();
  });

  it('carries HTTP and gRPC from a pod in the cluster to local servers, and Ctrl-C restores the exact Service with the pods untouched', async () => {
    const podsBefore = await userPods(fx.namespace);
    const specsBefore = await userSpecs(fx.namespace);
    // A Service just created: the data plane may take a moment to program it.
    expect(await answerSoon(fx.namespace, 'http://web/', /^cluster web-/, undefined, 30_000)).toMatch(/^cluster web-/);

    const http = await localHttp(18180);
    const grpc = await localGrpc(18190);
    const swap = new SwapProcess(fx, fx.developer, ['web', '--port', '18180:http', '--port', '18190:9090']);
    try {
      const started = await swap.event('swap.started');
      expect(started).toMatchObject({ service: 'web', namespace: fx.namespace, mode: 'global' });
      expect(started.ports).toEqual([
        { port: 80, targetPort: 8080, local: 18180, name: 'http' },
        { port: 9090, targetPort: 9090, local: 18190, name: 'grpc' },
      ]);
      await answerSoon(fx.namespace, 'http://web/', 'local http');
      expect(await grpcFromCluster(fx.namespace, 'web:9090')).toBe('local-grpc');
      // Many connections at once, multiplexed over the one tunnel.
      const many = await httpFromClusterConcurrently(fx.namespace, 20);
      expect(many).toEqual(Array(20).fill('local http'));
      expect(http.requests()).toBeGreaterThanOrEqual(21);
      // The dashboard's count: every HTTP request the local server answered, and the one gRPC call (an HTTP/2 stream).
      await waitFor('swap.traffic to count every request carried', async () => {
        const last = swap.events.filter((e) => e.type === 'swap.traffic').at(-1);
        return last?.requests === http.requests() + 1 ? true : undefined;
      }, { timeoutMs: 5_000, describe: async () => `last swap.traffic: ${JSON.stringify(swap.events.filter((e) => e.type === 'swap.traffic').at(-1))}; local HTTP requests ${http.requests()}` });

      swap.kill('SIGINT');
      expect(await swap.exited, swap.explain()).toBe(0);
      expect(swap.events.find((e) => e.type === 'swap.restored')).toMatchObject({ service: 'web', by: 'devloop' });
      await answerSoon(fx.namespace, 'http://web/', /^cluster web-/);
      expect(await grpcFromCluster(fx.namespace, 'web:9090')).toBe('cluster-grpc');
      expect(await swapObjects(fx.namespace)).toEqual([]);
      expect(await userSpecs(fx.namespace)).toBe(specsBefore);
      expect(await userPods(fx.namespace)).toEqual(podsBefore);
    } finally {
      swap.kill('SIGKILL');
      await http.close();
      await grpc.close();
    }
  });
});

async function httpFromClusterConcurrently(namespace: string, n: number): Promise<string[]> {
  const { clientPod } = await import('./harness.js');
  const { execInPod } = await import('../support/index.js');
  const pod = await clientPod(namespace);
  const script = `Promise.all(Array.from({ length: ${n} }, () => fetch('http://web/', { signal: AbortSignal.timeout(10000) }).then((r) => r.text(), (e) => 'error: ' + e.message))).then((a) => console.log(JSON.stringify(a)))`;
  const r = await execInPod(namespace, pod, 'client', ['node', '-e', script]);
  return JSON.parse(r.stdout.trim()) as string[];
}

export { waitFor };
