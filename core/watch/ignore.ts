import { execa } from 'execa';

/** Directory names never watched anywhere in the tree. */
export const NEVER_WATCHED = new Set(['.git', 'node_modules']);

/**
 * Git's own answer to "is this path ignored" (every .gitignore, .git/info/exclude, the global excludes file), so
 * devloop agrees with git exactly. Tracked files are never ignored, as in git.
 */
export class GitIgnore {
  constructor(private readonly root: string) {}

  /**
   * The paths (repo-relative) git ignores, out of `paths`. The patterns are matched without the index (with it,
   * git takes ~1 ms per path in a large repository); the few paths that match are then checked for being
   * tracked, since a tracked file is never ignored.
   */
  async ignored(paths: readonly string[]): Promise<Set<string>> {
    if (paths.length === 0) return new Set();
    const r = await execa('git', ['check-ignore', '--no-index', '--stdin', '-z'], { cwd: this.root, input: paths.join('\0') + '\0', reject: false });
    // Exit 1: none of the paths is ignored.
    if (r.exitCode !== 0 && r.exitCode !== 1) return new Set();
    const matched = String(r.stdout).split('\0').filter(Boolean);
    if (matched.length === 0) return new Set();
    const tracked = await execa('git', ['ls-files', '-z', '--', ...matched.map((p) => `:(literal)${p}`)], { cwd: this.root, reject: false });
    const keep = new Set(String(tracked.stdout).split('\0').filter(Boolean));
    return new Set(matched.filter((p) => !keep.has(p)));
  }

  /** Ignored directories that exist now (repo-relative, no trailing slash): they are not watched at all. */
  async ignoredDirectories(): Promise<string[]> {
    const r = await execa('git', ['ls-files', '--others', '--ignored', '--exclude-standard', '--directory', '-z'], { cwd: this.root, reject: false });
    if (r.exitCode !== 0) return [];
    return String(r.stdout)
      .split('\0')
      .filter((p) => p.endsWith('/'))
      .map((p) => p.slice(0, -1));
  }
}
