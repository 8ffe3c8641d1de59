import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, BuildFailure, type BuildProgress } from './build.js';
import { dockerClient } from './docker.js';
import { parseDockerfileInstructions } from './dockerfile.js';

const docker = await dockerClient();
const tag = `devloop-test/build:${process.pid}`;
let dir: string;

beforeAll(async () => {
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(`these tests need the Docker engine (DOCKER_HOST or /var/run/docker.sock): ${(err as Error).message}`);
  }
  dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-build-'));
});
afterAll(async () => {
  await docker.getImage(tag).remove({ force: true }).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

describe('buildImage', () => {
  it('builds from a streamed context, reports steps and tags the image', async () => {
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n# a comment\nCOPY hello.txt /hello.txt\n');
    await writeFile(path.join(dir, 'hello.txt'), 'hi');
    await writeFile(path.join(dir, 'ignored.txt'), 'x');
    await writeFile(path.join(dir, '.dockerignore'), 'ignored.txt\n');
    const progress: BuildProgress[] = [];
    const id = await buildImage(
      docker,
      { service: 's', contextDir: dir, dockerfile: 'Dockerfile', image: tag, buildArgs: {}, labels: { 'dev.devloop.test': '1' } },
      (p) => progress.push(p),
    );
    const info = await docker.getImage(tag).inspect();
    expect(info.Id).toBe(id);
    expect(info.Config.Labels?.['dev.devloop.test']).toBe('1');
    expect(progress.filter((p) => p.kind === 'step').map((p) => (p.kind === 'step' ? p.instruction : ''))).toEqual([
      'FROM scratch',
      'COPY hello.txt /hello.txt',
      // The classic builder applies API labels as one extra step.
      'LABEL dev.devloop.test=1',
    ]);
  });

  it('names the failing step with its Dockerfile line and keeps its last output', async () => {
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n\nCOPY hello.txt /hello.txt\nCOPY ignored.txt /x\n');
    const err = await buildImage(
      docker,
      { service: 's', contextDir: dir, dockerfile: 'Dockerfile', image: tag, buildArgs: {}, labels: {} },
      () => {},
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailure);
    const failure = err as BuildFailure;
    expect(failure.step).toBe(`Step 3/3 : COPY ignored.txt /x (${path.basename(dir)}/Dockerfile:4)`);
    expect(failure.message).toMatch(/ignored\.txt/);
  });

  it('reports a Dockerfile the daemon cannot parse as a build failure at its line, not as a bug', async () => {
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n\nFORM scratch\n');
    const err = await buildImage(
      docker,
      { service: 's', contextDir: dir, dockerfile: 'Dockerfile', image: tag, buildArgs: {}, labels: {}, dockerfileLabel: 'svc/Dockerfile' },
      () => {},
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailure);
    expect((err as BuildFailure).step).toBe('svc/Dockerfile:3');
    expect((err as BuildFailure).message).toMatch(/unknown instruction: FORM/i);
    expect((err as BuildFailure).message).not.toMatch(/HTTP code/);
  });
});

describe('buildImage with a Dockerfile outside the context', () => {
  it('sends it under a generated name and builds', async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(dir, 'ctx'), { recursive: true });
    await mkdir(path.join(dir, 'build'), { recursive: true });
    await writeFile(path.join(dir, 'ctx', 'x.txt'), 'x');
    await writeFile(path.join(dir, 'build', 'Dockerfile'), 'FROM scratch\nCOPY x.txt /x.txt\n');
    const id = await buildImage(
      docker,
      { service: 's', contextDir: path.join(dir, 'ctx'), dockerfile: '../build/Dockerfile', image: tag, buildArgs: {}, labels: {} },
      () => {},
    );
    expect((await docker.getImage(tag).inspect()).Id).toBe(id);
  });
});

describe('buildImage abort', () => {
  it('stops a running build when its signal aborts', async () => {
    try {
      await docker.getImage('debian:bookworm-slim').inspect();
    } catch {
      throw new Error('this test needs the debian:bookworm-slim image (npm run infra:up creates it)');
    }
    await writeFile(path.join(dir, 'Dockerfile'), `FROM debian:bookworm-slim\nRUN echo started-${Date.now()} && sleep 60\n`);
    const controller = new AbortController();
    const err = await buildImage(
      docker,
      { service: 's', contextDir: dir, dockerfile: 'Dockerfile', image: `${tag}-aborted`, buildArgs: {}, labels: {}, signal: controller.signal },
      (p) => {
        if (p.kind === 'log' && p.line.startsWith('started-')) controller.abort();
      },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    await expect(docker.getImage(`${tag}-aborted`).inspect()).rejects.toThrow();
  });
});

describe('parseDockerfileInstructions', () => {
  it('joins continuation lines and skips comments', () => {
    expect(parseDockerfileInstructions('# syntax\nFROM x AS b\n\nRUN a \\\n  # inner\n  && b\nCMD ["x"]')).toEqual([
      { line: 2, text: 'FROM x AS b' },
      { line: 4, text: 'RUN a && b' },
      { line: 7, text: 'CMD ["x"]' },
    ]);
  });
});
