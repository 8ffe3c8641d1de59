import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../support/env.js';
import { buildCli, devloop, explain } from '../up/harness.js';

// `devloop demo`: the README's one command from nothing to a service on local Docker.
describe('devloop demo', () => {
  const developer = uniqueName('e2e-demo');
  let parent: string;
  let dir: string;

  beforeAll(async () => {
    buildCli();
    parent = await mkdtemp(path.join(os.tmpdir(), 'devloop-demo-'));
    dir = path.join(parent, 'demo');
  });

  afterAll(async () => {
    if (dir) await devloop(dir, developer, ['down', '--target', 'docker']);
    if (parent) await rm(parent, { recursive: true, force: true });
  });

  it('creates a repository with service hello and runs it on local Docker', async () => {
    const run = await devloop(parent, developer, ['demo', 'demo', '--once', '--json'], 600_000);
    expect(run.code, explain(run)).toBe(0);
    expect(run.stderr).toMatch(/demo repository: .*demo \(service hello from the node-http template\)/);
    expect(await readdir(dir)).toEqual(expect.arrayContaining(['.git', 'devloop.yaml', 'services']));
    const port = /curl -s localhost:(\d+)\/v1\/hello/.exec(run.stderr)![1];
    const body = await waitFor('hello to answer', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/v1/hello`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
      return res?.ok ? res.json() : undefined;
    });
    expect(body).toEqual({ message: 'Hello, world!' });
  }, 620_000);

  it('refuses a directory that is not empty, and leaves it as it is', async () => {
    const taken = path.join(parent, 'taken');
    await mkdir(taken);
    await writeFile(path.join(taken, 'notes.txt'), 'mine\n');
    const run = await devloop(parent, developer, ['demo', 'taken']);
    expect(run.code, explain(run)).toBe(2);
    expect(run.stderr).toMatch(/taken already exists and is not empty/);
    expect(await readdir(taken)).toEqual(['notes.txt']);
  });
});
