import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, kube } from '../support/kube.js';
import { askPods, buildCli, devloop, edit, explain, fixtureRepo, servicesWith } from './harness.js';

const MANAGED = 'app.kubernetes.io/managed-by=devloop';

// One fixture repository and one developer namespace, walked through a developer's day in order.
describe('devloop up --once / status / down on the real cluster', () => {
  let repo: { dir: string; cleanup(): Promise<void> };
  const developer = uniqueName('e2e');
  const namespace = `shop-${developer}`;
  const currency = `X${developer.slice(-6).toUpperCase()}`;

  beforeAll(async () => {
    buildCli();
    repo = await fixtureRepo();
  });

  afterAll(async () => {
    await deleteNamespace(namespace).catch(() => undefined);
    await repo?.cleanup();
  });

  it('deploys the three services into the developer namespace', async () => {
    const run = await devloop(repo.dir, developer, ['up', '--once', '--json']);
    expect(run.code, explain(run)).toBe(0);
    expect(servicesWith(run, 'rollout.ready')).toEqual(['orders', 'pricing', 'web']);
    expect(run.events.find((e) => e.type === 'namespace.created')).toMatchObject({ namespace });

    const ns = await kube().core.readNamespace({ name: namespace });
    expect(ns.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('devloop');
    const deployments = await kube().apps.listNamespacedDeployment({ namespace, labelSelector: MANAGED });
    expect(deployments.items.map((d) => d.metadata?.name).sort()).toEqual(['orders', 'pricing', 'web']);
    for (const d of deployments.items) {
      expect(d.metadata?.managedFields?.some((f) => f.manager === 'devloop' && f.operation === 'Apply')).toBe(true);
      expect(d.metadata?.annotations?.['devloop.dev/content-version']).toBeTruthy();
      expect(d.spec?.template.spec?.containers[0]?.image).toMatch(new RegExp(`^127\\.0\\.0\\.1:5000/shop/${d.metadata?.name}:`));
    }
    expect(await askPods(namespace, 'orders')).toEqual(['orders v1']);
    expect(await askPods(namespace, 'pricing')).toEqual(['pricing 12.34 EUR']);
    expect(await askPods(namespace, 'web')).toEqual(['web v1']);
  });

  it('lets web reach orders through the Service devloop applied (cluster DNS and pod-to-pod traffic)', async () => {
    // kube-proxy and cluster DNS pick a new Service up within seconds of it being applied.
    const answer = await waitFor(
      'web to reach orders',
      async () => {
        const answers = await askPods(namespace, 'web', '/orders');
        return answers.length === 1 && answers[0]!.startsWith('web -> ') ? answers : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 1000, describe: async () => (await askPods(namespace, 'web', '/orders')).join('\n') },
    );
    expect(answer).toEqual(['web -> orders v1']);
  });

  it('builds nothing and applies nothing when nothing changed, and status says all is current', async () => {
    const run = await devloop(repo.dir, developer, ['up', '--once', '--json']);
    expect(run.code, explain(run)).toBe(0);
    expect(servicesWith(run, 'service.current')).toEqual(['orders', 'pricing', 'web']);
    expect(servicesWith(run, 'build.started')).toEqual([]);
    expect(servicesWith(run, 'build.skipped')).toEqual([]);
    expect(servicesWith(run, 'deploy.applied')).toEqual([]);

    const status = await devloop(repo.dir, developer, ['status', '--json']);
    expect(status.code, explain(status)).toBe(0);
    const report = JSON.parse(status.stdout) as { services: { name: string; current: boolean; ready: number; desired: number }[] };
    expect(report.services.map((s) => [s.name, s.current, `${s.ready}/${s.desired}`])).toEqual([
      ['orders', true, '1/1'],
      ['web', true, '1/1'],
      ['pricing', true, '1/1'],
    ]);
  });

  it('rebuilds and redeploys exactly the dependents of a changed library', async () => {
    // A currency unique to this run, so its image cannot already exist in the registry from an earlier run.
    await edit(repo.dir, 'libs/money/money.go', (t) => t.replace('"EUR"', `"${currency}"`));
    const status = await devloop(repo.dir, developer, ['status', '--json']);
    const report = JSON.parse(status.stdout) as { services: { name: string; current: boolean }[] };
    expect(report.services.filter((s) => !s.current).map((s) => s.name)).toEqual(['pricing']);

    const run = await devloop(repo.dir, developer, ['up', '--once', '--json']);
    expect(run.code, explain(run)).toBe(0);
    expect(servicesWith(run, 'build.started')).toEqual(['pricing']);
    expect(servicesWith(run, 'deploy.applied')).toEqual(['pricing']);
    expect(servicesWith(run, 'service.current')).toEqual(['orders', 'web']);
    expect(await askPods(namespace, 'pricing')).toEqual([`pricing 12.34 ${currency}`]);
  });

  it('prunes an object the service no longer renders, and only that one', async () => {
    const restore = await edit(repo.dir, 'services/pricing/k8s/deployment.yaml', (t) => t.slice(0, t.indexOf('---\n')));
    try {
      const run = await devloop(repo.dir, developer, ['up', '--once', '--json']);
      expect(run.code, explain(run)).toBe(0);
      expect(run.events.filter((e) => e.type === 'deploy.pruned').map((e) => `${e.service} ${e.object}`)).toEqual(['pricing Service/pricing']);
      const services = await kube().core.listNamespacedService({ namespace, labelSelector: MANAGED });
      expect(services.items.map((s) => s.metadata?.name).sort()).toEqual(['orders', 'web']);
    } finally {
      await restore();
    }
    const back = await devloop(repo.dir, developer, ['up', '--once', '--json']);
    expect(back.code, explain(back)).toBe(0);
    expect(servicesWith(back, 'deploy.applied')).toEqual(['pricing']);
    expect(servicesWith(back, 'build.started')).toEqual([]);
  });

  it('reports a broken Dockerfile step with its last output and keeps the previous version serving', async () => {
    const restore = await edit(repo.dir, 'services/pricing/Dockerfile', (t) =>
      t.replace('WORKDIR /src/services/pricing\n', 'WORKDIR /src/services/pricing\nRUN cp prices.csv /prices.csv\n'),
    );
    try {
      const run = await devloop(repo.dir, developer, ['up', '--once']);
      expect(run.code, explain(run)).toBe(1);
      expect(run.stdout).toMatch(
        // BuildKit names the stage and step ("[build 6/7]"); the classic builder, where it is the fallback, "Step 6/7 :".
        /pricing build failed at (\[\S+ \d+\/\d+\]|Step \d+\/\d+ :) RUN cp prices\.csv \/prices\.csv \(services\/pricing\/Dockerfile:7\): (executor failed running .*: exit code: 1|The command .* returned a non-zero code: 1)/,
      );
      expect(run.stdout).toMatch(/pricing \| cp: cannot stat 'prices\.csv'/);
      expect(await askPods(namespace, 'pricing')).toEqual([`pricing 12.34 ${currency}`]);
    } finally {
      await restore();
    }
  });

  it('diagnoses a crash-looping container with its last log lines and keeps the previous version serving', async () => {
    const restore = await edit(repo.dir, 'services/web/server.js', (t) =>
      t.replace("const message = 'web v1';", "const message = 'web v2';\nconsole.error('fatal: PAYMENT_URL is not set');\nprocess.exit(3);"),
    );
    try {
      const run = await devloop(repo.dir, developer, ['up', '--once', '--timeout', '150']);
      expect(run.code, explain(run)).toBe(1);
      const line = run.stdout.split('\n').find((l) => / web CrashLoopBackOff: /.test(l));
      expect(line, explain(run)).toMatch(/container web keeps exiting \(exit code 3, Error\).*last log: fatal: PAYMENT_URL is not set/);
      expect(await askPods(namespace, 'web')).toEqual(['web v1']);
    } finally {
      await restore();
    }
  });

  it('diagnoses an image that cannot be pulled and keeps the previous version serving', async () => {
    const restore = await edit(repo.dir, 'services/orders/k8s/deployment.yaml', (t) =>
      t.replace('      containers:\n', '      containers:\n        - name: audit\n          image: 127.0.0.1:5000/shop/audit:missing\n'),
    );
    try {
      const run = await devloop(repo.dir, developer, ['up', '--once', '--timeout', '150']);
      expect(run.code, explain(run)).toBe(1);
      expect(run.stdout).toMatch(/ orders ImagePullBackOff: image 127\.0\.0\.1:5000\/shop\/audit:missing cannot be pulled \(ImagePullBackOff: not found\)/);
      expect(await askPods(namespace, 'orders')).toEqual(['orders v1']);
    } finally {
      await restore();
    }
  });

  it('gives up after the timeout with the scheduler\'s message and the failing readiness probe, one line each', async () => {
    const restoreOrders = await edit(repo.dir, 'services/orders/k8s/deployment.yaml', (t) =>
      t.replace('          ports: [{containerPort: 8080}]\n', '          ports: [{containerPort: 8080}]\n          resources: {requests: {cpu: "64"}}\n'),
    );
    const restorePricing = await edit(repo.dir, 'services/pricing/k8s/deployment.yaml', (t) =>
      t.replace('httpGet: {path: /healthz, port: 8080}', 'httpGet: {path: /healthz, port: 9999}'),
    );
    try {
      const run = await devloop(repo.dir, developer, ['up', '--once', '--timeout', '15']);
      expect(run.code, explain(run)).toBe(1);
      expect(run.stdout).toMatch(/ orders Pending: pod cannot be scheduled: 0\/1 nodes are available: 1 Insufficient cpu\..* \(gave up after 15 s\)/);
      expect(run.stdout).toMatch(/ pricing Unready: readiness probe failing: Readiness probe failed: Get "http:\/\/[\d.]+:9999\/healthz": .*connection refused \(gave up after 15 s\)/);
      expect(await askPods(namespace, 'orders')).toEqual(['orders v1']);
      expect(await askPods(namespace, 'pricing')).toEqual([`pricing 12.34 ${currency}`]);
    } finally {
      await restoreOrders();
      await restorePricing();
    }
  });

  it('refuses to take over an object of the same name that is not devloop\'s, and changes nothing', async () => {
    const theirs = await kube().core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'shared-settings' }, data: { owner: 'someone else' } } });
    const restore = await edit(repo.dir, 'services/orders/k8s/service.yaml', (t) => `${t}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared-settings\ndata:\n  owner: orders\n`);
    try {
      const run = await devloop(repo.dir, developer, ['up', '--once']);
      expect(run.code, explain(run)).toBe(2);
      expect(run.stdout).toMatch(/ orders deploy failed: ConfigMap\/shared-settings already exists and is not orders's \(not labelled by devloop\); nothing was applied/);
      expect(run.stderr).toMatch(/ConfigMap\/shared-settings already exists and is not orders's/);
      const after = await kube().core.readNamespacedConfigMap({ namespace, name: 'shared-settings' });
      expect(after.data).toEqual({ owner: 'someone else' });
      expect(after.metadata?.resourceVersion).toBe(theirs.metadata?.resourceVersion);
    } finally {
      await restore();
      await kube().core.deleteNamespacedConfigMap({ namespace, name: 'shared-settings' });
    }
  });

  it('refuses a ConfigMap of the user\'s that has the name of devloop\'s own record, and leaves it as it was', async () => {
    const record = 'devloop-orders';
    const ours = await kube().core.readNamespacedConfigMap({ namespace, name: record });
    await kube().core.deleteNamespacedConfigMap({ namespace, name: record });
    const theirs = await kube().core.createNamespacedConfigMap({ namespace, body: { metadata: { name: record }, data: { mine: 'yes' } } });
    try {
      const run = await devloop(repo.dir, developer, ['up', '--once']);
      expect(run.code, explain(run)).toBe(2);
      expect(run.stderr).toMatch(/ConfigMap\/devloop-orders already exists and is not orders's \(not labelled by devloop\); nothing was applied/);
      const after = await kube().core.readNamespacedConfigMap({ namespace, name: record });
      expect(after.data).toEqual({ mine: 'yes' });
      expect(after.metadata?.labels ?? {}).toEqual({});
      expect(after.metadata?.resourceVersion).toBe(theirs.metadata?.resourceVersion);
      // `down` leaves it too: it is not devloop's.
    } finally {
      await kube().core.deleteNamespacedConfigMap({ namespace, name: record });
      await kube().core.createNamespacedConfigMap({ namespace, body: { metadata: { name: record, labels: ours.metadata?.labels, annotations: ours.metadata?.annotations }, data: ours.data } });
    }
  });

  it('down removes every devloop object and leaves an unrelated Deployment alone', async () => {
    const unrelated = await kube().apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'unrelated', labels: { app: 'unrelated' } },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: 'unrelated' } },
          template: { metadata: { labels: { app: 'unrelated' } }, spec: { containers: [{ name: 'c', image: '127.0.0.1:5000/pause:3.10-devloop' }] } },
        },
      },
    });
    const run = await devloop(repo.dir, developer, ['down']);
    expect(run.code, explain(run)).toBe(0);
    expect(run.stdout).toMatch(/kept Namespace\/.*: it also holds Deployment\/unrelated/);

    for (const list of [
      kube().apps.listNamespacedDeployment({ namespace, labelSelector: MANAGED }),
      kube().core.listNamespacedService({ namespace, labelSelector: MANAGED }),
      kube().core.listNamespacedConfigMap({ namespace, labelSelector: MANAGED }),
    ]) {
      expect((await list).items.map((o) => o.metadata?.name)).toEqual([]);
    }
    const after = await kube().apps.readNamespacedDeployment({ name: 'unrelated', namespace });
    expect(after.metadata?.uid).toBe(unrelated.metadata?.uid);
    // Its spec and labels are as created, and devloop never wrote to it (the controller updates its status).
    expect(after.metadata?.generation).toBe(unrelated.metadata?.generation);
    expect(after.metadata?.labels).toEqual(unrelated.metadata?.labels);
    expect(after.metadata?.managedFields?.map((f) => f.manager)).not.toContain('devloop');

    const again = await devloop(repo.dir, developer, ['down']);
    expect(again.code, explain(again)).toBe(0);
    expect(again.stdout).not.toMatch(/deleted /);
  });
});
