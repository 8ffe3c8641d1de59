import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/env.js';
import { docker } from '../support/docker.js';
import { buildCli, devloop, edit, explain, fixtureRepo, servicesWith } from './harness.js';

async function get(port: number, urlPath = '/'): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(5000) });
  return (await res.text()).trim();
}

describe('devloop up --once on the local Docker target', () => {
  let repo: { dir: string; cleanup(): Promise<void> };
  const developer = uniqueName('e2e');

  beforeAll(async () => {
    buildCli();
    repo = await fixtureRepo();
  });

  afterAll(async () => {
    if (repo) await devloop(repo.dir, developer, ['down', '--target', 'docker']);
    await repo?.cleanup();
  });

  it('runs the fixture as containers that answer on 127.0.0.1 and reach each other by service name', async () => {
    const run = await devloop(repo.dir, developer, ['up', '--once', '--target', 'docker', '--json']);
    expect(run.code, explain(run)).toBe(0);
    expect(servicesWith(run, 'rollout.ready')).toEqual(['orders', 'pricing', 'web']);
    expect(await get(18081)).toBe('orders v1');
    expect(await get(18083)).toBe('pricing 12.34 EUR');
    expect(await get(18082, '/orders')).toBe('web -> orders v1');

    const containers = await docker().listContainers({ filters: { label: ['app.kubernetes.io/managed-by=devloop', `devloop.dev/developer=${developer}`] } });
    for (const c of containers) {
      for (const p of c.Ports.filter((x) => x.PublicPort)) expect(p.IP).toBe('127.0.0.1');
    }
    expect(containers).toHaveLength(3);

    const again = await devloop(repo.dir, developer, ['up', '--once', '--target', 'docker', '--json']);
    expect(again.code, explain(again)).toBe(0);
    expect(servicesWith(again, 'service.current')).toEqual(['orders', 'pricing', 'web']);
    expect(servicesWith(again, 'build.started')).toEqual([]);
  });

  it('reports a container that exits, with its exit code and last log line', async () => {
    const restore = await edit(repo.dir, 'services/web/server.js', (t) =>
      t.replace("const message = 'web v1';", "const message = 'web v2';\nconsole.error('fatal: PAYMENT_URL is not set');\nprocess.exit(3);"),
    );
    try {
      const run = await devloop(repo.dir, developer, ['up', '--once', '--target', 'docker']);
      expect(run.code, explain(run)).toBe(1);
      // Container names are per developer, so two developers on one engine never take each other's containers.
      expect(run.stdout).toContain(` web Exited: container devloop-shop-${developer}-web exited with code 3; last log: fatal: PAYMENT_URL is not set`);
    } finally {
      await restore();
    }
    const back = await devloop(repo.dir, developer, ['up', '--once', '--target', 'docker']);
    expect(back.code, explain(back)).toBe(0);
    expect(await get(18082)).toBe('web v1');
  });

  it('down removes the containers and the network', async () => {
    const run = await devloop(repo.dir, developer, ['down', '--target', 'docker']);
    expect(run.code, explain(run)).toBe(0);
    const left = await docker().listContainers({ all: true, filters: { label: [`devloop.dev/developer=${developer}`] } });
    expect(left).toEqual([]);
    const nets = await docker().listNetworks({ filters: { name: ['devloop-shop'] } });
    expect(nets.filter((n) => n.Name === 'devloop-shop')).toEqual([]);
  });
});
