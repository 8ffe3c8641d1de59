import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../../core/config/load.js';
import type { EngineEvent } from '../../core/engine/events.js';
import { DockerTarget } from '../../core/target/docker-target.js';
import { startLoop, type RunningLoop } from '../../core/engine/loop.js';
import { EngineBus } from '../../core/engine/state.js';
import { contentVersions } from '../../core/engine/versions.js';
import { UserError } from '../../core/errors.js';
import { docker } from '../support/docker.js';
import { infraEnv, uniqueName, waitFor } from '../support/env.js';
import { freePort, removeDockerProject, syncFixtureRepo } from './session.js';

// The engine's commands (what the dashboard's keys call) against a running loop, in-process, on local Docker.
describe('EngineCommands of a running loop', () => {
  const projectName = uniqueName('syncdemo');
  const developer = uniqueName('e2e-cmd');
  const container = `devloop-${projectName}-${developer}-web`;
  let repo: Awaited<ReturnType<typeof syncFixtureRepo>>;
  let loop: RunningLoop | undefined;
  const events: EngineEvent[] = [];
  const bus = new EngineBus();
  bus.subscribe((e) => events.push(e));
  const since = (n: number, type: string) => events.slice(n).filter((e) => e.type === type);
  // On a timeout, the events since `from` say where the loop got to.
  const recent = (from: number) => events.slice(from).map((e) => `  ${JSON.stringify(e).slice(0, 240)}`).join('\n');
  const waitEvent = (what: string, from: number, match: (e: EngineEvent) => boolean, timeoutMs = 60_000) =>
    waitFor(what, async () => events.slice(from).find(match), { timeoutMs, intervalMs: 50, describe: async () => `events since:\n${recent(from)}` });
  const served = async (port: number, p: string) => (await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(3000) })).text();

  let port: number;
  beforeAll(async () => {
    infraEnv();
    port = await freePort();
    repo = await syncFixtureRepo(port, projectName);
    const project = await loadProject(repo.dir);
    loop = startLoop(bus, {
      dir: repo.dir,
      project,
      developer,
      target: new DockerTarget(),
      versions: await contentVersions(project),
    });
    await waitEvent('the initial sync', 0, (e) => e.type === 'sync.finished' && e.initial);
  });

  afterAll(async () => {
    await loop?.commands.stop({ cleanup: true }).catch(() => undefined);
    await removeDockerProject(projectName, developer);
    await repo?.cleanup();
  });

  it('setWatching(false) holds changes; setWatching(true) handles them', async () => {
    const from = events.length;
    loop!.commands.setWatching(false);
    expect(bus.snapshot().loop?.watching).toBe(false);
    await writeFile(path.join(repo.dir, 'web/public/index.txt'), 'while paused\n');
    await new Promise((r) => setTimeout(r, 500));
    expect(since(from, 'watch.batch')).toEqual([]);
    expect(await served(port, '/')).toBe('hello v1\n');
    loop!.commands.setWatching(true);
    await waitEvent('the held change', from, (e) => e.type === 'sync.finished' && !e.initial);
    expect(await served(port, '/')).toBe('while paused\n');
  });

  it('rebuild(service) rebuilds and restarts it even though nothing changed, and the initial sync runs again', async () => {
    const startedBefore = (await docker().getContainer(container).inspect()).State.StartedAt;
    const from = events.length;
    loop!.commands.rebuild('web');
    expect(await waitEvent('the pass', from, (e) => e.type === 'pass.finished')).toMatchObject({ ok: true });
    await waitEvent('a sync connection to the restarted container', from, (e) => e.type === 'sync.connected');
    await waitEvent('its initial sync', from, (e) => e.type === 'sync.finished' && e.initial);
    expect((await docker().getContainer(container).inspect()).State.StartedAt).not.toBe(startedBefore);
    // The restarted server needs a moment to listen; the synced content must be there once it does.
    const answer = await waitFor('the restarted server', () => served(port, '/').catch(() => undefined), { timeoutMs: 30_000, intervalMs: 100 });
    expect(answer).toBe('while paused\n');
  });

  it('swap is refused for now, and a rebuild of an unknown service is a user error', () => {
    expect(() => loop!.commands.swap('web')).toThrow(UserError);
    expect(() => loop!.commands.rebuild('nope')).toThrow(/no service named nope/);
  });

  it('reloads devloop.yaml: a bad edit is reported and changes nothing, a good one applies', async () => {
    const file = path.join(repo.dir, 'devloop.yaml');
    const good = await readFile(file, 'utf8');
    let from = events.length;
    await writeFile(file, good.replace('to: /app/public', 'to: relative/dir'));
    const failed = await waitEvent('the reload failure', from, (e) => e.type === 'config.failed');
    expect((failed as { message: string }).message).toMatch(/devloop\.yaml:\d+:\d+/);
    await writeFile(path.join(repo.dir, 'web/public/still.txt'), 'old rules still apply\n');
    await waitFor('the file served', async () => ((await served(port, '/still.txt')) === 'old rules still apply\n' ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });

    from = events.length;
    await writeFile(file, good.replace('from: "public/**"', 'from: "public/*.txt"'));
    await waitEvent('the reload', from, (e) => e.type === 'config.reloaded');
    await waitEvent('the pass after the reload', from, (e) => e.type === 'pass.finished');
    await writeFile(path.join(repo.dir, 'web/public/new-rule.txt'), 'new rules\n');
    await waitFor('the file served', async () => ((await served(port, '/new-rule.txt')) === 'new rules\n' ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
  });

  it('reports a broken build, keeps watching, and recovers with the next good change', async () => {
    const dockerfile = path.join(repo.dir, 'web/Dockerfile');
    const good = await readFile(dockerfile, 'utf8');
    let from = events.length;
    await writeFile(dockerfile, good.replace('WORKDIR /app', 'WORKDIR /app\nRUN exit 3'));
    expect(await waitEvent('the failed pass', from, (e) => e.type === 'pass.finished', 120_000)).toMatchObject({ ok: false });
    expect(since(from, 'build.failed')).toHaveLength(1);
    expect(await served(port, '/')).toBe('while paused\n');
    from = events.length;
    await writeFile(dockerfile, good);
    expect(await waitEvent('the recovering pass', from, (e) => e.type === 'pass.finished', 120_000)).toMatchObject({ ok: true });
  });

  it('stop() ends the loop and leaves the container running', async () => {
    await loop!.commands.stop();
    await loop!.stopped;
    loop = undefined;
    expect(events.at(-1)).toMatchObject({ type: 'loop.stopped', cleanup: false });
    expect((await docker().getContainer(container).inspect()).State.Running).toBe(true);
  });
});
