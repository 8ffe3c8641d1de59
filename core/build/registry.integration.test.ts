import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerClient } from './docker.js';
import { pushImage } from './push.js';
import { existsInRegistry, parseImageRef, registryAuth, registryBaseUrl, repositoryOf } from './registry.js';

describe('image references', () => {
  it('splits registry, repository and tag', () => {
    expect(parseImageRef('127.0.0.1:5000/shop/orders:abc')).toEqual({ registry: '127.0.0.1:5000', repository: 'shop/orders', tag: 'abc' });
    expect(parseImageRef('shop/orders')).toEqual({ registry: 'docker.io', repository: 'shop/orders', tag: 'latest' });
    expect(parseImageRef('busybox:1.36')).toEqual({ registry: 'docker.io', repository: 'library/busybox', tag: '1.36' });
    expect(repositoryOf('registry.example.com/shop/orders:1')).toBe('shop/orders');
    expect(repositoryOf('busybox')).toBe('busybox');
    expect(registryBaseUrl('127.0.0.1:5000')).toBe('http://127.0.0.1:5000');
    expect(registryBaseUrl('registry.example.com')).toBe('https://registry.example.com');
  });
});

describe('registry credentials from Docker config', () => {
  let dir: string;
  const saved = { DOCKER_CONFIG: process.env.DOCKER_CONFIG, PATH: process.env.PATH };
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-dockercfg-'));
    // A stand-in credential helper (the real ones talk to OS keychains): answers for one registry only.
    const helper = path.join(dir, 'docker-credential-standin');
    await writeFile(
      helper,
      '#!/bin/sh\nread host\nif [ "$host" = "helper.example:5000" ]; then echo \'{"Username":"ada","Secret":"s3cret"}\'; else echo "credentials not found in native keychain"; exit 1; fi\n',
    );
    await chmod(helper, 0o755);
    await writeFile(
      path.join(dir, 'config.json'),
      JSON.stringify({
        auths: { 'https://inline.example': { auth: Buffer.from('bob:pw:with:colons').toString('base64') } },
        credHelpers: { 'helper.example:5000': 'standin' },
      }),
    );
    process.env.DOCKER_CONFIG = dir;
    process.env.PATH = `${dir}${path.delimiter}${saved.PATH}`;
  });
  afterAll(async () => {
    process.env.DOCKER_CONFIG = saved.DOCKER_CONFIG;
    if (saved.DOCKER_CONFIG === undefined) delete process.env.DOCKER_CONFIG;
    process.env.PATH = saved.PATH;
    await rm(dir, { recursive: true, force: true });
  });

  it('reads inline auths, runs credential helpers, and is anonymous otherwise', async () => {
    expect(await registryAuth('inline.example')).toEqual({ username: 'bob', password: 'pw:with:colons', serveraddress: 'inline.example' });
    expect(await registryAuth('helper.example:5000')).toEqual({ username: 'ada', password: 's3cret', serveraddress: 'helper.example:5000' });
    expect(await registryAuth('elsewhere.example')).toBeUndefined();
  });
});

describe('registry push and existence check (real registry)', () => {
  const registry = process.env.DEVLOOP_REGISTRY ?? '127.0.0.1:5000';
  const ref = `${registry}/devloop-test/pushed:${process.pid}-${Date.now().toString(36)}`;

  it('pushes an image and then finds its tag', async () => {
    const docker = await dockerClient();
    try {
      await fetch(`http://${registry}/v2/`, { signal: AbortSignal.timeout(3000) });
    } catch (err) {
      throw new Error(`this test needs the registry at ${registry} (npm run infra:up): ${(err as Error).message}`);
    }
    const { buildImage } = await import('./build.js');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-push-'));
    try {
      await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\n');
      await writeFile(path.join(dir, 'a.txt'), ref);
      await buildImage(docker, { service: 't', contextDir: dir, dockerfile: 'Dockerfile', image: ref, buildArgs: {}, labels: {} }, () => {});
      expect(await existsInRegistry(ref)).toBe(false);
      const progress: string[] = [];
      const digest = await pushImage(docker, ref, undefined, (m) => progress.push(m));
      expect(digest).toMatch(/^sha256:/);
      expect(progress.some((p) => /Pushed|already exists/.test(p))).toBe(true);
      expect(await existsInRegistry(ref)).toBe(true);
    } finally {
      await docker.getImage(ref).remove({ force: true }).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    }
  });
});
