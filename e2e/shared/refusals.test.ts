import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { infraEnv, istiodAddress, kindKubeconfig, uniqueName } from '../support/env.js';
import { deleteNamespace, kindKube, kube, type KubeClients } from '../support/kube.js';
import { whoamiBinary, whoamiWorkload, WHOAMI_DOCKERFILE } from '../support/mesh.js';
import { buildCli, devloop, explain } from '../up/harness.js';

/** The whoami image, with api/CHANGED in it when there: writing that file makes alice's version differ from the baseline's. */
const API_DOCKERFILE = WHOAMI_DOCKERFILE.replace('COPY whoami /whoami', 'COPY whoami CHANGE[D] /');

// What a shared cluster refuses, each with one line, exit 2 and nothing changed: a missing baseline namespace, a
// cluster without Istio, a developer who may not write VirtualServices, a VirtualService devloop did not make on a
// host it would route. And on local Docker `shared:` is ignored with a notice.
const git = (dir: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', ...args], { cwd: dir, stdio: 'pipe' });

/** Every object with devloop's developer label `developer` in the namespace (workloads, Services, ConfigMaps, Leases). */
async function ownedBy(k: KubeClients, namespace: string, developer: string): Promise<string[]> {
  const out: string[] = [];
  for (const [apiVersion, kind] of [['apps/v1', 'Deployment'], ['v1', 'Service'], ['v1', 'ConfigMap'], ['coordination.k8s.io/v1', 'Lease']] as const) {
    const list = await k.objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, `devloop.dev/developer=${developer}`);
    out.push(...list.items.map((o) => `${kind}/${o.metadata?.name}`));
  }
  return out;
}

