import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { loadKube } from '../../core/deploy/kube.js';
import { readVirtualService, updateVirtualService } from '../../core/route/store.js';
import { routedDevelopers, withoutRoute } from '../../core/route/routes.js';
import { istiodAddress, uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, kube } from '../support/kube.js';
import { callGreeter, expectNoIstioErrors, xdsPodEnv, xdsTarget } from '../support/mesh.js';
import { buildCli, devloop, explain, type CliRun } from '../up/harness.js';

// A shared cluster end to end, over real traffic through istiod: a 4-service gRPC chain (web → orders → pricing →
// stock, each the go-grpc template with a proxyless xDS client) runs as the baseline; alice changes orders and
// stock, bob changes pricing and stock, both run `up` at once; each developer's keyed requests traverse their own
// forks and the baseline elsewhere, unkeyed requests only the baseline.
const CHAIN = ['web', 'orders', 'pricing', 'stock'] as const;
const git = (dir: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', ...args], { cwd: dir, stdio: 'pipe' });

describe('shared cluster: baseline + forks routed by key, hop by hop', () => {
  const baseline = uniqueName('shared');
  let main: string;
  const clones: Record<'alice' | 'bob', string> = { alice: '', bob: '' };

  const up = (developer: string, dir: string, args: string[] = []) => devloop(dir, developer, ['up', '--once', '--json', '--parallel', '1', ...args], 900_000);
  const podsOf = async (developer: string) =>
    (await kube().core.listNamespacedPod({ namespace: baseline, labelSelector: `devloop.dev/developer=${developer}` })).items.map((p) => p.metadata!.name!);
  const chainOf = (answer: { servedBy: string }) => answer.servedBy.split(' > ').map((pod) => pod.replace(/-[a-z0-9]+-[a-z0-9]{5}$/, ''));
  const expectChain = async (key: string | undefined, expected: string[]) => {
    const seen: string[] = [];
    await waitFor(
      `a call with ${key ? `key ${key}` : 'no key'} to go ${expected.join(' > ')}`,
      async () => {
        const answer = chainOf(await callGreeter(baseline, xdsTarget('web', baseline), key ? { route: key } : {}));
        if (seen.at(-1) !== answer.join(' > ')) seen.push(answer.join(' > '));
        return answer.join(' > ') === expected.join(' > ') ? true : undefined;
      },
      { timeoutMs: 60_000, describe: async () => `answers seen: ${seen.join(' | ')}` },
    );
  };

  beforeAll(async () => {
    istiodAddress(); // fails naming what is missing when istiod is not up
    buildCli();
    main = await mkdtemp(path.join(os.tmpdir(), 'devloop-shared-'));
    await writeFile(path.join(main, 'devloop.yaml'), 'version: 1\nname: chain\nservices: []\n');
    git(main, 'init', '-q', '-b', 'main');
    git(main, 'add', '-A');
    git(main, 'commit', '-qm', 'empty');
    // One service from the template, copied four times: the build contexts are identical (deploy/ is not in them),
    // so the image is compiled once and the other three builds come from Docker's cache.
    const run = await devloop(main, 'ci', ['scaffold', 'go-grpc', 'hop', '--module', 'example.com/chain/hop']);
    expect(run.code, explain(run)).toBe(0);
    for (const [i, name] of CHAIN.entries()) {
      const dir = path.join(main, 'services', name);
      await cp(path.join(main, 'services/hop'), dir, { recursive: true });
      for (const file of await readdir(path.join(dir, 'deploy'))) {
        const f = path.join(dir, 'deploy', file);
        await writeFile(f, (await readFile(f, 'utf8')).replaceAll('hop', name));
      }
      const manifest = path.join(dir, 'deploy/deployment.yaml');
      const deployment = parse(await readFile(manifest, 'utf8')) as k8s.V1Deployment;
      const container = deployment.spec!.template.spec!.containers[0]!;
      const next = CHAIN[i + 1];
      container.env = [...(container.env ?? []), ...(next ? [{ name: 'NEXT_HOP', value: `xds:///${next}.${baseline}.svc.cluster.local:8080` }] : []), ...xdsPodEnv()];
      await writeFile(manifest, stringify(deployment));
    }
    await rm(path.join(main, 'services/hop'), { recursive: true });
    await writeFile(
      path.join(main, 'devloop.yaml'),
      stringify({
        version: 1,
        name: 'chain',
        shared: { baseline },
        services: CHAIN.map((name) => ({ name, path: `services/${name}`, manifests: `services/${name}/deploy`, image: `chain/${name}` })),
      }),
    );
    git(main, 'add', '-A');
    git(main, 'commit', '-qm', 'chain');
    for (const dev of ['alice', 'bob'] as const) {
      clones[dev] = await mkdtemp(path.join(os.tmpdir(), `devloop-shared-${dev}-`));
      git(clones[dev], 'clone', '-q', main, '.');
    }
  }, 300_000);

  afterAll(async () => {
    await deleteNamespace(baseline).catch(() => undefined);
    for (const d of [main, clones.alice, clones.bob]) if (d) await rm(d, { recursive: true, force: true });
  });

  it('deploys the baseline from main with `up --baseline`', async () => {
    const run = await devloop(main, 'ci', ['up', '--baseline', '--once', '--json', '--parallel', '1'], 900_000);
    expect(run.code, explain(run)).toBe(0);
    expect(run.events.filter((e) => e.type === 'rollout.ready').map((e) => e.service).sort()).toEqual([...CHAIN].sort());
    await expectChain(undefined, ['web', 'orders', 'pricing', 'stock']);
  }, 920_000);

  it('alice and bob fork only what they changed, concurrently, and their keys route through their forks', async () => {
    for (const [dev, services] of [['alice', ['orders', 'stock']], ['bob', ['pricing', 'stock']]] as const) {
      for (const s of services) await writeFile(path.join(clones[dev], 'services', s, 'CHANGED-BY'), `${dev}\n`);
    }
    const [a, b] = await Promise.all([up('alice', clones.alice), up('bob', clones.bob)]);
    expect(a.code, explain(a)).toBe(0);
    expect(b.code, explain(b)).toBe(0);
    const forked = (run: CliRun) => run.events.filter((e) => e.type === 'service.forked').map((e) => e.service).sort();
    expect(forked(a)).toEqual(['orders', 'stock']);
    expect(forked(b)).toEqual(['pricing', 'stock']);
    // Unchanged services are served by the baseline: nothing of theirs is deployed for the developer.
    expect(a.events.filter((e) => e.type === 'service.current').map((e) => e.service).sort()).toEqual(['pricing', 'web']);
    expect(a.events.filter((e) => e.type === 'route.added').map((e) => `${String(e.host)}→${String(e.to)}`).sort()).toEqual(['orders→orders-alice', 'stock→stock-alice']);
    expect((await podsOf('alice')).map((p) => p.replace(/-[a-z0-9]+-[a-z0-9]{5}$/, '')).sort()).toEqual(['orders-alice', 'stock-alice']);

    await expectChain('alice', ['web', 'orders-alice', 'pricing', 'stock-alice']);
    await expectChain('bob', ['web', 'orders', 'pricing-bob', 'stock-bob']);
    await expectChain(undefined, ['web', 'orders', 'pricing', 'stock']);
    await expectChain('alice2', ['web', 'orders', 'pricing', 'stock']);
    await expectNoIstioErrors([baseline]);
  }, 1_900_000);

  it('a second `up` with nothing changed does nothing, and status shows forks, routes and the other developer', async () => {
    const again = await up('alice', clones.alice);
    expect(again.code, explain(again)).toBe(0);
    expect(again.events.filter((e) => e.type === 'deploy.applied' || e.type === 'build.started')).toEqual([]);
    const status = await devloop(clones.alice, 'alice', ['status']);
    expect(status.code, explain(status)).toBe(0);
    expect(status.stdout).toMatch(/orders: forked: baseline [0-9a-f]{12}, yours [0-9a-f]{12}; orders → orders-alice/);
    expect(status.stdout).toMatch(/web: served by the baseline/);
    expect(status.stdout).toMatch(/your routes \(devloop-route=alice\): (orders, stock|stock, orders)/);
    expect(status.stdout).toMatch(/bob: routes (pricing, stock|stock, pricing); lease until/);
    const plan = await devloop(clones.alice, 'alice', ['plan']);
    expect(plan.code, explain(plan)).toBe(0);
    expect(plan.stdout).toMatch(new RegExp(`orders: forked: version differs from baseline \\(${baseline}: [0-9a-f]{12}, yours: [0-9a-f]{12}\\)`));
    expect(plan.stdout).toMatch(/web: served by the baseline/);
  }, 300_000);

  it('concurrent `up` of alice and bob keeps both routes (10 rounds)', async () => {
    const k = (await loadKube())!;
    for (let round = 0; round < 10; round++) {
      // Both routes on the shared host go; both developers put theirs back at the same moment.
      await updateVirtualService(k, baseline, 'devloop-route-stock', (vs) => (vs ? withoutRoute(withoutRoute(vs, 'alice'), 'bob') : undefined));
      const [a, b] = await Promise.all([up('alice', clones.alice), up('bob', clones.bob)]);
      expect(a.code, `round ${round}: ${explain(a)}`).toBe(0);
      expect(b.code, `round ${round}: ${explain(b)}`).toBe(0);
      const vs = (await readVirtualService(k, baseline, 'devloop-route-stock'))!;
      expect([...routedDevelopers(vs).keys()].sort(), `round ${round}`).toEqual(['alice', 'bob']);
    }
  }, 900_000);

  it("alice's `down` leaves bob's forks and routes and the baseline exactly as they were", async () => {
    const before = await snapshot(baseline, ['bob', 'baseline']);
    const run = await devloop(clones.alice, 'alice', ['down', '--json']);
    expect(run.code, explain(run)).toBe(0);
    expect(await owned(baseline, 'alice'), 'objects of alice left after her down').toEqual([]);
    expect(await snapshot(baseline, ['bob', 'baseline'])).toEqual(before);
    await expectChain('alice', ['web', 'orders', 'pricing', 'stock']);
    await expectChain('bob', ['web', 'orders', 'pricing-bob', 'stock-bob']);
    await expectNoIstioErrors([baseline]);
  }, 300_000);

  it("a fork whose lease ended is removed by another developer's next run", async () => {
    const config = path.join(clones.alice, 'devloop.yaml');
    await writeFile(config, (await readFile(config, 'utf8')).replace(`baseline: ${baseline}`, `baseline: ${baseline}\n  lease: 5s`));
    const run = await up('alice', clones.alice);
    expect(run.code, explain(run)).toBe(0);
    expect((await podsOf('alice')).length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 6_000));
    const before = await snapshot(baseline, ['bob', 'baseline']);
    const bob = await up('bob', clones.bob);
    expect(bob.code, explain(bob)).toBe(0);
    expect(bob.events.find((e) => e.type === 'lease.expired')).toMatchObject({ developer: 'alice', namespace: baseline });
    const left = await owned(baseline, 'alice');
    expect(left, 'objects of alice left after her lease ended').toEqual([]);
    expect(await snapshot(baseline, ['bob', 'baseline'])).toEqual(before);
    await expectChain('alice', ['web', 'orders', 'pricing', 'stock']);
  }, 600_000);

  it('bob\'s `down` and the baseline\'s `down --baseline` leave nothing of devloop behind', async () => {
    const bob = await devloop(clones.bob, 'bob', ['down', '--json']);
    expect(bob.code, explain(bob)).toBe(0);
    expect(await owned(baseline, 'bob')).toEqual([]);
    const vs = await kube().objects.list('networking.istio.io/v1', 'VirtualService', baseline);
    expect(vs.items.map((v) => v.metadata?.name)).toEqual([]);
    const base = await devloop(main, 'ci', ['down', '--baseline', '--json']);
    expect(base.code, explain(base)).toBe(0);
  }, 300_000);
});

