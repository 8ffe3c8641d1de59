import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { istiodAddress, uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, kube } from '../support/kube.js';
import { callWhoami, expectAnsweredBy, expectNoIstioErrors, podOf, whoamiBinary, whoamiWorkload, WHOAMI_DOCKERFILE, xdsTarget } from '../support/mesh.js';
import { buildCli, devloop, explain } from '../up/harness.js';
import { SwapProcess, swapObjects } from './harness.js';

// Personal swaps in a shared cluster, over real traffic through istiod (the proxyless gRPC kit): the baseline runs
// `who` (deployed by `up --baseline`); alice has a fork of it. A personal swap sends only the swapper's keyed calls
// to a gRPC server on this machine, everybody else's keep going to the cluster; two developers swap the same
// Service at once; stopping puts alice's fork route back; kill -9 is undone by the cluster within the lease.
const git = (dir: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', ...args], { cwd: dir, stdio: 'pipe' });

/** The whoami image, with who/CHANGED in it when there: writing that file makes a developer's version differ. */
const DOCKERFILE = WHOAMI_DOCKERFILE.replace('COPY whoami /whoami', 'COPY whoami CHANGE[D] /');

/** A gRPC whoami server on this machine that answers `name`: what a developer runs locally. */
async function localWhoami(port: number, name: string): Promise<ChildProcess> {
  const child = spawn(await whoamiBinary(), ['serve'], { env: { ...process.env, GRPC_PORT: String(port), POD_NAME: name }, stdio: 'ignore' });
  await waitFor(`local whoami ${name} on :${port}`, async () => {
    try {
      return (await callWhoami('default', `127.0.0.1:${port}`)) === name ? true : undefined;
    } catch {
      return undefined; // not listening yet
    }
  });
  return child;
}

/** What swaps leave: their Leases, agents and the agents' Services (the developers' own Leases, of their forks and routes, are not a swap's). */
async function leftovers(namespace: string): Promise<string[]> {
  return (await swapObjects(namespace)).filter((o) => !o.startsWith('Lease/') || o.startsWith('Lease/devloop-swap-'));
}

/** The names of the routes of the VirtualService that holds who's routes. */
async function routeNames(namespace: string): Promise<string[]> {
  try {
    const vs = (await kube().objects.read({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'devloop-route-who', namespace } } as never)) as unknown as {
      spec: { http?: { name?: string }[] };
    };
    return (vs.spec.http ?? []).map((r) => r.name ?? '');
  } catch {
    return []; // no VirtualService: no routes
  }
}

