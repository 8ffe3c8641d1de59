import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../up/harness.js';
import { execInPod, kube, portForward, waitFor } from '../support/index.js';
import { answerSoon, clientPod, createFixture, httpFromCluster, localHttp, SwapProcess, swapObjects, type Fixture } from './harness.js';

/** The agent's pod of the swap of `web`. */
async function agentPod(namespace: string): Promise<{ name: string; ip: string }> {
  return waitFor('the swap agent pod', async () => {
    const pods = (await kube().core.listNamespacedPod({ namespace, labelSelector: 'devloop.dev/swap-agent=devloop-swap-web' })).items.filter(
      (p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running',
    );
    return pods[0] ? { name: pods[0].metadata!.name!, ip: pods[0].status!.podIP! } : undefined;
  });
}

/** Sends a HELLO frame (type 1, stream 0, the secret) to the tunnel port and returns the first frame's type and text. */
function hello(port: number, secret: Buffer): Promise<{ type: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const header = Buffer.alloc(9);
    header.writeUInt8(1, 0);
    header.writeUInt32BE(secret.length, 5);
    socket.on('connect', () => socket.write(Buffer.concat([header, secret])));
    let got = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 9 && got.length >= 9 + got.readUInt32BE(5)) {
        resolve({ type: got.readUInt8(0), text: got.subarray(9, 9 + got.readUInt32BE(5)).toString() });
        socket.destroy();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`the tunnel port closed after ${got.length} bytes`)));
    setTimeout(() => reject(new Error('no answer from the tunnel port within 10 s')), 10_000).unref();
  });
}

