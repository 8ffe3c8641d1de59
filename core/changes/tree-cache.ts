import { createHash } from 'node:crypto';
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProjectConfig } from '../config/types.js';
import { readGit } from '../workspace/git-exec.js';
import type { BuildInputs } from './content.js';
import type { Plan } from './plan.js';
import { hashFiles, parseRepoFacts, parseStatus, type FileEntry, type RepoFacts } from './snapshot.js';
import { LS_FILES_ARGS, startTreeReads, type TreeReads } from './tree-reads.js';

/**
 * A cache of the answers for a tree that did not change: the loaded project with its content versions (`up`,
 * `status`), and the last plan (`plan`). It lives in the repository's git directory (`.git/devloop/`), never among
 * the user's files.
 *
 * An answer is reused only when everything it was computed from is the same:
 * - devloop itself (its version and the files of the modules that compute answers);
 * - devloop.yaml, byte for byte, and the environment variables loading reads;
 * - git's answers: HEAD, the top level and prefix, the index file byte for byte (every entry's mode and object id,
 *   so every tracked file that `git status` does not name has the content the index says), the whole output of
 *   `git status` (what differs from the index, and every untracked file), and the content of each file it names,
 *   hashed as the plan hashes it; for a plan, also the default-branch refs and `--base`;
 * - files read outside git's view (an absent `<Dockerfile>.dockerignore`, an ignored go.mod): their lstat data,
 *   inode and change time included, so restoring a file's size and mtime after editing it still counts as a change.
 * `git status` runs every time: it is the floor the cache brings the "nothing changed" path down to.
 */

const CACHE_FORMAT = 'devloop-tree-cache-v1';
const CACHE_DIR = 'devloop';
/** One file per kind of answer: a command reads only the one it needs. */
const CACHE_FILES = { tree: 'tree-cache.json', plan: 'plan-cache.json' } as const;
type SlotName = keyof typeof CACHE_FILES;

/** Environment variables that change what loading a project yields (see core/config/validate-semantic.ts). */
const ENV_INPUTS = ['DEVLOOP_REGISTRY', 'DEVLOOP_DEVELOPER'];

/**
 * The modules whose code decides the cached answers, relative to this one: a rebuild or upgrade of any of them
 * (a new mtime or size) makes every cached answer stale.
 */
const COMPUTING_MODULES = [
  './tree-cache',
  './plan',
  './content',
  './snapshot',
  './base',
  './dockerfile-reads',
  '../build/dockerfile',
  '../workspace/graph',
  '../workspace/infer',
  '../config/load',
  '../config/validate-semantic',
  '../config/validate-schema',
  '../config/discover',
];

interface DiskSignature {
  /** Repo-relative path. */
  path: string;
  /** "-" when absent, else inode, size, mtime and ctime (ns) and mode. */
  sig: string;
}

interface TreeSlot {
  key: string;
  /** Digest of the index file when stored: a different one means a miss is coming (see `likelyMiss`). */
  index: string;
  disk: DiskSignature[];
  project: ProjectConfig;
  versions: Record<string, string>;
}

interface PlanSlot {
  key: string;
  index: string;
  disk: DiskSignature[];
  project: ProjectConfig;
  plan: Plan;
}

interface CacheFile<S> {
  format: string;
  slot: S;
}

/** What git says about the tree, with the key every answer about it is stored under. */
interface TreeState {
  treeKey: string;
  indexDigest: string;
  facts: Omit<RepoFacts, 'git'>;
  /** Raw `git status` output (STATUS_ARGS). */
  status: string;
  /** What the cache holds for the kind of answer asked for. */
  cached: TreeSlot | PlanSlot | null;
}

/**
 * The git reads every question about the tree starts with, started at once: `rev-parse` (facts and HEAD),
 * `status`, and for a plan the default-branch refs. `ls-files` (the slow part of a snapshot, only needed on a
 * miss) starts as soon as a miss is foreseeable, so that a miss costs no more than running without the cache.
 */
export class TreeProbe {
  readonly revParse: Promise<string | null>;
  readonly status: Promise<string | null>;
  readonly refs: Promise<string | null> | undefined;
  readonly state: Promise<TreeState | null>;
  private stagedRead: Promise<string | null> | undefined;

  /** `reads`: the reads already started for `root` (startTreeReads), else they start here. */
  constructor(
    readonly root: string,
    readonly configFile: string,
    opts: { refs: boolean; slot: SlotName; reads?: TreeReads },
  ) {
    const reads = opts.reads ?? startTreeReads(root, { refs: opts.refs });
    this.status = reads.status;
    this.revParse = reads.revParse;
    this.refs = reads.refs;
    this.state = this.readState(opts.slot).catch(() => null); // any surprise: no cache, the full path reports it
  }

