import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TempRepo } from '../workspace/temp-repo.js';
import { QuietBatcher } from './batcher.js';
import { narrowest, planChunks, watchRepo, type ChangeBatch, type RepoWatcher } from './watcher.js';

describe('QuietBatcher', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands a lone change over after the short lead window', () => {
    vi.useFakeTimers();
    const flushed: string[][] = [];
    const b = new QuietBatcher<string>((items) => flushed.push(items), 50);
    b.add('a');
    vi.advanceTimersByTime(4);
    expect(flushed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(flushed).toEqual([['a']]);
  });

  it('collects a burst until nothing new arrived for the quiet period', () => {
    vi.useFakeTimers();
    const flushed: string[][] = [];
    const b = new QuietBatcher<string>((items) => flushed.push(items), 50);
    b.add('a');
    vi.advanceTimersByTime(2);
    b.add('b');
    vi.advanceTimersByTime(40);
    b.add('c');
    vi.advanceTimersByTime(49);
    expect(flushed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(flushed).toEqual([['a', 'b', 'c']]);
  });

  it('flushes under a steady stream after the longest wait', () => {
    vi.useFakeTimers();
    const flushed: number[][] = [];
    const b = new QuietBatcher<number>((items) => flushed.push(items), 50, 200);
    b.add(-1);
    for (let i = 0; i < 10; i++) {
      b.add(i);
      vi.advanceTimersByTime(30);
    }
    expect(flushed[0]).toEqual([-1, 0, 1, 2, 3, 4, 5, 6]);
  });

  it('holds while paused and hands everything over on resume', () => {
    vi.useFakeTimers();
    const flushed: string[][] = [];
    const b = new QuietBatcher<string>((items) => flushed.push(items), 50);
    b.hold();
    b.add('a');
    vi.advanceTimersByTime(1000);
    expect(flushed).toEqual([]);
    b.resume();
    expect(flushed).toEqual([['a']]);
  });
});

