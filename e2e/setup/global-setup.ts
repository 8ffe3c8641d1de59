import { existsSync } from 'node:fs';
import net from 'node:net';
import { docker } from '../support/docker.js';
import { infraEnv, istiodAddress } from '../support/env.js';
import { E2E_LABEL, deleteNamespace, kindKube, kube } from '../support/kube.js';

const FIX = 'Bring it up with `npm run infra:up` (as root; `npm run infra:status` shows what runs), then `eval "$(npm run --silent infra:env)"`.';

/** Images the e2e suite builds FROM; infra:up creates them because nothing can be pulled here. */
const BASE_IMAGES = ['golang:1.26', 'gcr.io/distroless/static-debian12:latest', 'node:24-slim', 'debian:bookworm-slim'];

/** Namespaces left by killed runs are removed once they are clearly stale (a concurrent run's are young). */
const STALE_NAMESPACE_MS = 2 * 60 * 60 * 1000;

async function problem(what: string, check: () => Promise<string | undefined>): Promise<string | undefined> {
  try {
    return await check();
  } catch (err) {
    return `${what}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/**
 * Checks that the real infrastructure is there before any e2e test runs, and fails (never skips) with one line per
 * missing piece and how to fix it.
 */
export default async function setup(): Promise<void> {
  let env;
  try {
    env = infraEnv();
  } catch (err) {
    throw new Error(`e2e infrastructure: cannot read its coordinates from e2e/infra/infra.sh env (${String(err)}).\n${FIX}`);
  }
  const problems = (
    await Promise.all([
      problem(`Docker engine at ${env.dockerHost}`, async () => {
        await docker().ping();
        const missing: string[] = [];
        for (const image of BASE_IMAGES) {
          try {
            await docker().getImage(image).inspect();
          } catch {
            missing.push(image);
          }
        }
        return missing.length ? `local base images missing from the Docker engine: ${missing.join(', ')}` : undefined;
      }),
      problem('kind cluster "devloop"', async () => {
        const nodes = (await kindKube().core.listNode()).items;
        const ready = nodes.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
        return ready.length === 0 ? `no Ready node in the kind cluster (${nodes.length} node(s) registered)` : undefined;
      }),
      problem('istiod', async () => {
        // The plaintext xDS port answers TCP when istiod serves; the tests that route through it check the rest.
        const [host, port] = [istiodAddress().replace(/:\d+$/, ''), Number(istiodAddress().split(':').pop())];
        await new Promise<void>((resolve, reject) => {
          const socket = net.connect({ host, port, timeout: 5000 }, () => {
            socket.end();
            resolve();
          });
          socket.on('error', reject);
          socket.on('timeout', () => socket.destroy(new Error(`no answer from ${host}:${port}`)));
        });
        return undefined;
      }),
      problem(`registry at ${env.registry}`, async () => {
        const res = await fetch(`http://${env.registry}/v2/`, { signal: AbortSignal.timeout(5000) });
        return res.ok ? undefined : `registry at ${env.registry} answered HTTP ${res.status} to GET /v2/`;
      }),
      problem(`Kubernetes API (KUBECONFIG=${env.kubeconfig})`, async () => {
        if (!env.kubeconfig || !existsSync(env.kubeconfig)) return `kubeconfig not found at "${env.kubeconfig}" (the cluster is not up)`;
        const nodes = (await kube().core.listNode()).items;
        const ready = nodes.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
        if (ready.length === 0) return `no Ready node in the cluster (${nodes.length} node(s) registered)`;
        const dns = await kube().apps.readNamespacedDeployment({ name: 'coredns', namespace: 'kube-system' });
        if ((dns.status?.readyReplicas ?? 0) < 1) return 'CoreDNS (kube-system/coredns) has no ready replica';
        return undefined;
      }),
    ])
  ).filter((p): p is string => p !== undefined);

  if (problems.length > 0) {
    throw new Error(`e2e infrastructure is not usable:\n${problems.map((p) => `  - ${p}`).join('\n')}\n${FIX}`);
  }

  const namespaces = (await kube().core.listNamespace({ labelSelector: E2E_LABEL })).items;
  const stale = namespaces.filter((ns) => {
    const created = ns.metadata?.creationTimestamp ? new Date(ns.metadata.creationTimestamp).getTime() : Date.now();
    return Date.now() - created > STALE_NAMESPACE_MS && !ns.metadata?.deletionTimestamp;
  });
  await Promise.all(stale.map((ns) => deleteNamespace(ns.metadata!.name!, 10_000).catch(() => undefined)));
  const kindNamespaces = (await kindKube().core.listNamespace({ labelSelector: E2E_LABEL })).items;
  const kindStale = kindNamespaces.filter((ns) => {
    const created = ns.metadata?.creationTimestamp ? new Date(ns.metadata.creationTimestamp).getTime() : Date.now();
    return Date.now() - created > STALE_NAMESPACE_MS && !ns.metadata?.deletionTimestamp;
  });
  await Promise.all(kindStale.map((ns) => deleteNamespace(ns.metadata!.name!, 10_000, kindKube()).catch(() => undefined)));
}
