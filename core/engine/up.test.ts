import { afterEach, describe, expect, it } from 'vitest';
import { loadProject } from '../config/load.js';
import { Gate, InMemoryTarget, ScriptedBuilder } from '../target/testing.js';
import { TempRepo } from '../workspace/temp-repo.js';
import type { EngineEvent } from './events.js';
import { EngineBus } from './state.js';
import { upOnce } from './up.js';
import { contentVersions } from './versions.js';

// Removing older images around a deploy: a real repository and files, the in-memory Target and builder (test doubles
// of devloop's own interfaces) in place of Docker and a cluster.

const repos: TempRepo[] = [];
afterEach(() => {
  for (const r of repos.splice(0)) r.remove();
});

async function setup() {
  const repo = TempRepo.create({ prefix: 'devloop-up-' }).write({
    'devloop.yaml': 'version: 1\nname: shop\nkeepImages: 1\nservices:\n  - name: web\n    path: web\n    image: shop/web\n',
    'web/Dockerfile': 'FROM scratch\nCOPY . /app\n',
    'web/server.js': 'server 1',
  });
  repos.push(repo);
  repo.commit();
  const project = await loadProject(repo.dir);
  const bus = new EngineBus();
  const events: EngineEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const target = new InMemoryTarget();
  const builder = new ScriptedBuilder();
  const pass = async (content: string, signal?: AbortSignal) => {
    repo.write({ 'web/server.js': content });
    const versions = await contentVersions(project);
    return {
      ref: `shop/web:${versions.web}`,
      run: upOnce(bus, { project, developer: 'ada', target, builder, versions, ...(signal ? { signal } : {}) }),
    };
  };
  return { events, target, builder, pass };
}

const pruned = (events: EngineEvent[]) => events.filter((e) => e.type === 'images.pruned');

describe('upOnce and older images', () => {
  it('removes the older images only once the new version is ready', async () => {
    const { events, target, builder, pass } = await setup();
    const v1 = await pass('server 1');
    await v1.run;
    const v2 = await pass('server 2');
    target.deployGate = new Gate();
    const running = v2.run;
    await expect.poll(() => target.calls.includes(`deploy web ${v2.ref.split(':')[1]}`)).toBe(true);
    // The deploy is held: v1 is still there, and nothing was removed.
    expect([...builder.built].sort()).toEqual([v1.ref, v2.ref].sort());
    expect(pruned(events)).toEqual([]);
    target.deployGate.release();
    expect(await running).toMatchObject({ ok: true });
    expect(pruned(events)).toMatchObject([{ service: 'web', where: 'local engine', images: [v1.ref] }]);
    expect([...builder.built]).toEqual([v2.ref]);
  });

  it('removes nothing when the deploy does not succeed', async () => {
    const { events, target, builder, pass } = await setup();
    const v1 = await pass('server 1');
    await v1.run;
    const before = target.calls.length;
    const stop = new AbortController();
    const v2 = await pass('server 2', stop.signal);
    target.deployGate = new Gate();
    await expect.poll(() => target.calls.includes(`deploy web ${v2.ref.split(':')[1]}`)).toBe(true);
    // Stopped during the deploy: the target reports it failed.
    stop.abort();
    target.deployGate.release();
    expect(await v2.run).toMatchObject({ ok: false, failed: ['web'] });
    expect(pruned(events)).toEqual([]);
    expect([...builder.built].sort()).toEqual([v1.ref, v2.ref].sort());
    expect(target.calls.slice(before).filter((c) => c.startsWith('prune'))).toEqual([]);
  });
});
