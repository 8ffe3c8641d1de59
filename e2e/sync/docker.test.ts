import { unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from '../support/docker.js';
import { uniqueName, waitFor } from '../support/env.js';
import { buildCli } from '../up/harness.js';
import { freePort, LoopProcess, removeDockerProject, syncFixtureRepo, treeDigest } from './session.js';

// The same loop on the local Docker target: the sync stream through docker exec, the container followed by
// Docker's events, its output streamed.
describe('devloop up --target docker: the inner loop on local containers', () => {
  const developer = uniqueName('e2e-dsync');
  const project = uniqueName('syncdemo');
  const container = `devloop-${project}-${developer}-web`;
  let repo: Awaited<ReturnType<typeof syncFixtureRepo>>;
  let loop: LoopProcess | undefined;
  let port: number;

  const inContainer = async (script: string): Promise<string> => {
    const exec = await docker().getContainer(container).exec({ Cmd: ['sh', '-c', script], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve) => {
      const out = { write: (c: Buffer) => chunks.push(c) } as unknown as NodeJS.WritableStream;
      docker().modem.demuxStream(stream, out, out);
      stream.on('end', () => resolve());
    });
    return Buffer.concat(chunks).toString('utf8');
  };
  const eventually = (what: string, script: string, want: string) =>
    waitFor(what, async () => ((await inContainer(script)) === want ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });

  beforeAll(async () => {
    buildCli();
    port = await freePort();
    repo = await syncFixtureRepo(port, project);
    loop = new LoopProcess(repo.dir, developer, ['--target', 'docker', '--cleanup']);
  });

  afterAll(async () => {
    loop?.kill();
    await removeDockerProject(project, developer);
    await repo?.cleanup();
  });

  it('runs the container, connects the sync stream and follows edits and deletions', async () => {
    await loop!.waitFor('the initial sync', (e) => e.type === 'sync.finished' && e.initial === true);
    expect(loop!.events.find((e) => e.type === 'sync.connected')).toMatchObject({ mode: 'stream' });
    const before = await treeDigest(repo.dir);
    await writeFile(path.join(repo.dir, 'web/public/index.txt'), 'docker v2\n');
    await eventually('the edit in the container', 'cat /app/public/index.txt', 'docker v2\n');
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('docker v2\n');
    await unlink(path.join(repo.dir, 'web/public/index.txt'));
    await eventually('the deletion in the container', 'test -e /app/public/index.txt && echo present || echo gone', 'gone\n');
    expect(await treeDigest(repo.dir)).not.toBe(before);
  });

  it('follows a restarted container: reconnects and syncs again', async () => {
    const from = loop!.mark();
    await docker().getContainer(container).restart({ t: 0 });
    await loop!.waitFor('a new connection', (e) => e.type === 'sync.connected', from);
    await writeFile(path.join(repo.dir, 'web/public/after-restart.txt'), 'again\n');
    await eventually('the file in the restarted container', 'cat /app/public/after-restart.txt', 'again\n');
    expect(loop!.events.some((e) => e.type === 'log.line' && e.service === 'web')).toBe(true);
  });

  it('stops on Ctrl-C and, with --cleanup, removes the container', async () => {
    expect(await loop!.interrupt()).toBe(0);
    loop = undefined;
    await expect(docker().getContainer(container).inspect()).rejects.toThrow();
  });
});
