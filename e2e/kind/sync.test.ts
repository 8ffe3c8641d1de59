import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kindKubeconfig, uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, execInPod, kindKube } from '../support/kube.js';
import { freePort, LoopProcess, syncFixtureRepo } from '../sync/session.js';
import { buildCli } from '../up/harness.js';

// `devloop up` on the kind cluster: deploy through kind load, then file sync into the running pod.
describe('devloop up: sync on the kind cluster', () => {
  const developer = uniqueName('e2e-kind-sync');
  const namespace = `syncdemo-${developer}`;
  let repo: Awaited<ReturnType<typeof syncFixtureRepo>>;
  let loop: LoopProcess | undefined;
  let port: number;

  const readyPod = () =>
    waitFor(`a Ready web pod in kind ${namespace}`, async () => {
      const pods = (await kindKube().core.listNamespacedPod({ namespace, labelSelector: 'app=web' })).items;
      return pods.find((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))?.metadata?.name;
    });
  const inPod = async (script: string) => (await execInPod(namespace, await readyPod(), 'web', ['sh', '-c', script], kindKube())).stdout;

  beforeAll(async () => {
    const kubeconfig = kindKubeconfig();
    buildCli();
    port = await freePort();
    repo = await syncFixtureRepo(port);
    loop = new LoopProcess(repo.dir, developer, [], { KUBECONFIG: kubeconfig, DEVLOOP_REGISTRY: '' });
  });

  afterAll(async () => {
    loop?.kill();
    await deleteNamespace(namespace, undefined, kindKube()).catch(() => undefined);
    await repo?.cleanup();
  });

  it('deploys to kind (loaded, not pushed) and connects the sync stream', async () => {
    expect(await loop!.waitFor('the run', (e) => e.type === 'run.started')).toMatchObject({ target: 'kind' });
    expect(await loop!.waitFor('the delivery', (e) => e.type === 'deliver.started')).toMatchObject({ service: 'web', target: 'kind' });
    await loop!.waitFor('the first pass', (e) => e.type === 'run.finished' && e.ok === true, 0, 240_000);
    expect(await loop!.waitFor('the sync stream', (e) => e.type === 'sync.connected')).toMatchObject({ service: 'web' });
    await loop!.waitFor('the initial sync', (e) => e.type === 'sync.finished' && e.initial === true);
    expect(await inPod('cat /app/public/index.txt')).toBe('hello v1\n');
  });

  it('carries an edit of a synced file into the pod without a rebuild, and serves it through the forward', async () => {
    const from = loop!.mark();
    await writeFile(path.join(repo.dir, 'web/public/index.txt'), 'hello from kind\n');
    await waitFor('the edit in the pod', async () => ((await inPod('cat /app/public/index.txt')) === 'hello from kind\n' ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    const batch = await loop!.waitFor('the decision', (e) => e.type === 'watch.batch', from);
    expect(batch.decisions).toEqual([{ service: 'web', action: 'sync', files: 1, reason: 'web/public/index.txt matches a sync rule' }]);
    expect(loop!.events.slice(from).some((e) => e.type === 'build.started')).toBe(false);
    await loop!.waitFor('the port-forward', (e) => e.type === 'forward.ready');
    const body = await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) })).text();
    expect(body).toBe('hello from kind\n');
  });
});
