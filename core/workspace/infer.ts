import { readFileSync } from 'node:fs';
import path from 'node:path';
import { splitNul } from './git-exec.js';

/** A directory a package directory depends on, found in its manifest. */
export interface InferredDependency {
  /** Repo-relative (lexically resolved) directory. */
  dir: string;
  /** Where it was found, e.g. 'go.mod replace' or 'package.json "@shop/common"'. */
  source: string;
}

/**
 * Reads the manifests of package directories (go.mod, package.json) and returns the local directories each
 * one depends on. One instance per graph build: manifests and the workspace package index are read once.
 */
export class DependencyInference {
  private readonly cache = new Map<string, Promise<InferredDependency[]>>();
  private workspaceIndex: Promise<Map<string, string>> | undefined;

  /** @param packageJsonFiles repo-relative paths of every package.json in the project, when already known. */
  constructor(
    private readonly root: string,
    private readonly packageJsonFiles?: readonly string[],
  ) {}

  dependenciesOf(dir: string): Promise<InferredDependency[]> {
    let p = this.cache.get(dir);
    if (!p) {
      p = this.read(dir);
      this.cache.set(dir, p);
    }
    return p;
  }

  private async read(dir: string): Promise<InferredDependency[]> {
    const [goMod, pkg] = await Promise.all([readText(path.join(this.root, dir, 'go.mod')), readText(path.join(this.root, dir, 'package.json'))]);
    const out: InferredDependency[] = [];
    if (goMod !== null) {
      for (const target of goModLocalReplaces(goMod)) {
        const resolved = resolveInside(dir, target);
        if (resolved !== null) out.push({ dir: resolved, source: 'go.mod replace' });
      }
    }
    if (pkg !== null) {
      let manifest: unknown;
      try {
        manifest = JSON.parse(pkg);
      } catch {
        manifest = null; // a broken package.json is the package manager's to report
      }
      for (const [name, spec] of packageDependencies(manifest)) {
        const local = /^(file|link|portal):(.+)$/.exec(spec);
        if (local) {
          const resolved = resolveInside(dir, local[2]!);
          if (resolved !== null) out.push({ dir: resolved, source: `package.json "${name}"` });
          continue;
        }
        const ws = (await this.workspacePackages()).get(name);
        if (ws !== undefined && ws !== dir) out.push({ dir: ws, source: `package.json "${name}"` });
      }
    }
    return out;
  }

  /** Package name → directory for every package.json in the project outside node_modules. */
  private workspacePackages(): Promise<Map<string, string>> {
    this.workspaceIndex ??= (async () => {
      // git.ts (simple-git) is loaded only when the caller has no list of files.
      const files =
        this.packageJsonFiles ??
        splitNul(
          await new (await import('./git.js')).GitRepo(this.root).output(['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ':(glob)**/package.json']),
        );
      const index = new Map<string, string>();
      const candidates = files.filter((f) => (f === 'package.json' || f.endsWith('/package.json')) && !f.split('/').includes('node_modules'));
      await Promise.all(
        candidates.map(async (f) => {
          const text = await readText(path.join(this.root, f));
          if (text === null) return;
          try {
            const name = (JSON.parse(text) as { name?: unknown }).name;
            const dir = path.posix.dirname(f);
            if (typeof name === 'string' && !index.has(name)) index.set(name, dir === '.' ? '' : dir);
          } catch {
            // not a package manifest we can read; not a workspace package
          }
        }),
      );
      return index;
    })();
    return this.workspaceIndex;
  }
}

/** Local paths on the right-hand side of go.mod `replace` directives (single-line and block form). */
export function goModLocalReplaces(text: string): string[] {
  const out: string[] = [];
  let inBlock = false;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.replace(/\/\/.*$/, '').trim();
    if (line === '') continue;
    if (/^replace\s*\($/.test(line)) {
      inBlock = true;
      continue;
    }
    if (inBlock && line === ')') {
      inBlock = false;
      continue;
    }
    const spec = inBlock ? line : /^replace\s+(.+)$/.exec(line)?.[1];
    if (!spec) continue;
    const arrow = spec.indexOf('=>');
    if (arrow < 0) continue;
    const target = unquote(spec.slice(arrow + 2).trim().split(/\s+/)[0] ?? '');
    // Go's rule: a replacement is a local directory when it is a rooted path or starts with ./ or ../
    if (target === '.' || target === '..' || target.startsWith('./') || target.startsWith('../')) out.push(target);
  }
  return out;
}

function unquote(s: string): string {
  if (s.length >= 2 && (s[0] === '"' || s[0] === '`') && s[s.length - 1] === s[0]) return s.slice(1, -1);
  return s;
}

function packageDependencies(manifest: unknown): [string, string][] {
  if (manifest === null || typeof manifest !== 'object') return [];
  const out: [string, string][] = [];
  for (const field of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']) {
    const deps = (manifest as Record<string, unknown>)[field];
    if (deps === null || typeof deps !== 'object') continue;
    for (const [name, spec] of Object.entries(deps)) if (typeof spec === 'string') out.push([name, spec]);
  }
  return out;
}

/** `target` (relative to repo dir `from`) as a repo-relative path, or null when it leaves the repository. */
function resolveInside(from: string, target: string): string | null {
  const joined = path.posix.normalize(path.posix.join(from === '' ? '.' : from, target.replace(/\\/g, '/')));
  if (joined === '..' || joined.startsWith('../') || path.posix.isAbsolute(joined)) return null;
  const clean = joined.replace(/\/+$/, '');
  return clean === '.' ? '' : clean;
}

/** Synchronous: manifests are small, and hundreds of thread-pool round trips cost more than the reads. */
async function readText(file: string): Promise<string | null> {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    // Absent or unreadable: nothing to infer from it.
    return null;
  }
}
