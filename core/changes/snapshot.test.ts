import { chmodSync, symlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { GitRepo } from '../workspace/git.js';
import { TempRepo } from '../workspace/temp-repo.js';
import { rangeUnder, readRepoFacts, readSnapshot } from './snapshot.js';

const repos: TempRepo[] = [];
afterEach(() => {
  while (repos.length) repos.pop()!.remove();
});

describe('readSnapshot', () => {
  it('gives modified and untracked files the object ids git would give them', async () => {
    const repo = TempRepo.create();
    repos.push(repo);
    repo.write({ 'a/tracked.txt': 'one\n', 'a/same.txt': 'same\n', 'b/gone.txt': 'bye\n', '.gitignore': '*.tmp\n' });
    repo.commit('init');
    repo.write({ 'a/tracked.txt': 'two\n', 'a/new file é.txt': 'new\n', 'a/skip.tmp': 'ignored\n', 'run.sh': '#!/bin/sh\n' });
    chmodSync(repo.path('run.sh'), 0o755);
    symlinkSync('tracked.txt', repo.path('a/link'));
    repo.git('rm', '-q', 'b/gone.txt');

    const git = new GitRepo(repo.dir);
    const snapshot = await readSnapshot(git, readRepoFacts(git), repo.dir);
    expect(snapshot.paths).toEqual(['.gitignore', 'a/link', 'a/new file é.txt', 'a/same.txt', 'a/tracked.txt', 'run.sh']);
    const byPath = Object.fromEntries(snapshot.files.map((f) => [f.path, f]));
    for (const p of ['a/tracked.txt', 'a/new file é.txt', 'a/same.txt', 'run.sh']) {
      expect(byPath[p]!.oid).toBe(repo.git('hash-object', '--', p).trim());
    }
    expect(byPath['run.sh']!.mode).toBe('100755');
    expect(byPath['a/link']!.mode).toBe('120000');
    // A symlink's blob is its target path, which is what git stores once it is added.
    repo.git('add', 'a/link');
    expect(byPath['a/link']!.oid).toBe(repo.git('ls-files', '-s', 'a/link').split(' ')[1]);
    expect(snapshot.hashed).toBe(4); // modified, untracked ×3; the unmodified file reused the index id
    expect(snapshot.changes.map((c) => [c.path, c.kind])).toEqual(
      expect.arrayContaining([
        ['a/tracked.txt', 'modified'],
        ['b/gone.txt', 'deleted'],
        ['a/new file é.txt', 'untracked'],
        ['a/link', 'untracked'],
        ['run.sh', 'untracked'],
      ]),
    );
  });
});

describe('rangeUnder', () => {
  const paths = ['a', 'a-b/x', 'a/b', 'a/c/d', 'a0', 'b/c'];
  it('finds the files below a directory, and a file by itself', () => {
    expect(rangeUnder(paths, 'a')).toEqual([0, 1]);
    const dirs = ['a-b/x', 'a/b', 'a/c/d', 'a0'];
    expect(dirs.slice(...rangeUnder(dirs, 'a'))).toEqual(['a/b', 'a/c/d']);
    expect(paths.slice(...rangeUnder(paths, 'a/c'))).toEqual(['a/c/d']);
    expect(paths.slice(...rangeUnder(paths, ''))).toEqual(paths);
    expect(paths.slice(...rangeUnder(paths, 'z'))).toEqual([]);
  });
});
