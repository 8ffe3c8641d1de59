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
}

export interface RepoWatcher {
  /** While paused, changes accumulate; `resume()` hands them over as one batch. */
  pause(): void;
  resume(): void;
  /** Watches `paths` from now on (repo-relative, as in the options); files already there are not reported. */
  setPaths(paths: readonly string[]): void;
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
        ignored = new Set();
      }
      const kept = unique.filter((p) => !ignored.has(p));
      if (kept.length > 0 && !closed) opts.onBatch({ paths: kept });
    });
    return delivering;
  }

  const abs = (r: string) => (r === '' ? root : path.join(root, ...r.split('/')));
  let watched = new Set(narrowest(opts.paths ?? ['']));
  const dropped = new Set<string>();
  const watcher: FSWatcher = watch([...watched].map(abs), {
    ignoreInitial: true,
    followSymlinks: false,
    atomic: false,
    persistent: true,
    ignored: (p: string) => isSkipped(p),
  });

  const onPath = (abs: string) => {
    if (!closed) batcher.add(rel(abs));
  };
  watcher.on('add', onPath);
  watcher.on('change', onPath);
  watcher.on('unlink', onPath);
  watcher.on('unlinkDir', onPath);
  watcher.on('addDir', (abs: string) => {
    // A directory git ignores (build output, say) is dropped from the watch as soon as it appears.
    const r = rel(abs);
    void gitIgnore.ignored([`${r}/`]).then((ignored) => {
      if (ignored.size > 0) {
        skipped.add(r);
        watcher.unwatch(abs);
      }
    });
  });
  watcher.on('error', (err: unknown) => opts.onError(err instanceof Error ? err : new Error(String(err))));

  await new Promise<void>((resolve, reject) => {
    watcher.once('ready', () => resolve());
    watcher.once('error', (err: unknown) => reject(new ExternalError(`watching ${root} failed: ${String(err)}`, { cause: err })));
  });
  collectScanGarbage();

  return {
    pause: () => batcher.hold(),
    resume: () => batcher.resume(),
    setPaths(paths) {
      const next = new Set(narrowest(paths));
      // A path now covered by a wider one stays watched through it.
      const removed = [...watched].filter((p) => !next.has(p) && !covers(next, p));
      for (const p of removed) dropped.add(p);
      // chokidar keeps ignoring an unwatched path even below a path added later: such paths are added again.
      const regained = [...dropped].filter((p) => next.has(p) || covers(next, p));
      for (const p of regained) dropped.delete(p);
      const added = [...new Set([...[...next].filter((p) => !watched.has(p)), ...regained])];
      watched = next;
      if (removed.length > 0) watcher.unwatch(removed.map(abs));
      if (added.length > 0) watcher.add(added.map(abs));
    },
    async close() {
      closed = true;
      batcher.clear();
      await watcher.close();
      await delivering;
    },
  };
}

function covers(paths: ReadonlySet<string>, p: string): boolean {
  return paths.has('') || [...paths].some((o) => p.startsWith(`${o}/`));
}

/** The paths without those below another one on the list; [''] (everything) when the root is among them. */
export function narrowest(paths: readonly string[]): string[] {
  const unique = [...new Set(paths.map((p) => p.replace(/\/+$/, '')))].sort();
  if (unique.length === 0 || unique.includes('')) return [''];
  return unique.filter((p) => !unique.some((o) => o !== p && p.startsWith(`${o}/`)));
}