  /** `git ls-files --stage` output (LS_FILES_ARGS), started once. */
  staged(): Promise<string | null> {
    this.startStagedRead();
    return this.stagedRead!;
  }

  /** Starts `git ls-files --stage` early; whoever needs it awaits it through staged(). */
  private startStagedRead(): void {
    this.stagedRead ??= readGit(this.root, LS_FILES_ARGS);
  }

  private async readState(slot: SlotName): Promise<TreeState | null> {
    const out = await this.revParse;
    // Not a repository, or no commit yet: the full path says what is wrong or what that means.
    if (out === null) return null;
    const facts = parseRepoFacts(out, true);
    if (!facts.head || !facts.gitDir) return null;
    const indexDigest = digestOfIndex(path.join(facts.gitDir, 'index'));
    const cached = readCacheFile<TreeSlot | PlanSlot>(facts.gitDir, slot);
    // The index changed since the cache was written: the full path will need the staged files, so start reading.
    if (cached?.index !== indexDigest) this.startStagedRead();
    const config = readFileSync(this.configFile);
    const status = await this.status;
    if (status === null) return null;
    const { toHash } = parseStatus(status, facts.prefix);
    const hashed = new Map<string, FileEntry>();
    await hashFiles(this.root, toHash, facts.objectFormat, hashed);
    const parts = [
      CACHE_FORMAT,
      codeStamp(),
      this.root,
      this.configFile,
      sha256(config),
      ...ENV_INPUTS.map((k) => `${k}=${process.env[k] ?? ''}`),
      out,
      indexDigest,
      status,
      ...toHash.map((p) => {
        const e = hashed.get(p);
        return `${p}\0${e ? `${e.mode} ${e.oid}` : 'gone'}`;
      }),
    ];
    return { treeKey: sha256(parts.join('\n')), indexDigest, facts, status, cached };
  }

  private async planKey(state: TreeState, base: string | undefined): Promise<string | null> {
    const refs = await this.refs;
    if (refs === null || refs === undefined) return null;
    return sha256(`${state.treeKey}\n${refs}\n${base ?? ''}`);
  }

  /** The plan stored for this tree, base and refs, or null. */
  async cachedPlan(base: string | undefined): Promise<{ plan: Plan; project: ProjectConfig } | null> {
    if (!cacheableBase(base)) return null;
    const state = await this.state;
    const slot = state?.cached as PlanSlot | null | undefined;
    if (!state || !slot?.plan) return null;
    const key = await this.planKey(state, base);
    if (key !== slot.key || !diskUnchanged(this.root, slot.disk)) return null;
    return { plan: slot.plan, project: slot.project };
  }

  /** The project and content versions stored for this tree, or null. */
  async cachedVersions(): Promise<{ project: ProjectConfig; versions: Record<string, string> } | null> {
    const state = await this.state;
    const slot = state?.cached as TreeSlot | null | undefined;
    if (!state || !slot?.versions || slot.key !== state.treeKey || !diskUnchanged(this.root, slot.disk)) return null;
    return { project: slot.project, versions: slot.versions };
  }

  /**
   * Stores a plan (and the project's versions it holds) computed after this probe's reads. Files read outside
   * git's view that changed while it was computed make it unsafe to store: then nothing is.
   */
  async storePlan(base: string | undefined, project: ProjectConfig, plan: Plan, inputs: BuildInputs, computeStartedMs: number): Promise<void> {
    const state = await this.state;
    if (!state || !cacheableBase(base) || project.file !== this.configFile) return;
    const key = await this.planKey(state, base);
    const disk = diskSignatures(this.root, inputs, computeStartedMs);
    if (key === null || disk === null) return;
    const versions = Object.fromEntries(plan.services.map((s) => [s.name, s.tag]));
    writeCacheFile(state.facts.gitDir, 'plan', { key, index: state.indexDigest, disk, project, plan });
    writeCacheFile(state.facts.gitDir, 'tree', { key: state.treeKey, index: state.indexDigest, disk, project, versions });
  }

  /** Stores the project and its content versions, computed after this probe's reads (see storePlan). */
  async storeVersions(project: ProjectConfig, versions: Record<string, string>, inputs: BuildInputs, computeStartedMs: number): Promise<void> {
    const state = await this.state;
    if (!state || project.file !== this.configFile) return;
    const disk = diskSignatures(this.root, inputs, computeStartedMs);
    if (disk === null) return;
    writeCacheFile(state.facts.gitDir, 'tree', { key: state.treeKey, index: state.indexDigest, disk, project, versions });
  }
}

