import { execFileSync } from 'node:child_process';
import { mkdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKube } from '../../core/deploy/kube.js';
import { kubeExec } from '../../core/sync/channel.js';
import { StreamTransport } from '../../core/sync/transport.js';
import { uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, execInPod, kube } from '../support/kube.js';
import { buildCli } from '../up/harness.js';
import { freePort, LoopProcess, syncFixtureRepo, treeDigest } from './session.js';

const MANY = 500;

// One `devloop up` session on the real cluster, walked through in order: sync, delete, rebuild, a branch switch,
// escape attempts, a killed pod, the port-forward, and a local tree that the session never changed.
describe('devloop up: the inner loop on the real cluster', () => {
  const developer = uniqueName('e2e-sync');
  const namespace = `syncdemo-${developer}`;
  let repo: Awaited<ReturnType<typeof syncFixtureRepo>>;
  let port: number;
  let loop: LoopProcess | undefined;
  let digestBefore: string;

  const readyPod = () =>
    waitFor(`a Ready web pod in ${namespace}`, async () => {
      const pods = (await kube().core.listNamespacedPod({ namespace, labelSelector: 'app=web' })).items;
      return pods.find((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))?.metadata?.name;
    });
  const inPod = async (script: string) => {
    const pod = await readyPod();
    const r = await execInPod(namespace, pod, 'web', ['sh', '-c', script]);
    return r.stdout;
  };
  /** Polls until the pod's answer to `script` equals `want` (sync is asynchronous by nature). */
  const eventually = (what: string, script: string, want: string) =>
    waitFor(what, async () => ((await inPod(script)) === want ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
  const local = (rel: string) => path.join(repo.dir, 'web/public', rel);
  const get = async (urlPath: string) => (await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(5000) })).text();

  beforeAll(async () => {
    buildCli();
    port = await freePort();
    repo = await syncFixtureRepo(port);
    digestBefore = await treeDigest(repo.dir);
    loop = new LoopProcess(repo.dir, developer);
  });

  afterAll(async () => {
    loop?.kill();
    await deleteNamespace(namespace).catch(() => undefined);
    await repo?.cleanup();
  });

  it('deploys, connects the sync stream and runs the initial sync', async () => {
    await loop!.waitFor('the first pass', (e) => e.type === 'run.finished' && e.ok === true);
    await loop!.waitFor('watching', (e) => e.type === 'watch.started');
    expect(await loop!.waitFor('the sync stream', (e) => e.type === 'sync.connected')).toMatchObject({ service: 'web', mode: 'stream' });
    await loop!.waitFor('the initial sync', (e) => e.type === 'sync.finished' && e.initial === true);
    expect(await inPod('cat /app/public/index.txt')).toBe('hello v1\n');
    // Starting a session wrote nothing locally.
    expect(await treeDigest(repo.dir)).toBe(digestBefore);
  });

  it('carries an edit of a synced file into the pod without a rebuild', async () => {
    const from = loop!.mark();
    await writeFile(local('index.txt'), 'hello v2\n');
    await eventually('the edit in the pod', 'cat /app/public/index.txt', 'hello v2\n');
    const batch = await loop!.waitFor('the decision', (e) => e.type === 'watch.batch', from);
    expect(batch.decisions).toEqual([{ service: 'web', action: 'sync', files: 1, reason: 'web/public/index.txt matches a sync rule' }]);
    expect(loop!.events.slice(from).some((e) => e.type === 'build.started')).toBe(false);
    expect(await get('/')).toBe('hello v2\n');
  });

  it('creates nested files and applies deletions', async () => {
    await mkdir(local('a/b'), { recursive: true });
    await writeFile(local('a/b/c.txt'), 'deep\n');
    await eventually('the new file in the pod', 'cat /app/public/a/b/c.txt', 'deep\n');
    await unlink(local('a/b/c.txt'));
    await eventually('the deletion in the pod', 'test -e /app/public/a/b/c.txt && echo present || echo gone', 'gone\n');
  });

  it('rebuilds and replaces the pod when a file no sync rule covers changes', async () => {
    const podBefore = await readyPod();
    const from = loop!.mark();
    const server = path.join(repo.dir, 'web/server.js');
    const { readFile } = await import('node:fs/promises');
    await writeFile(server, (await readFile(server, 'utf8')).replace("'ok\\n'", "'ok v2\\n'"));
    const batch = await loop!.waitFor('the decision', (e) => e.type === 'watch.batch', from);
    expect(batch.decisions).toEqual([{ service: 'web', action: 'rebuild', files: 1, reason: 'web/server.js is not covered by a sync rule' }]);
    expect(await loop!.waitFor('the pass', (e) => e.type === 'pass.finished', from)).toMatchObject({ ok: true });
    // Built now, or found already built (same content, an earlier run): either way the new version is deployed.
    expect(loop!.events.slice(from).some((e) => (e.type === 'build.finished' || e.type === 'build.skipped') && e.service === 'web')).toBe(true);
    expect(loop!.events.slice(from).some((e) => e.type === 'deploy.applied' && e.service === 'web')).toBe(true);
    const podAfter = await waitFor('a new pod', async () => {
      const p = await readyPod();
      return p !== podBefore ? p : undefined;
    });
    expect(podAfter).not.toBe(podBefore);
    expect((await execInPod(namespace, podAfter, 'web', ['cat', '/app/server.js'])).stdout).toContain("'ok v2\\n'");
    // The new pod got the earlier synced edit too (it is in the new image, and the initial sync ran).
    await eventually('the synced file in the new pod', 'cat /app/public/index.txt', 'hello v2\n');
  });

  it(`carries ${MANY} files changed at once by a branch switch, and their removal by switching back`, async () => {
    // A branch that differs from the current commit by 500 new files under a synced directory, made in a
    // separate worktree so the watched tree only changes with the checkout itself.
    repo.git('add', '-A');
    repo.git('commit', '-qm', 'edits during the session');
    const worktree = `${repo.dir}-many`;
    repo.git('worktree', 'add', '-q', '-b', 'many', worktree, 'HEAD');
    await mkdir(path.join(worktree, 'web/public/many'), { recursive: true });
    for (let i = 0; i < MANY; i++) await writeFile(path.join(worktree, `web/public/many/f${i}.txt`), `file ${i} on the many branch\n`);
    execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', 'add', '-A'], { cwd: worktree });
    execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', 'commit', '-qm', 'many files'], { cwd: worktree });
    repo.git('worktree', 'remove', '--force', worktree);
    const from = loop!.mark();
    repo.git('checkout', '-q', 'many');
    await eventually(`${MANY} files in the pod`, `ls /app/public/many | wc -l`, `${MANY}\n`);
    await eventually('their content', `cat /app/public/many/f0.txt /app/public/many/f${MANY - 1}.txt`, `file 0 on the many branch\nfile ${MANY - 1} on the many branch\n`);
    const decisions = loop!.events.slice(from).filter((e) => e.type === 'watch.batch');
    expect(decisions.flatMap((e) => e.decisions as { action: string }[]).every((d) => d.action === 'sync')).toBe(true);
    repo.git('checkout', '-q', 'main');
    await eventually('the files gone from the pod', 'ls /app/public/many 2>/dev/null | wc -l', '0\n');
  });

  it('refuses outward symlinks and writes nothing outside the target directory', async () => {
    const from = loop!.mark();
    await symlink('/etc/passwd', local('leak'));
    await symlink('../../../../../../etc', local('etc-dir'));
    const refused = await loop!.waitFor('a refusal', (e) => e.type === 'sync.refused' && e.path === 'web/public/leak', from);
    expect(refused.reason).toMatch(/points outside/);
    await loop!.waitFor('a refusal', (e) => e.type === 'sync.refused' && e.path === 'web/public/etc-dir', from);
    expect(await inPod('ls -A /app/public')).not.toMatch(/leak|etc-dir/);

    // A name built to climb out, sent straight to the receiver in the pod: refused there too, nothing written.
    const kubeClients = await loadKube();
    const pod = await readyPod();
    const transport = await StreamTransport.open(kubeExec(kubeClients!, namespace, pod, 'web'), ['/app/public']);
    try {
      const r = await transport.apply([
        { kind: 'write', root: 0, rel: '../escaped.txt', mode: 0o644, data: Buffer.from('x') },
        { kind: 'write', root: 0, rel: '/tmp/escaped.txt', mode: 0o644, data: Buffer.from('x') },
        { kind: 'link', root: 0, rel: 'up', target: '../../etc/passwd' },
      ]);
      expect(r.errors).toHaveLength(3);
    } finally {
      await transport.close();
    }
    expect(await inPod('ls /app /tmp | grep -c escaped; test -e /app/public/up && echo present || echo absent')).toBe('0\nabsent\n');
    await rm(local('leak'));
    await rm(local('etc-dir'));
  });

  it('follows a killed pod: sync resumes on the new pod and the port-forward answers again', async () => {
    expect(await get('/')).toBe('hello v2\n');
    const old = await readyPod();
    // index.txt is in the image the pods run; deleted locally now, the replacement pod starts with it again.
    await unlink(local('index.txt'));
    await eventually('the deletion in the pod', 'test -e /app/public/index.txt && echo present || echo gone', 'gone\n');
    const from = loop!.mark();
    await kube().core.deleteNamespacedPod({ name: old, namespace, gracePeriodSeconds: 0 });
    await loop!.waitFor('a connection to the new pod', (e) => e.type === 'sync.connected' && !String(e.where).includes(old), from);
    await loop!.waitFor('the initial sync of the new pod', (e) => e.type === 'sync.finished' && e.initial === true && !String(e.where).includes(old), from);
    // The initial sync brought the new pod in line: the image's index.txt is gone there too.
    expect(await inPod('test -e /app/public/index.txt && echo present || echo gone')).toBe('gone\n');
    await writeFile(local('after-kill.txt'), 'resumed\n');
    await eventually('the file in the new pod', 'cat /app/public/after-kill.txt', 'resumed\n');
    await loop!.waitFor('the forward following the new pod', (e) => e.type === 'forward.ready' && !String(e.where).includes(old), from);
    const answer = await waitFor('an answer through the port-forward', async () => {
      try {
        return await get('/after-kill.txt');
      } catch {
        return undefined;
      }
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect(answer).toBe('resumed\n');
  });

  it('streams the containers’ logs with the service name', async () => {
    const line = await loop!.waitFor('a log line', (e) => e.type === 'log.line' && e.service === 'web');
    expect(line.line).toMatch(/web listening on :8080/);
  });

  it('never changes the local tree: container-side changes stay there, and Ctrl-C leaves the deployment running', async () => {
    const before = await treeDigest(repo.dir);
    await inPod('echo from-pod > /app/public/pod-only.txt; echo changed > /app/public/index.txt; rm /app/public/after-kill.txt');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await loop!.interrupt()).toBe(0);
    loop = undefined;
    expect(await treeDigest(repo.dir)).toBe(before);
    const d = await kube().apps.readNamespacedDeployment({ name: 'web', namespace });
    expect(d.status?.readyReplicas).toBe(1);
  });
});
