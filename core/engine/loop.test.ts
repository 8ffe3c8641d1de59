import { mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadProject } from '../config/load.js';
import { Gate, InMemoryTarget, ScriptedBuilder } from '../target/testing.js';
import { TempRepo } from '../workspace/temp-repo.js';
import type { EngineEvent } from './events.js';
import { startLoop, type RunningLoop } from './loop.js';
import { EngineBus } from './state.js';
import { contentVersions } from './versions.js';

// The loop driven through scripted scenarios: a real repository, real files and inotify, and an in-memory Target and
// builder (test doubles of devloop's own interfaces) in place of Docker and a cluster, which the e2e suite covers.

const CONFIG = `version: 1
name: shop
services:
  - name: web
    path: web
    image: shop/web
    sync:
      - from: "public/**"
        to: /app/public
  - name: api
    path: api
    image: shop/api
`;

interface Harness {
  repo: TempRepo;
  bus: EngineBus;
  events: EngineEvent[];
  target: InMemoryTarget;
  builder: ScriptedBuilder;
  loop: RunningLoop;
  write(rel: string, content: string): void;
  /** Waits for an event after index `from` (default: any) matching `match`; fails naming what it waited for. */
  event<T extends EngineEvent['type']>(type: T, match?: (e: Extract<EngineEvent, { type: T }>) => boolean, from?: number): Promise<Extract<EngineEvent, { type: T }>>;
  until(what: string, check: () => boolean): Promise<void>;
}

const running: Harness[] = [];

