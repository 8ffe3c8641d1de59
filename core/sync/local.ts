import { lstat, readFile, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { isWithin } from '../config/paths.js';
import { confinementProblem, destinationFor, type CompiledRule } from './rules.js';
import type { SyncOp } from './transport.js';

export interface Refusal {
  path: string;
  reason: string;
}

export interface PreparedOps {
  ops: SyncOp[];
  refused: Refusal[];
  /** Indexes (into the service's rules) of the rules with at least one op, for their `then` commands. */
  rulesTouched: Set<number>;
  writes: number;
  deletions: number;
}

/** The distinct container directories of a service's rules, in rule order: the roots of its transports. */
export function syncRoots(rules: readonly CompiledRule[]): string[] {
  return [...new Set(rules.map((r) => r.to))];
}

/**
 * Reads the local side of a batch: for each repo path a rule covers, the file's content and mode, a symlink
 * (only when it points inside the rule's base directory), or a deletion when it no longer exists. Only reads:
 * nothing local is ever written or deleted.
 */
export async function prepareOps(root: string, rules: readonly CompiledRule[], repoPaths: readonly string[]): Promise<PreparedOps> {
  const roots = syncRoots(rules);
  const out: PreparedOps = { ops: [], refused: [], rulesTouched: new Set(), writes: 0, deletions: 0 };
  const realBases = new Map<string, string | null>();
  const realBase = async (base: string): Promise<string | null> => {
    if (!realBases.has(base)) realBases.set(base, await realpath(path.join(root, base)).catch(() => null));
    return realBases.get(base)!;
  };

  await Promise.all(
    repoPaths.map(async (p) => {
      const dest = destinationFor(rules, p);
      if (!dest) return;
      const problem = confinementProblem(dest.rel);
      if (problem) {
        out.refused.push({ path: p, reason: problem });
        return;
      }
      const rootIndex = roots.indexOf(dest.rule.to);
      const abs = path.join(root, p);
      const baseAbs = path.join(root, dest.rule.base);
      let st;
      try {
        st = await lstat(abs);
      } catch {
        out.ops.push({ kind: 'delete', root: rootIndex, rel: dest.rel });
        out.deletions++;
        out.rulesTouched.add(dest.rule.index);
        return;
      }
      // The directory holding the file must really be inside the base (no symlinked parent leading out).
      const realDir = await realpath(path.dirname(abs)).catch(() => null);
      const realB = await realBase(dest.rule.base);
      if (!realDir || !realB || !isWithin(realDir, realB)) {
        out.refused.push({ path: p, reason: `its directory resolves outside ${dest.rule.base || '.'}` });
        return;
      }
      if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = await readlink(abs);
        } catch {
          // Gone (or replaced) between lstat and readlink: the next batch reports what it is now.
          return;
        }
        const lexical = path.resolve(path.dirname(abs), target);
        const real = await realpath(abs).catch(() => lexical);
        if (!isWithin(lexical, baseAbs) || !isWithin(real, realB)) {
          out.refused.push({ path: p, reason: `symlink to ${target} points outside ${dest.rule.base || 'the service'}` });
          return;
        }
        out.ops.push({ kind: 'link', root: rootIndex, rel: dest.rel, target: path.relative(path.dirname(abs), lexical) || '.' });
        out.writes++;
        out.rulesTouched.add(dest.rule.index);
        return;
      }
      if (!st.isFile()) return;
      let data: Buffer;
      try {
        data = await readFile(abs);
      } catch {
        // Deleted between lstat and read: the next batch reports the deletion.
        return;
      }
      out.ops.push({ kind: 'write', root: rootIndex, rel: dest.rel, mode: st.mode & 0o777, data });
      out.writes++;
      out.rulesTouched.add(dest.rule.index);
    }),
  );
  // Deterministic order: deletions first (a path may turn from a directory into a file), then by path.
  out.ops.sort((a, b) => (a.kind === 'delete') === (b.kind === 'delete') ? (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0) : a.kind === 'delete' ? -1 : 1);
  return out;
}

/**
 * Every file a service's rules cover as the tree is now (tracked or untracked, not ignored by git), for the
 * initial sync of a new container. `keep` filters further (e.g. what .dockerignore leaves out of the image).
 */
export async function filesCoveredByRules(root: string, rules: readonly CompiledRule[], keep: (repoPath: string) => boolean): Promise<string[]> {
  const bases = [...new Set(rules.map((r) => r.base))];
  const args = ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--deduplicate', '--', ...bases.map((b) => (b === '' ? '.' : b))];
  const r = await execa('git', args, { cwd: root, reject: false });
  if (r.exitCode !== 0) return [];
  return [...new Set(String(r.stdout).split('\0').filter(Boolean))].filter((p) => keep(p) && destinationFor(rules, p) !== undefined);
}
