import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, execInPod } from '../support/kube.js';
import { buildCli } from '../up/harness.js';
import { freePort, LoopProcess, syncFixtureRepo } from '../sync/session.js';
import { readyWebPod } from './harness.js';

// One running `devloop up` put through what broke it before: a sync stream that breaks under a large batch, and a
// storm of branch switches during a rebuild. It must keep running, carry every change, and never claim a sync it
// did not make.
describe('a running devloop up under stress', () => {
  const developer = uniqueName('e2e-chaos-loop');
  const namespace = `syncdemo-${developer}`;
  let repo: Awaited<ReturnType<typeof syncFixtureRepo>>;
  let loop: LoopProcess | undefined;

  const readyPod = () => readyWebPod(namespace);
  const inPod = async (script: string) => (await execInPod(namespace, await readyPod(), 'web', ['sh', '-c', script])).stdout;
  const eventually = (what: string, script: string, want: string, timeoutMs = 60_000) =>
    waitFor(what, async () => ((await inPod(script).catch(() => '')) === want ? true : undefined), { timeoutMs, intervalMs: 200 });

  beforeAll(async () => {
    buildCli();
    repo = await syncFixtureRepo(await freePort());
    loop = new LoopProcess(repo.dir, developer);
    await loop.waitFor('the initial sync', (e) => e.type === 'sync.finished' && e.initial === true);
  });

  afterAll(async () => {
    loop?.kill();
    await deleteNamespace(namespace).catch(() => undefined);
    await repo?.cleanup();
  });

  it('carries 300 files of 100 kB at once (30 MB), and recovers when the stream into the pod breaks', async () => {
    await mkdir(path.join(repo.dir, 'web/public/big'), { recursive: true });
    for (let i = 0; i < 300; i++) await writeFile(path.join(repo.dir, `web/public/big/f${i}.bin`), Buffer.alloc(100 * 1024, i % 251));
    await eventually('300 large files in the pod', 'ls /app/public/big | wc -l', '300\n', 120_000);
    expect(await inPod('du -sk /app/public/big | cut -f1')).toMatch(/^3\d{4}\n$/);

    // Break the stream under it: kill the sync receiver in the pod (the container keeps running).
    const from = loop!.mark();
    await inPod('for p in /proc/[0-9]*; do grep -qa "pe[r]l" "$p/cmdline" 2>/dev/null && kill "${p#/proc/}"; done; true');
    await loop!.waitFor('the broken stream', (e) => e.type === 'sync.disconnected', from, 30_000);
    await writeFile(path.join(repo.dir, 'web/public/index.txt'), 'after the break\n');
    await eventually('the change after the break', 'cat /app/public/index.txt', 'after the break\n');
    await loop!.waitFor('the reconnection', (e) => e.type === 'sync.connected', from, 30_000);
  });

  it('survives a storm of branch switches during a rebuild and ends on the tree as it is', async () => {
    repo.git('add', '-A');
    repo.git('commit', '-qm', 'big files');
    repo.git('checkout', '-qb', 'other');
    for (let i = 0; i < 200; i++) await writeFile(path.join(repo.dir, `web/gen-${i}.js`), `// ${i}\n`);
    const server = path.join(repo.dir, 'web/server.js');
    await writeFile(server, `${await readFile(server, 'utf8')}\n// other branch\n`);
    repo.git('add', '-A');
    repo.git('commit', '-qm', 'other branch');
    const from = loop!.mark();
    // A file no sync rule covers starts a rebuild; then switch back and forth while it builds.
    for (let i = 0; i < 12; i++) {
      repo.git('checkout', '-q', i % 2 === 0 ? 'main' : 'other');
      await new Promise((r) => setTimeout(r, 150));
    }
    repo.git('checkout', '-q', 'main');
    // Still running, and in the end what runs is current with the tree (main).
    await waitFor('devloop to settle on main', async () => {
      const last = loop!.events.slice(from).filter((e) => e.type === 'pass.finished').at(-1);
      const idle = loop!.events.slice(from).at(-1)?.type !== 'pass.started';
      return last?.ok === true && idle ? true : undefined;
    }, { timeoutMs: 240_000, intervalMs: 500 });
    expect(loop!.events.slice(from).some((e) => e.type === 'internal.error')).toBe(false);
    expect(await inPod('grep -c "other branch" /app/server.js || true')).toBe('0\n');
  });
});
