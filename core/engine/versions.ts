import { computeContentVersions } from '../changes/content.js';
import type { ProjectConfig } from '../config/types.js';

/** Content versions (image tags) per service, as `devloop plan` computes them, as a plain record. */
export async function contentVersions(project: ProjectConfig): Promise<Record<string, string>> {
  return Object.fromEntries(await computeContentVersions(project));
}
