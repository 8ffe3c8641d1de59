import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/env.js';
import { deleteNamespace, kube } from '../support/kube.js';
import { buildCli, devloop, explain } from '../up/harness.js';
import { freePort, syncFixtureRepo, treeDigest } from '../sync/session.js';
import { spawnDevloop } from './harness.js';

// The smaller findings, each as a user would meet it: one command, its exit code and message, and what it changed.
describe('what a hostile afternoon found, kept fixed', () => {
  const developer = uniqueName('e2e-chaos-find');
  const namespace = `syncdemo-${developer}`;
  let repo: Awaited<ReturnType<typeof syncFixtureRepo>>;

  beforeAll(async () => {
    buildCli();
    repo = await syncFixtureRepo(await freePort());
  });

  afterAll(async () => {
    await deleteNamespace(namespace).catch(() => undefined);
    await repo?.cleanup();
  });

  const namespaceExists = async () =>
    kube()
      .core.readNamespace({ name: namespace })
      .then(() => true)
      .catch(() => false);

  it('never adopts a ConfigMap of the user\'s that has the name of its own record, and down leaves it', async () => {
    const other = `${developer}r`;
    const ns = `syncdemo-${other}`;
    await kube().core.createNamespace({ body: { metadata: { name: ns } } });
    try {
      const mine = await kube().core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'devloop-web' }, data: { mine: 'yes' } } });
      const up = await devloop(repo.dir, other, ['up', '--once']);
      expect(up.code, explain(up)).toBe(2);
      expect(up.stderr).toContain("ConfigMap/devloop-web already exists and is not web's (not labelled by devloop); nothing was applied");
      const down = await devloop(repo.dir, other, ['down']);
      expect(down.code, explain(down)).toBe(0);
      const after = await kube().core.readNamespacedConfigMap({ namespace: ns, name: 'devloop-web' });
      expect(after.metadata?.resourceVersion).toBe(mine.metadata?.resourceVersion);
      expect(after.data).toEqual({ mine: 'yes' });
      expect((await kube().apps.listNamespacedDeployment({ namespace: ns })).items).toEqual([]);
    } finally {
      await deleteNamespace(ns);
    }
  });

  it('refuses a KUBECONFIG that names a missing file (exit 2), and starts nothing', async () => {
    const run = await devloop(repo.dir, developer, ['up', '--once'], 60_000);
    expect(run.code, explain(run)).toBe(0); // the real cluster, to compare with
    const { execFile } = await import('node:child_process');
    const missing = path.join(repo.dir, 'no-such-kubeconfig');
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [path.join(import.meta.dirname, '../../bin/devloop.js'), 'up', '--once'], { cwd: repo.dir, env: { ...process.env, KUBECONFIG: missing, DEVLOOP_DEVELOPER: `${developer}x` } }, (err, _o, stderr) =>
        resolve({ code: (err as { code?: number } | null)?.code ?? 0, stderr }),
      ),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`KUBECONFIG names ${missing}, and no such file exists`);
    expect(await kube().core.readNamespace({ name: `syncdemo-${developer}x` }).catch(() => 'absent')).toBe('absent');
  });

  it('says a Dockerfile it cannot parse is the user\'s to fix, where, and keeps the deployment', async () => {
    const file = path.join(repo.dir, 'web/Dockerfile');
    const before = await readFile(file, 'utf8');
    await writeFile(file, before.replace('WORKDIR /app', 'WORKDRI /app'));
    try {
      const run = await devloop(repo.dir, developer, ['up', '--once']);
      expect(run.code, explain(run)).toBe(1);
      expect(run.stdout).toMatch(/ web build failed at web\/Dockerfile:2: .*unknown instruction: WORKDRI/i);
      expect(run.stdout + run.stderr).not.toMatch(/internal error/);
    } finally {
      await writeFile(file, before);
    }
  });

  it('calls a service outdated after a manifest edit, as up does', async () => {
    const file = path.join(repo.dir, 'web/k8s/deployment.yaml');
    const before = await readFile(file, 'utf8');
    await writeFile(file, before.replace('terminationGracePeriodSeconds: 1', 'terminationGracePeriodSeconds: 2'));
    try {
      const status = await devloop(repo.dir, developer, ['status', '--json']);
      expect(JSON.parse(status.stdout).services[0]).toMatchObject({ name: 'web', current: false });
    } finally {
      await writeFile(file, before);
    }
    const status = await devloop(repo.dir, developer, ['status', '--json']);
    expect(JSON.parse(status.stdout).services[0]).toMatchObject({ name: 'web', current: true });
  });

  it('refuses a second up of the same developer and project, naming who holds it', async () => {
    const first = spawnDevloop(repo.dir, developer, ['up', '--json']);
    try {
      const deadline = Date.now() + 60_000;
      while (!first.output().includes('"type":"watch.started"')) {
        if (Date.now() > deadline) throw new Error(`the first up did not start watching:\n${first.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const second = await devloop(repo.dir, developer, ['up', '--once']);
      expect(second.code, explain(second)).toBe(2);
      expect(second.stderr).toContain(`another devloop up (pid ${first.child.pid}`);
      expect(second.stdout).not.toMatch(/building|applied/);
    } finally {
      first.child.kill('SIGINT');
      await first.exited;
    }
  });

  it('prints a short error for a 10 MB binary devloop.yaml', async () => {
    const digest = await treeDigest(repo.dir);
    const other = await syncFixtureRepo(await freePort());
    try {
      const garbage = Buffer.alloc(10 * 1024 * 1024);
      for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919) % 256;
      await writeFile(path.join(other.dir, 'devloop.yaml'), garbage);
      const run = await devloop(other.dir, developer, ['up', '--once']);
      expect(run.code).toBe(2);
      expect(run.stderr.length).toBeLessThan(2000);
      expect(run.stderr).toMatch(/devloop\.yaml is not a text file/);
    } finally {
      await other.cleanup();
    }
    expect(await treeDigest(repo.dir)).toBe(digest);
  });

  it('checks the Docker engine before it creates anything in the cluster', async () => {
    const fresh = `${developer}d`;
    const { execFile } = await import('node:child_process');
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [path.join(import.meta.dirname, '../../bin/devloop.js'), 'up', '--once'],
        { cwd: repo.dir, env: { ...process.env, DOCKER_HOST: 'unix:///nonexistent/docker.sock', DEVLOOP_DEVELOPER: fresh } },
        (err, _o, stderr) => resolve({ code: (err as { code?: number } | null)?.code ?? 0, stderr }),
      ),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot reach the Docker engine/);
    expect(await kube().core.readNamespace({ name: `syncdemo-${fresh}` }).catch(() => 'absent')).toBe('absent');
    expect(await namespaceExists()).toBe(true);
  });

  it('says a cluster-scoped object is shared by every developer when two collide on it', async () => {
    const file = path.join(repo.dir, 'web/k8s/deployment.yaml');
    const before = await readFile(file, 'utf8');
    const name = `chaos-${developer}`;
    await kube().objects.create({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules: [] });
    await writeFile(file, `${before}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: ${name}\nrules: []\n`);
    try {
      const run = await devloop(repo.dir, developer, ['up', '--once']);
      expect(run.code, explain(run)).toBe(2);
      expect(run.stderr).toContain(`ClusterRole/${name} is cluster-scoped, so one name is shared by every namespace and developer`);
    } finally {
      await writeFile(file, before);
      await kube().objects.delete({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name } });
    }
  });
});