/** Only a base that names one commit for good can be part of a key (a branch name can move without the tree changing). */
function cacheableBase(base: string | undefined): boolean {
  return base === undefined || /^([0-9a-f]{40}|[0-9a-f]{64})$/.test(base);
}

/**
 * The files the computation read from disk that git's answers do not cover: those not in the snapshot (absent, or
 * ignored by git) among each service's Dockerfile, ignore files and package manifests (go.mod, package.json) of
 * its context and directory dependencies. Null when one of them changed since `sinceMs` (epoch ms; while the answer
 * was being computed, so the answer may reflect either content).
 */
function diskSignatures(root: string, inputs: BuildInputs, sinceMs: number): DiskSignature[] | null {
  const inSnapshot = new Set(inputs.snapshot.paths);
  const paths = new Set<string>();
  const join = (dir: string, name: string) => (dir === '' ? name : `${dir}/${name}`);
  for (const node of inputs.graph.nodes.values()) {
    paths.add(node.dockerfile);
    paths.add(`${node.dockerfile}.dockerignore`);
    for (const dir of [node.context, ...node.dirs.map((d) => d.dir)]) {
      paths.add(join(dir, '.dockerignore'));
      paths.add(join(dir, 'go.mod'));
      paths.add(join(dir, 'package.json'));
    }
  }
  const out: DiskSignature[] = [];
  // A second of slack: some filesystems keep coarse timestamps.
  const settledBeforeNs = BigInt(Math.floor(sinceMs - 1000)) * 1_000_000n;
  for (const p of [...paths].sort()) {
    if (inSnapshot.has(p)) continue;
    const st = lstatSync(path.join(root, p), { bigint: true, throwIfNoEntry: false });
    if (st && (st.ctimeNs >= settledBeforeNs || st.mtimeNs >= settledBeforeNs)) return null;
    out.push({ path: p, sig: signature(st) });
  }
  return out;
}

function diskUnchanged(root: string, disk: DiskSignature[]): boolean {
  for (const d of disk) {
    const st = lstatSync(path.join(root, d.path), { bigint: true, throwIfNoEntry: false });
    if (signature(st) !== d.sig) return false;
  }
  return true;
}

function signature(st: import('node:fs').BigIntStats | undefined): string {
  return st ? `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}` : '-';
}

let stamp: string | undefined;

/** devloop's code as far as the cached answers depend on it (see COMPUTING_MODULES). */
function codeStamp(): string {
  if (stamp !== undefined) return stamp;
  const ext = path.extname(fileURLToPath(import.meta.url));
  const parts = COMPUTING_MODULES.map((m) => {
    const st = statSync(fileURLToPath(new URL(`${m}${ext}`, import.meta.url)), { throwIfNoEntry: false });
    return st ? `${m}:${st.size}:${st.mtimeMs}` : `${m}:-`;
  });
  stamp = parts.join(',');
  return stamp;
}

/**
 * What identifies the index's content: git ends the file with a checksum of everything before it, so its size and
 * last bytes do, without reading 30,000 entries. With `index.skipHash` that checksum is zeros: then the whole
 * file is hashed.
 */
function digestOfIndex(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    // No index (nothing was ever added): a state of its own.
    return 'none';
  }
  try {
    const { size } = fstatSync(fd);
    const tail = Buffer.alloc(Math.min(size, 32));
    readSync(fd, tail, 0, tail.length, size - tail.length);
    if (tail.length < 20 || tail.subarray(tail.length - 20).every((b) => b === 0)) return `whole:${sha256(readFileSync(file))}`;
    return `tail:${size}:${tail.toString('hex')}`;
  } finally {
    closeSync(fd);
  }
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function readCacheFile<S>(gitDir: string, slot: SlotName): S | null {
  try {
    const parsed = JSON.parse(readFileSync(path.join(gitDir, CACHE_DIR, CACHE_FILES[slot]), 'utf8')) as CacheFile<S>;
    return parsed.format === CACHE_FORMAT ? parsed.slot : null;
  } catch {
    // Absent or unreadable (written by another version, cut short): as if empty; the next store replaces it.
    return null;
  }
}

/** Written whole and renamed into place: a reader sees the old file or the new one, never half of one. */
function writeCacheFile(gitDir: string, slot: SlotName, value: TreeSlot | PlanSlot): void {
  try {
    const dir = path.join(gitDir, CACHE_DIR);
    mkdirSync(dir, { recursive: true });
    const tmp = path.join(dir, `${CACHE_FILES[slot]}.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify({ format: CACHE_FORMAT, slot: value } satisfies CacheFile<TreeSlot | PlanSlot>));
    renameSync(tmp, path.join(dir, CACHE_FILES[slot]));
  } catch {
    // A read-only or full git directory: devloop works as well without the cache, only slower.
  }
}