async function start(opts: { gateBuilds?: Gate } = {}): Promise<Harness> {
  const repo = TempRepo.create({ prefix: 'devloop-loop-' }).write({
    'devloop.yaml': CONFIG,
    'web/Dockerfile': 'FROM scratch\nCOPY . /app\n',
    'web/public/index.txt': 'v1',
    'web/server.js': 'server 1',
    'api/Dockerfile': 'FROM scratch\nCOPY . /app\n',
    'api/main.go': 'package main // 1',
  });
  repo.commit();
  const project = await loadProject(repo.dir);
  const bus = new EngineBus();
  const events: EngineEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const target = new InMemoryTarget();
  const builder = new ScriptedBuilder();
  if (opts.gateBuilds) builder.gate = opts.gateBuilds;
  const loop = startLoop(bus, { dir: repo.dir, project, developer: 'ada', target, builder, versions: await contentVersions(project), quietMs: 20 });
  const poll = async (what: string, check: () => boolean) => {
    const deadline = Date.now() + 15_000;
    while (!check()) {
      if (Date.now() > deadline) {
        throw new Error(`waited 15 s for ${what}; events:\n${events.map((e) => `  ${JSON.stringify(e).slice(0, 200)}`).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const h: Harness = {
    repo,
    bus,
    events,
    target,
    builder,
    loop,
    write: (rel, content) => {
      mkdirSync(path.dirname(path.join(repo.dir, rel)), { recursive: true });
      writeFileSync(path.join(repo.dir, rel), content);
    },
    event: async (type, match = () => true, from = 0) => {
      let found: EngineEvent | undefined;
      await poll(`a ${type} event`, () => (found = events.slice(from).find((e) => e.type === type && match(e as never))) !== undefined);
      return found as never;
    },
    until: poll,
  };
  running.push(h);
  return h;
}

afterEach(async () => {
  for (const h of running.splice(0)) {
    await h.loop.commands.stop();
    rmSync(h.repo.dir, { recursive: true, force: true });
  }
});

const webFile = (h: Harness, rel: string) => h.target.container('web')?.files.get(`/app/public/${rel}`);

describe('the loop, driven with an in-memory target', () => {
  it('deploys everything in the first pass, then syncs a save and rebuilds only the service whose image changed', async () => {
    const h = await start();
    await h.event('watch.started');
    expect(h.target.calls.filter((c) => c.startsWith('deploy')).map((c) => c.split(' ')[1]).sort()).toEqual(['api', 'web']);
    await h.until('the initial sync of web', () => webFile(h, 'index.txt') === 'v1');

    h.write('web/public/index.txt', 'v2');
    await h.until('the save to reach the container', () => webFile(h, 'index.txt') === 'v2');
    expect(h.events.some((e) => e.type === 'pass.started')).toBe(false);

    const from = h.events.length;
    h.write('api/main.go', 'package main // 2');
    const done = await h.event('pass.finished', () => true, from);
    expect(done).toMatchObject({ ok: true, failed: [] });
    const started = h.events.slice(from).find((e) => e.type === 'pass.started');
    expect(started).toMatchObject({ services: ['api'] });
    expect(h.target.calls.filter((c) => c.startsWith('deploy web'))).toHaveLength(1);
  });

  it('handles an edit made during a pass in the next pass, with the newest version', async () => {
    const h = await start();
    await h.event('watch.started');
    const gate = new Gate();
    h.builder.gate = gate;
    const from = h.events.length;
    h.write('api/main.go', 'package main // 2');
    await h.event('build.started', (e) => e.service === 'api', from);
    h.write('api/main.go', 'package main // 3');
    await h.event('watch.batch', () => true, h.events.findIndex((e, i) => i >= from && e.type === 'build.started') + 1);
    gate.release();
    await h.until('two passes', () => h.events.slice(from).filter((e) => e.type === 'pass.finished').length === 2);
    const latest = (await contentVersions(await loadProject(h.repo.dir))).api;
    expect(h.target.services.get('api')?.version).toBe(latest);
  });

  it('reports a broken devloop.yaml and goes on; the fixed file is reloaded', async () => {
    const h = await start();
    await h.event('watch.started');
    h.write('devloop.yaml', 'version: 1\nname: shop\nservices: [\n');
    const failed = await h.event('config.failed');
    expect(failed.message).toMatch(/devloop\.yaml/);
    h.write('web/public/index.txt', 'while broken');
    await h.until('sync to go on while the config is broken', () => webFile(h, 'index.txt') === 'while broken');

    h.write('devloop.yaml', CONFIG.replace('to: /app/public', 'to: /app/public\n    ports: ["18080:80"]'));
    await h.event('config.reloaded');
    await h.until('the forward of the reloaded config', () => h.target.calls.includes('forward web'));
  });

  it('reports a failing build, keeps running, and deploys the fix', async () => {
    const h = await start();
    await h.event('watch.started');
    let from = h.events.length;
    h.write('api/Dockerfile', 'FROM scratch\nRUN FAIL\n');
    const failed = await h.event('build.failed', (e) => e.service === 'api', from);
    expect(failed.step).toMatch(/RUN FAIL/);
    expect(await h.event('pass.finished', () => true, from)).toMatchObject({ ok: false, failed: ['api'] });

    from = h.events.length;
    h.write('api/Dockerfile', 'FROM scratch\nCOPY . /app\n');
    expect(await h.event('pass.finished', () => true, from)).toMatchObject({ ok: true });
    const latest = (await contentVersions(await loadProject(h.repo.dir))).api;
    expect(h.target.services.get('api')?.version).toBe(latest);
  });

  it('fails a batch whose container dies mid-sync and syncs the container that replaces it', async () => {
    const h = await start();
    await h.event('watch.started');
    await h.until('the initial sync of web', () => webFile(h, 'index.txt') === 'v1');
    const old = h.target.container('web')!;
    old.stall = new Gate();
    const from = h.events.length;
    h.write('web/public/index.txt', 'during the crash');
    await h.event('watch.batch', () => true, from);
    const replacement = h.target.replaceContainer('web');
    await h.event('sync.failed', (e) => e.service === 'web', from);
    // The new container's initial sync carries what the failed batch did not.
    await h.until('the new container to be in line', () => replacement.files.get('/app/public/index.txt') === 'during the crash');
    h.write('web/public/index.txt', 'after');
    await h.until('later saves to reach the new container', () => replacement.files.get('/app/public/index.txt') === 'after');
  });

  it('connects again when the sync stream breaks while the container runs, and resends what it missed', async () => {
    const h = await start();
    await h.event('watch.started');
    await h.until('the initial sync of web', () => webFile(h, 'index.txt') === 'v1');
    const web = h.target.container('web')!;
    const from = h.events.length;
    web.breakConnections();
    h.write('web/public/index.txt', 'written while the stream was down');
    await h.event('sync.disconnected', () => true, from);
    await h.until('the reconnection to carry the change', () => webFile(h, 'index.txt') === 'written while the stream was down');
    expect(web.connections).toBe(2);
    h.write('web/public/index.txt', 'after the reconnection');
    await h.until('later saves to arrive', () => webFile(h, 'index.txt') === 'after the reconnection');
    expect(h.events.slice(from).some((e) => e.type === 'pass.started')).toBe(false);
  });

  it('accepts commands during the first pass, and a stop then aborts it and applies nothing', async () => {
    const gate = new Gate();
    const h = await start({ gateBuilds: gate });
    await h.event('build.started');
    expect(() => h.loop.commands.rebuild('api')).not.toThrow();
    await h.loop.commands.stop();
    expect(h.events.at(-1)).toMatchObject({ type: 'loop.stopped' });
    expect(h.target.calls.filter((c) => c.startsWith('deploy'))).toEqual([]);
    expect(h.builder.built.size).toBe(0);
  });

  it('runs a rebuild asked for during the first pass right after it, and restarts the service', async () => {
    const gate = new Gate();
    const h = await start({ gateBuilds: gate });
    await h.event('build.started');
    h.loop.commands.rebuild('api');
    gate.release();
    await h.event('pass.finished', (e) => e.ok);
    expect(h.events.find((e) => e.type === 'pass.started')).toMatchObject({ services: ['api'], reason: 'rebuild requested' });
    expect(h.target.calls).toContain('restart api');
  });

  it('builds again from the tree as it is now when files change under a build', async () => {
    const h = await start();
    await h.event('watch.started');
    const from = h.events.length;
    h.builder.contextChanges = 1;
    h.write('api/main.go', 'package main // 2');
    const blocked = await h.event('build.blocked', (e) => e.service === 'api', from);
    expect(blocked.because).toMatch(/changed while the build context was being sent; it is built again from the tree as it is now/);
    await h.until('a second pass that deploys api', () => h.events.slice(from).filter((e) => e.type === 'pass.finished').length === 2);
    expect(h.events.slice(from).filter((e) => e.type === 'pass.finished').at(-1)).toMatchObject({ ok: true });
    const latest = (await contentVersions(await loadProject(h.repo.dir))).api;
    expect(h.target.services.get('api')?.version).toBe(latest);
  });

  it('notices that everything deployed was removed behind its back, says so, and deploys it all again', async () => {
    const h = await start();
    await h.event('watch.started');
    await h.until('the initial sync of web', () => webFile(h, 'index.txt') === 'v1');
    const from = h.events.length;
    h.target.loseEnvironment();
    expect(await h.event('environment.lost', () => true, from)).toMatchObject({ redeploying: true });
    expect(await h.event('pass.finished', () => true, from)).toMatchObject({ ok: true });
    expect([...h.target.services.keys()].sort()).toEqual(['api', 'web']);
    await h.until('the new web container to be synced', () => webFile(h, 'index.txt') === 'v1');
    h.write('web/public/index.txt', 'after the loss');
    await h.until('later saves to arrive', () => webFile(h, 'index.txt') === 'after the loss');
  });

  it('goes on when synced symlinks vanish while their batch is read', async () => {
    const h = await start();
    await h.event('watch.started');
    await h.until('the initial sync of web', () => webFile(h, 'index.txt') === 'v1');
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 50; i++) symlinkSync('index.txt', path.join(h.repo.dir, `web/public/link${i}`));
      await new Promise((r) => setTimeout(r, 15 + round * 5));
      for (let i = 0; i < 50; i++) unlinkSync(path.join(h.repo.dir, `web/public/link${i}`));
    }
    h.write('web/public/index.txt', 'still syncing');
    await h.until('a later save to arrive', () => webFile(h, 'index.txt') === 'still syncing');
    await h.until('the vanished links to be gone from the container', () => [...h.target.container('web')!.files.keys()].every((k) => !k.includes('/link')));
    // A link that vanished mid-read is a normal event, not a failure.
    expect(h.events.filter((e) => e.type === 'warning' || e.type === 'sync.failed')).toEqual([]);
  });
});
