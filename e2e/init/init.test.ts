import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kindKubeconfig, repoRoot, uniqueName } from '../support/env.js';
import { deleteNamespace, kindKube } from '../support/kube.js';
import { buildCli, devloop, explain, servicesWith } from '../up/harness.js';

const SERVICE_LABEL = 'devloop.dev/service';

// A repository laid out as public microservice demos are (services under src/, one kustomization for all of them,
// a skaffold.yaml): `devloop init` writes its devloop.yaml, and `up --once` deploys it to the kind cluster with
// each object owned by its service; a change to one service rebuilds and rolls out that service only.
describe('devloop init, then up on the kind cluster, with one manifests tree for every service', () => {
  let parent: string;
  let dir: string;
  // The project is named after its directory (dl-init): the namespace is dl-init-<developer>.
  const developer = uniqueName('e2e');
  const namespace = `dl-init-${developer}`;
  let env: Record<string, string>;

  beforeAll(async () => {
    // Fails (does not skip) when the kind cluster is not up, naming what is missing.
    env = { KUBECONFIG: kindKubeconfig(), DEVLOOP_REGISTRY: '' };
    buildCli();
    parent = await mkdtemp(path.join(os.tmpdir(), 'dl-init-'));
    dir = path.join(parent, 'dl-init');
    await mkdir(dir);
    await cp(path.join(repoRoot, 'e2e/fixtures/boutique'), dir, { recursive: true });
    const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' });
    git('init', '-q', '-b', 'main');
    git('add', '-A');
    git('-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', 'commit', '-qm', 'boutique');
  });

  afterAll(async () => {
    await deleteNamespace(namespace, undefined, kindKube()).catch(() => undefined);
    if (parent) await rm(parent, { recursive: true, force: true });
  });

  const deployments = async () => new Map((await kindKube().apps.listNamespacedDeployment({ namespace })).items.map((d) => [d.metadata!.name!, d]));

  it('init writes a devloop.yaml from skaffold.yaml that up deploys: each service with its own objects, the third-party one as it is', async () => {
    const init = await devloop(dir, developer, ['init'], 60_000, env);
    expect(init.code, explain(init)).toBe(0);
    expect(await readFile(path.join(dir, 'devloop.yaml'), 'utf8')).toContain('manifests: kubernetes-manifests\n');

    const run = await devloop(dir, developer, ['up', '--once', '--json'], 290_000, env);
    expect(run.code, explain(run)).toBe(0);
    expect(servicesWith(run, 'rollout.ready')).toEqual(['cartservice', 'emailservice', 'frontend']);
    const applied = Object.fromEntries(run.events.filter((e) => e.type === 'deploy.applied').map((e) => [e.service, [...(e.objects as string[])].sort()]));
    expect(applied).toEqual({
      cartservice: ['ConfigMap/cart-settings', 'Deployment/cartservice', 'Service/cartservice', 'ServiceAccount/cartservice'],
      // emailservice is the first service in devloop.yaml: the shared objects (the third-party redis-cart) go with it.
      emailservice: ['Deployment/emailservice', 'Deployment/redis-cart', 'Service/emailservice', 'Service/redis-cart'],
      frontend: ['Deployment/frontend', 'Service/frontend'],
    });

    const live = await deployments();
    expect([...live.keys()].sort()).toEqual(['cartservice', 'emailservice', 'frontend', 'redis-cart']);
    for (const [name, owner] of [['cartservice', 'cartservice'], ['emailservice', 'emailservice'], ['frontend', 'frontend'], ['redis-cart', 'emailservice']]) {
      expect(live.get(name!)!.metadata!.labels![SERVICE_LABEL], name).toBe(owner);
      expect(live.get(name!)!.status?.readyReplicas, name).toBe(1);
    }
    // The images the manifests name are the ones devloop built (no registry on kind); the third-party one is untouched.
    expect(live.get('cartservice')!.spec!.template.spec!.containers[0]!.image).toMatch(/^cartservice:[0-9a-f]{16}$/);
    expect(live.get('emailservice')!.spec!.template.spec!.containers[0]!.image).toMatch(/^emailservice:[0-9a-f]{16}$/);
    expect(live.get('redis-cart')!.spec!.template.spec!.containers[0]!.image).toBe('registry.k8s.io/pause:3.10.1');
    const settings = await kindKube().core.readNamespacedConfigMap({ namespace, name: 'cart-settings' });
    expect(settings.metadata!.labels![SERVICE_LABEL]).toBe('cartservice');
  });

  it('a second up changes nothing; a change to one service rebuilds and rolls out that service only', async () => {
    const again = await devloop(dir, developer, ['up', '--once', '--json'], 290_000, env);
    expect(again.code, explain(again)).toBe(0);
    expect(servicesWith(again, 'service.current')).toEqual(['cartservice', 'emailservice', 'frontend']);
    expect(servicesWith(again, 'deploy.applied')).toEqual([]);

    const before = await deployments();
    const main = path.join(dir, 'src/cartservice/src/main.go');
    await writeFile(main, (await readFile(main, 'utf8')).replace('cart v1', `cart ${developer}`)); // a version never built before
    const run = await devloop(dir, developer, ['up', '--once', '--json'], 290_000, env);
    expect(run.code, explain(run)).toBe(0);
    expect(servicesWith(run, 'build.started')).toEqual(['cartservice']);
    expect(servicesWith(run, 'deploy.applied')).toEqual(['cartservice']);
    expect(servicesWith(run, 'rollout.ready')).toEqual(['cartservice']);
    expect(servicesWith(run, 'service.current')).toEqual(['emailservice', 'frontend']);
    const after = await deployments();
    expect(after.get('cartservice')!.spec!.template.spec!.containers[0]!.image).not.toBe(before.get('cartservice')!.spec!.template.spec!.containers[0]!.image);
    // Nothing else was touched: the other workloads, the shared one included, are the very same objects.
    for (const name of ['emailservice', 'frontend', 'redis-cart']) {
      expect(after.get(name)!.metadata!.resourceVersion, name).toBe(before.get(name)!.metadata!.resourceVersion);
    }

    const status = await devloop(dir, developer, ['status', '--json'], 120_000, env);
    expect(status.code, explain(status)).toBe(0);
    const report = JSON.parse(status.stdout) as { services: { name: string; current: boolean; ready: number }[] };
    expect(report.services.map((s) => [s.name, s.current, s.ready])).toEqual([
      ['emailservice', true, 2],
      ['cartservice', true, 1],
      ['frontend', true, 1],
    ]);
  });

  it('an object removed from the tree is pruned by the service that owned it, and by no other', async () => {
    const file = path.join(dir, 'kubernetes-manifests/frontend.yaml');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.slice(0, text.indexOf('---')));
    const run = await devloop(dir, developer, ['up', '--once', '--json'], 290_000, env);
    expect(run.code, explain(run)).toBe(0);
    expect(run.events.filter((e) => e.type === 'deploy.pruned').map((e) => [e.service, e.object])).toEqual([['frontend', 'Service/frontend']]);
    expect(servicesWith(run, 'build.started')).toEqual([]);
    expect(servicesWith(run, 'service.current')).toEqual(['cartservice', 'emailservice']);
    const services = (await kindKube().core.listNamespacedService({ namespace })).items.map((x) => x.metadata!.name).sort();
    expect(services).toEqual(['cartservice', 'emailservice', 'redis-cart']);
  });

  it('down removes every service’s objects and the namespace', async () => {
    const down = await devloop(dir, developer, ['down', '--images', '--json'], 180_000, env);
    expect(down.code, explain(down)).toBe(0);
    const deleted = down.events.filter((e) => e.type === 'down.deleted').map((e) => e.object as string);
    for (const o of ['Deployment/cartservice', 'Deployment/redis-cart', 'ConfigMap/cart-settings', 'ServiceAccount/cartservice', `Namespace/${namespace}`]) expect(deleted).toContain(o);
  });
});
