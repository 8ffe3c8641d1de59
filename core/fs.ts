import { lstat, stat } from 'node:fs/promises';

/** Whether `p` exists, following symlinks (a dangling link does not exist). */
export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    // Any reason it cannot be stat'ed means: not there for devloop.
    return false;
  }
}

/** Whether `p` itself exists, without following a symlink at `p` (a dangling link exists). */
export async function existsNoFollow(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    // Any reason it cannot be lstat'ed means: not there for devloop.
    return false;
  }
}
