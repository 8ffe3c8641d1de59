import { UserError } from '../errors.js';
import { splitNul } from '../workspace/git-exec.js';
import type { RepoFacts, WorkingChange } from './snapshot.js';

export interface BaseResolution {
  /** The commit changes are measured from, or null when there is none (then everything counts as changed). */
  base: string | null;
  /** How the base was chosen, for people: "merge-base of HEAD and origin/main". */
  describe: string;
  /** Why there is no base, or anything surprising about it. */
  note?: string;
}

/** Default-branch candidates, in order of preference. */
export const DEFAULT_BRANCHES = ['refs/remotes/origin/HEAD', 'refs/heads/main', 'refs/heads/master', 'refs/remotes/origin/main', 'refs/remotes/origin/master'];

/**
 * The base commit: `ref` when given (any commit-ish), else the merge-base of HEAD with the default branch
 * (origin/HEAD, else main, else master). A repository without commits, without a default branch, or whose
 * shallow history has no merge-base has no base, and says why.
 */
export async function resolveBase(facts: RepoFacts, ref?: string, defaultRefs?: Promise<string>): Promise<BaseResolution> {
  const { git } = facts;
  if (ref !== undefined) {
    const sha = (await git.run(['rev-parse', '-q', '--verify', '--end-of-options', `${ref}^{commit}`], { allowExit: [1, 128] }))?.trim();
    if (!sha) {
      throw new UserError(`--base ${ref}: no such commit in this repository`, {
        hint: facts.shallow
          ? 'this is a shallow clone: fetch more history (git fetch --deepen=50) or name a commit it has'
          : 'name a branch, tag or commit (e.g. --base origin/main)',
      });
    }
    return { base: sha, describe: ref };
  }

  if (facts.head === null) {
    return { base: null, describe: 'none', note: 'the repository has no commits yet: every file counts as changed' };
  }

  const refs = await (defaultRefs ?? git.output(['for-each-ref', '--format=%(refname)%00%(objectname)', ...DEFAULT_BRANCHES]));
  const found = new Map<string, string>();
  for (const line of refs.split('\n')) {
    const [name, sha] = line.split('\0');
    if (name && sha) found.set(name, sha);
  }
  const branch = DEFAULT_BRANCHES.find((b) => found.has(b));
  if (!branch) {
    return {
      base: null,
      describe: 'none',
      note: 'no default branch to compare with (origin/HEAD, main or master): every file counts as changed; pass --base <ref>',
    };
  }
  const short = branch.replace(/^refs\/(heads|remotes)\//, '');
  const mergeBase = (await git.run(['merge-base', 'HEAD', found.get(branch)!], { allowExit: [1] }))?.trim();
  if (!mergeBase) {
    return {
      base: null,
      describe: 'none',
      note: `HEAD and ${short} have no common ancestor${facts.shallow ? ' in this shallow clone' : ''}: every file counts as changed; pass --base <ref>${facts.shallow ? ' or fetch more history' : ''}`,
    };
  }
  return { base: mergeBase, describe: `merge-base of HEAD and ${short}` };
}

/**
 * Paths changed since `base`: the committed difference between base and HEAD plus the working tree's own
 * changes (staged, unstaged, untracked). Renames list both paths; deletions count.
 */
export async function changedSince(facts: RepoFacts, base: string, working: readonly WorkingChange[]): Promise<WorkingChange[]> {
  const byPath = new Map<string, WorkingChange>();
  if (facts.head !== null && base !== facts.head) {
    const out = await facts.git.output(['diff', '--name-status', '-z', '-M', '--relative', '--no-ext-diff', '--no-color', base, facts.head, '--']);
    const fields = splitNul(out);
    for (let i = 0; i < fields.length; ) {
      const status = fields[i++]!;
      const code = status[0];
      if (code === 'R' || code === 'C') {
        const from = fields[i++]!;
        const to = fields[i++]!;
        if (code === 'R') {
          byPath.set(from, { path: from, kind: 'renamed', renamedTo: to });
          byPath.set(to, { path: to, kind: 'renamed', renamedFrom: from });
        } else {
          byPath.set(to, { path: to, kind: 'added' });
        }
      } else {
        const p = fields[i++]!;
        byPath.set(p, { path: p, kind: code === 'D' ? 'deleted' : code === 'A' ? 'added' : 'modified' });
      }
    }
  }
  for (const c of working) byPath.set(c.path, c);
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