describe('devloop swap under faults', () => {
  let fx: Fixture;
  let swap: SwapProcess;

  beforeAll(async () => {
    buildCli();
    fx = await createFixture('faults');
  });

  afterAll(async () => {
    swap?.kill('SIGKILL');
    await fx?.cleanup();
  });

  it('keeps the swap up while nothing listens locally (the caller gets a reset, devloop says why), and serves once it listens', async () => {
    swap = new SwapProcess(fx, fx.developer, ['web', '--port', '18380:80']);
    await swap.event('swap.started');
    await answerSoon(fx.namespace, 'http://web/', /^error: (ECONNRESET|UND_ERR_SOCKET|ECONNREFUSED)/);
    const refused = await swap.event('swap.refused');
    expect(refused.message).toMatch(/nothing listens on 127\.0\.0\.1:18380/);
    const local = await localHttp(18380);
    try {
      expect(await httpFromCluster(fx.namespace, 'http://web/')).toBe('local http');
    } finally {
      await local.close();
    }
  });

  it('refuses a tunnel without the secret, and the tunnel port is not reachable from other pods', async () => {
    const agent = await agentPod(fx.namespace);
    const forward = await portForward(fx.namespace, agent.name, 7070);
    try {
      const answer = await hello(forward.localPort, randomBytes(32));
      expect(answer.type).toBe(3); // REFUSED
      expect(answer.text).toMatch(/secret does not match/);
    } finally {
      await forward.close();
    }
    const pod = await clientPod(fx.namespace);
    const probe = `const s = require('net').connect(7070, ${JSON.stringify(agent.ip)}); s.on('connect', () => { console.log('open'); process.exit(0); }); s.on('error', (e) => { console.log(e.code); process.exit(0); }); setTimeout(() => { console.log('timeout'); process.exit(0); }, 3000);`;
    expect((await execInPod(fx.namespace, pod, 'client', ['node', '-e', probe])).stdout.trim()).toBe('ECONNREFUSED');
  });

  it("refuses a second developer's swap of the same Service, saying who holds it and until when; --take-over does not help", async () => {
    for (const extra of [[], ['--take-over']]) {
      const other = new SwapProcess(fx, 'dl-swap-someone-else', ['web', '--port', '18381:80', ...extra]);
      expect(await other.exited, other.explain()).toBe(2);
      expect(other.stderr).toMatch(new RegExp(`web is swapped by ${fx.developer}@\\S+ until \\d\\d:\\d\\d:\\d\\d UTC`));
    }
  });

  it('reconnects within seconds when the agent pod is deleted, and traffic reaches the local process again', async () => {
    const local = await localHttp(18380);
    try {
      expect(await httpFromCluster(fx.namespace, 'http://web/')).toBe('local http');
      const agent = await agentPod(fx.namespace);
      const before = swap.events.length;
      await kube().core.deleteNamespacedPod({ name: agent.name, namespace: fx.namespace });
      const deletedAt = Date.now();
      await swap.event('swap.reconnecting', 10_000, before);
      const reconnected = await swap.event('swap.reconnected', 30_000, before);
      expect(reconnected.agent).not.toBe(agent.name);
      await waitFor('web answering from the local process again', async () => ((await httpFromCluster(fx.namespace, 'http://web/')) === 'local http' ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 250,
      });
      const took = Date.now() - deletedAt;
      console.log(`traffic back at the local process ${(took / 1000).toFixed(1)} s after the agent pod was deleted`);
      expect(took).toBeLessThanOrEqual(10_000);
    } finally {
      await local.close();
    }
  });

  it('lists the swap, and --stop from another terminal restores it; the running devloop says so and ends', async () => {
    const list = new SwapProcess(fx, fx.developer, ['--list']);
    expect(await list.exited, list.explain()).toBe(0);
    const listed = (JSON.parse(list.stdout) as { swaps: Record<string, unknown>[] }).swaps;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      namespace: fx.namespace,
      service: 'web',
      developer: fx.developer,
      mode: 'global',
      ports: [
        { port: 80, targetPort: 8080, local: 18380, name: 'http' },
        { port: 9090, targetPort: 9090, local: 9090, name: 'grpc' },
      ],
    });
    expect(String(listed[0]!.holder)).toMatch(new RegExp(`^${fx.developer}@`));
    expect(Date.parse(String(listed[0]!.expiresAt))).toBeGreaterThan(Date.now() - 5_000);

    const stop = new SwapProcess(fx, fx.developer, ['web', '--stop']);
    expect(await stop.exited, stop.explain()).toBe(0);
    expect(stop.events.find((e) => e.type === 'swap.restored')).toMatchObject({ service: 'web', by: 'devloop' });
    expect(await swapObjects(fx.namespace)).toEqual([]);
    await answerSoon(fx.namespace, 'http://web/', /^cluster web-/);
    // The swapping devloop learns it at its next renewal, and ends.
    expect(await swap.exited, swap.explain()).toBe(1);
    expect(swap.events.filter((e) => e.type === 'swap.restored').at(-1)).toMatchObject({ by: 'cluster' });
  });

  it('restores the Service and says so when no agent can be reached for 30 s (never a swap that looks up but is not)', { timeout: 120_000 }, async () => {
    const again = new SwapProcess(fx, fx.developer, ['web', '--port', '18380:80']);
    try {
      await again.event('swap.started');
      // Someone scales the agents to zero: no pod comes back to carry the traffic.
      await kube().apps.patchNamespacedDeploymentScale(
        { name: 'devloop-swap-web', namespace: fx.namespace, body: [{ op: 'replace', path: '/spec/replicas', value: 0 }] },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
      await again.event('swap.reconnecting', 20_000);
      const restored = await again.event('swap.restored', 60_000);
      expect(restored).toMatchObject({ by: 'devloop' });
      expect(String(restored.reason)).toMatch(/no agent could be reached for 30 s/);
      expect(await again.exited, again.explain()).toBe(1);
      await answerSoon(fx.namespace, 'http://web/', /^cluster web-/);
      expect(await swapObjects(fx.namespace)).toEqual([]);
    } finally {
      again.kill('SIGKILL');
    }
  });
});