// Real files, real inotify, real git.
describe('watchRepo', () => {
  let repo: TempRepo;
  let watcher: RepoWatcher | undefined;
  let outside: string | undefined;
  afterEach(async () => {
    await watcher?.close();
    watcher = undefined;
    rmSync(repo.dir, { recursive: true, force: true });
    if (outside) rmSync(outside, { recursive: true, force: true });
  });

  async function start(quietMs = 50, paths?: string[], chunkEntries?: number) {
    const batches: ChangeBatch[] = [];
    const waiters: { path: string; resolve: () => void }[] = [];
    watcher = await watchRepo({
      root: repo.dir,
      quietMs,
      ...(paths ? { paths } : {}),
      ...(chunkEntries ? { chunkEntries } : {}),
      onBatch: (b) => {
        batches.push(b);
        for (const w of [...waiters]) if (b.paths.includes(w.path)) w.resolve();
      },
      onError: (err) => {
        throw err;
      },
    });
    const seen = (p: string) =>
      batches.some((b) => b.paths.includes(p)) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ path: p, resolve }));
    return { batches, seen, all: () => batches.flatMap((b) => b.paths) };
  }

  it('reports created, changed and deleted files as repo-relative paths', async () => {
    repo = TempRepo.create().write({ 'a.txt': '1', 'src/b.js': '2', '.gitignore': 'dist/\n*.log\n' });
    repo.commit();
    const w = await start();
    writeFileSync(path.join(repo.dir, 'src/b.js'), 'changed');
    mkdirSync(path.join(repo.dir, 'src/new'), { recursive: true });
    writeFileSync(path.join(repo.dir, 'src/new/c.js'), 'new');
    unlinkSync(path.join(repo.dir, 'a.txt'));
    writeFileSync(path.join(repo.dir, 'sentinel'), 'x');
    await w.seen('sentinel');
    for (const p of ['src/b.js', 'src/new/c.js', 'a.txt']) if (!w.all().includes(p)) await w.seen(p);
    expect(w.all()).toEqual(expect.arrayContaining(['src/b.js', 'src/new/c.js', 'a.txt', 'sentinel']));
  });

  it('reports a tracked file even when an ignore pattern matches it (git never ignores tracked files)', async () => {
    repo = TempRepo.create().write({ '.gitignore': '*.log\n', 'kept.log': 'tracked' });
    repo.git('add', '-f', 'kept.log', '.gitignore');
    repo.git('commit', '-qm', 'tracked log');
    const w = await start();
    writeFileSync(path.join(repo.dir, 'kept.log'), 'changed');
    writeFileSync(path.join(repo.dir, 'new.log'), 'ignored');
    writeFileSync(path.join(repo.dir, 'sentinel'), 'x');
    await w.seen('sentinel');
    if (!w.all().includes('kept.log')) await w.seen('kept.log');
    expect(w.all()).not.toContain('new.log');
  });

  it('never reports .git, node_modules or what git ignores, and does not follow symlinks out of the tree', async () => {
    repo = TempRepo.create().write({ 'a.txt': '1', '.gitignore': 'dist/\n*.log\n', 'dist/old.js': 'x' });
    repo.commit();
    outside = mkdtempSync(path.join(os.tmpdir(), 'devloop-outside-'));
    symlinkSync(outside, path.join(repo.dir, 'link'));
    const w = await start();
    writeFileSync(path.join(repo.dir, 'dist/new.js'), 'ignored dir');
    writeFileSync(path.join(repo.dir, 'debug.log'), 'ignored file');
    mkdirSync(path.join(repo.dir, 'node_modules/x'), { recursive: true });
    writeFileSync(path.join(repo.dir, 'node_modules/x/index.js'), 'never');
    writeFileSync(path.join(outside, 'secret.txt'), 'outside');
    repo.git('commit', '--allow-empty', '-qm', 'touches .git');
    writeFileSync(path.join(repo.dir, 'sentinel'), 'x');
    await w.seen('sentinel');
    expect(w.all().filter((p) => p !== 'sentinel' && p !== 'link')).toEqual([]);
  });

  it('holds batches while paused', async () => {
    repo = TempRepo.create().write({ 'a.txt': '1' });
    repo.commit();
    const w = await start();
    watcher!.pause();
    writeFileSync(path.join(repo.dir, 'while-paused.txt'), 'x');
    // Time for the watcher to see the write; nothing may be handed over while paused.
    await new Promise((r) => setTimeout(r, 300));
    expect(w.batches).toEqual([]);
    watcher!.resume();
    await w.seen('while-paused.txt');
  });

  it('watches only the given paths: directories with everything below, single files, paths that appear later', async () => {
    repo = TempRepo.create().write({ 'devloop.yaml': 'v1', 'web/a.js': '1', 'corpus/big.txt': 'x', 'other.txt': 'o' });
    repo.commit();
    const w = await start(50, ['web', 'devloop.yaml', 'libs/new']);
    writeFileSync(path.join(repo.dir, 'corpus/big.txt'), 'changed');
    writeFileSync(path.join(repo.dir, 'other.txt'), 'changed');
    writeFileSync(path.join(repo.dir, 'devloop.yaml.tmp'), 'x');
    writeFileSync(path.join(repo.dir, 'devloop.yaml'), 'v2');
    mkdirSync(path.join(repo.dir, 'web/sub'));
    writeFileSync(path.join(repo.dir, 'web/sub/b.js'), '2');
    mkdirSync(path.join(repo.dir, 'libs/new'), { recursive: true });
    writeFileSync(path.join(repo.dir, 'libs/new/c.go'), '3');
    for (const p of ['devloop.yaml', 'web/sub/b.js', 'libs/new/c.go']) if (!w.all().includes(p)) await w.seen(p);
    // The writes outside the paths happened first: had they been seen, they would have been handed over by now.
    expect(w.all().filter((p) => /corpus|other|tmp/.test(p))).toEqual([]);
  });

  it('changes what it watches with setPaths, without reporting what is already there', async () => {
    repo = TempRepo.create().write({ 'a/one.txt': '1', 'a/b/two.txt': '2', 'c/three.txt': '3', 'top.txt': 't' });
    repo.commit();
    const w = await start(50, ['a/b']);
    // Older than the clock slack of the catch-up below: these files are "already there".
    await new Promise((r) => setTimeout(r, 300));
    await watcher!.setPaths(['a/b', 'c']);
    // Time for a scan that would report the files c/ already has; none may be reported.
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(path.join(repo.dir, 'c/three.txt'), 'changed');
    await w.seen('c/three.txt');
    expect(w.all()).toEqual(['c/three.txt']);

    // Narrower: a/b is dropped.
    await watcher!.setPaths(['c']);
    writeFileSync(path.join(repo.dir, 'a/b/two.txt'), 'changed');
    writeFileSync(path.join(repo.dir, 'c/sentinel'), 'x');
    await w.seen('c/sentinel');
    expect(w.all()).not.toContain('a/b/two.txt');

    // Wider: the whole tree, including what was below a path before.
    await watcher!.setPaths(['', 'c']);
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(path.join(repo.dir, 'top.txt'), 'changed');
    writeFileSync(path.join(repo.dir, 'a/b/two.txt'), 'again');
    writeFileSync(path.join(repo.dir, 'c/three.txt'), 'again');
    for (const p of ['top.txt', 'a/b/two.txt']) await w.seen(p);
    expect(w.all()).not.toContain('a/one.txt');
  });

  it('reports a file written into a newly watched directory while its watch is being set up', async () => {
    repo = TempRepo.create().write({ 'a/one.txt': '1', 'c/three.txt': '3' });
    repo.commit();
    const w = await start(50, ['a']);
    await new Promise((r) => setTimeout(r, 300));
    const rescoped = watcher!.setPaths(['a', 'c']);
    // Written before the new instance has even started its scan, which will find it as "already there".
    writeFileSync(path.join(repo.dir, 'c/during.txt'), 'x');
    await rescoped;
    await w.seen('c/during.txt');
    expect(w.all()).toEqual(['c/during.txt']);
  });
});

