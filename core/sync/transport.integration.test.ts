import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Dockerode from 'dockerode';
import { dockerClient } from '../build/docker.js';
import { dockerExec, runToEnd, type ContainerExec } from './channel.js';
import { ArchiveTransport, StreamTransport, TarTransport, type SyncOp, type SyncTransport } from './transport.js';

// Real containers on the real Docker engine: one with perl (the stream), one without perl (the tar fallback).
const docker = await dockerClient();
const BASE = 'debian:bookworm-slim';
const NO_PERL = `devloop-test/no-perl:${process.pid}`;
const containers: Dockerode.Container[] = [];

async function startContainer(image: string): Promise<{ name: string; exec: ContainerExec }> {
  const name = `devloop-sync-test-${process.pid}-${containers.length}`;
  const c = await docker.createContainer({ name, Image: image, Cmd: ['sleep', 'infinity'], Labels: { 'devloop.dev/test': 'sync' } });
  containers.push(c);
  await c.start();
  // An outward symlink already inside the container, and a file outside the roots that must never change.
  const exec = dockerExec(docker, name);
  await runToEnd(exec, ['sh', '-c', 'mkdir -p /app/src /outside && echo keep > /outside/keep && ln -s /outside /app/src/out']);
  return { name, exec };
}

const sh = async (exec: ContainerExec, script: string) => (await runToEnd(exec, ['sh', '-c', script])).output;
const w = (rel: string, text: string, mode = 0o644, root = 0): SyncOp => ({ kind: 'write', root, rel, mode, data: Buffer.from(text) });

beforeAll(async () => {
  try {
    await docker.ping();
    await docker.getImage(BASE).inspect();
  } catch (err) {
    throw new Error(`these tests need the Docker engine with ${BASE} (npm run infra:up creates it): ${(err as Error).message}`);
  }
  const { default: tar } = await import('tar-stream');
  const pack = tar.pack();
  pack.entry({ name: 'Dockerfile' }, `FROM ${BASE}\nRUN rm -f /usr/bin/perl /usr/bin/perl5*\n`);
  pack.finalize();
  const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, { t: NO_PERL, rm: true });
  await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve(undefined))));
});

afterAll(async () => {
  await Promise.all(containers.map((c) => c.remove({ force: true }).catch(() => {})));
  await docker.getImage(NO_PERL).remove({ force: true }).catch(() => {});
});

