import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kindKubeconfig, uniqueName } from '../support/env.js';
import { deleteNamespace, kindKube } from '../support/kube.js';
import { buildCli, devloop, explain, fixtureRepo, servicesWith } from '../up/harness.js';

const NODE = 'devloop-control-plane';

/** The image names the node's containerd holds (kind loads into the k8s.io namespace). */
function nodeImages(): string[] {
  return execFileSync('docker', ['exec', NODE, 'ctr', '--namespace=k8s.io', 'images', 'ls', '-q'], { encoding: 'utf8' }).trim().split('\n');
}

/** GETs / from every Ready pod of `app` in the kind cluster by pod IP (the host routes the kind pod network). */
async function askKindPods(namespace: string, app: string): Promise<string[]> {
  const pods = (await kindKube().core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items.filter(
    (p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
  const answers = await Promise.all(
    pods.map(async (p) => (await (await fetch(`http://${p.status!.podIP}:8080/`, { signal: AbortSignal.timeout(15_000) })).text()).trim()),
  );
  return [...new Set(answers)].sort();
}

// The kind target for real: the context kind-devloop selects it, images go into the node with kind's way of
// loading (docker save → ctr import in the node), no registry is involved.
describe('devloop up --once on the kind cluster', () => {
  let repo: { dir: string; cleanup(): Promise<void> };
  const developer = uniqueName('e2e-kind');
  const namespace = `shop-${developer}`;
  let env: Record<string, string>;

  beforeAll(async () => {
    // Fails (does not skip) when the kind cluster is not up, naming what is missing.
    env = { KUBECONFIG: kindKubeconfig(), DEVLOOP_REGISTRY: '' };
    buildCli();
    repo = await fixtureRepo();
  });

  afterAll(async () => {
    await deleteNamespace(namespace, undefined, kindKube()).catch(() => undefined);
    await repo?.cleanup();
  });

  it('builds, loads the images into the kind node and deploys the three services', async () => {
    const run = await devloop(repo.dir, developer, ['up', '--once', '--json'], 290_000, env);
    expect(run.code, explain(run)).toBe(0);
    expect(run.events.find((e) => e.type === 'run.started')).toMatchObject({ target: 'kind', where: `kind-devloop/${namespace}` });
    expect(servicesWith(run, 'rollout.ready')).toEqual(['orders', 'pricing', 'web']);
    const delivered = run.events.filter((e) => e.type === 'deliver.started');
    expect(delivered.map((e) => [e.service, e.target]).sort()).toEqual([
      ['orders', 'kind'],
      ['pricing', 'kind'],
      ['web', 'kind'],
    ]);

    const deployments = (await kindKube().apps.listNamespacedDeployment({ namespace })).items;
    const images = deployments.map((d) => d.spec!.template.spec!.containers[0]!.image!).sort();
    // Plain names, no registry: the node can only have them from the load.
    for (const image of images) expect(image).toMatch(/^shop\/(orders|pricing|web):[0-9a-f]+/);
    const inNode = nodeImages();
    for (const image of images) expect(inNode).toContain(`docker.io/${image}`);
    for (const d of deployments) expect(d.status?.readyReplicas, d.metadata?.name).toBe(1);

    expect(await askKindPods(namespace, 'orders')).toEqual(['orders v1']);
    expect(await askKindPods(namespace, 'pricing')).toEqual(['pricing 12.34 EUR']);
  });

  it('loads nothing and applies nothing on a second run', async () => {
    const run = await devloop(repo.dir, developer, ['up', '--once', '--json'], 290_000, env);
    expect(run.code, explain(run)).toBe(0);
    expect(servicesWith(run, 'service.current')).toEqual(['orders', 'pricing', 'web']);
    expect(servicesWith(run, 'build.started')).toEqual([]);
    expect(run.events.filter((e) => e.type === 'deliver.finished' && e.skipped === false)).toEqual([]);
    expect(run.events.filter((e) => e.type === 'deliver.progress')).toEqual([]);
    expect(servicesWith(run, 'deploy.applied')).toEqual([]);
  });
});
