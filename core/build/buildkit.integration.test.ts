import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, BuildFailure, type BuildProgress, type BuildRequest } from './build.js';
import { DockerBuilder } from './builder.js';
import { dockerClient } from './docker.js';

// Builds through BuildKit on the real engine (POST /build?version=2 with a tar body or from a session, base images
// from the local store), and the classic builder as the fallback.
const docker = await dockerClient();
const run = `${process.pid}-${Date.now().toString(36)}`;
const tag = `dl-bk-test/buildkit:${process.pid}`;
let dir: string;

beforeAll(async () => {
  await docker.getImage('debian:bookworm-slim').inspect().catch((err: unknown) => {
    throw new Error(`these tests need the Docker engine with debian:bookworm-slim (npm run infra:up): ${(err as Error).message}`);
  });
  dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-buildkit-'));
});
afterAll(async () => {
  for (const t of [tag, `${tag}-classic`, `${tag}-aborted`]) await docker.getImage(t).remove({ force: true }).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

const request = (over: Partial<BuildRequest> = {}): BuildRequest => ({
  service: 's',
  contextDir: dir,
  dockerfile: 'Dockerfile',
  image: tag,
  buildArgs: {},
  labels: {},
  dockerfileLabel: 'svc/Dockerfile',
  ...over,
});

/** The content of one file inside an image (through a created, never started, container). */
async function fileInImage(image: string, file: string): Promise<string> {
  const container = await docker.createContainer({ Image: image, Cmd: ['none'] });
  try {
    const archive = await container.getArchive({ path: file });
    return await new Promise<string>((resolve, reject) => {
      const ex = extract();
      let text = '';
      ex.on('entry', (_header, body, next) => {
        body.on('data', (chunk: unknown) => (text += String(chunk)));
        body.on('end', next);
      });
      ex.on('finish', () => resolve(text));
      ex.on('error', reject);
      archive.pipe(ex);
    });
  } finally {
    await container.remove({ force: true });
  }
}

// The first build writes its token into the cache mount; each build copies what it found there into the image.
const CACHE_DOCKERFILE = (id: string) => `FROM debian:bookworm-slim AS build
ARG TOKEN
RUN --mount=type=cache,id=${id},target=/cache \\
    sh -c 'mkdir -p /cache; cat /cache/token > /seen 2>/dev/null || echo nothing > /seen; echo "$TOKEN" > /cache/token'
FROM scratch
COPY --from=build /seen /seen
`;

describe('DockerBuilder on an engine that serves BuildKit', () => {
  it('builds with BuildKit: a cache mount keeps what the first build wrote for the second, labels and tag are set', async () => {
    await writeFile(path.join(dir, 'Dockerfile'), CACHE_DOCKERFILE(`dl-bk-cache-${run}`));
    const builder = new DockerBuilder({});
    const progress: BuildProgress[] = [];
    const labels = { 'dev.devloop.test': run };
    await builder.build(request({ buildArgs: { TOKEN: `first-${run}` }, labels }), (p) => progress.push(p));
    expect(await fileInImage(tag, '/seen')).toBe('nothing\n');

    await builder.build(request({ buildArgs: { TOKEN: `second-${run}` }, labels }), (p) => progress.push(p));
    expect(await fileInImage(tag, '/seen')).toBe(`first-${run}\n`);

    const info = await docker.getImage(tag).inspect();
    expect(info.Config.Labels?.['dev.devloop.test']).toBe(run);
    expect(progress.filter((p) => p.kind === 'notice')).toEqual([]);
    // BuildKit's steps, without the builder's own work ("[internal] load …") and without API labels as a step.
    expect([...new Set(progress.flatMap((p) => (p.kind === 'step' ? [p.instruction.split(' ')[0]] : [])))]).toEqual(['FROM', 'RUN', 'COPY']);
  });
});

// Either way of sending the context: a tar in the request body, or a session the daemon fetches it through.
describe.each(['tar', 'session'] as const)('a BuildKit build with its context sent as %s', (transfer) => {
  it('names a failing step with its Dockerfile line and keeps its output', async () => {
    await writeFile(path.join(dir, 'Dockerfile'), `FROM debian:bookworm-slim AS build\n\n# fails\nRUN echo about-to-fail-${run} && \\\n    exit 3\nFROM scratch\nCOPY --from=build /etc/hostname /x\n`);
    const err = await buildImage(docker, request(), () => {}, 'buildkit', transfer).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailure);
    const failure = err as BuildFailure;
    expect(failure.step).toBe(`[build 2/2] RUN echo about-to-fail-${run} &&     exit 3 (svc/Dockerfile:4)`);
    expect(failure.message).toMatch(/exit code: 3/);
    expect(failure.lastLines).toContain(`about-to-fail-${run}`);
  });

  it('reports a Dockerfile BuildKit cannot parse as a build failure at its line', async () => {
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n\nFORM scratch\n');
    const err = await buildImage(docker, request(), () => {}, 'buildkit', transfer).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailure);
    expect((err as BuildFailure).step).toBe('svc/Dockerfile:3');
    expect((err as BuildFailure).message).toMatch(/unknown instruction: FORM/i);
  });

  it('builds a Dockerfile from outside the context, and the build target it is asked for', async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(dir, 'ctx'), { recursive: true });
    await mkdir(path.join(dir, 'build'), { recursive: true });
    await writeFile(path.join(dir, 'ctx', 'x.txt'), `x-${run}`);
    await writeFile(path.join(dir, 'build', 'Dockerfile'), 'FROM scratch AS dev\nCOPY x.txt /x.txt\nFROM scratch AS runtime\nCOPY x.txt /y.txt\n');
    await buildImage(docker, request({ contextDir: path.join(dir, 'ctx'), dockerfile: '../build/Dockerfile', target: 'dev' }), () => {}, 'buildkit', transfer);
    expect(await fileInImage(tag, '/x.txt')).toBe(`x-${run}`);
  });

  it('stops a running BuildKit build when its signal aborts, and tags nothing', async () => {
    await writeFile(path.join(dir, 'Dockerfile'), `FROM debian:bookworm-slim\nRUN echo started-${run} && sleep 60\n`);
    const controller = new AbortController();
    const t0 = Date.now();
    const err = await buildImage(
      docker,
      request({ image: `${tag}-aborted`, signal: controller.signal }),
      (p) => {
        if (p.kind === 'log' && p.line.startsWith('started-')) controller.abort();
      },
      'buildkit',
      transfer,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(Date.now() - t0).toBeLessThan(50_000);
    await expect(docker.getImage(`${tag}-aborted`).inspect()).rejects.toThrow();
  });
});

