import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace } from '../support/kube.js';
import { buildCli, devloop, explain } from '../up/harness.js';
import { freePort, syncFixtureRepo } from '../sync/session.js';

const STATE = process.env.DEVLOOP_INFRA_DIR ?? '/var/lib/devloop-infra';

async function registryUp(): Promise<boolean> {
  return fetch('http://127.0.0.1:5000/v2/', { signal: AbortSignal.timeout(1000) }).then(
    (r) => r.ok,
    () => false,
  );
}

// The registry goes away in the middle of a developer's day: delivery fails with a message that names it, nothing is
// applied, what ran keeps running; once it is back, the next up delivers and deploys.
describe('a registry outage', () => {
  const developer = uniqueName('e2e-chaos-reg');
  let repo: Awaited<ReturnType<typeof syncFixtureRepo>>;

  beforeAll(async () => {
    buildCli();
    repo = await syncFixtureRepo(await freePort());
  });

  afterAll(async () => {
    // Whatever happened, the registry is brought back for the rest of the suite.
    if (!(await registryUp())) execFileSync('bash', [path.join(repoRoot, 'e2e/infra/infra.sh'), 'up'], { stdio: 'ignore' });
    await deleteNamespace(`syncdemo-${developer}`).catch(() => undefined);
    await repo?.cleanup();
  });

  it('fails delivery clearly, changes nothing, and recovers when the registry is back', async () => {
    const first = await devloop(repo.dir, developer, ['up', '--once', '--json']);
    expect(first.code, explain(first)).toBe(0);
    const deployed = first.events.find((e) => e.type === 'plan.computed') as unknown as { services: { version: string }[] };

    process.kill(Number(readFileSync(path.join(STATE, 'run/registry.pid'), 'utf8').trim()), 'SIGKILL');
    await waitFor('the registry to be down', async () => ((await registryUp()) ? undefined : true));
    await appendFile(path.join(repo.dir, 'web/public/index.txt'), 'during the outage\n');
    const during = await devloop(repo.dir, developer, ['up', '--once', '--json']);
    expect(during.code, explain(during)).toBe(1);
    const failed = during.events.find((e) => e.type === 'deliver.failed');
    expect(failed?.message, explain(during)).toMatch(/127\.0\.0\.1:5000/);
    expect(during.events.some((e) => e.type === 'deploy.applied')).toBe(false);
    const status = JSON.parse((await devloop(repo.dir, developer, ['status', '--json'])).stdout);
    expect(status.services[0]).toMatchObject({ deployedVersion: deployed.services[0]!.version, ready: 1 });

    execFileSync('bash', [path.join(repoRoot, 'e2e/infra/infra.sh'), 'up'], { stdio: 'ignore' });
    expect(await registryUp()).toBe(true);
    const after = await devloop(repo.dir, developer, ['up', '--once']);
    expect(after.code, explain(after)).toBe(0);
    expect(JSON.parse((await devloop(repo.dir, developer, ['status', '--json'])).stdout).services[0]).toMatchObject({ current: true, ready: 1 });
  });
});
