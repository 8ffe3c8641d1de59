import { createHash } from 'node:crypto';
import { lstat, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { GitRepo } from '../workspace/git.js';
import { splitNul } from '../workspace/git-exec.js';
import { FACTS_ARGS, LS_FILES_ARGS, STATUS_ARGS } from './tree-reads.js';

export { FACTS_ARGS, LS_FILES_ARGS, STATUS_ARGS } from './tree-reads.js';

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
  /** Absolute path of this working tree's git directory (where its index lives). */
  gitDir: string;
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

/**
 * Every git read `devloop plan` needs that does not depend on another's answer, started at once so they overlap
 * each other (and whatever the caller does meanwhile, such as parsing devloop.yaml).
 */
export interface RepoRead {
  root: string;
  git: GitRepo;
  facts: Promise<RepoFacts>;
  snapshot: Promise<Snapshot>;
  /** Output of `for-each-ref` over the default-branch candidates (see base.ts). */
  defaultRefs: Promise<string>;
}


/** Facts about the repository holding `root`; fails with a UserError-worthy message when there is none. */
export async function readRepoFacts(git: GitRepo): Promise<RepoFacts> {
  // One call in the usual case; a repository without commits makes "HEAD" fail, then ask again without it.
  const out = await git.run([...FACTS_ARGS, 'HEAD^{commit}'], { allowExit: [128] });
  if (out !== null) return { git, ...parseRepoFacts(out, true) };
  const noHead = await git.run(FACTS_ARGS, { allowExit: [128] });
  if (noHead === null) throw new NotAGitRepository(git.dir);
  return { git, ...parseRepoFacts(noHead, false) };
}

/** RepoFacts (but the GitRepo) from the output of `git rev-parse <FACTS_ARGS> [HEAD^{commit}]`. */
export function parseRepoFacts(out: string, withHead: boolean): Omit<RepoFacts, 'git'> {
  const lines = out.replace(/\n$/, '').split('\n');
  const head = withHead ? (lines.pop() ?? null) : null;
  const [top = '', prefix = '', format = 'sha1', shallow = 'false', gitDir = ''] = lines;
  return { top, prefix, objectFormat: format === 'sha256' ? 'sha256' : 'sha1', shallow: shallow === 'true', gitDir, head: head || null };
}

export class NotAGitRepository extends UserError {
  constructor(readonly dir: string) {
    super(`${dir} is not inside a git working tree`, {
      hint: 'devloop compares with git history: run it in a clone, or `git init` and commit',
    });
  }
}

/**
 * The working tree in two git calls: `ls-files --stage` for the index (object ids of unmodified files are
 * reused, never re-hashed) and `status --porcelain=v2` for what differs; only modified and untracked files
 * are read and hashed, the way git would hash them. The git calls start at once; `facts` is awaited only to
 * interpret their output.
 */
export async function readSnapshot(git: GitRepo, facts: Promise<RepoFacts>, root: string): Promise<Snapshot> {
  const [staged, status, f] = await Promise.all([git.output(LS_FILES_ARGS), git.output(STATUS_ARGS), facts]);
  return buildSnapshot(root, staged, status, f);
}


/** What `git status` (STATUS_ARGS) says, as changes, and the files whose working-tree content differs from the index. */
export interface ParsedStatus {
  changes: WorkingChange[];
  /** Modified, added, renamed, conflicted and untracked files: their content must be read (and hashed). */
  toHash: string[];
  /** Paths deleted from the working tree. */
  deleted: string[];
  untracked: Set<string>;
}

export function parseStatus(status: string, prefix: string): ParsedStatus {
  const changes: WorkingChange[] = [];
  const toHash: string[] = [];
  const deleted: string[] = [];
  const untracked = new Set<string>();
  const strip = (p: string) => (prefix && p.startsWith(prefix) ? p.slice(prefix.length) : p);
  const fields = splitNul(status);
  for (let i = 0; i < fields.length; i++) {
    const rec = fields[i]!;
    const type = rec[0];
    if (type === '?') {
      const p = strip(rec.slice(2));
      if (p.endsWith('/')) continue; // an untracked nested repository: not ours to look into
      changes.push({ path: p, kind: 'untracked' });
      untracked.add(p);
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
      if (xy[1] === 'D') deleted.push(p);
      else if ((xy[1] !== '.' || type === 'u') && wtMode !== '160000') toHash.push(p);
    }
  }
  return { changes, toHash, deleted, untracked };
}

/**
 * The snapshot from the outputs of `ls-files` (LS_FILES_ARGS) and `status` (STATUS_ARGS): index entries, with the
 * files status names hashed from the working tree.
 */
export async function buildSnapshot(root: string, staged: string, status: string, f: Pick<RepoFacts, 'prefix' | 'objectFormat'>): Promise<Snapshot> {
  const byPath = new Map<string, FileEntry>();
  for (const record of splitNul(staged)) {
    // "<mode> <oid> <stage>\t<path>"
    const tab = record.indexOf('\t');
    const p = record.slice(tab + 1);
    const space = record.indexOf(' ', 7);
    byPath.set(p, { path: p, mode: record.slice(0, 6), oid: record.slice(7, space) });
  }
  const { changes, toHash, deleted, untracked } = parseStatus(status, f.prefix);
  for (const p of deleted) byPath.delete(p);

  await hashFiles(root, toHash, f.objectFormat, byPath);
  // Index entries come sorted and untracked files were added after them: sorting 30,000 paths costs more than
  // merging a few, so merge (and sort fully only if git's byte order ever differs from JS's, outside the BMP).
  const all = [...byPath.values()];
  let tracked = all.length;
  while (tracked > 0 && untracked.has(all[tracked - 1]!.path)) tracked--;
  let files = mergeSorted(all.slice(0, tracked), all.slice(tracked).sort(byPathOrder));
  if (!isSorted(files)) files = all.sort(byPathOrder);
  return { files, paths: files.map((f) => f.path), changes, hashed: toHash.length };
}

const byPathOrder = (a: FileEntry, b: FileEntry) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

function mergeSorted(a: FileEntry[], b: FileEntry[]): FileEntry[] {
  if (b.length === 0) return a;
  const out: FileEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(a[i]!.path <= b[j]!.path ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}

function isSorted(files: FileEntry[]): boolean {
  for (let i = 1; i < files.length; i++) if (files[i - 1]!.path >= files[i]!.path) return false;
  return true;
}

function kindOf(xy: string): WorkingChange['kind'] {
  if (xy.includes('D')) return 'deleted';
  if (xy[0] === 'A' || xy[1] === 'A') return 'added';
  return 'modified';
}

/** Hashes files as git blobs (same ids git would give them), a few at a time. */
export async function hashFiles(root: string, files: string[], format: 'sha1' | 'sha256', into: Map<string, FileEntry>): Promise<void> {
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
