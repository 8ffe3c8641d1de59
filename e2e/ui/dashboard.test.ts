import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { infraEnv, repoRoot, uniqueName } from '../support/env.js';
import { deleteNamespace, kube, statusCode } from '../support/kube.js';
import { buildCli, fixtureRepo } from '../up/harness.js';
import { TmuxTerminal } from './terminal.js';

// The real `devloop up` (the watch loop) in a real terminal against the real cluster, driven by key presses.
describe('devloop up dashboard in a terminal', () => {
  let repo: { dir: string; cleanup(): Promise<void> };
  let term: TmuxTerminal | undefined;
  const developer = uniqueName('ui');
  const namespace = `shop-${developer}`;

  beforeAll(async () => {
    buildCli();
    repo = await fixtureRepo();
    const env = infraEnv();
    term = TmuxTerminal.start({
      session: developer,
      cwd: repo.dir,
      columns: 80,
      rows: 24,
      env: { KUBECONFIG: env.kubeconfig, DOCKER_HOST: env.dockerHost, DEVLOOP_REGISTRY: env.registry, DEVLOOP_DEVELOPER: developer, TERM: 'xterm-256color' },
      command: `clear; ${process.execPath} ${path.join(repoRoot, 'bin/devloop.js')} up --cleanup; echo "DEVLOOP_EXIT=$?"`,
    });
  });

  afterAll(async () => {
    term?.kill();
    await deleteNamespace(namespace).catch(() => undefined);
    await repo?.cleanup();
  });

  it('shows a row per service and the target, and reaches watching once all are ready', async () => {
    const screen = await term!.waitFor(/● watching/, 'the first pass to finish', 280_000);
    expect(screen).toMatch(new RegExp(`ns ${namespace}|namespace ${namespace}`));
    expect(screen).toMatch(/SERVICE\s+STATE\s+TAG/);
    for (const service of ['orders', 'web', 'pricing']) expect(screen).toMatch(new RegExp(`${service}\\s+ready\\s+[0-9a-f]{10}`));
    expect(screen).toMatch(/❯ orders/);
    expect(screen).toMatch(/↑↓ select {2}⏎ logs {2}r rebuild/);
  });

  it('moves the selection, shows one service’s logs, and the help', async () => {
    term!.keys('Down');
    await term!.waitFor(/❯ web/, 'web selected');
    term!.keys('Enter');
    await term!.waitFor(/─ logs · web ─/, 'the web log pane');
    term!.keys('Enter');
    await term!.waitFor(/─ logs · all services ─/, 'the all-services log pane');
    term!.keys('?');
    await term!.waitFor(/─ keys ─[\s\S]*r\s+rebuild and redeploy the selected service/, 'the help overlay');
    term!.keys('Escape');
    await term!.waitFor(/─ logs · all services ─/, 'the help closed');
    // s swaps the selected service to this machine (the agent image is built on first use), and s restores it.
    term!.keys('s');
    // The row (cut to the 80-column state cell) and the log line saying where to.
    await term!.waitFor(/web\s+swapped → 127\.0\.0\.1:[\s\S]*web\s+│ swapped → 127\.0\.0\.1:8080 \(agent/, 'web swapped to this machine', 240_000);
    term!.keys('s');
    await term!.waitFor(/web\s+ready/, 'web restored', 60_000);
  });

  it('rebuilds and redeploys the selected service on r', async () => {
    term!.keys('r');
    await term!.waitFor(/rebuild requested: web/, 'the rebuild notice');
    await term!.waitFor(/│ web: rebuild requested[\s\S]*web\s+│ (applied|ready in)[\s\S]*│ updated in/, 'the rebuild pass to redeploy web and finish', 240_000);
    const screen = await term!.waitFor(/● watching/, 'watching again');
    expect(screen).toMatch(/web\s+ready/);
  });

  it('follows a terminal resize', async () => {
    term!.resize(120, 30);
    await term!.waitFor(/─ logs · all services ─{90,}/, 'a rule as wide as 120 columns');
    term!.resize(80, 24);
    await term!.waitFor(/^─ logs · all services ─{50,60}$/m, 'the rule back at 80 columns');
  });

  it('stops on q, running down because of --cleanup, and exits cleanly', async () => {
    term!.keys('q');
    const screen = await term!.waitFor(/DEVLOOP_EXIT=\d+/, 'devloop to exit', 120_000);
    expect(screen).toMatch(/DEVLOOP_EXIT=0/);
    // The alternate screen is gone: the shell's screen is back, without the dashboard.
    expect(screen).not.toMatch(/SERVICE\s+STATE/);
    const gone = await kube()
      .apps.readNamespacedDeployment({ name: 'orders', namespace })
      .then(() => false)
      .catch((err: unknown) => statusCode(err) === 404);
    expect(gone, 'devloop down (--cleanup) removes the deployments').toBe(true);
  });
});
