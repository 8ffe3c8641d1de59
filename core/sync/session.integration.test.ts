import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerClient } from '../build/docker.js';
import type { ServiceConfig } from '../config/types.js';
import type { EngineEventInput } from '../engine/events.js';
import { TempRepo } from '../workspace/temp-repo.js';
import { dockerExec, runToEnd, type ContainerExec } from './channel.js';
import { connectSync } from './connect.js';
import { compileRules } from './rules.js';
import { ServiceSync } from './session.js';
import { TarTransport } from './transport.js';

// A real repository and a real container (debian:bookworm-slim has perl and tar).
const docker = await dockerClient();
const IMAGE = 'debian:bookworm-slim';
const names: string[] = [];
let repo: TempRepo;

const service: ServiceConfig = {
  name: 'web',
  path: 'web',
  dockerfile: 'Dockerfile',
  dependsOn: [],
  image: 'x/web',
  buildArgs: {},
  ports: [],
  sync: [{ from: 'public/**', to: '/app/public', then: ['sh', '-c', 'ls /app/public | wc -l > /tmp/then.out'] }],
};

async function container(): Promise<{ name: string; exec: ReturnType<typeof dockerExec> }> {
  const name = `devloop-session-test-${process.pid}-${names.length}`;
  names.push(name);
  const c = await docker.createContainer({ name, Image: IMAGE, Cmd: ['sleep', 'infinity'] });
  await c.start();
  return { name, exec: dockerExec(docker, name) };
}
const sh = async (exec: ReturnType<typeof dockerExec>, script: string) => (await runToEnd(exec, ['sh', '-c', script])).output;

beforeAll(async () => {
  try {
    await docker.getImage(IMAGE).inspect();
  } catch (err) {
    throw new Error(`these tests need the Docker engine with ${IMAGE} (npm run infra:up creates it): ${(err as Error).message}`);
  }
  repo = TempRepo.create().write({ 'web/public/a.txt': 'a', 'web/public/sub/b.txt': 'b', 'web/public/ignored.tmp': 'x', 'web/server.js': 'not synced', '.gitignore': '*.tmp\n' });
  repo.commit();
});
afterAll(async () => {
  await Promise.all(names.map((n) => docker.getContainer(n).remove({ force: true }).catch(() => {})));
  rmSync(repo.dir, { recursive: true, force: true });
});

/** What the loop hands ServiceSync for a container: the channel the Docker target would open. */
const target = (key: string, exec: ContainerExec) => ({ key, where: exec.where, connect: (roots: string[]) => connectSync(exec, roots) });

