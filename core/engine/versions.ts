import type { ProjectConfig } from '../config/types.js';
import { InternalError } from '../errors.js';

/**
 * Content versions (image tags) per service, from the change planner. Normalises the planner's result to a plain
 * record so the engine does not depend on its container type.
 */
export async function contentVersions(project: ProjectConfig): Promise<Record<string, string>> {
  // Resolved at run time so the engine builds without the planner present.
  const plannerModule = '../changes/plan.js';
  const planner = (await import(plannerModule)) as {
    computeContentVersions(p: ProjectConfig): Promise<Map<string, string> | Record<string, string | { version?: string; tag?: string }>>;
  };
  const result = await planner.computeContentVersions(project);
  const entries = result instanceof Map ? [...result.entries()] : Object.entries(result);
  const out: Record<string, string> = {};
  for (const [name, v] of entries) {
    const version = typeof v === 'string' ? v : (v?.version ?? v?.tag);
    if (!version) throw new InternalError(`the planner gave no content version for ${name}`);
    out[name] = version;
  }
  return out;
}
