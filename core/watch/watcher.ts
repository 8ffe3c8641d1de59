import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { ExternalError } from '../errors.js';
import { QuietBatcher } from './batcher.js';
import { GitIgnore, NEVER_WATCHED } from './ignore.js';
import { collectScanGarbage } from './memory.js';

export const DEFAULT_QUIET_MS = 50;

/** Repo-relative POSIX paths that changed (created, modified or deleted) during one quiet period. */
export interface ChangeBatch {
  paths: string[];
}

export interface WatchOptions {
  /** Absolute directory of the project (the root that reported paths are relative to). */
  root: string;
  /**
   * What to watch, repo-relative (directories are watched with everything below them, a file alone; a path
   * that does not exist yet is picked up when it appears). Default: the whole tree. Watching only what can
   * matter keeps a large repository's idle memory small.
   */
  paths?: readonly string[];
  /** Quiet period before a batch is handed over. Default 50 ms. */
  quietMs?: number;
  onBatch(batch: ChangeBatch): void;
  onError(err: Error): void;
  /** Most entries one chokidar instance scans at a time (default CHUNK_ENTRIES). */
  chunkEntries?: number;
}

export interface RepoWatcher {
  /** While paused, changes accumulate; `resume()` hands them over as one batch. */
  pause(): void;
  resume(): void;
  /**
   * Watches `paths` from now on (repo-relative, as in the options); files already there are not reported.
   * Settles once the new paths are watched.
   */
  setPaths(paths: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Watches the project tree (not .git, node_modules or what git ignores) and reports batches of changed paths.
 * Symlinks are reported as themselves and never followed, so a link to a directory outside the tree does not
 * pull that directory in. Resolves once the initial scan is done.
 */
export async function watchRepo(opts: WatchOptions): Promise<RepoWatcher> {
  const root = path.resolve(opts.root);
  const gitIgnore = new GitIgnore(root);
  const skipped = new Set(await gitIgnore.ignoredDirectories());
  const rel = (abs: string) => path.relative(root, abs).split(path.sep).join('/');
  const isSkipped = (abs: string): boolean => {
    const r = rel(abs);
    if (r === '') return false;
    const parts = r.split('/');
    if (parts.some((p) => NEVER_WATCHED.has(p))) return true;
    let prefix = '';
    for (const p of parts) {
      prefix = prefix ? `${prefix}/${p}` : p;
      if (skipped.has(prefix)) return true;
    }
    return false;
  };

  let closed = false;
  const batcher = new QuietBatcher<string>((paths) => {
    // deliver() never rejects: it reports its failures through onError.
    void deliver(paths);
  }, opts.quietMs ?? DEFAULT_QUIET_MS);

  // Batches go out in order, each after git has filtered it.
  let delivering = Promise.resolve();
  function deliver(paths: string[]): Promise<void> {
    delivering = delivering.then(async () => {
      const unique = [...new Set(paths)].sort();
      let ignored: Set<string>;
      try {
        ignored = await gitIgnore.ignored(unique);
      } catch {
        // git could not answer (repository being rewritten): report every path; decisions skip what no service reads.
        ignored = new Set();
      }
      const kept = unique.filter((p) => !ignored.has(p));
      if (kept.length > 0 && !closed) opts.onBatch({ paths: kept });
    });
    return delivering;
  }

  const abs = (r: string) => (r === '' ? root : path.join(root, ...r.split('/')));
  const chunkEntries = opts.chunkEntries ?? CHUNK_ENTRIES;
  /**
   * The chokidar instances of the current paths, and the directories they watch as roots (so that a directory
   * that reappears is not watched twice).
   */
  interface Generation {
    instances: FSWatcher[];
    roots: Set<string>;
  }
  let current: Generation = { instances: [], roots: new Set() };

  const onPath = (abs: string) => {
    if (!closed) batcher.add(rel(abs));
  };
  const onError = (err: unknown) => opts.onError(err instanceof Error ? err : new Error(String(err)));

  /**
   * One chokidar instance over `paths` (directories with everything below, or only their own entries when
   * `shallow`); resolves once its initial scan is done. `report` also reports what is already there (for a
   * directory that has just appeared).
   */
  async function open(gen: Generation, paths: string[], shallow: boolean, report: boolean): Promise<void> {
    if (closed) return;
    for (const p of paths) gen.roots.add(p);
    const watcher: FSWatcher = watch(paths, {
      ignoreInitial: !report,
      followSymlinks: false,
      atomic: false,
      persistent: true,
      ignored: (p: string) => isSkipped(p),
      ...(shallow ? { depth: 0 } : {}),
    });
    gen.instances.push(watcher);
    watcher.on('add', onPath);
    watcher.on('change', onPath);
    watcher.on('unlink', onPath);
    watcher.on('unlinkDir', onPath);
    watcher.on('addDir', (dir: string) => {
      const r = rel(dir);
      // A directory git ignores (build output, say) is dropped from the watch as soon as it appears.
      // Owned by the watcher: both outcomes are handled below, and `closed` stops what arrives after close().
      void gitIgnore.ignored([`${r}/`]).then(
        (ignored) => {
          if (ignored.size > 0) {
            skipped.add(r);
            watcher.unwatch(dir);
            return;
          }
          // A new directory inside one watched for its own entries only gets an instance of its own; what was
          // written into it before that instance was ready is reported too.
          if (shallow && !closed && gen === current && !gen.roots.has(dir)) void open(gen, [dir], false, true).catch(onError);
        },
        () => undefined,
      );
    });
    watcher.on('error', onError);
    await new Promise<void>((resolve, reject) => {
      watcher.once('ready', () => resolve());
      watcher.once('error', (err: unknown) => reject(new ExternalError(`watching ${paths.join(', ')} failed: ${String(err)}`, { cause: err })));
    });
    // Closed during the scan: close() may have missed this instance.
    if (closed) await watcher.close();
  }

  /** Watches `paths` with a new generation of instances, one after the other. */
  async function watchPaths(paths: readonly string[]): Promise<Generation> {
    const gen: Generation = { instances: [], roots: new Set() };
    for (const c of await planChunks(paths.map(abs), chunkEntries, isSkipped)) {
      if (closed) break;
      await open(gen, c.paths, c.shallow, false);
    }
    return gen;
  }

  let watched = narrowest(opts.paths ?? ['']);
  current = await watchPaths(watched);
  collectScanGarbage();

  // setPaths calls run one after the other.
  let rescoping = Promise.resolve();

  /** Reports the files (and links) at or below `top` modified since `since` (ms since the epoch). */
  async function reportChangedSince(top: string, since: number): Promise<void> {
    if (closed || isSkipped(top)) return;
    let entry: Stats;
    try {
      entry = await lstat(top);
    } catch {
      // Gone before it was scanned: its removal arrives as an event of its own.
      return;
    }
    if (!entry.isDirectory()) {
      if (Math.max(entry.mtimeMs, entry.ctimeMs) >= since) batcher.add(rel(top));
      return;
    }
    let names: string[];
    try {
      names = await readdir(top);
    } catch {
      // Gone or unreadable: nothing under it can be watched; its removal arrives as an event of its own.
      return;
    }
    for (const name of names) await reportChangedSince(path.join(top, name), since);
  }

  return {
    pause: () => batcher.hold(),
    resume: () => batcher.resume(),
    setPaths(paths) {
      rescoping = rescoping
        .then(async () => {
          const next = narrowest(paths);
          if (closed || (next.length === watched.length && next.every((p, i) => p === watched[i]))) return;
          const before = watched;
          watched = next;
          const started = Date.now();
          // The new paths are watched before the old ones are let go, so nothing in both is missed in between
          // (a change seen by both is reported once: batches hold unique paths).
          const old = current;
          current = await watchPaths(next);
          await Promise.all(old.instances.map((w) => w.close()));
          // What was written into a newly watched place while its instance was scanning was seen by no instance.
          for (const p of next.filter((n) => !covers(before, n))) await reportChangedSince(abs(p), started - CLOCK_SLACK_MS);
          collectScanGarbage();
        })
        .catch(onError);
      return rescoping;
    },
    async close() {
      closed = true;
      batcher.clear();
      // An instance still scanning is closed here too; nothing new is opened from now on.
      await Promise.all(current.instances.map((w) => w.close()));
      await delivering;
    },
  };
}

/**
 * How a tree is split between chokidar instances. chokidar scans one instance's tree with every lstat in flight
 * at once: for 50,000 files that is ~40 MB of request buffers at the same moment, and the C heap keeps that
 * memory after it is freed (the scan's leftovers are scattered between allocations that live on). Scanning at
 * most this many entries at a time reuses the same memory for every chunk instead.
 */
export const CHUNK_ENTRIES = 4000;

interface DirSize {
  path: string;
  /** Entries below, recursively (files, links and directories), without what is never watched. */
  size: number;
  dirs: DirSize[];
}

/**
 * The chokidar instances that watch `tops`: small ones together, up to `limit` entries per instance (a file or a
 * missing path counts as one); a larger directory for its own entries, and its subdirectories grouped and split
 * the same way.
 */
export async function planChunks(tops: readonly string[], limit: number, isSkipped: (abs: string) => boolean): Promise<{ paths: string[]; shallow: boolean }[]> {
  const out: { paths: string[]; shallow: boolean }[] = [];
  const grouped = (items: DirSize[]) => {
    let group: string[] = [];
    let groupSize = 0;
    for (const d of items) {
      if (d.size > limit) {
        out.push({ paths: [d.path], shallow: true });
        grouped(d.dirs);
        continue;
      }
      if (group.length > 0 && groupSize + d.size > limit) {
        out.push({ paths: group, shallow: false });
        group = [];
        groupSize = 0;
      }
      group.push(d.path);
      groupSize += d.size + 1;
    }
    if (group.length > 0) out.push({ paths: group, shallow: false });
  };
  const measured: DirSize[] = [];
  for (const top of tops) measured.push((await measure(top, isSkipped)) ?? { path: top, size: 0, dirs: [] });
  grouped(measured);
  return out;
}

/** Directory sizes below `dir` (one directory read at a time; no per-file stat); undefined when it is no directory. */
async function measure(dir: string, isSkipped: (abs: string) => boolean): Promise<DirSize | undefined> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    // Unreadable: counted as unknown size, so it is watched as a whole rather than guessed about.
    return undefined;
  }
  const node: DirSize = { path: dir, size: 0, dirs: [] };
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (isSkipped(p)) continue;
    node.size++;
    if (!e.isDirectory()) continue;
    const sub = await measure(p, isSkipped);
    if (!sub) continue;
    node.size += sub.size;
    node.dirs.push(sub);
  }
  return node;
}

/** File timestamps come from the kernel's coarse clock, which may lag Date.now() by a tick. */
const CLOCK_SLACK_MS = 100;

/** Whether `p` is one of `paths` or below one of them (repo-relative; '' is the whole tree). */
function covers(paths: readonly string[], p: string): boolean {
  return paths.some((o) => o === '' || o === p || p.startsWith(`${o}/`));
}

/** The paths without those below another one on the list; [''] (everything) when the root is among them. */
export function narrowest(paths: readonly string[]): string[] {
  const unique = [...new Set(paths.map((p) => p.replace(/\/+$/, '')))].sort();
  if (unique.length === 0 || unique.includes('')) return [''];
  return unique.filter((p) => !unique.some((o) => o !== p && p.startsWith(`${o}/`)));
}