describe('chunked watching of a large tree', () => {
  let repo: TempRepo;
  let watcher: RepoWatcher | undefined;
  afterEach(async () => {
    await watcher?.close();
    watcher = undefined;
    rmSync(repo.dir, { recursive: true, force: true });
  });

  // A tree of 3 × 4 directories of 3 files each, watched at most 5 entries per chokidar instance.
  function bigTree(): TempRepo {
    const files: Record<string, string> = { 'top.txt': 't', '.gitignore': 'out/\n' };
    for (let a = 0; a < 3; a++) for (let b = 0; b < 4; b++) for (let f = 0; f < 3; f++) files[`d${a}/e${b}/f${f}.txt`] = `${a}${b}${f}`;
    return TempRepo.create().write(files);
  }

  it('splits it so that no instance scans more than the limit, and leaves nothing out', async () => {
    repo = bigTree();
    const skip = (abs: string) => abs.includes('/.git');
    const plan = await planChunks([repo.dir], 5, skip);
    expect(plan[0]).toEqual({ paths: [repo.dir], shallow: true });
    expect(plan).toContainEqual({ paths: [path.join(repo.dir, 'd0')], shallow: true });
    expect(plan).toContainEqual({ paths: [path.join(repo.dir, 'd0/e0')], shallow: false });
    // Every directory is covered: as a shallow root, or below a deep one.
    const deep = plan.filter((c) => !c.shallow).flatMap((c) => c.paths);
    const shallow = plan.filter((c) => c.shallow).flatMap((c) => c.paths);
    for (let a = 0; a < 3; a++) {
      expect(shallow).toContain(path.join(repo.dir, `d${a}`));
      for (let b = 0; b < 4; b++) expect(deep).toContain(path.join(repo.dir, `d${a}/e${b}`));
    }
    expect(await planChunks([repo.dir], 1000, skip)).toEqual([{ paths: [repo.dir], shallow: false }]);
    // Small paths share one instance; files and missing paths count as one entry.
    const small = ['d0', 'd1/e0', 'top.txt', 'missing/dir'].map((p) => path.join(repo.dir, p));
    expect(await planChunks(small, 1000, skip)).toEqual([{ paths: small, shallow: false }]);
  });

  it('reports changes anywhere, in new directories (with what was written before they were watched), but not in ignored ones', async () => {
    repo = bigTree();
    repo.commit();
    const batches: ChangeBatch[] = [];
    const waiters: { path: string; resolve: () => void }[] = [];
    watcher = await watchRepo({
      root: repo.dir,
      chunkEntries: 5,
      onBatch: (b) => {
        batches.push(b);
        for (const w of [...waiters]) if (b.paths.includes(w.path)) w.resolve();
      },
      onError: (err) => {
        throw err;
      },
    });
    const all = () => batches.flatMap((b) => b.paths);
    const seen = (p: string) => (all().includes(p) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ path: p, resolve })));
    writeFileSync(path.join(repo.dir, 'top.txt'), 'changed');
    writeFileSync(path.join(repo.dir, 'd1/e2/f0.txt'), 'changed');
    unlinkSync(path.join(repo.dir, 'd2/e3/f2.txt'));
    writeFileSync(path.join(repo.dir, 'd0/new.txt'), 'new');
    // New directories below a directory that is watched for its own entries only, with files at once.
    mkdirSync(path.join(repo.dir, 'd1/fresh/deeper'), { recursive: true });
    writeFileSync(path.join(repo.dir, 'd1/fresh/deeper/x.txt'), 'x');
    mkdirSync(path.join(repo.dir, 'out'));
    writeFileSync(path.join(repo.dir, 'out/build.js'), 'ignored');
    mkdirSync(path.join(repo.dir, 'newtop'));
    writeFileSync(path.join(repo.dir, 'newtop/y.txt'), 'y');
    for (const p of ['top.txt', 'd1/e2/f0.txt', 'd2/e3/f2.txt', 'd0/new.txt', 'd1/fresh/deeper/x.txt', 'newtop/y.txt']) await seen(p);
    // Later writes into the new directories are followed too.
    writeFileSync(path.join(repo.dir, 'd1/fresh/deeper/later.txt'), 'later');
    writeFileSync(path.join(repo.dir, 'newtop/later.txt'), 'later');
    for (const p of ['d1/fresh/deeper/later.txt', 'newtop/later.txt']) await seen(p);
    expect(all().filter((p) => p.startsWith('out'))).toEqual([]);
    expect(all().filter((p) => /^d\d\/e\d\/f\d\.txt$/.test(p)).sort()).toEqual(['d1/e2/f0.txt', 'd2/e3/f2.txt']);
  });
});

describe('narrowest', () => {
  it('drops paths below another one, and is everything when the root is on the list', () => {
    expect(narrowest(['web/src', 'web', 'devloop.yaml', 'libs/a', 'libs/ab', 'web'])).toEqual(['devloop.yaml', 'libs/a', 'libs/ab', 'web']);
    expect(narrowest(['web', ''])).toEqual(['']);
    expect(narrowest([])).toEqual(['']);
  });
});
