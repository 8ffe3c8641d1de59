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
  /** Absolute directory to watch (the project root). */
  root: string;
  /** Quiet period before a batch is handed over. Default 50 ms. */
  quietMs?: number;
  onBatch(batch: ChangeBatch): void;
  onError(err: Error): void;
}

export interface RepoWatcher {
  /** While paused, changes accumulate; `resume()` hands them over as one batch. */
  pause(): void;
  resume(): void;
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

  const watcher: FSWatcher = watch(root, {
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
    async close() {
      closed = true;
      batcher.clear();
      await watcher.close();
      await delivering;
    },
  };
}
