import path from 'node:path';
import picomatch from 'picomatch';
import type { ServiceConfig, SyncRule } from '../config/types.js';

/**
 * A sync rule ready to match repo-relative paths. A file matching `from` lands under `to` at its path relative to
 * the glob's static base: with `from: "src/**\/*.js"` and `to: /app/src`, `src/lib/a.js` becomes `/app/src/lib/a.js`;
 * a literal `from` such as `server.js` lands as `<to>/server.js`.
 */
export interface CompiledRule {
  service: string;
  index: number;
  rule: SyncRule;
  /** Repo-relative directory the destination paths are taken relative to ('' for the repo root). */
  base: string;
  /** Absolute container directory, without a trailing slash (except "/"). */
  to: string;
  matches(repoPath: string): boolean;
}

export function compileRules(service: ServiceConfig): CompiledRule[] {
  return service.sync.map((rule, index) => {
    const scan = picomatch.scan(rule.from);
    const literal = !scan.isGlob;
    const staticPart = literal ? path.posix.dirname(rule.from) : scan.base;
    const base = joinRepo(service.path, staticPart === '.' ? '' : staticPart);
    const full = joinRepo(service.path, rule.from);
    const isMatch = picomatch(full, { dot: true });
    return {
      service: service.name,
      index,
      rule,
      base,
      to: normaliseContainerDir(rule.to),
      matches: (p: string) => isMatch(p),
    };
  });
}

function joinRepo(a: string, b: string): string {
  if (a === '' || a === '.') return b;
  if (b === '') return a;
  return `${a}/${b}`;
}

function normaliseContainerDir(dir: string): string {
  const n = path.posix.normalize(dir);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

/** Why a path is never sent into a container, or undefined when it may be. */
export function neverSent(repoPath: string): string | undefined {
  const parts = repoPath.split('/');
  if (parts.includes('.git')) return '.git is never synced';
  const name = parts[parts.length - 1]!;
  if (name === '.env' || name.startsWith('.env.')) return '.env files are never synced';
  return undefined;
}

/**
 * Checks a destination path relative to a sync root: not empty, not absolute, no "." / ".." / empty segments, no
 * NUL. Returns the problem, or undefined when the path stays inside the root.
 */
export function confinementProblem(rel: string): string | undefined {
  if (rel === '') return 'empty path';
  if (rel.includes('\0')) return 'NUL in path';
  if (rel.startsWith('/')) return 'absolute path';
  for (const seg of rel.split('/')) {
    if (seg === '..') return 'path climbs out with ".."';
    if (seg === '.' || seg === '') return 'path is not normalised';
  }
  return undefined;
}

/** The rule (first match wins) a repo path syncs by, and its path relative to the rule's `to`. */
export function destinationFor(rules: readonly CompiledRule[], repoPath: string): { rule: CompiledRule; rel: string } | undefined {
  if (neverSent(repoPath)) return undefined;
  for (const rule of rules) {
    if (!rule.matches(repoPath)) continue;
    const rel = rule.base === '' ? repoPath : repoPath.startsWith(`${rule.base}/`) ? repoPath.slice(rule.base.length + 1) : undefined;
    if (rel === undefined) continue;
    return { rule, rel };
  }
  return undefined;
}

/** Absolute container path of `rel` under a rule's `to`. */
export function containerPath(rule: CompiledRule, rel: string): string {
  return rule.to === '/' ? `/${rel}` : `${rule.to}/${rel}`;
}