describe('the persistent sync stream', () => {
  let exec: ContainerExec;
  let t: SyncTransport;
  beforeAll(async () => {
    ({ exec } = await startContainer(BASE));
    t = await StreamTransport.open(exec, ['/app/src', '/srv/static']);
  });
  afterAll(() => t.close());

  it('writes many files per batch, creating directories and keeping the exec bit', async () => {
    const ops = Array.from({ length: 50 }, (_, i) => w(`deep/dir${i % 5}/f${i}.txt`, `content ${i}\n`));
    ops.push(w('run.sh', '#!/bin/sh\necho hi\n', 0o755), w('odd name\nwith newline', 'x'), w('other.txt', 'second root', 0o600, 1));
    expect(await t.apply(ops)).toEqual({ errors: [] });
    expect(await sh(exec, 'cat /app/src/deep/dir3/f48.txt; stat -c %a /app/src/run.sh /srv/static/other.txt; /app/src/run.sh')).toBe('content 48\n755\n600\nhi\n');
    expect(await sh(exec, 'ls -b /app/src')).toBe('deep\nodd\\ name\\nwith\\ newline\nout\nrun.sh\n');
  });

  it('replaces files atomically (temp file + rename: a new inode, no temp files left)', async () => {
    await t.apply([w('atomic.txt', 'one')]);
    const before = await sh(exec, 'stat -c %i /app/src/atomic.txt');
    await t.apply([w('atomic.txt', 'two')]);
    expect(await sh(exec, 'cat /app/src/atomic.txt; echo; stat -c %i /app/src/atomic.txt')).not.toContain(before);
    expect(await sh(exec, 'find / -xdev -name ".devloop-sync.*" 2>/dev/null | wc -l')).toBe('0\n');
  });

  it('applies deletions of files and directories', async () => {
    expect(await t.apply([{ kind: 'delete', root: 0, rel: 'deep/dir1' }, { kind: 'delete', root: 0, rel: 'run.sh' }, { kind: 'delete', root: 0, rel: 'never-existed' }])).toEqual({ errors: [] });
    expect(await sh(exec, 'ls /app/src/deep; test -e /app/src/run.sh || echo gone')).toBe('dir0\ndir2\ndir3\ndir4\ngone\n');
  });

  it('refuses paths and symlinks that leave the root, writes nothing outside, and keeps going', async () => {
    const r = await t.apply([
      w('../escaped.txt', 'x'),
      w('/etc/escaped.txt', 'x'),
      w('out/keep', 'overwritten'),
      w('out/new/file', 'x'),
      { kind: 'link', root: 0, rel: 'link-out', target: '../../etc/passwd' },
      { kind: 'link', root: 0, rel: 'abs-link', target: '/etc/passwd' },
      { kind: 'delete', root: 0, rel: 'out/keep' },
      w('after.txt', 'still works'),
    ]);
    expect(r.errors).toHaveLength(7);
    expect(r.errors.join('\n')).toMatch(/\.\./);
    expect(r.errors.join('\n')).toMatch(/leads outside/);
    expect(await sh(exec, 'cat /outside/keep; ls /outside; ls /app | grep -c escaped; ls /etc | grep -c escaped; cat /app/src/after.txt')).toBe(
      'keep\nkeep\n0\n0\nstill works',
    );
  });

  it('creates symlinks that stay inside the root', async () => {
    await t.apply([w('target.txt', 'via link'), { kind: 'link', root: 0, rel: 'sub/link', target: '../target.txt' }]);
    expect(await sh(exec, 'cat /app/src/sub/link; readlink /app/src/sub/link')).toBe('via link../target.txt\n');
  });

  it('lists a root: files and symlinks, not following links, names of any bytes', async () => {
    const listed = await t.list(1);
    expect(listed).toEqual(['other.txt']);
    const all = await t.list(0);
    expect(all).toEqual(expect.arrayContaining(['odd name\nwith newline', 'out', 'sub/link', 'deep/dir0/f0.txt']));
    expect(all!.some((p) => p.startsWith('out/'))).toBe(false);
  });

  it('carries a large file intact', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    await t.apply([{ kind: 'write', root: 0, rel: 'big.bin', mode: 0o644, data: big }]);
    expect(await sh(exec, 'stat -c %s /app/src/big.bin')).toBe(`${big.length}\n`);
  });

  it('reports the end of the stream when the container goes away', async () => {
    const other = await startContainer(BASE);
    const t2 = await StreamTransport.open(other.exec, ['/app/src']);
    await docker.getContainer(other.name).kill();
    expect(await t2.ended).toMatch(/ended/);
    await expect(t2.apply([w('x', 'y')])).rejects.toThrow(/ended/);
  });
});

describe('the fallbacks', () => {
  it('has no receiver where perl is missing, and tar over exec carries writes and deletions', async () => {
    const { exec } = await startContainer(NO_PERL);
    await expect(StreamTransport.open(exec, ['/app/src'])).rejects.toThrow(/did not start/);
    const t = await TarTransport.probe(exec, ['/app/src']);
    expect(await t.apply([w('a/b.txt', 'tar'), w('x.sh', 'exit 0', 0o755)])).toEqual({ errors: [] });
    await t.apply([{ kind: 'delete', root: 0, rel: 'a' }]);
    expect(await sh(exec, 'ls /app/src; stat -c %a /app/src/x.sh')).toBe('out\nx.sh\n755\n');
  });

  it('Docker’s archive API writes into the container', async () => {
    const { name, exec } = await startContainer(NO_PERL);
    const t = new ArchiveTransport(docker, name, exec, ['/app/src', '/brand/new']);
    expect(await t.apply([w('a/b.txt', 'archive'), w('c.txt', 'new root', 0o640, 1)])).toEqual({ errors: [] });
    expect(await sh(exec, 'cat /app/src/a/b.txt /brand/new/c.txt; stat -c %a /brand/new/c.txt')).toBe('archivenew root640\n');
  });
});
