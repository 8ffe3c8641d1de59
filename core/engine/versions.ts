import path from 'node:path';
import { TreeProbe } from '../changes/tree-cache.js';
import { findProjectRoot } from '../config/root.js';
import type { ProjectConfig } from '../config/types.js';

/** Content versions (image tags) per service, as `devloop plan` computes them, as a plain record. */
export async function contentVersions(project: ProjectConfig): Promise<Record<string, string>> {
  const { computeContentVersions } = await import('../changes/content.js');
  return Object.fromEntries(await computeContentVersions(project));
}

/** The git reads of the project containing `dir` (those of loadProjectWithVersions), started. */
export interface ProjectProbe {
  probe: TreeProbe | undefined;
}

/**
 * Starts the git reads loadProjectWithVersions needs: a caller about to load something large (the Kubernetes client)
 * starts them first, so that git runs meanwhile (and is spawned from a small process).
 */
export async function probeProject(dir: string): Promise<ProjectProbe> {
  const found = await findProjectRoot(path.resolve(dir)).catch(() => ({ kind: 'none' as const }));
  return { probe: found.kind === 'file' ? new TreeProbe(path.dirname(found.file), found.file, { refs: false, slot: 'tree' }) : undefined };
}

/**
 * The project that contains `dir` and its content versions: from the tree cache when nothing changed since they
 * were stored (core/changes/tree-cache.ts), else loaded and computed (and stored). `check` sees the project before
 * its versions are computed: a problem it throws comes first, as when loading alone.
 */
export async function loadProjectWithVersions(
  dir: string,
  check: (project: ProjectConfig) => Promise<void> | void = () => undefined,
  early?: ProjectProbe,
): Promise<{ project: ProjectConfig; versions: Record<string, string> }> {
  const probe = (early ?? (await probeProject(dir))).probe;
  const cached = await probe?.cachedVersions();
  if (cached) {
    await check(cached.project);
    return cached;
  }
  const [{ loadProject }, { readBuildInputs, snapshotReadFrom }] = await Promise.all([import('../config/load.js'), import('../changes/content.js')]);
  const started = Date.now();
  const project = await loadProject(dir);
  await check(project);
  const { inputs } = await readBuildInputs(project, probe && probe.root === project.root ? snapshotReadFrom(probe) : undefined);
  const versions = Object.fromEntries(inputs.contentVersions());
  await probe?.storeVersions(project, versions, inputs, started);
  return { project, versions };
}
