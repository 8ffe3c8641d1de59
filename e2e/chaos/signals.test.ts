import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/env.js';
import { deleteNamespace, kube } from '../support/kube.js';
import { buildCli } from '../up/harness.js';
import { freePort, syncFixtureRepo } from '../sync/session.js';
import { devloopProcessesIn, spawnDevloop } from './harness.js';

/** How long stopping may take at any moment (the README's guarantee). */
const STOP_WITHIN_MS = 10_000;

// Ctrl-C and SIGTERM while the first pass builds: devloop stops within 10 s, cancels the build, applies nothing
// after the signal, and says what it left half-done.
describe('a signal during the first pass', () => {
  const developer = uniqueName('e2e-chaos-sig');
  const namespace = `syncdemo-${developer}`;
  let repo: Awaited<ReturnType<typeof syncFixtureRepo>>;

  beforeAll(async () => {
    buildCli();
    repo = await syncFixtureRepo(await freePort());
    // A build step that takes long, so the signal lands in the build. A unique value makes it a new image each run.
    const dockerfile = path.join(repo.dir, 'web/Dockerfile');
    const { readFile } = await import('node:fs/promises');
    await writeFile(dockerfile, (await readFile(dockerfile, 'utf8')).replace('EXPOSE 8080', `RUN echo ${developer} && sleep 60\nEXPOSE 8080`));
    repo.git('commit', '-qam', 'slow build');
  });

  afterAll(async () => {
    await deleteNamespace(namespace).catch(() => undefined);
    await repo?.cleanup();
  });

  const workloads = async () => (await kube().apps.listNamespacedDeployment({ namespace }).catch(() => ({ items: [] }))).items.map((d) => d.metadata?.name);

  for (const [signal, args] of [
    ['SIGINT', ['up', '--json']],
    ['SIGTERM', ['up', '--json']],
    ['SIGINT', ['up', '--once', '--json']],
    ['SIGTERM', ['up', '--once', '--json']],
  ] as const) {
    it(`${signal} to \`devloop ${args.join(' ')}\` stops it within 10 s and applies nothing`, async () => {
      const run = spawnDevloop(repo.dir, developer, [...args]);
      // Wait until the slow step runs.
      const deadline = Date.now() + 120_000;
      while (!run.output().includes('"type":"build.step"') || !run.output().includes('sleep 60')) {
        if (Date.now() > deadline) throw new Error(`the build did not start:\n${run.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const sent = Date.now();
      run.child.kill(signal);
      const code = await Promise.race([run.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), STOP_WITHIN_MS))]);
      expect(code, `devloop was still running ${STOP_WITHIN_MS / 1000} s after ${signal}:\n${run.output().slice(-3000)}`).not.toBe('late');
      const tookMs = Date.now() - sent;
      console.log(`${signal} → exit in ${tookMs} ms (devloop ${args.join(' ')})`);
      // The interrupted build is reported, and nothing was applied after the signal.
      expect(run.output()).toMatch(/"type":"build\.(failed|blocked)"/);
      expect(run.output()).not.toMatch(/"type":"deploy\.applied"/);
      expect(await workloads()).toEqual([]);
      expect(await devloopProcessesIn(repo.dir)).toEqual([]);
    });
  }
});
