import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuildProgress, type BuildRequest } from './build.js';
import { ContextChanged } from './failures.js';
import { DockerBuilder } from './builder.js';
import { dockerClient } from './docker.js';
import type { TransferReport } from './filesync.js';

// BuildKit fetching the context through a session on the real engine: the second build of a context transfers only
// what changed, and the image holds what the tar would have put there.
const docker = await dockerClient();
const BASE = 'debian:bookworm-slim';
const tags = { session: `fs-session/ctx:${process.pid}`, tar: `fs-session/tar:${process.pid}`, builder: `fs-session/builder:${process.pid}` };
let dir: string;

beforeAll(async () => {
  await docker.getImage(BASE).inspect().catch((err: unknown) => {
    throw new Error(`this test needs the Docker engine with ${BASE} (npm run infra:up): ${(err as Error).message}`);
  });
  dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-session-'));
  await mkdir(path.join(dir, 'vendor', 'mod'), { recursive: true });
  await mkdir(path.join(dir, 'cmd'));
  await mkdir(path.join(dir, 'logs'));
  await writeFile(path.join(dir, 'Dockerfile'), `FROM ${BASE}\nCOPY . /ctx/\n`);
  await writeFile(path.join(dir, '.dockerignore'), 'logs\n!logs/keep.txt\nsecret.txt\n');
  await writeFile(path.join(dir, 'vendor', 'mod', 'big.bin'), randomBytes(3 * 1024 * 1024));
  await writeFile(path.join(dir, 'cmd', 'main.go'), 'package main\n\nfunc main() {}\n');
  await writeFile(path.join(dir, 'run.sh'), '#!/bin/sh\necho run\n', { mode: 0o755 });
  await writeFile(path.join(dir, 'secret.txt'), 'never sent');
  await writeFile(path.join(dir, 'logs', 'keep.txt'), 'kept');
  await writeFile(path.join(dir, 'logs', 'drop.txt'), 'dropped');
  await symlink('cmd/main.go', path.join(dir, 'main-link'));
});
afterAll(async () => {
  for (const tag of Object.values(tags)) await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

function request(image: string, sent?: TransferReport[]): BuildRequest {
  return {
    service: 'ctx',
    contextDir: dir,
    dockerfile: 'Dockerfile',
    image,
    buildArgs: {},
    labels: {},
    ...(sent ? { onContextSent: (r: TransferReport) => sent.push(r) } : {}),
  };
}

/** Runs a command in a container of the image and returns what it printed. */
async function inImage(image: string, script: string): Promise<string> {
  return (await execa('docker', ['run', '--rm', image, 'sh', '-c', script])).stdout;
}

/**
 * Every path under /ctx with its type and mode, and for files and links their size and modification time (whole
 * seconds). Directories' times are left out: from a tar, a directory .dockerignore leaves out (but not its kept
 * file) is made when unpacked, and BuildKit's kept copy of a context dates a directory by its last change there.
 */
const LIST =
  "cd /ctx && find . -mindepth 1 | sort | while read -r p; do if [ -d \"$p\" ] && [ ! -L \"$p\" ]; then stat -c '%n %F %a' \"$p\"; else stat -c '%n %F %a %s %Y' \"$p\"; fi; done";

/** The transfer of the whole context (BuildKit also asks for the context's .dockerignore alone). */
const contextTransfer = (sent: TransferReport[]) => sent.filter((r) => r.dir === 'context').sort((a, b) => b.offered - a.offered)[0]!;

describe('BuildKit builds through a session', () => {
  it('sends every file of the context once, then only the changed file, and the image holds the change', async () => {
    const first: TransferReport[] = [];
    await buildImage(docker, request(tags.session, first), () => {}, 'buildkit', 'session');
    expect(first.map((r) => r.dir).sort()).toEqual(['context', 'context', 'dockerfile']);
    expect(contextTransfer(first).requested.sort()).toEqual(
      ['.dockerignore', 'Dockerfile', 'cmd/main.go', 'logs/keep.txt', 'run.sh', 'vendor/mod/big.bin'].sort(),
    );
    expect(contextTransfer(first).bytes).toBeGreaterThan(3 * 1024 * 1024);

    await writeFile(path.join(dir, 'cmd', 'main.go'), 'package main\n\nfunc main() { println("changed") }\n');
    const second: TransferReport[] = [];
    await buildImage(docker, request(tags.session, second), () => {}, 'buildkit', 'session');
    expect(contextTransfer(second).requested).toEqual(['cmd/main.go']);
    expect(contextTransfer(second).bytes).toBe(Buffer.byteLength('package main\n\nfunc main() { println("changed") }\n'));
    // The Dockerfile and .dockerignore did not change either: nothing of them travels.
    expect(second.filter((r) => r !== contextTransfer(second)).flatMap((r) => r.requested)).toEqual([]);

    expect(await inImage(tags.session, 'cat /ctx/cmd/main.go')).toBe('package main\n\nfunc main() { println("changed") }');
    expect(await inImage(tags.session, 'cmp -s /ctx/vendor/mod/big.bin /ctx/vendor/mod/big.bin && wc -c < /ctx/vendor/mod/big.bin')).toBe(
      String(3 * 1024 * 1024),
    );
  });

  it('puts in the image exactly what the tar context puts there: the same paths, types, modes, sizes and times', async () => {
    await buildImage(docker, request(tags.session), () => {}, 'buildkit', 'session');
    await buildImage(docker, request(tags.tar), () => {}, 'buildkit', 'tar');
    const fromSession = await inImage(tags.session, LIST);
    expect(fromSession).toBe(await inImage(tags.tar, LIST));
    expect(fromSession).toContain('./main-link symbolic link 777');
    expect(fromSession).toMatch(/\.\/run\.sh regular file 755 /);
    expect(fromSession).not.toContain('secret.txt');
    expect(fromSession).not.toContain('drop.txt');
    expect(fromSession).toContain('./logs directory 755');
  });

  it('sends a file COPY names with a non-ASCII name (the daemon asks for it by that name)', async () => {
    const other = await mkdtemp(path.join(os.tmpdir(), 'devloop-session-utf8-'));
    try {
      await writeFile(path.join(other, 'Dockerfile'), `FROM ${BASE}\nCOPY héllo-wörld.txt /x.txt\n`);
      await writeFile(path.join(other, 'héllo-wörld.txt'), 'grüß dich');
      await writeFile(path.join(other, 'unused.txt'), 'not asked for');
      const sent: TransferReport[] = [];
      await buildImage(docker, { ...request(tags.session, sent), contextDir: other }, () => {}, 'buildkit', 'session');
      expect(sent.flatMap((r) => r.requested)).toContain('héllo-wörld.txt');
      expect(await inImage(tags.session, 'cat /x.txt')).toBe('grüß dich');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('fails as ContextChanged when the context is gone by the time the daemon asks for it, as the tar does', async () => {
    const gone = await mkdtemp(path.join(os.tmpdir(), 'devloop-session-gone-'));
    await rm(gone, { recursive: true });
    const err = await buildImage(docker, { ...request(tags.session), contextDir: gone }, () => {}, 'buildkit', 'session').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContextChanged);
    expect((err as ContextChanged).file).toBe('.');
  });

  it('is how DockerBuilder sends contexts to BuildKit, with nothing to report', async () => {
    const progress: BuildProgress[] = [];
    const sent: TransferReport[] = [];
    await new DockerBuilder({}).build(request(tags.builder, sent), (p) => progress.push(p));
    expect(progress.filter((p) => p.kind === 'notice')).toEqual([]);
    // The same context as above: BuildKit kept it, so nothing travels.
    expect(contextTransfer(sent).requested).toEqual([]);
    expect(await inImage(tags.builder, 'cat /ctx/logs/keep.txt')).toBe('kept');
  });
});
