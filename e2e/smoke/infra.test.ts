import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, removeImage } from '../support/docker.js';
import { infraEnv, infraTool, parseExports, repoRoot, uniqueName } from '../support/env.js';
import { type TestNamespace, createTestNamespace, kindKube, kube, statusCode, waitForDeployment, waitForReadyPod } from '../support/kube.js';
import {
  callWhoami,
  expectAnsweredBy,
  expectNoIstioErrors,
  istioAnalyze,
  podOf,
  routingVirtualService,
  whoamiBinary,
  whoamiImage,
  whoamiWorkload,
  xdsTarget,
} from '../support/mesh.js';

describe('the local infrastructure', () => {
  it('prints exactly its environment lines', () => {
    const out = execFileSync('bash', ['e2e/infra/infra.sh', 'env'], { cwd: repoRoot, encoding: 'utf8' });
    const lines = out.trim().split('\n');
    expect(lines.map((l) => l.replace(/=.*/, ''))).toEqual([
      'export KUBECONFIG',
      'export DOCKER_HOST',
      'export DEVLOOP_REGISTRY',
      'export DEVLOOP_KIND_KUBECONFIG',
      'export DEVLOOP_ISTIOD',
      'export PATH',
    ]);
    const vars = parseExports(out);
    expect(vars.DEVLOOP_REGISTRY).toBe('127.0.0.1:5000');
    expect(vars.DEVLOOP_ISTIOD).toMatch(/^[0-9.]+:15010$/);
    // kind and istioctl are on the PATH the environment sets.
    const bash = execFileSync('bash', ['-c', `${out}\ncommand -v kind; command -v istioctl`], { encoding: 'utf8' });
    expect(bash.trim().split('\n').map((p) => path.basename(p))).toEqual(['kind', 'istioctl']);
  });

  it('runs Debian’s Docker engine', async () => {
    const version = await docker().version();
    expect(version.ApiVersion).toBe('1.41');
  });

  it('serves the base images from the registry', async () => {
    const { registry } = infraEnv();
    for (const [repo, tag] of [
      ['debian', 'bookworm-slim'],
      ['golang', '1.26'],
      ['distroless/static-debian12', 'nonroot'],
      ['node', '24-slim'],
    ] as const) {
      const res = await fetch(`http://${registry}/v2/${repo}/manifests/${tag}`, {
        method: 'HEAD',
        headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      });
      expect({ repo, tag, status: res.status }).toEqual({ repo, tag, status: 200 });
    }
  });

  it('has one Ready Kubernetes 1.35 node on containerd', async () => {
    const nodes = (await kube().core.listNode()).items;
    expect(nodes).toHaveLength(1);
    const info = nodes[0]!.status!.nodeInfo!;
    expect(info.kubeletVersion).toMatch(/^v1\.35\./);
    expect(info.containerRuntimeVersion).toMatch(/^containerd:\/\//);
    const ready = nodes[0]!.status!.conditions!.find((c) => c.type === 'Ready');
    expect(ready?.status).toBe('True');
    const internal = nodes[0]!.status!.addresses!.find((a) => a.type === 'InternalIP')?.address;
    expect(internal).not.toMatch(/^127\./);
  });

  it('enforces RBAC', async () => {
    const review = await kube().authorization.createSubjectAccessReview({
      body: {
        spec: { user: 'system:serviceaccount:default:default', resourceAttributes: { verb: 'list', resource: 'secrets', namespace: 'kube-system' } },
      },
    });
    expect(review.status?.allowed).toBe(false);
  });
});

describe('Istio CRDs on the real API server', () => {
  let ns: TestNamespace;
  beforeAll(async () => {
    ns = await createTestNamespace('istio');
  });
  afterAll(async () => {
    await ns?.cleanup();
  });

  const virtualService = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: ns.name },
    spec,
  });

  it('accepts a valid VirtualService', async () => {
    const created: KubernetesObject = await kube().objects.create(
      virtualService('reviews', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] }),
    );
    expect(created.metadata?.uid).toBeTruthy();
  });

  it('rejects an invalid one through the schema', async () => {
    let error: unknown;
    try {
      await kube().objects.create(virtualService('broken', { hosts: 'not-a-list' }));
    } catch (err) {
      error = err;
    }
    expect(statusCode(error)).toBe(422);
  });
});