/** Every object of a developer's (by devloop's labels) in the namespace: Deployments, Services, ConfigMaps, Leases. */
async function owned(namespace: string, developer: string): Promise<string[]> {
  const selector = `devloop.dev/developer=${developer}`;
  const out: string[] = [];
  for (const [apiVersion, kind] of [['apps/v1', 'Deployment'], ['v1', 'Service'], ['v1', 'ConfigMap'], ['coordination.k8s.io/v1', 'Lease']] as const) {
    const list = await kube().objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, selector);
    out.push(...list.items.map((o) => `${kind}/${o.metadata?.name}`));
  }
  return out.sort();
}

/**
 * The specs of the developers' objects (Deployments, Services, ConfigMaps) and, of every VirtualService, each route
 * and lease that belongs to one of them: what another developer's `down` or expiry must leave byte-identical.
 */
async function snapshot(namespace: string, developers: string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const developer of developers) {
    const selector = `devloop.dev/developer=${developer}`;
    for (const [apiVersion, kind] of [['apps/v1', 'Deployment'], ['v1', 'Service'], ['v1', 'ConfigMap']] as const) {
      const list = await kube().objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, selector);
      for (const o of list.items) out[`${kind}/${o.metadata?.name}`] = JSON.stringify({ spec: (o as { spec?: unknown }).spec, data: (o as { data?: unknown }).data, uid: o.metadata?.uid, generation: o.metadata?.generation });
    }
  }
  const vss = await kube().objects.list('networking.istio.io/v1', 'VirtualService', namespace);
  for (const vs of vss.items as { metadata: { name: string; annotations?: Record<string, string> }; spec: { http?: { name?: string }[] } }[]) {
    for (const developer of developers) {
      const route = vs.spec.http?.find((r) => r.name === `devloop-${developer}`);
      if (route) out[`VirtualService/${vs.metadata.name}#${developer}`] = JSON.stringify(route);
    }
  }
  return out;
}