describe('DockerBuilder falling back to the classic builder', () => {
  it('says why once, and builds a Dockerfile with cache mounts by running those steps without them', async () => {
    await writeFile(path.join(dir, 'Dockerfile'), CACHE_DOCKERFILE(`dl-bk-classic-${run}`));
    const builder = new DockerBuilder({ DOCKER_BUILDKIT: '0' });
    const progress: BuildProgress[] = [];
    const labels = { 'dev.devloop.test': run };
    for (const token of ['first', 'second']) {
      await builder.build(request({ image: `${tag}-classic`, buildArgs: { TOKEN: `${token}-${run}` }, labels }), (p) => progress.push(p));
      // No cache mount: each build starts from nothing.
      expect(await fileInImage(`${tag}-classic`, '/seen')).toBe('nothing\n');
    }
    expect(progress.filter((p) => p.kind === 'notice')).toEqual([
      {
        kind: 'notice',
        message: 'building with the classic builder: DOCKER_BUILDKIT=0 asks for it; cache mounts and parallel stages need BuildKit',
      },
    ]);
    // The classic builder's own step lines, and the label it applies as a step.
    expect(progress.some((p) => p.kind === 'step' && p.instruction === `LABEL dev.devloop.test=${run}`)).toBe(true);
    expect((await docker.getImage(`${tag}-classic`).inspect()).Config.Labels?.['dev.devloop.test']).toBe(run);
  });

  it('names a failing step with its Dockerfile line, with cache mounts taken out', async () => {
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM debian:bookworm-slim\nRUN --mount=type=cache,target=/c \\\n    exit 4\n');
    const err = await buildImage(docker, request(), () => {}, 'classic').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailure);
    // The classic builder names the step with the continuation joined as it reads it.
    expect((err as BuildFailure).step).toBe('Step 2/2 : RUN     exit 4 (svc/Dockerfile:2)');
  });
});