describe('devloop swap --personal (shared cluster)', () => {
  const baseline = uniqueName('pswap');
  let dir: string;
  let aliceLocal: ChildProcess | undefined;
  let bobLocal: ChildProcess | undefined;
  const host = () => xdsTarget('who', baseline);
  const fx = () => ({ repo: dir, namespace: baseline });

  beforeAll(async () => {
    istiodAddress(); // fails naming what is missing when istiod is not up
    buildCli();
    dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-pswap-'));
    await mkdir(path.join(dir, 'who/k8s'), { recursive: true });
    await writeFile(path.join(dir, 'who/Dockerfile'), DOCKERFILE);
    await copyFile(await whoamiBinary(), path.join(dir, 'who/whoami'));
    await writeFile(
      path.join(dir, 'who/k8s/who.yaml'),
      whoamiWorkload(baseline, 'who', 'pswap/who', { labels: { 'devloop.dev/propagates-route': 'true' } })
        .map((o) => stringify({ ...o, metadata: { ...o.metadata, namespace: undefined } }))
        .join('---\n'),
    );
    await writeFile(path.join(dir, 'devloop.yaml'), stringify({ version: 1, name: 'pswap', shared: { baseline }, services: [{ name: 'who', path: 'who', manifests: 'who/k8s', image: 'pswap/who' }] }));
    git(dir, 'init', '-q', '-b', 'main');
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', 'who');
    const base = await devloop(dir, 'ci', ['up', '--baseline', '--once']);
    expect(base.code, explain(base)).toBe(0);
    // alice's change: a fork of who, routed by her key.
    await writeFile(path.join(dir, 'who/CHANGED'), 'alice\n');
    const fork = await devloop(dir, 'alice', ['up', '--once']);
    expect(fork.code, explain(fork)).toBe(0);
    [aliceLocal, bobLocal] = await Promise.all([localWhoami(18391, 'alice-laptop'), localWhoami(18392, 'bob-laptop')]);
  }, 900_000);

  afterAll(async () => {
    aliceLocal?.kill();
    bobLocal?.kill();
    await deleteNamespace(baseline).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('sends only the swapper\'s keyed calls to their machine, for two developers at once; stopping puts the fork route back', { timeout: 300_000 }, async () => {
    const basePod = await podOf(baseline, 'who');
    await expectAnsweredBy({ namespace: baseline, host: host(), key: 'alice', pod: /^who-alice-/ });

    const alice = new SwapProcess(fx(), 'alice', ['who', '--port', '18391:grpc']);
    const bob = new SwapProcess(fx(), 'bob', ['who', '--port', '18392:8080']);
    try {
      const [a, b] = await Promise.all([alice.event('swap.started'), bob.event('swap.started')]);
      expect(a).toMatchObject({ mode: 'personal', routeKey: 'alice', service: 'who' });
      expect(b).toMatchObject({ mode: 'personal', routeKey: 'bob' });
      // Swap routes first, then the fork route, then the baseline.
      expect(await routeNames(baseline)).toEqual(['devloop-swap.alice', 'devloop-swap.bob', 'devloop-alice', 'baseline']);

      await expectAnsweredBy({ namespace: baseline, host: host(), key: 'alice', pod: 'alice-laptop' });
      await expectAnsweredBy({ namespace: baseline, host: host(), key: 'bob', pod: 'bob-laptop' });
      // Everybody else's traffic: the baseline, untouched (its Service still selects its own pods).
      expect(await callWhoami(baseline, host())).toBe(basePod);
      expect(await callWhoami(baseline, host(), { route: 'carol' })).toBe(basePod);
      expect((await kube().core.readNamespacedService({ name: 'who', namespace: baseline })).spec?.selector).toEqual({ app: 'who' });
      await expectNoIstioErrors([baseline]);

      const list = await devloop(dir, 'alice', ['swap', '--list']);
      expect(list.stdout).toMatch(/who\s+personal\s+alice@/);
      expect(list.stdout).toMatch(/who\s+personal\s+bob@/);

      alice.kill('SIGINT');
      expect(await alice.exited, alice.explain()).toBe(0);
      expect(alice.events.find((e) => e.type === 'swap.restored')).toMatchObject({ by: 'devloop' });
      // alice's keyed calls reach her fork again; bob's swap goes on.
      expect(await routeNames(baseline)).toEqual(['devloop-swap.bob', 'devloop-alice', 'baseline']);
      await expectAnsweredBy({ namespace: baseline, host: host(), key: 'alice', pod: /^who-alice-/ });
      await expectAnsweredBy({ namespace: baseline, host: host(), key: 'bob', pod: 'bob-laptop' });

      // --stop from another terminal ends bob's own swap.
      const stop = await devloop(dir, 'bob', ['swap', 'who', '--stop']);
      expect(stop.code, explain(stop)).toBe(0);
      expect(await bob.exited, bob.explain()).toBe(1);
      await expectAnsweredBy({ namespace: baseline, host: host(), key: 'bob', pod: basePod });
      expect(await routeNames(baseline)).toEqual(['devloop-alice', 'baseline']);
      expect(await leftovers(baseline)).toEqual([]);
    } finally {
      alice.kill('SIGKILL');
      bob.kill('SIGKILL');
    }
  });

  it('kill -9: the agent removes the route within the lease and nothing of the swap is left', { timeout: 300_000 }, async () => {
    const bob = new SwapProcess(fx(), 'bob', ['who', '--port', '18392:8080']);
    try {
      await bob.event('swap.started');
      await expectAnsweredBy({ namespace: baseline, host: host(), key: 'bob', pod: 'bob-laptop' });
      bob.kill('SIGKILL');
      const killedAt = Date.now();
      expect(await bob.exited).toBe(137);
      await waitFor('no route of bob\'s swap', async () => (!(await routeNames(baseline)).includes('devloop-swap.bob') ? true : undefined), { timeoutMs: 60_000, intervalMs: 250 });
      const restoredMs = Date.now() - killedAt;
      console.log(`personal swap restored by the cluster ${(restoredMs / 1000).toFixed(1)} s after kill -9`);
      expect(restoredMs).toBeLessThanOrEqual(30_000);
      await expectAnsweredBy({ namespace: baseline, host: host(), key: 'bob', pod: await podOf(baseline, 'who') });
      await waitFor('nothing of the swap left', async () => ((await leftovers(baseline)).length === 0 ? true : undefined), {
        timeoutMs: 60_000,
        intervalMs: 500,
        describe: async () => (await leftovers(baseline)).join(', '),
      });
      // alice's fork route was never touched.
      expect(await routeNames(baseline)).toEqual(['devloop-alice', 'baseline']);
      await expectNoIstioErrors([baseline]);
    } finally {
      bob.kill('SIGKILL');
    }
  });

  it('a host routed by a VirtualService devloop did not make: exit 2, named, and nothing changed', { timeout: 120_000 }, async () => {
    const k = kube();
    const foreign = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'hand-made', namespace: baseline }, spec: { hosts: ['who'], http: [{ route: [{ destination: { host: 'who' } }] }] } };
    await k.objects.create(foreign as never);
    try {
      const carol = new SwapProcess(fx(), 'carol', ['who', '--port', '18393:8080']);
      expect(await carol.exited, carol.explain()).toBe(2);
      expect(carol.stderr).toMatch(/VirtualService .*hand-made routes host who and devloop did not make it\nhint: /);
      expect(await leftovers(baseline)).toEqual([]);
      expect(await routeNames(baseline)).toEqual(['devloop-alice', 'baseline']);
    } finally {
      await k.objects.delete(foreign as never);
    }
  });

  it('`devloop down` ends the developer\'s personal swap with their forks and routes', { timeout: 300_000 }, async () => {
    const alice = new SwapProcess(fx(), 'alice', ['who', '--port', '18391:grpc']);
    try {
      await alice.event('swap.started');
      await expectAnsweredBy({ namespace: baseline, host: host(), key: 'alice', pod: 'alice-laptop' });
      const down = await devloop(dir, 'alice', ['down', '--json']);
      expect(down.code, explain(down)).toBe(0);
      expect(down.events.filter((e) => e.type === 'swap.restored').map((e) => e.service)).toEqual(['who']);
      // Her swap process learns that its lease is gone and ends.
      expect(await alice.exited, alice.explain()).toBe(1);
      expect(await routeNames(baseline)).toEqual([]);
      expect(await leftovers(baseline)).toEqual([]);
      await expectAnsweredBy({ namespace: baseline, host: host(), key: 'alice', pod: await podOf(baseline, 'who') });
    } finally {
      alice.kill('SIGKILL');
    }
  });
});
