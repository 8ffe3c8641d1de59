import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kindKubeconfig, repoRoot, uniqueName } from '../support/env.js';
import { deleteNamespace, kindKube } from '../support/kube.js';
import { buildCli, devloop, explain, servicesWith } from '../up/harness.js';

// Services deployed by one Helm umbrella chart, no skaffold.yaml: init finds the chart, takes the image repositories
// its values name, and up deploys each subchart's objects as its service's.
describe('devloop init and up with a Helm umbrella chart on the kind cluster', () => {
  let parent: string;
  let dir: string;
  const developer = uniqueName('helm');
  const namespace = `dl-init-${developer}`;
  let env: Record<string, string>;

  beforeAll(async () => {
    env = { KUBECONFIG: kindKubeconfig(), DEVLOOP_REGISTRY: '' };
    buildCli();
    parent = await mkdtemp(path.join(os.tmpdir(), 'dl-init-'));
    dir = path.join(parent, 'dl-init');
    await mkdir(dir);
    await cp(path.join(repoRoot, 'e2e/fixtures/umbrella'), dir, { recursive: true });
    const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' });
    git('init', '-q', '-b', 'main');
    git('add', '-A');
    git('-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', 'commit', '-qm', 'umbrella');
  });

  afterAll(async () => {
    await deleteNamespace(namespace, undefined, kindKube()).catch(() => undefined);
    if (parent) await rm(parent, { recursive: true, force: true });
  });

  it('deploys each subchart as its service, the umbrella’s own objects with the first service', async () => {
    const init = await devloop(dir, developer, ['init'], 60_000, env);
    expect(init.code, explain(init)).toBe(0);
    const config = await readFile(path.join(dir, 'devloop.yaml'), 'utf8');
    expect(config).toContain('manifests: deploy/chart\n');
    expect(config).toContain('  - name: worker\n    path: services/worker/app\n    image: acme/worker\n');

    const run = await devloop(dir, developer, ['up', '--once', '--json'], 290_000, env);
    expect(run.code, explain(run)).toBe(0);
    expect(servicesWith(run, 'rollout.ready')).toEqual(['api', 'worker']);
    const applied = Object.fromEntries(run.events.filter((e) => e.type === 'deploy.applied').map((e) => [e.service, [...(e.objects as string[])].sort()]));
    expect(applied).toEqual({ api: ['Deployment/api', 'Ingress/dl-init-web', 'Service/api'], worker: ['Deployment/worker'] });
    const live = (await kindKube().apps.listNamespacedDeployment({ namespace })).items;
    expect(live.map((d) => [d.metadata!.name, d.metadata!.labels!['devloop.dev/service'], d.spec!.template.spec!.containers[0]!.image!.replace(/:[0-9a-f]{16}$/, ':<version>')]).sort()).toEqual([
      ['api', 'api', 'acme/api:<version>'],
      ['worker', 'worker', 'acme/worker:<version>'],
    ]);

    const down = await devloop(dir, developer, ['down', '--images', '--json'], 180_000, env);
    expect(down.code, explain(down)).toBe(0);
    expect(down.events.filter((e) => e.type === 'down.deleted').map((e) => e.object)).toContain('Ingress/dl-init-web');
  });
});
