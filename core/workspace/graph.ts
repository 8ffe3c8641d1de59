import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { findCycles, topologicalOrder } from '../config/cycles.js';
import { isWithin, joinRel } from '../config/paths.js';
import type { ProjectConfig, ServiceConfig } from '../config/types.js';
import { UserError } from '../errors.js';
import { DependencyInference } from './infer.js';

/** What a service depends on, as plan shows it: what devloop.yaml says, and what devloop found on its own. */
export interface ServiceDependencies {
  /** dependsOn as written: service names and repo paths. */
  declared: string[];
  /** Directories found in go.mod replace directives and package.json workspace dependencies (transitively). */
  inferred: string[];
}

/** A directory whose files are inputs of a service, and the chain of dependencies that led to it. */
export interface DirectoryInput {
  /** Repo-relative, symlinks resolved; may also name a single file when dependsOn names one. */
  dir: string;
  /** Dependency chain from the service, e.g. ['libs/a', 'libs/b'] when libs/a's go.mod points at libs/b. */
  via: string[];
  declared: boolean;
}

export interface ServiceNode {
  service: ServiceConfig;
  /** The build context, repo-relative with symlinks resolved (git only knows real paths). */
  context: string;
  /** The Dockerfile, repo-relative with symlinks resolved. */
  dockerfile: string;
  dependsOn: ServiceDependencies;
  /** Services named in dependsOn: built before this one, and their inputs are this one's inputs too. */
  services: string[];
  /** Directories outside the build context whose files are inputs (transitive closure, without services). */
  dirs: DirectoryInput[];
}

export interface ServiceGraph {
  root: string;
  nodes: Map<string, ServiceNode>;
  /** Service names, dependencies first. */
  order: string[];
}

/**
 * Builds the dependency graph: declared dependsOn plus what go.mod and package.json imply, followed
 * transitively through directories. Service-to-service cycles are a UserError that names the cycle.
 *
 * @param opts.packageJsonFiles every package.json path in the project, when the caller already listed files.
 */
export async function buildGraph(project: ProjectConfig, opts: { packageJsonFiles?: readonly string[] } = {}): Promise<ServiceGraph> {
  assertNoCycles(project);
  const realRoot = realpathSync.native(project.root);
  const inference = new DependencyInference(project.root, opts.packageJsonFiles);
  const serviceNames = new Set(project.services.map((s) => s.name));
  const toReal = (rel: string) => realRelative(project.root, realRoot, rel);

  const built = await Promise.all(
    project.services.map(async (service): Promise<ServiceNode> => {
      const [context, dockerfile] = await Promise.all([toReal(service.path), toReal(joinRel(service.path, service.dockerfile))]);
      const declaredPaths = service.dependsOn.filter((d) => !serviceNames.has(d));
      const services = service.dependsOn.filter((d) => serviceNames.has(d));

      // Breadth-first over directories: the context and declared paths first, then what their manifests name.
      const seen = new Map<string, DirectoryInput>();
      let frontier: { written: string; real: string; via: string[]; declared: boolean }[] = [
        { written: service.path, real: context, via: [], declared: false },
      ];
      for (const d of declaredPaths) frontier.push({ written: d, real: await toReal(d), via: [d], declared: true });
      const visited = new Set<string>();
      while (frontier.length > 0) {
        const next: typeof frontier = [];
        for (const item of frontier) {
          if (visited.has(item.real)) continue;
          visited.add(item.real);
          if (item.via.length > 0 && !seen.has(item.real)) seen.set(item.real, { dir: item.real, via: item.via, declared: item.declared });
          for (const dep of await inference.dependenciesOf(item.written)) {
            if (!existsSync(path.join(project.root, dep.dir))) continue;
            const real = await toReal(dep.dir);
            if (!visited.has(real)) next.push({ written: dep.dir, real, via: [...item.via, real], declared: false });
          }
        }
        frontier = next;
      }

      // Directories inside the context are already inputs (filtered by .dockerignore); keep only the others,
      // and drop any directory that lies inside another one on the list.
      const candidates = [...seen.values()].filter((d) => !isWithin(d.dir, context));
      const dirs = candidates
        .filter((d) => !candidates.some((o) => o !== d && o.dir !== d.dir && isWithin(d.dir, o.dir)))
        .sort((a, b) => (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0));

      const declaredReal = new Set(await Promise.all(declaredPaths.map(toReal)));
      const inferred = [...new Set([...seen.values()].filter((d) => !d.declared && !declaredReal.has(d.dir) && !isWithin(d.dir, context)).map((d) => d.dir))].sort();

      return {
        service,
        context,
        dockerfile,
        dependsOn: { declared: [...service.dependsOn], inferred },
        services,
        dirs,
      };
    }),
  );
  // In config order, whatever order the manifests were read in.
  const nodes = new Map(built.map((n) => [n.service.name, n]));

  return { root: project.root, nodes, order: buildOrder(project) };
}

/** Service → the services it names in dependsOn (the edges the build stage orders by). */
export function serviceEdges(project: ProjectConfig): Map<string, string[]> {
  const names = new Set(project.services.map((s) => s.name));
  return new Map(project.services.map((s) => [s.name, s.dependsOn.filter((d) => names.has(d))]));
}

/** Service names in build order: every service after the services its dependsOn names; config order otherwise. */
export function buildOrder(project: ProjectConfig): string[] {
  assertNoCycles(project);
  return topologicalOrder(
    project.services.map((s) => s.name),
    serviceEdges(project),
  );
}

/** Build order as waves: the services of one wave depend only on earlier waves, so each wave can build in parallel. */
export function buildWaves(project: ProjectConfig): string[][] {
  const edges = serviceEdges(project);
  const level = new Map<string, number>();
  for (const name of buildOrder(project)) {
    level.set(name, Math.max(-1, ...(edges.get(name) ?? []).map((d) => level.get(d)!)) + 1);
  }
  const waves: string[][] = [];
  for (const [name, l] of level) (waves[l] ??= []).push(name);
  return waves;
}

/**
 * Every input location of a service, transitively: its context, its directory dependencies, and those of the
 * services it depends on (each once).
 */
export function inputDirectories(graph: ServiceGraph, name: string): string[] {
  const out = new Set<string>();
  const visit = (n: string) => {
    const node = graph.nodes.get(n);
    if (!node) return;
    if (out.has(node.context) && n !== name) return;
    out.add(node.context);
    if (!isWithin(node.dockerfile, node.context)) out.add(node.dockerfile);
    for (const d of node.dirs) out.add(d.dir);
    for (const s of node.services) visit(s);
  };
  visit(name);
  return [...out];
}

function assertNoCycles(project: ProjectConfig): void {
  const cycles = findCycles(
    project.services.map((s) => s.name),
    serviceEdges(project),
  );
  if (cycles.length > 0) {
    throw new UserError(`dependency cycle between services: ${cycles.map((c) => c.join(' → ')).join('; ')}`, {
      hint: 'remove one of the dependsOn entries along the cycle',
    });
  }
}

/** Repo-relative path with symlinks resolved; the written path when it does not exist (yet). */
async function realRelative(root: string, realRoot: string, rel: string): Promise<string> {
  try {
    const real = realpathSync.native(path.join(root, rel));
    const r = path.relative(realRoot, real).split(path.sep).join('/');
    return r.startsWith('..') ? rel : r;
  } catch {
    // Does not exist (yet): the path as written is the best key.
    return rel;
  }
}
