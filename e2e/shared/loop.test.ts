import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, execInPod, kube } from '../support/kube.js';
import { expectNoIstioErrors } from '../support/mesh.js';
import { freePort, LoopProcess, syncFixtureRepo } from '../sync/session.js';
import { buildCli, devloop, explain } from '../up/harness.js';

// `devloop up` (the loop) in a shared cluster: a service the baseline serves is forked by the first edit (there is
// nothing of the developer's to sync into), later edits sync into the fork, and the running loop keeps the lease
// alive; once the loop is gone and the lease has ended, another developer's run removes the fork.
describe('shared cluster: the loop forks on the first edit, syncs into the fork, and renews its lease', () => {
  const baseline = uniqueName('shared-loop');
  let repo: Awaited<ReturnType<typeof syncFixtureRepo>>;
  let port: number;
  const viaForward = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
    return res?.ok ? res.text() : undefined;
  };
  let loop: LoopProcess | undefined;
  /** Bob works in a clone of main: he changed nothing. */
  let bobDir: string;

  const forkPods = async () =>
    (await kube().core.listNamespacedPod({ namespace: baseline, labelSelector: 'devloop.dev/developer=alice' })).items.filter(
      (p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
  const inFork = async (script: string) => {
    const pod = await waitFor('a Ready pod of alice’s fork', async () => (await forkPods())[0]?.metadata?.name);
    return (await execInPod(baseline, pod, 'web', ['sh', '-c', script])).stdout;
  };

  beforeAll(async () => {
    buildCli();
    port = await freePort();
    repo = await syncFixtureRepo(port);
    const config = path.join(repo.dir, 'devloop.yaml');
    // A short lease: the loop renews it every quarter of it.
    await writeFile(config, `${await readFile(config, 'utf8')}shared:\n  baseline: ${baseline}\n  lease: 8s\n`);
    // A Service for web: the loop's port-forward goes through the keyed proxy to the baseline, then to the fork.
    await writeFile(
      path.join(repo.dir, 'web/k8s/service.yaml'),
      'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 8080, targetPort: 8080}]\n',
    );
    repo.git('add', '-A');
    repo.git('commit', '-qm', 'shared');
    bobDir = await mkdtemp(path.join(os.tmpdir(), 'devloop-shared-bob-'));
    execFileSync('git', ['clone', '-q', repo.dir, '.'], { cwd: bobDir, stdio: 'pipe' });
    const base = await devloop(repo.dir, 'ci', ['up', '--baseline', '--once']);
    expect(base.code, explain(base)).toBe(0);
  }, 600_000);

  afterAll(async () => {
    loop?.kill();
    await deleteNamespace(baseline).catch(() => undefined);
    await repo?.cleanup();
    if (bobDir) await rm(bobDir, { recursive: true, force: true });
  });

  it('starts with nothing of its own: the baseline serves web', async () => {
    loop = new LoopProcess(repo.dir, 'alice');
    await loop.waitFor('the first pass', (e) => e.type === 'run.finished' && e.ok === true, 0, 240_000);
    expect(loop.events.find((e) => e.type === 'service.current')).toMatchObject({ service: 'web' });
    expect(await forkPods()).toEqual([]);
    // The port-forward leads to the baseline while alice has no fork.
    expect(await loop.waitFor('the keyed forward', (e) => e.type === 'forward.ready')).toMatchObject({ service: 'web', where: expect.stringMatching(/\(baseline; keyed devloop-route=alice\)$/) });
    expect(await waitFor('the baseline through the forward', viaForward)).toBe('hello v1\n');
  }, 300_000);

  it('forks web on the first edit, then syncs the next edit into the fork', async () => {
    let from = loop!.mark();
    await writeFile(path.join(repo.dir, 'web/public/index.txt'), 'alice v1\n');
    const batch = await loop!.waitFor('the decision', (e) => e.type === 'watch.batch', from);
    expect(batch.decisions).toEqual([{ service: 'web', action: 'rebuild', files: 1, reason: 'sync is not possible (nothing of yours runs it)' }]);
    expect(await loop!.waitFor('the fork', (e) => e.type === 'service.forked', from, 240_000)).toMatchObject({ service: 'web', namespace: baseline });
    await loop!.waitFor('the fork ready', (e) => e.type === 'pass.finished' && e.ok === true, from, 240_000);
    expect(await inFork('cat /app/public/index.txt')).toBe('alice v1\n');
    // The same local port now leads to the fork.
    await loop!.waitFor('the forward to the fork', (e) => e.type === 'forward.ready' && /your fork/.test(String(e.where)), from, 60_000);
    expect(await waitFor('the fork through the forward', async () => ((await viaForward()) === 'alice v1\n' ? true : undefined))).toBe(true);
    expect(loop!.events.slice(from).find((e) => e.type === 'route.added')).toMatchObject({ service: 'web', host: 'web', to: 'web-alice' });
    await expectNoIstioErrors([baseline]);

    await loop!.waitFor('the sync stream into the fork', (e) => e.type === 'sync.connected', from, 60_000);
    from = loop!.mark();
    await writeFile(path.join(repo.dir, 'web/public/index.txt'), 'alice v2\n');
    expect((await loop!.waitFor('the decision', (e) => e.type === 'watch.batch', from)).decisions).toMatchObject([{ service: 'web', action: 'sync' }]);
    await waitFor('the edit in the fork', async () => ((await inFork('cat /app/public/index.txt')) === 'alice v2\n' ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
    expect(loop!.events.slice(from).some((e) => e.type === 'build.started')).toBe(false);
  }, 600_000);

  it("keeps the lease alive while it runs: another developer's run after the lease time removes nothing", async () => {
    await new Promise((r) => setTimeout(r, 10_000));
    const bob = await devloop(bobDir, 'bob', ['up', '--once', '--json']);
    expect(bob.code, explain(bob)).toBe(0);
    expect(bob.events.filter((e) => e.type === 'lease.expired')).toEqual([]);
    expect((await forkPods()).length).toBe(1);
  }, 300_000);

  it('once the loop is gone and the lease has ended, the next run of another developer removes the fork', async () => {
    loop!.kill(); // as a crash would: nothing is cleaned up on the way out
    await loop!.exited;
    await new Promise((r) => setTimeout(r, 10_000));
    const bob = await devloop(bobDir, 'bob', ['up', '--once', '--json']);
    expect(bob.code, explain(bob)).toBe(0);
    expect(bob.events.find((e) => e.type === 'lease.expired')).toMatchObject({ developer: 'alice', namespace: baseline });
    const left = await kube().apps.listNamespacedDeployment({ namespace: baseline, labelSelector: 'devloop.dev/developer=alice' });
    expect(left.items.map((d) => d.metadata?.name)).toEqual([]);
  }, 300_000);
});