describe('the kind cluster "devloop"', () => {
  let ns: TestNamespace;
  const local = `devloop-e2e/kind-smoke:${uniqueName('t')}`;
  beforeAll(async () => {
    ns = await createTestNamespace('kind', kindKube());
  });
  afterAll(async () => {
    await ns?.cleanup();
    await removeImage(local);
  });

  it('has one Ready Kubernetes 1.35 node, devloop-control-plane, in a node container on the Docker engine', async () => {
    const nodes = (await kindKube().core.listNode()).items;
    expect(nodes.map((n) => n.metadata?.name)).toEqual(['devloop-control-plane']);
    expect(nodes[0]!.status!.nodeInfo!.kubeletVersion).toMatch(/^v1\.35\./);
    expect(nodes[0]!.status!.conditions!.find((c) => c.type === 'Ready')?.status).toBe('True');
    const container = await docker().getContainer('devloop-control-plane').inspect();
    expect(container.State.Running).toBe(true);
    expect(container.Config.Labels['io.x-k8s.kind.cluster']).toBe('devloop');
    expect(kindKube().config.getCurrentContext()).toBe('kind-devloop');
  });

  it('runs an image loaded with `kind load docker-image` (no registry)', async () => {
    // A tag that exists nowhere but in the local engine, so only `kind load` can have put it into the node.
    const [repo, tag] = local.split(':') as [string, string];
    await docker().getImage(await whoamiImage()).tag({ repo, tag });
    execFileSync(infraTool('kind'), ['load', 'docker-image', local, '--name', 'devloop'], { stdio: 'pipe' });
    // A name per attempt: a retried test must not trip over the first attempt's Deployment.
    const app = uniqueName('loaded');
    await kindKube().objects.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: app, namespace: ns.name },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app } },
        template: {
          metadata: { labels: { app } },
          spec: {
            containers: [
              {
                name: 'whoami',
                image: local,
                imagePullPolicy: 'Never',
                env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
                readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
              },
            ],
          },
        },
      },
    } as KubernetesObject);
    await waitForDeployment(ns.name, app, 120_000, kindKube());
    const pod = await waitForReadyPod(ns.name, `app=${app}`, 60_000, kindKube());
    // The host routes the kind pod network through the node: the pod answers a plain gRPC call by its IP.
    expect(await callWhoami(ns.name, `${pod.status!.podIP}:8080`)).toBe(pod.metadata!.name);
  });
});

describe('istiod and proxyless gRPC on the host cluster', () => {
  let ns: TestNamespace;
  let baseline: string;
  let alice: string;
  beforeAll(async () => {
    ns = await createTestNamespace('mesh');
    const image = await whoamiImage();
    await whoamiBinary();
    for (const object of [...whoamiWorkload(ns.name, 'pricing', image), ...whoamiWorkload(ns.name, 'pricing-alice', image)]) {
      await kube().objects.create(object);
    }
    await waitForDeployment(ns.name, 'pricing');
    await waitForDeployment(ns.name, 'pricing-alice');
    baseline = await podOf(ns.name, 'pricing');
    alice = await podOf(ns.name, 'pricing-alice');
  });
  afterAll(async () => {
    await ns?.cleanup();
  });

  it('is ready: a proxyless call to a Service resolves through its xDS', async () => {
    expect(await expectAnsweredBy({ namespace: ns.name, host: xdsTarget('pricing', ns.name), pod: baseline })).toBe(baseline);
  });

  it('routes a keyed call where a VirtualService applied in the namespace says, and only that key', async () => {
    const host = xdsTarget('pricing', ns.name);
    // Before any VirtualService, the key changes nothing.
    expect(await callWhoami(ns.name, host, { route: 'alice' })).toBe(baseline);
    await kube().objects.create(routingVirtualService(ns.name, 'pricing', 'pricing', { alice: 'pricing-alice' }));
    await expectAnsweredBy({ namespace: ns.name, host, key: 'alice', pod: alice });
    expect(await callWhoami(ns.name, host)).toBe(baseline);
    expect(await callWhoami(ns.name, host, { route: 'alice2' })).toBe(baseline);
    // Also from a pod, with its own bootstrap.
    expect(await callWhoami(ns.name, host, { route: 'alice', fromPod: { namespace: ns.name, name: baseline } })).toBe(alice);
    await expectNoIstioErrors([ns.name]);
  });

  it('istioctl analyze reports a route to a Service that does not exist (IST0101)', async () => {
    await kube().objects.create(routingVirtualService(ns.name, 'orders', 'orders-bob', {}, 'orders-missing'));
    const messages = await istioAnalyze([ns.name]);
    expect(messages.filter((m) => m.level === 'Error').map((m) => m.code)).toContain('IST0101');
    await expect(expectNoIstioErrors([ns.name])).rejects.toThrow(/IST0101/);
  });
});