describe('shared cluster: refusals', () => {
  const baseline = uniqueName('shared-no');
  let dir: string;
  const kindBaseline = uniqueName('shared-kind');

  /** A repository with one whoami service `api`, sharing `namespace` as its baseline. */
  async function project(namespace: string): Promise<string> {
    const d = await mkdtemp(path.join(os.tmpdir(), 'devloop-shared-no-'));
    await mkdir(path.join(d, 'api/k8s'), { recursive: true });
    await writeFile(path.join(d, 'api/Dockerfile'), API_DOCKERFILE);
    await copyFile(await whoamiBinary(), path.join(d, 'api/whoami'));
    await writeFile(path.join(d, 'api/k8s/api.yaml'), whoamiWorkload(namespace, 'api', 'shared/api').map((o) => stringify({ ...o, metadata: { ...o.metadata, namespace: undefined } })).join('---\n'));
    await writeFile(path.join(d, 'devloop.yaml'), stringify({ version: 1, name: 'refusals', shared: { baseline: namespace }, services: [{ name: 'api', path: 'api', manifests: 'api/k8s', image: 'shared/api' }] }));
    git(d, 'init', '-q', '-b', 'main');
    git(d, 'add', '-A');
    git(d, 'commit', '-qm', 'api');
    return d;
  }
  /** A change to api that makes alice's version differ from the baseline's. */
  const change = (d: string) => writeFile(path.join(d, 'api/CHANGED'), 'alice\n');

  beforeAll(async () => {
    istiodAddress();
    buildCli();
    dir = await project(baseline);
    const run = await devloop(dir, 'ci', ['up', '--baseline', '--once']);
    expect(run.code, explain(run)).toBe(0);
    await change(dir);
  }, 600_000);

  afterAll(async () => {
    await deleteNamespace(baseline).catch(() => undefined);
    await deleteNamespace(kindBaseline, 120_000, kindKube()).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a missing baseline namespace: exit 2, a hint, and no namespace created', async () => {
    const missing = uniqueName('shared-missing');
    const d = await project(missing);
    await change(d);
    const run = await devloop(d, 'alice', ['up', '--once']);
    expect(run.code, explain(run)).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`the baseline namespace ${missing} does not exist`));
    expect(run.stderr).toMatch(/devloop up --baseline/);
    await expect(kube().core.readNamespace({ name: missing })).rejects.toThrow();
    await rm(d, { recursive: true, force: true });
  }, 300_000);

  it('a cluster without Istio: exit 2 and no fork', async () => {
    const d = await project(kindBaseline);
    const env = { KUBECONFIG: kindKubeconfig(), DEVLOOP_REGISTRY: '' };
    const base = await devloop(d, 'ci', ['up', '--baseline', '--once'], 600_000, env);
    expect(base.code, explain(base)).toBe(0);
    await change(d);
    const run = await devloop(d, 'alice', ['up', '--once'], 300_000, env);
    expect(run.code, explain(run)).toBe(2);
    expect(run.stderr).toMatch(/does not know Istio's VirtualService/);
    expect(await ownedBy(kindKube(), kindBaseline, 'alice')).toEqual([]);
    await rm(d, { recursive: true, force: true });
  }, 900_000);

  it('a developer who may not write VirtualServices: exit 2 and no fork', async () => {
    const k = kube();
    // A ServiceAccount that may do everything in the namespace but touch VirtualServices.
    await k.core.createNamespacedServiceAccount({ namespace: baseline, body: { metadata: { name: 'no-routes' } } });
    await k.objects.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'no-routes', namespace: baseline },
      rules: [
        { apiGroups: ['', 'apps', 'coordination.k8s.io'], resources: ['*'], verbs: ['*'] },
        { apiGroups: ['networking.istio.io'], resources: ['virtualservices'], verbs: ['get', 'list', 'watch'] },
      ],
    } as never);
    await k.objects.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'no-routes', namespace: baseline },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'no-routes' },
      subjects: [{ kind: 'ServiceAccount', name: 'no-routes', namespace: baseline }],
    } as never);
    const token = await k.core.createNamespacedServiceAccountToken({ name: 'no-routes', namespace: baseline, body: { spec: { expirationSeconds: 3600 } } });
    const admin = infraEnv().kubeconfig;
    const cfg = JSON.parse(execFileSync('kubectl', ['--kubeconfig', admin, 'config', 'view', '--raw', '--minify', '-o', 'json'], { encoding: 'utf8' })) as {
      clusters: { name: string; cluster: Record<string, unknown> }[];
    };
    const file = path.join(dir, '..', `${path.basename(dir)}-no-routes.kubeconfig`);
    await writeFile(
      file,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: cfg.clusters,
        users: [{ name: 'no-routes', user: { token: token.status!.token } }],
        contexts: [{ name: 'no-routes', context: { cluster: cfg.clusters[0]!.name, user: 'no-routes', namespace: baseline } }],
        'current-context': 'no-routes',
      }),
    );
    const run = await devloop(dir, 'alice', ['up', '--once'], 300_000, { KUBECONFIG: file });
    await rm(file, { force: true });
    expect(run.code, explain(run)).toBe(2);
    expect(run.stderr).toMatch(/you may not create\/update\/delete VirtualServices in/);
    expect(await ownedBy(k, baseline, 'alice')).toEqual([]);
  }, 300_000);

  it('a VirtualService devloop did not make on the host: exit 2, named, and no fork', async () => {
    const k = kube();
    await k.objects.create({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'hand-made', namespace: baseline },
      spec: { hosts: [`api.${baseline}.svc.cluster.local`], http: [{ route: [{ destination: { host: `api.${baseline}.svc.cluster.local` } }] }] },
    } as never);
    const before = JSON.stringify(((await k.objects.read({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'hand-made', namespace: baseline } })) as { spec: unknown }).spec);
    const run = await devloop(dir, 'alice', ['up', '--once']);
    expect(run.code, explain(run)).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`VirtualService ${baseline}/hand-made routes host api and devloop did not make it`));
    expect(await ownedBy(k, baseline, 'alice')).toEqual([]);
    const after = JSON.stringify(((await k.objects.read({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'hand-made', namespace: baseline } })) as { spec: unknown }).spec);
    expect(after).toBe(before);
    await k.objects.delete({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'hand-made', namespace: baseline } });
  }, 300_000);

  it('on local Docker, shared: is ignored with a notice', async () => {
    const run = await devloop(dir, 'alice', ['up', '--once', '--target', 'docker']);
    expect(run.code, explain(run)).toBe(0);
    expect(run.stdout).toMatch(/shared: in devloop.yaml is ignored on local Docker/);
    const down = await devloop(dir, 'alice', ['down', '--target', 'docker']);
    expect(down.code, explain(down)).toBe(0);
    expect(JSON.stringify(await readFile(path.join(dir, 'api/CHANGED'), 'utf8'))).toBe('"alice\\n"');
  }, 300_000);
});
