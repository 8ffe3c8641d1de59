import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DockerBuilder } from '../build/builder.js';
import { dockerClient } from '../build/docker.js';
import { loadProject } from '../config/load.js';
import type { EngineEvent } from '../engine/events.js';
import { startLoop, type RunningLoop } from '../engine/loop.js';
import { EngineBus } from '../engine/state.js';
import { contentVersions } from '../engine/versions.js';
import { InMemoryTarget } from '../target/testing.js';
import { TempRepo } from '../workspace/temp-repo.js';

// The watch loop decides with the same inputs as `devloop plan`: a real repository, real inotify and real builds on
// the local Docker engine; the in-memory Target (a test double of devloop's own interface) stands in for where the
// images run, which this does not look at.

const docker = await dockerClient();
const project = `dl-inputs-${process.pid}`;
const built = new Set<string>();

beforeAll(async () => {
  await docker.ping().catch((err: unknown) => {
    throw new Error(`this test needs the local Docker engine (npm run infra:up, then eval "$(npm run --silent infra:env)"): ${String(err)}`);
  });
});

afterAll(async () => {
  for (const ref of built) await docker.getImage(ref).remove({ force: true }).catch(() => undefined); // already gone: nothing to clean
});

let repo: TempRepo | undefined;
let loop: RunningLoop | undefined;
afterEach(async () => {
  await loop?.commands.stop();
  loop = undefined;
  repo?.remove();
  repo = undefined;
});

describe('the watch loop', () => {
  it('rebuilds only the services whose Dockerfiles read a saved file, and does nothing for a save none reads', async () => {
    repo = TempRepo.create({ prefix: 'dl-inputs-loop-' }).write({
      'devloop.yaml': [
        'version: 1',
        `name: ${project}`,
        'services:',
        `  - { name: api, path: ., dockerfile: services/api/Dockerfile, image: ${project}/api }`,
        `  - { name: web, path: ., dockerfile: services/web/Dockerfile, image: ${project}/web }`,
        '',
      ].join('\n'),
      'services/api/Dockerfile': 'FROM scratch\nCOPY services/api /src\nCOPY libs/greet /libs/greet\n',
      'services/api/main.go': 'package main // 1\n',
      'services/web/Dockerfile': 'FROM scratch\nCOPY services/web /src\nCOPY libs/greet /libs/greet\n',
      'services/web/index.js': 'console.log(1)\n',
      'libs/greet/greet.go': 'package greet // 1\n',
      'docs/notes.md': '# notes\n',
    });
    repo.commit();
    const dir = repo.dir;
    const loaded = await loadProject(dir);
    const bus = new EngineBus();
    const events: EngineEvent[] = [];
    bus.subscribe((e) => {
      events.push(e);
      if (e.type === 'pass.started' && e.versions) for (const [s, v] of Object.entries(e.versions)) built.add(`${project}/${s}:${v}`);
    });
    const versions = await contentVersions(loaded);
    for (const [s, v] of Object.entries(versions)) built.add(`${project}/${s}:${v}`);
    loop = startLoop(bus, { dir, project: loaded, developer: 'ada', target: new InMemoryTarget(), builder: new DockerBuilder(), versions, quietMs: 20 });

    const save = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      writeFileSync(path.join(dir, rel), text);
    };
    const waitFor = async <T extends EngineEvent['type']>(type: T, from: number, match: (e: Extract<EngineEvent, { type: T }>) => boolean = () => true) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const found = events.slice(from).find((e) => e.type === type && match(e as Extract<EngineEvent, { type: T }>));
        if (found) return found as Extract<EngineEvent, { type: T }>;
        if (Date.now() > deadline) throw new Error(`waited 30 s for ${type}; events:\n${events.map((e) => `  ${JSON.stringify(e).slice(0, 200)}`).join('\n')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const passAfter = async (from: number) => {
      const started = await waitFor('pass.started', from, (e) => e.reason !== undefined);
      const finished = await waitFor('pass.finished', from, (e) => 'ok' in e);
      expect(finished).toMatchObject({ ok: true });
      return started.services;
    };

    await waitFor('watch.started', 0);
    const afterFirstPass = events.length;

    // Saved first, so it would be seen before the save that follows it, in the same batch or an earlier one.
    save('docs/notes.md', '# notes, edited\n');
    save('services/api/main.go', 'package main // 2\n');
    expect(await passAfter(afterFirstPass)).toEqual(['api']);
    const batches = events.slice(afterFirstPass).filter((e) => e.type === 'watch.batch');
    expect(batches).toHaveLength(1);
    expect(batches[0]).toMatchObject({ files: 1, decisions: [{ service: 'api', action: 'rebuild', files: 1 }] });

    let from = events.length;
    save('libs/greet/greet.go', 'package greet // 2\n');
    expect(await passAfter(from)).toEqual(['api', 'web']);

    // A new instruction makes docs/ an input of web: the loop reads the Dockerfile again and watches it from then on.
    from = events.length;
    save('services/web/Dockerfile', 'FROM scratch\nCOPY services/web /src\nCOPY libs/greet /libs/greet\nCOPY docs /docs\n');
    expect(await passAfter(from)).toEqual(['web']);
    from = events.length;
    save('docs/notes.md', '# notes, edited again\n');
    expect(await passAfter(from)).toEqual(['web']);
    // The image of web's last version was built.
    const last = events.filter((e) => e.type === 'pass.started').at(-1) as Extract<EngineEvent, { type: 'pass.started' }>;
    const image = await docker.getImage(`${project}/web:${last.versions!.web}`).inspect();
    expect(image.Id).toMatch(/^sha256:/);
  });
});
