import { execFileSync } from 'node:child_process';
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from '../support/docker.js';
import { infraEnv, parseExports, repoRoot } from '../support/env.js';
import { type TestNamespace, createTestNamespace, kube, statusCode } from '../support/kube.js';

describe('the local infrastructure', () => {
  it('prints exactly the three environment lines', () => {
    const out = execFileSync('bash', ['e2e/infra/infra.sh', 'env'], { cwd: repoRoot, encoding: 'utf8' });
    const lines = out.trim().split('\n');
    expect(lines.map((l) => l.replace(/=.*/, ''))).toEqual([
      'export KUBECONFIG',
      'export DOCKER_HOST',
      'export DEVLOOP_REGISTRY',
    ]);
    expect(parseExports(out).DEVLOOP_REGISTRY).toBe('127.0.0.1:5000');
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
