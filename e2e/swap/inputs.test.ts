import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../up/harness.js';
import { kube } from '../support/index.js';
import { createFixture, SwapProcess, swapObjects, userPods, userSpecs, type Fixture } from './harness.js';

/** A kubeconfig for a ServiceAccount that may only read the namespace (ClusterRole view), like a developer without rights. */
async function readOnlyKubeconfig(namespace: string, dir: string): Promise<string> {
  const k = kube();
  await k.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'read-only' } } });
  await k.objects.create({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'read-only', namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    subjects: [{ kind: 'ServiceAccount', name: 'read-only', namespace }],
  } as never);
  const token = (await k.core.createNamespacedServiceAccountToken({ name: 'read-only', namespace, body: { spec: { audiences: [], expirationSeconds: 3600 } } })).status!.token;
  const cluster = k.config.getCurrentCluster()!;
  const file = path.join(dir, 'read-only.kubeconfig');
  const ca = cluster.caData ?? (cluster.caFile ? (await import('node:fs')).readFileSync(cluster.caFile).toString('base64') : undefined);
  await writeFile(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: cluster.server, ...(ca ? { 'certificate-authority-data': ca } : { 'insecure-skip-tls-verify': true }) } }],
      users: [{ name: 'read-only', user: { token } }],
      contexts: [{ name: 'read-only', context: { cluster: 'c', user: 'read-only', namespace } }],
      'current-context': 'read-only',
    }),
  );
  return file;
}

// Bad input: one line saying what is wrong (and a hint), exit code 2, and nothing changed in the cluster.
describe('devloop swap with bad input', () => {
  let fx: Fixture;
  let dir: string;

  beforeAll(async () => {
    buildCli();
    fx = await createFixture('inputs');
    dir = await mkdtemp(path.join(os.tmpdir(), 'dl-swap-inputs-'));
  });

  afterAll(async () => {
    await fx?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cases: [string, string[], RegExp][] = [
    ['an unknown service', ['nope'], /^no Service or workload named nope in namespace \S+\nhint: Services there: orders, web$/],
    ['a workload without a Service', ['lonely'], /^Deployment lonely in \S+ has no Service in front of it: nothing sends it traffic to swap\nhint: /],
    ['a port that is not one of the Service’s', ['web', '--port', '3000:8443'], /^--port 3000:8443: 8443 is not a port of Service web \(its ports: 80 \(http\), 9090 \(grpc\)\)\nhint: /],
    ['a port without saying which of several', ['web', '--port', '3000'], /^--port 3000 does not say which of Service web's ports it takes: 80 \(http\), 9090 \(grpc\)\nhint: /],
    ['an invalid local port', ['web', '--port', '70000:80'], /^--port 70000:80 is not a valid port mapping\nhint: /],
    ['a malformed port', ['web', '--port', 'abc'], /^--port abc is not a valid port mapping\nhint: /],
    ['personal mode without a shared cluster', ['web', '--personal'], /^personal mode needs shared: in devloop.yaml\nhint: /],
    ['no service at all', [], /^which service to swap\?\nhint: /],
  ];

  for (const [what, args, message] of cases) {
    it(`refuses ${what}: exit 2, one line and a hint, nothing changed`, async () => {
      const specs = await userSpecs(fx.namespace);
      const pods = await userPods(fx.namespace);
      const swap = new SwapProcess(fx, fx.developer, args);
      expect(await swap.exited, swap.explain()).toBe(2);
      expect(swap.stderr.trim()).toMatch(message);
      expect(await swapObjects(fx.namespace)).toEqual([]);
      expect(await userSpecs(fx.namespace)).toBe(specs);
      expect(await userPods(fx.namespace)).toEqual(pods);
    });
  }

  it('says so when the developer may not change the namespace (RBAC forbidden): exit 2, nothing changed', async () => {
    const kubeconfig = await readOnlyKubeconfig(fx.namespace, dir);
    const specs = await userSpecs(fx.namespace);
    const swap = new SwapProcess(fx, fx.developer, ['web', '--port', '18580:80'], { KUBECONFIG: kubeconfig });
    expect(await swap.exited, swap.explain()).toBe(2);
    expect(swap.stderr.trim()).toMatch(/was forbidden: .*\nhint: ask for access to this namespace/);
    expect(await swapObjects(fx.namespace)).toEqual([]);
    expect(await userSpecs(fx.namespace)).toBe(specs);
  });
});
