import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../errors.js';
import { acquireRunLock, lockDir } from './lock.js';

describe('the run lock', () => {
  const saved = process.env.XDG_RUNTIME_DIR;
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'devloop-lock-'));
    process.env.XDG_RUNTIME_DIR = dir;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  });
  const what = { project: 'shop', developer: 'ada', where: 'kind-dev/shop-ada' };

  it('lets one run hold it, refuses a second while a live process holds it, and is free again after release', async () => {
    // Another live process holds the lock (a real process; the file names it as another devloop run would).
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    await acquireRunLock(what, 'up');
    const [file] = readdirSync(lockDir());
    writeFileSync(path.join(lockDir(), file!), JSON.stringify({ pid: holder.pid, command: 'up', since: '2026-11-30T09:00:00.000Z' }));
    try {
      const err = await acquireRunLock(what, 'up').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).message).toBe(`another devloop up (pid ${holder.pid}, since 2026-11-30T09:00:00.000Z) is running for shop as ada on kind-dev/shop-ada`);
      // Another developer, or another target, is not held up.
      await (await acquireRunLock({ ...what, developer: 'bob' }, 'up')).release();
      await (await acquireRunLock({ ...what, where: 'local Docker' }, 'up')).release();
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    // Its holder was killed: the lock is stale and is taken over.
    const lock = await acquireRunLock(what, 'up');
    await lock.release();
    expect(readdirSync(lockDir())).toEqual([]);
  });
});
