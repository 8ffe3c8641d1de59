import { readGit } from '../workspace/git-exec.js';
import { DEFAULT_BRANCHES } from './base.js';

/** `git rev-parse` arguments whose answers make RepoFacts (HEAD last: it fails in a repository without commits). */
export const FACTS_ARGS = ['rev-parse', '--show-toplevel', '--show-prefix', '--show-object-format', '--is-shallow-repository', '--absolute-git-dir'];
/** The index: mode, object id and path of every entry. */
export const LS_FILES_ARGS = ['ls-files', '--stage', '-z'];
/** What differs from the index and HEAD, untracked files one by one. */
export const STATUS_ARGS = ['status', '--porcelain=v2', '-z', '--untracked-files=all', '--ignore-submodules=dirty', '--', '.'];
/** The default-branch candidates and the commits they point at (see base.ts). */
export const DEFAULT_REFS_ARGS = ['for-each-ref', '--format=%(refname)%00%(objectname)', ...DEFAULT_BRANCHES];

/** The raw answers of the git reads every question about a tree starts with; null where git failed. */
export interface TreeReads {
  status: Promise<string | null>;
  /** `git rev-parse <FACTS_ARGS> HEAD^{commit}`. */
  revParse: Promise<string | null>;
  /** `git for-each-ref` over the default-branch candidates, when asked for. */
  refs: Promise<string | null> | undefined;
}

/**
 * Starts the reads at once, the longest (`status`) first. A module of its own, light on purpose: `plan` calls it
 * before the rest of devloop has loaded (see TreeProbe in tree-cache.ts, which interprets the answers).
 */
export function startTreeReads(root: string, opts: { refs: boolean }): TreeReads {
  return {
    status: readGit(root, STATUS_ARGS),
    revParse: readGit(root, [...FACTS_ARGS, 'HEAD^{commit}']),
    refs: opts.refs ? readGit(root, DEFAULT_REFS_ARGS) : undefined,
  };
}
