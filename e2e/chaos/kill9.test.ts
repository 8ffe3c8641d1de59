import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, kube } from '../support/kube.js';
import { buildCli, devloop } from '../up/harness.js';
import { freePort, syncFixtureRepo, treeDigest } from '../sync/session.js';
import { devloopProcessesIn, devloopTempEntries, labelledObjects, recordedObjects, seeded, spawnDevloop } from './harness.js';

const RUNS = Number(process.env.DEVLOOP_CHAOS_RUNS ?? 10);
const SEED = Number(process.env.DEVLOOP_CHAOS_SEED ?? Date.now() % 100_000);

// kill -9 of `devloop up` at a random moment, again and again; after each, `up --once` must converge and `down` must
// leave nothing: the cluster holds exactly what devloop owns (by label and by record), no devloop process or temp
// file is left, and the local tree is byte-identical.
describe(`kill -9 of devloop up at random moments (${RUNS} runs, seed ${SEED})`, () => {
  const developer = uniqueName('e2e-chaos-kill');
  const namespace = `syncdemo-${developer}`;
  let repo: Awaited<ReturnType<typeof syncFixtureRepo>>;
  let tempBefore: string[];

  beforeAll(async () => {
    buildCli();
    repo = await syncFixtureRepo(await freePort());
    // Forty ConfigMaps more, so that a kill lands inside an apply of many objects too.
    const extra = Array.from({ length: 40 }, (_, i) => `---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-${i}\ndata:\n  n: "${i}"\n`).join('');
    await appendFile(path.join(repo.dir, 'web/k8s/deployment.yaml'), `\n${extra}`);
    repo.git('commit', '-qam', 'many objects');
    tempBefore = await devloopTempEntries();
    console.log(`chaos seed ${SEED} (DEVLOOP_CHAOS_SEED=${SEED} repeats these kill moments)`);
  });

  afterAll(async () => {
    await deleteNamespace(namespace).catch(() => undefined);
    await repo?.cleanup();
  });

  it('converges after every kill and leaves nothing behind', async () => {
    const random = seeded(SEED);
    for (let run = 1; run <= RUNS; run++) {
      // A new content version on some runs, so kills also land in builds and rollouts, not only in status checks.
      if (random() < 0.5) await appendFile(path.join(repo.dir, 'web/public/index.txt'), `run ${run}\n`);
      const before = await treeDigest(repo.dir);
      const killAfterMs = Math.floor(random() * 8000);
      const up = spawnDevloop(repo.dir, developer, ['up', '--json']);
      await new Promise((r) => setTimeout(r, killAfterMs));
      up.child.kill('SIGKILL');
      await up.exited;
      const context = `run ${run} (seed ${SEED}, killed after ${killAfterMs} ms)`;

      const once = await devloop(repo.dir, developer, ['up', '--once']);
      expect(once.code, `${context}: up --once\n${once.stdout}\n${once.stderr}`).toBe(0);
      const status = await devloop(repo.dir, developer, ['status', '--json']);
      expect(JSON.parse(status.stdout).services, context).toMatchObject([{ name: 'web', current: true, ready: 1, desired: 1 }]);
      // Exactly what devloop owns: every labelled object is recorded, and every recorded object exists.
      const labelled = await labelledObjects(namespace, developer);
      expect(labelled, context).toEqual(await recordedObjects(namespace, developer));
      expect(labelled.filter((o) => o.startsWith('ConfigMap/settings-')), context).toHaveLength(40);

      const down = await devloop(repo.dir, developer, ['down']);
      expect(down.code, `${context}: down\n${down.stderr}`).toBe(0);
      await waitFor(`${context}: namespace ${namespace} gone`, async () => {
        try {
          await kube().core.readNamespace({ name: namespace });
          return undefined;
        } catch {
          return true;
        }
      }, { timeoutMs: 120_000 });
      expect(await devloopProcessesIn(repo.dir), context).toEqual([]);
      expect(await devloopTempEntries(), context).toEqual(tempBefore);
      expect(await treeDigest(repo.dir), `${context}: the local tree`).toBe(before);
    }
  });
});
