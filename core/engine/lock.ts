import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors.js';

export interface RunLock {
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  command: string;
  since: string;
}

/** Where run locks live: per user, outside any repository (devloop never writes into the user's tree). */
export function lockDir(): string {
  return path.join(process.env.XDG_RUNTIME_DIR || path.join(os.tmpdir(), `devloop-${os.userInfo().uid}`), 'locks');
}

/**
 * One `devloop up` at a time per project, developer and target: a second one would build and apply the same objects
 * concurrently. The lock is a file naming its holder's pid; a holder that no longer runs (kill -9) leaves a stale
 * lock that the next run takes over.
 */
export async function acquireRunLock(what: { project: string; developer: string; where: string }, command: string): Promise<RunLock> {
  const dir = lockDir();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = createHash('sha256').update(JSON.stringify([what.project, what.developer, what.where])).digest('hex').slice(0, 24);
  const file = path.join(dir, `${key}.lock`);
  const me: Holder = { pid: process.pid, command, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(JSON.stringify(me));
      await handle.close();
      return {
        release: async () => {
          // Only our own lock: a run that took over a stale one owns it now.
          const now = await readHolder(file);
          if (now?.pid === process.pid) await rm(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(file);
    if (holder && holder.pid !== process.pid && isRunning(holder.pid)) {
      throw new UserError(
        `another devloop ${holder.command} (pid ${holder.pid}, since ${holder.since}) is running for ${what.project} as ${what.developer} on ${what.where}`,
        { hint: `stop it first (Ctrl-C in its terminal, or kill ${holder.pid}); two at once would build and apply the same objects` },
      );
    }
    // Stale (its holder died) or unreadable: remove it and try again.
    await rm(file, { force: true });
  }
  throw new UserError(`could not take the run lock ${file}`, { hint: 'another devloop is starting at the same moment; try again' });
}

async function readHolder(file: string): Promise<Holder | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Holder;
  } catch {
    // Gone, or half-written by a run that died: no holder to respect.
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
