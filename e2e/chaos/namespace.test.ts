import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, execInPod, kube } from '../support/kube.js';
import { buildCli } from '../up/harness.js';
import { readyWebPod } from './harness.js';
import { freePort, LoopProcess, syncFixtureRepo } from '../sync/session.js';

// The developer's namespace deleted under a running `devloop up`: devloop notices, says so, deploys everything again
// (recreating the namespace), and sync goes on into the new pod.
describe('a namespace deleted under a running devloop up', () => {
  const developer = uniqueName('e2e-chaos-ns');
  const namespace = `syncdemo-${developer}`;
  let repo: Awaited<ReturnType<typeof syncFixtureRepo>>;
  let loop: LoopProcess | undefined;

  const readyPod = () => readyWebPod(namespace);
  const inPod = async (script: string) => (await execInPod(namespace, await readyPod(), 'web', ['sh', '-c', script])).stdout;

  beforeAll(async () => {
    buildCli();
    repo = await syncFixtureRepo(await freePort());
    loop = new LoopProcess(repo.dir, developer);
  });

  afterAll(async () => {
    loop?.kill();
    await deleteNamespace(namespace).catch(() => undefined);
    await repo?.cleanup();
  });

  it('is noticed, said, and everything is deployed again; sync reaches the new pod', async () => {
    await loop!.waitFor('the initial sync', (e) => e.type === 'sync.finished' && e.initial === true);
    const from = loop!.mark();
    await kube().core.deleteNamespace({ name: namespace });
    expect(await loop!.waitFor('the namespace being deleted', (e) => e.type === 'environment.lost' && e.redeploying === false, from, 60_000)).toMatchObject({
      what: `namespace ${namespace} is being deleted`,
    });
    await loop!.waitFor('the namespace gone', (e) => e.type === 'environment.lost' && e.redeploying === true, from, 180_000);
    await loop!.waitFor('the redeploy', (e) => e.type === 'pass.finished' && e.ok === true, from, 180_000);
    const ns = await kube().core.readNamespace({ name: namespace });
    expect(ns.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('devloop');
    await loop!.waitFor('the new pod synced', (e) => e.type === 'sync.finished' && e.initial === true, from, 120_000);

    await writeFile(path.join(repo.dir, 'web/public/index.txt'), 'after the namespace came back\n');
    await waitFor('the edit in the new pod', async () => ((await inPod('cat /app/public/index.txt')) === 'after the namespace came back\n' ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
  });
});
