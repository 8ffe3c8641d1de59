import { createHash } from 'node:crypto';
import { lstat, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { ExternalError } from '../errors.js';
import { GitRepo, splitNul } from '../workspace/git.js';

/** One file of the working tree as a build would see it. */
export interface FileEntry {
  /** Project-relative POSIX path. */
  path: string;
  /** Git file mode: 100644, 100755, 120000 (symlink) or 160000 (submodule). */
  mode: string;
  /** Git object id of the content: from the index when unmodified, hashed by devloop otherwise. */
  oid: string;
}

/** A path that differs from HEAD in the working tree or index. */
export interface WorkingChange {
  path: string;
  kind: 'modified' | 'added' | 'deleted' | 'renamed' | 'untracked' | 'conflicted';
  /** On the new path of a rename: where it came from. */
  renamedFrom?: string;
  /** On the old path of a rename: where it went. */
  renamedTo?: string;
}

export interface RepoFacts {
  git: GitRepo;
  /** Absolute git top level. */
  top: string;
  /** The project root relative to the top level, with a trailing "/" ("" when the same). */
  prefix: string;
  objectFormat: 'sha1' | 'sha256';
  shallow: boolean;
  /** The commit HEAD points at, or null in a repository without commits. */
  head: string | null;
}

export interface Snapshot {
  /** Every file of the working tree that git tracks or would track (untracked, not ignored), sorted by path. */
  files: FileEntry[];
  /** `files[i].path`, for binary search. */
  paths: string[];
  /** Differences from HEAD: staged, unstaged, untracked. */
  changes: WorkingChange[];
  /** How many files devloop hashed itself (modified or untracked). */
  hashed: number;
}

/** Facts about the repository holding `root`; fails with a UserError-worthy message when there is none. */
export async function readRepoFacts(git: GitRepo): Promise<RepoFacts> {
  const [facts, head] = await Promise.all([
    git.run(['rev-parse', '--show-toplevel', '--show-prefix', '--show-object-format', '--is-shallow-repository'], { allowExit: [128] }),
    git.run(['rev-parse', '-q', '--verify', 'HEAD^{commit}'], { allowExit: [1, 128] }),
  ]);
  if (facts === null) throw new NotAGitRepository(git.dir);
  const [top = '', prefix = '', format = 'sha1', shallow = 'false'] = facts.replace(/\n$/, '').split('\n');
  return {
    git,
    top,
    prefix,
    objectFormat: format === 'sha256' ? 'sha256' : 'sha1',
    shallow: shallow === 'true',
    head: head?.trim() || null,
  };
}

export class NotAGitRepository extends ExternalError {
  constructor(readonly dir: string) {
    super(`${dir} is not inside a git working tree`);
  }
}

/**
 * The working tree in two git calls: `ls-files --stage` for the index (object ids of unmodified files are
 * reused, never re-hashed) and `status --porcelain=v2` for what differs; only modified and untracked files
 * are read and hashed, the way git would hash them.
 */
export async function readSnapshot(facts: RepoFacts, root: string): Promise<Snapshot> {
  const { git } = facts;
  const [staged, status] = await Promise.all([
    git.output(['ls-files', '--stage', '-z']),
    git.output(['status', '--porcelain=v2', '-z', '--untracked-files=all', '--ignore-submodules=dirty', '--', '.']),
  ]);

  const byPath = new Map<string, FileEntry>();
  for (const record of splitNul(staged)) {
    // "<mode> <oid> <stage>\t<path>"
    const tab = record.indexOf('\t');
    const meta = record.slice(0, tab);
    const p = record.slice(tab + 1);
    const [mode = '', oid = ''] = meta.split(' ');
    byPath.set(p, { path: p, mode, oid });
  }

  const changes: WorkingChange[] = [];
  const toHash: string[] = [];
  const strip = (p: string) => (facts.prefix && p.startsWith(facts.prefix) ? p.slice(facts.prefix.length) : p);
  const fields = splitNul(status);
  for (let i = 0; i < fields.length; i++) {
    const rec = fields[i]!;
    const type = rec[0];
    if (type === '?') {
      const p = strip(rec.slice(2));
      if (p.endsWith('/')) continue; // an untracked nested repository: not ours to look into
      changes.push({ path: p, kind: 'untracked' });
      toHash.push(p);
    } else if (type === '1' || type === '2' || type === 'u') {
      const parts = rec.split(' ');
      const xy = parts[1] ?? '..';
      const n = type === '1' ? 8 : type === '2' ? 9 : 10;
      const p = strip(parts.slice(n).join(' '));
      const wtMode = type === 'u' ? parts[6] : parts[5];
      if (type === '2') {
        const orig = strip(fields[++i]!);
        changes.push({ path: p, kind: 'renamed', renamedFrom: orig }, { path: orig, kind: 'renamed', renamedTo: p });
      } else {
        changes.push({ path: p, kind: type === 'u' ? 'conflicted' : kindOf(xy) });
      }
      if (xy[1] === 'D') byPath.delete(p);
      else if ((xy[1] !== '.' || type === 'u') && wtMode !== '160000') toHash.push(p);
    }
  }

  await hashFiles(root, toHash, facts.objectFormat, byPath);
  const paths = [...byPath.keys()].sort();
  return { files: paths.map((p) => byPath.get(p)!), paths, changes, hashed: toHash.length };
}

function kindOf(xy: string): WorkingChange['kind'] {
  if (xy.includes('D')) return 'deleted';
  if (xy[0] === 'A' || xy[1] === 'A') return 'added';
  return 'modified';
}

/** Hashes files as git blobs (same ids git would give them), a few at a time. */
async function hashFiles(root: string, files: string[], format: 'sha1' | 'sha256', into: Map<string, FileEntry>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const p = files[next++]!;
      const entry = await hashFile(root, p, format);
      if (entry) into.set(p, entry);
      else into.delete(p);
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, files.length) }, worker));
}

export async function hashFile(root: string, p: string, format: 'sha1' | 'sha256'): Promise<FileEntry | null> {
  const abs = path.join(root, p);
  try {
    const st = await lstat(abs);
    let content: Buffer;
    let mode: string;
    if (st.isSymbolicLink()) {
      content = Buffer.from(await readlink(abs));
      mode = '120000';
    } else if (st.isFile()) {
      content = await readFile(abs);
      mode = st.mode & 0o111 ? '100755' : '100644';
    } else {
      return null;
    }
    const oid = createHash(format).update(`blob ${content.length}\0`).update(content).digest('hex');
    return { path: p, mode, oid };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null; // deleted since git looked
    throw err;
  }
}

/** The slice of sorted `paths` at or below `dir` ("" = everything): [start, end). */
export function rangeUnder(paths: readonly string[], dir: string): [number, number] {
  if (dir === '') return [0, paths.length];
  const exact = lowerBound(paths, dir);
  if (paths[exact] === dir) return [exact, exact + 1]; // a file (dependsOn may name one)
  // Everything starting with "dir/" sorts from "dir/" up to "dir0" ('0' follows '/').
  return [lowerBound(paths, dir + '/'), lowerBound(paths, dir + '0')];
}

function lowerBound(arr: readonly string[], key: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
