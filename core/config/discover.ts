import { stat } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { GitRepo, splitNul } from '../workspace/git.js';
import { displayPath, toDnsLabel } from './paths.js';
import type { ProjectConfig, ServiceConfig } from './types.js';

/** Directories whose Dockerfiles are not services: dependencies, vendored code, test fixtures. */
const SKIPPED_DIRS = new Set(['node_modules', 'vendor', 'testdata', 'fixtures', '.git', '.devloop']);

/**
 * Directory names that say how a repository is laid out, not what a service is called: a service is named after the
 * nearest directory above its Dockerfile that is not one of these (`src/cartservice/src/Dockerfile` → cartservice).
 */
export const GENERIC_DIRS = new Set([
  'src', 'source', 'sources', 'app', 'apps', 'build', 'docker', 'dockerfiles', 'deploy', 'deployment', 'deployments',
  'cmd', 'main', 'code', 'server', 'service', 'services', 'svc', 'packages', 'pkg', 'image', 'images', 'container',
  'containers', 'dist', 'bin', '.docker', 'ci', 'dev', 'prod', 'release',
]);

/** Subdirectories that conventionally hold a service's Kubernetes manifests, in order of preference. */
const MANIFEST_DIRS = ['k8s', 'kubernetes', 'manifests', 'deploy', 'chart'];

export interface DiscoveredService {
  name: string;
  /** Directory holding the Dockerfile, relative to the root ("" for the root itself). */
  path: string;
  manifests?: string;
}

/**
 * The project as devloop sees it without a devloop.yaml: every directory under `root` holding a Dockerfile
 * (tracked, or untracked and not ignored) is a service named after its directory.
 */
export async function discoverProject(root: string): Promise<ProjectConfig> {
  const name = projectNameFor(root);
  const found = await discoverServices(root, name);
  const services: ServiceConfig[] = found.map((s) => {
    const svc: ServiceConfig = {
      name: s.name,
      path: s.path,
      dockerfile: 'Dockerfile',
      dependsOn: [],
      image: `${name}/${s.name}`,
      buildArgs: {},
      ports: [],
      sync: [],
    };
    if (s.manifests !== undefined) svc.manifests = s.manifests;
    return svc;
  });
  const project: ProjectConfig = { version: 1, name, root, file: null, services };
  if (process.env.DEVLOOP_REGISTRY) project.registry = process.env.DEVLOOP_REGISTRY;
  if (process.env.DEVLOOP_DEVELOPER) project.developer = process.env.DEVLOOP_DEVELOPER;
  return project;
}

export function projectNameFor(root: string): string {
  return toDnsLabel(path.basename(root)) || 'project';
}

export async function discoverServices(root: string, projectName = projectNameFor(root)): Promise<DiscoveredService[]> {
  const git = new GitRepo(root);
  const inside = await git.run(['rev-parse', '--is-inside-work-tree'], { allowExit: [128] });
  if (inside === null || inside.trim() !== 'true') {
    throw new UserError(`${root} is not inside a git working tree`, {
      hint: 'devloop finds services and changes with git: run `git init` (or work in a clone)',
    });
  }
  const out = await git.output(['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ':(glob)**/Dockerfile']);
  const dirs = new Set<string>();
  for (const file of splitNul(out)) {
    const dir = path.posix.dirname(file);
    const rel = dir === '.' ? '' : dir;
    if (rel.split('/').some((part) => SKIPPED_DIRS.has(part))) continue;
    if (!(await isFile(path.join(root, file)))) continue; // deleted in the working tree
    dirs.add(rel);
  }
  const sorted = [...dirs].sort();
  const names = uniqueNames(sorted, projectName);
  return Promise.all(
    sorted.map(async (dir, i) => {
      const s: DiscoveredService = { name: names[i]!, path: dir };
      for (const m of MANIFEST_DIRS) {
        const candidate = dir === '' ? m : `${dir}/${m}`;
        if (await isDirectory(path.join(root, candidate))) {
          s.manifests = candidate;
          break;
        }
      }
      return s;
    }),
  );
}

/**
 * Names from directory names: the nearest directory that is not a generic name (GENERIC_DIRS). Where two collide
 * ("services/api", "tools/api") the meaningful parent directories are prefixed until they differ
 * ("services-api", "tools-api"); what still collides gets a numeric suffix.
 */
export function uniqueNames(dirs: string[], projectName: string): string[] {
  // Per directory, the names it may take, shortest first: its meaningful directories from the nearest one up, then
  // its whole path (generic parts included) for what still collides.
  const candidates = dirs.map((dir) => {
    if (dir === '') return [projectName];
    const parts = dir.split('/');
    const named = parts.filter((p) => !GENERIC_DIRS.has(p.toLowerCase()));
    const base = named.length > 0 ? named : parts;
    const out = base.map((_p, i) => toDnsLabel(base.slice(base.length - 1 - i).join('-')) || 'service');
    const whole = toDnsLabel(parts.join('-')) || 'service';
    return out.includes(whole) ? out : [...out, whole];
  });
  const depth = dirs.map(() => 0);
  for (let round = 0; round < 64; round++) {
    const labels = dirs.map((_d, i) => candidates[i]![depth[i]!]!);
    const counts = new Map<string, number>();
    for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
    let changed = false;
    dirs.forEach((_d, i) => {
      if (counts.get(labels[i]!)! > 1 && depth[i]! < candidates[i]!.length - 1) {
        depth[i]!++;
        changed = true;
      }
    });
    if (!changed) break;
  }
  // Whatever still collides (identical labels from different spellings) gets a numeric suffix.
  const used = new Set<string>();
  return dirs.map((_d, i) => {
    const l = candidates[i]![depth[i]!]!;
    let name = l;
    for (let n = 2; used.has(name); n++) name = `${l.slice(0, 60)}-${n}`;
    used.add(name);
    return name;
  });
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    // Absent or unreadable: not a file devloop can use.
    return false;
  }
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    // Absent or unreadable: not a directory devloop can use.
    return false;
  }
}

/** Why a project has no services, and how to add one; undefined when it has some. */
export function noServices(project: ProjectConfig): { message: string; hint: string } | undefined {
  if (project.services.length > 0) return undefined;
  return {
    message: project.file ? `${displayPath(project.file)} declares no services` : `no devloop.yaml, and no Dockerfile under ${project.root}`,
    hint: '`devloop scaffold` creates a service; devloop treats every directory with a Dockerfile as one (`devloop init` writes them into devloop.yaml)',
  };
}
