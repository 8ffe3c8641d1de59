import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** How the repository names its Go modules, learnt from one go.mod. */
type Convention =
  | { kind: 'path'; prefix: string } // module = prefix + "/" + directory relative to the root
  | { kind: 'name'; prefix: string }; // module = prefix + "/" + the directory's base name

export interface ModuleInference {
  module: string;
  /** The go.mod files (repo-relative) that follow the convention used. */
  evidence: string[];
}

/** Directories never searched for go.mod files. */
const SKIP = new Set(['node_modules', 'vendor', 'testdata', 'dist', 'build']);
const MAX_DEPTH = 6;

/** The `module` path a go.mod declares, or undefined. */
export function parseModuleLine(goMod: string): string | undefined {
  for (const line of goMod.split('\n')) {
    const m = /^\s*module\s+("([^"]+)"|`([^`]+)`|(\S+))/.exec(line.replace(/\/\/.*$/, ''));
    if (m) return m[2] ?? m[3] ?? m[4];
  }
  return undefined;
}

/**
 * The module path a new Go service at `serviceDir` (repo-relative) should get, following the convention of
 * the repository's existing go.mod files: "<prefix>/<dir>" when modules are named after their directory
 * (a root go.mod counts too), "<prefix>/<name>" when they are named after the directory's base name.
 * The convention most go.mod files follow wins; undefined when no go.mod follows either.
 */
export async function inferGoModule(root: string, serviceDir: string): Promise<ModuleInference | undefined> {
  const votes = new Map<string, { convention: Convention; evidence: string[] }>();
  for (const rel of await findGoMods(root)) {
    const module = parseModuleLine(await readFile(path.join(root, rel), 'utf8'));
    if (!module) continue;
    const dir = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    const convention = conventionOf(module.replace(/\/v[0-9]+$/, ''), dir);
    if (!convention) continue;
    const key = `${convention.kind} ${convention.prefix}`;
    const entry = votes.get(key) ?? { convention, evidence: [] };
    entry.evidence.push(rel);
    votes.set(key, entry);
  }
  const best = [...votes.values()].sort((a, b) => b.evidence.length - a.evidence.length)[0];
  if (!best) return undefined;
  const { kind, prefix } = best.convention;
  const suffix = kind === 'path' ? serviceDir : path.posix.basename(serviceDir);
  return { module: suffix === '' ? prefix : `${prefix}/${suffix}`, evidence: best.evidence };
}

function conventionOf(module: string, dir: string): Convention | undefined {
  if (dir === '') return { kind: 'path', prefix: module };
  if (module.endsWith(`/${dir}`)) return { kind: 'path', prefix: module.slice(0, -dir.length - 1) };
  const base = path.posix.basename(dir);
  if (module.endsWith(`/${base}`)) return { kind: 'name', prefix: module.slice(0, -base.length - 1) };
  return undefined;
}

/** Repo-relative paths of go.mod files, skipping hidden, vendored and dependency directories. */
async function findGoMods(root: string, rel = '', depth = 0): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(path.join(root, rel), { withFileTypes: true });
  } catch {
    // Unreadable directory: no go.mod found there.
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const child = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isFile() && e.name === 'go.mod') out.push(child);
    else if (e.isDirectory() && depth < MAX_DEPTH && !e.name.startsWith('.') && !SKIP.has(e.name)) {
      out.push(...(await findGoMods(root, child, depth + 1)));
    }
  }
  return out.sort();
}