describe('ServiceSync', () => {
  it('connects, runs the initial sync of what the rules cover, syncs batches and runs `then` after each', async () => {
    const events: EngineEventInput[] = [];
    const sync = new ServiceSync({ service: 'web', root: repo.dir, rules: compileRules(service), isOwnInput: () => true, emit: (e) => events.push(e) });
    const { exec } = await container();
    await sync.attach(target('c1', exec));
    expect(events.map((e) => e.type)).toEqual(['sync.connected', 'sync.finished', 'sync.command']);
    expect(events[1]).toMatchObject({ written: 2, deleted: 0, initial: true });
    expect(await sh(exec, 'cd /app/public && find . -type f | sort; cat /tmp/then.out')).toBe('./a.txt\n./sub/b.txt\n2\n');

    writeFileSync(path.join(repo.dir, 'web/public/c.txt'), 'c');
    rmSync(path.join(repo.dir, 'web/public/a.txt'));
    await sync.sync(['web/public/c.txt', 'web/public/a.txt', 'web/server.js']);
    expect(events.slice(3).map((e) => e.type)).toEqual(['sync.finished', 'sync.command']);
    expect(events[3]).toMatchObject({ written: 1, deleted: 1, initial: false });
    expect(events[4]).toMatchObject({ exitCode: 0 });
    expect(await sh(exec, 'cd /app/public && find . -type f | sort; test -e /app/server.js || echo no-server')).toBe('./c.txt\n./sub/b.txt\nno-server\n');
    await sync.close();
  });

  it('deletes at the initial sync what was deleted locally, and nothing the image made itself', async () => {
    const events: EngineEventInput[] = [];
    const sync = new ServiceSync({ service: 'web', root: repo.dir, rules: compileRules(service), isOwnInput: () => true, emit: (e) => events.push(e) });
    const { exec } = await container();
    await sh(
      exec,
      'mkdir -p /app/public/sub /app/public/node_modules/x /app/public/generated && cd /app/public && ' +
        'echo s > stale.txt && echo s > sub/stale.txt && echo k > node_modules/x/index.js && echo k > generated/out.txt && echo k > other.tmp && echo k > /app/elsewhere.txt',
    );
    await sync.attach(target('c', exec));
    // The two stale files, and a.txt: tracked by git but deleted locally (absent here anyway).
    expect(events.find((e) => e.type === 'sync.finished')).toMatchObject({ deleted: 3, initial: true });
    expect(await sh(exec, 'cd /app && find . -type f | sort')).toBe(
      './elsewhere.txt\n./public/c.txt\n./public/generated/out.txt\n./public/node_modules/x/index.js\n./public/other.tmp\n./public/sub/b.txt\n',
    );
    await sync.close();
  });

  it('reports a container it cannot sync into, and keeps others going', async () => {
    const events: EngineEventInput[] = [];
    const sync = new ServiceSync({ service: 'web', root: repo.dir, rules: compileRules(service), isOwnInput: () => true, emit: (e) => events.push(e) });
    const gone = { where: 'container nowhere', start: () => Promise.reject(new Error('no such container')) };
    await sync.attach(target('gone', gone));
    expect(events[0]).toMatchObject({ type: 'sync.failed', where: 'container nowhere' });
    expect(sync.connected()).toEqual([]);
    // Changes for this service now rebuild instead of waiting for a container that can take them.
    expect(sync.cannotSync()).toMatch(/no such container/);
    const { exec } = await container();
    await sync.attach(target('ok', exec));
    expect(sync.connected()).toEqual(['ok']);
    expect(sync.cannotSync()).toBeUndefined();
    await sync.close();
  });

  it('connects again when the receiver dies in a running container, and resends what the broken stream lost', async () => {
    const events: EngineEventInput[] = [];
    const sync = new ServiceSync({ service: 'web', root: repo.dir, rules: compileRules(service), isOwnInput: () => true, emit: (e) => events.push(e) });
    const { exec } = await container();
    await sync.attach(target('r', exec));
    // The stream breaks, the container stays: kill the receiver (perl) inside it.
    // (The pattern does not match this script's own command line.)
    await sh(exec, 'for p in /proc/[0-9]*; do grep -qa "pe[r]l" "$p/cmdline" 2>/dev/null && kill "${p#/proc/}"; done; true');
    writeFileSync(path.join(repo.dir, 'web/public/while-down.txt'), 'sent again');
    await sync.sync(['web/public/while-down.txt']);
    const deadline = Date.now() + 20_000;
    while ((await sh(exec, 'cat /app/public/while-down.txt 2>/dev/null')) !== 'sent again' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await sh(exec, 'cat /app/public/while-down.txt')).toBe('sent again');
    expect(events.map((e) => e.type), JSON.stringify(events)).toContain('sync.disconnected');
    expect(events.filter((e) => e.type === 'sync.connected')).toHaveLength(2);
    // And the new stream carries later batches.
    writeFileSync(path.join(repo.dir, 'web/public/after.txt'), 'later');
    await sync.sync(['web/public/after.txt']);
    expect(await sh(exec, 'cat /app/public/after.txt')).toBe('later');
    await sync.close();
  });

  it('closes with a fallback connection attached, though such a connection never ends on its own', async () => {
    const events: EngineEventInput[] = [];
    const sync = new ServiceSync({ service: 'web', root: repo.dir, rules: compileRules(service), isOwnInput: () => true, emit: (e) => events.push(e) });
    const { exec } = await container();
    // The tar fallback, as for a container without perl: one exec per batch, no connection that could end.
    await sync.attach({ key: 'tar', where: exec.where, connect: (roots) => TarTransport.probe(exec, roots) });
    expect(events[0]).toMatchObject({ type: 'sync.connected', mode: 'tar' });
    expect(await sh(exec, 'cat /app/public/sub/b.txt')).toBe('b');
    await sync.detach('tar');
    await sync.attach({ key: 'tar#1', where: exec.where, connect: (roots) => TarTransport.probe(exec, roots) });
    await sync.close();
    expect(events.map((e) => e.type)).not.toContain('sync.failed');
    expect(sync.connected()).toEqual([]);
  });

  it('carries a batch of hundreds of larger files (tens of MB) in bounded chunks', async () => {
    const events: EngineEventInput[] = [];
    const sync = new ServiceSync({ service: 'web', root: repo.dir, rules: compileRules(service), isOwnInput: () => true, emit: (e) => events.push(e) });
    const { exec } = await container();
    await sync.attach(target('big', exec));
    const paths: string[] = [];
    for (let i = 0; i < 300; i++) {
      const rel = `web/public/big/f${i}.bin`;
      mkdirSync(path.dirname(path.join(repo.dir, rel)), { recursive: true });
      writeFileSync(path.join(repo.dir, rel), Buffer.alloc(100 * 1024, i % 251));
      paths.push(rel);
    }
    await sync.sync(paths);
    const finished = events.filter((e) => e.type === 'sync.finished' && !e.initial);
    expect(finished.at(-1)).toMatchObject({ written: 300 });
    expect(events.filter((e) => e.type === 'sync.failed')).toEqual([]);
    expect(await sh(exec, 'ls /app/public/big | wc -l; du -sk /app/public/big | cut -f1')).toMatch(/^300\n3\d{4}\n$/);
    await sync.close();
    rmSync(path.join(repo.dir, 'web/public/big'), { recursive: true, force: true });
  });
});
