import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A real git repository in a temporary directory, for tests of everything that reads a repository. Commits
 * use a fixed identity and date so object ids are reproducible.
 */
export class TempRepo {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** A new repository whose first branch is `branch` (default main); no commits yet. */
  static create(opts: { branch?: string; prefix?: string } = {}): TempRepo {
    const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), opts.prefix ?? 'devloop-repo-')));
    const repo = new TempRepo(dir);
    repo.git('init', '-q', '-b', opts.branch ?? 'main');
    repo.git('config', 'user.email', 'test@devloop.invalid');
    repo.git('config', 'user.name', 'devloop test');
    repo.git('config', 'commit.gpgsign', 'false');
    return repo;
  }

  /** An existing directory (e.g. a clone made with `git clone`). */
  static at(dir: string): TempRepo {
    return new TempRepo(dir);
  }

  git(...args: string[]): string {
    return execFileSync('git', args, {
      cwd: this.dir,
      encoding: 'utf8',
      env: {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GIT_'))),
        GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
        GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
      },
    });
  }

  /** Writes files (creating directories); a record of path → content. */
  write(files: Record<string, string>): this {
    for (const [rel, content] of Object.entries(files)) {
      const abs = path.join(this.dir, rel);
      mkdirSync(path.dirname(abs), { recursive: true });
      writeFileSync(abs, content);
    }
    return this;
  }

  /** Stages everything and commits; returns the new commit id. */
  commit(message = 'change'): string {
    this.git('add', '-A');
    this.git('commit', '-q', '--allow-empty', '-m', message);
    return this.git('rev-parse', 'HEAD').trim();
  }

  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
