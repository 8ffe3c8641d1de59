import path from 'node:path';
import type { ContextFilter } from '../changes/content.js';
import { joinRel } from '../config/paths.js';
import type { ProjectConfig } from '../config/types.js';
import type { ServiceGraph } from '../workspace/graph.js';

/**
 * The repo-relative paths whose changes can lead to a decision: devloop.yaml, and per service what its Dockerfile
 * reads from the build context (the sources of its COPY, ADD and bind mounts; up to the first wildcard), its
 * Dockerfile and ignore file (also where one may appear), its directory dependencies (declared and inferred,
 * transitively) and its manifests. A change anywhere else is nobody's input, so it needs no watching: in a large
 * monorepo this keeps the watch (and devloop's memory) to what the services read. A Dockerfile that reads its
 * whole context from the repository root (`COPY . .`) makes it the whole tree (['']).
 */
export function watchScope(project: Pick<ProjectConfig, 'root' | 'file' | 'services'>, graph: ServiceGraph, filters: ReadonlyMap<string, ContextFilter>): string[] {
  const out = new Set<string>();
  if (project.file) out.add(path.relative(project.root, project.file).split(path.sep).join('/'));
  for (const node of graph.nodes.values()) {
    const filter = filters.get(node.service.name);
    // Only what the Dockerfile can read from the context (the whole context without a Dockerfile).
    const reads = filter?.reads?.reads;
    if (reads) for (const r of reads) out.add(joinRel(node.context, r.prefix));
    else out.add(node.context);
    out.add(node.dockerfile);
    // BuildKit's `<Dockerfile>.dockerignore` wins over the context's .dockerignore, wherever the Dockerfile is.
    out.add(`${node.dockerfile}.dockerignore`);
    out.add(joinRel(node.context, '.dockerignore'));
    if (filter?.file) out.add(filter.file);
    for (const d of node.dirs) out.add(d.dir);
    if (node.service.manifests !== undefined) out.add(node.service.manifests);
  }
  const paths = [...out].sort();
  if (paths.includes('')) return [''];
  return paths.filter((p) => !paths.some((o) => o !== p && p.startsWith(`${o}/`)));
}
