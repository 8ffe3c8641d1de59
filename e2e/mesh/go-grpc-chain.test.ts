import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { istiodAddress, uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, kube, waitForDeployment } from '../support/kube.js';
import { callGreeter, expectNoIstioErrors, routingVirtualService, xdsPodEnv, xdsTarget } from '../support/mesh.js';
import { buildCli, devloop, explain, servicesWith } from '../up/harness.js';

async function podName(namespace: string, app: string): Promise<string> {
  return waitFor(`one Ready pod of ${app}`, async () => {
    const pods = (await kube().core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/name=${app}` })).items.filter(
      (p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    return pods.length === 1 ? pods[0]!.metadata!.name! : undefined;
  });
}

// Two services scaffolded from the go-grpc template, front → back, deployed by devloop on the host cluster. front
// has an xDS bootstrap (proxyless gRPC against istiod) and NEXT_HOP=back; a VirtualService sends requests whose
// baggage carries devloop-route=alice to back-alice. The key travels from the caller through front to the second
// hop, which is where the route takes effect.
describe('go-grpc template: a two-hop chain routed by key through istiod', () => {
  const developer = uniqueName('e2e-chain');
  const namespace = `chain-${developer}`;
  let dir: string;
  let front: string;
  let back: string;
  let backAlice: string;

  beforeAll(async () => {
    istiodAddress(); // fails naming what is missing when istiod is not up
    buildCli();
    dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-chain-'));
    await writeFile(path.join(dir, 'devloop.yaml'), 'version: 1\nname: chain\nservices: []\n');
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', ...args], { cwd: dir, stdio: 'pipe' });
    git('init', '-q', '-b', 'main');
    git('add', '-A');
    git('commit', '-qm', 'empty');
  });

  afterAll(async () => {
    await deleteNamespace(namespace).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('scaffolds front and back, gives front an xDS bootstrap and a next hop, and deploys both', async () => {
    for (const name of ['back', 'front']) {
      const run = await devloop(dir, developer, ['scaffold', 'go-grpc', name, '--module', `example.com/chain/${name}`]);
      expect(run.code, explain(run)).toBe(0);
    }
    const manifest = path.join(dir, 'services/front/deploy/deployment.yaml');
    const deployment = parse(await readFile(manifest, 'utf8')) as k8s.V1Deployment;
    const container = deployment.spec!.template.spec!.containers[0]!;
    container.env = [...(container.env ?? []), { name: 'NEXT_HOP', value: `back.${namespace}.svc.cluster.local:8080` }, ...xdsPodEnv()];
    await writeFile(manifest, stringify(deployment));

    const run = await devloop(dir, developer, ['up', '--once', '--json'], 900_000);
    expect(run.code, explain(run)).toBe(0);
    expect(servicesWith(run, 'rollout.ready')).toEqual(['back', 'front']);
    front = await podName(namespace, 'front');
    back = await podName(namespace, 'back');
  }, 920_000);

  it('without a route, front answers through the baseline back', async () => {
    const answer = await callGreeter(namespace, xdsTarget('front', namespace));
    expect(answer).toMatchObject({ servedBy: `${front} > ${back}`, message: 'Hello, e2e!' });
  });

  it('with key alice, the second hop lands on back-alice; other keys stay on the baseline', async () => {
    // back-alice: the same image as back, as a developer's fork would be, with a Service of its own.
    const base = await kube().apps.readNamespacedDeployment({ name: 'back', namespace });
    const labels = { 'app.kubernetes.io/name': 'back-alice' };
    const podSpec = base.spec!.template.spec!;
    await kube().apps.createNamespacedDeployment({
      namespace,
      body: { metadata: { name: 'back-alice', labels }, spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: podSpec } } },
    });
    await kube().core.createNamespacedService({
      namespace,
      body: { metadata: { name: 'back-alice', labels }, spec: { selector: labels, ports: [{ name: 'grpc', port: 8080, targetPort: 'grpc', appProtocol: 'grpc' }] } },
    });
    await waitForDeployment(namespace, 'back-alice');
    backAlice = await podName(namespace, 'back-alice');
    await kube().objects.create(routingVirtualService(namespace, 'back', 'back', { alice: 'back-alice' }));

    const target = xdsTarget('front', namespace);
    const seen: string[] = [];
    const routed = await waitFor(
      'the keyed call to reach back-alice',
      async () => {
        const answer = await callGreeter(namespace, target, { route: 'alice' });
        seen.push(answer.servedBy);
        return answer.servedBy === `${front} > ${backAlice}` ? answer : undefined;
      },
      { timeoutMs: 60_000, describe: async () => `served by: ${[...new Set(seen)].join(' | ')}` },
    );
    // The route reached the last hop: back-alice echoes the key it received from front.
    expect(routed.route).toBe('alice');
    expect((await callGreeter(namespace, target)).servedBy).toBe(`${front} > ${back}`);
    expect((await callGreeter(namespace, target, { route: 'alice2' })).servedBy).toBe(`${front} > ${back}`);
    await expectNoIstioErrors([namespace]);
  });
});
