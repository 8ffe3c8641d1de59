import { isWithin } from '../config/paths.js';
import type { ProjectConfig } from '../config/types.js';
import { destinationFor, type CompiledRule } from './rules.js';

export type Action = 'sync' | 'rebuild' | 'redeploy';

/** What one batch of file changes means for one service. */
export interface Decision {
  service: string;
  action: Action;
  /** Repo-relative paths that led to the decision. */
  files: string[];
  reason: string;
}

/** Answers "is this file an input of that service, and through which dependency" (core/changes' BuildInputs). */
export interface InputOracle {
  inputChain(service: string, file: string): string[] | null;
}

/**
 * Decides, once per batch and per service: sync when every changed input of the service is its own file and
 * matches one of its sync rules; otherwise rebuild (and redeploy) it, and every service that depends on it.
 * A change to a service's manifests alone redeploys it. `order` lists services dependencies-first. Pure.
 */
export function decide(
  changed: readonly string[],
  project: Pick<ProjectConfig, 'services'>,
  order: readonly string[],
  oracle: InputOracle,
  rules: ReadonlyMap<string, readonly CompiledRule[]>,
): Decision[] {
  const byName = new Map(project.services.map((s) => [s.name, s]));
  const decisions = new Map<string, Decision>();
  for (const name of order) {
    const service = byName.get(name);
    if (!service) continue;
    const serviceRules = rules.get(name) ?? [];
    const syncable: string[] = [];
    let rebuild: { file: string; reason: string } | undefined;
    const inputs: string[] = [];
    for (const file of changed) {
      const chain = oracle.inputChain(name, file);
      if (chain === null) continue;
      if (chain.length === 0) {
        inputs.push(file);
        if (destinationFor(serviceRules, file)) syncable.push(file);
        else rebuild ??= { file, reason: `${file} is not covered by a sync rule` };
        continue;
      }
      // Through another service: only when that service is rebuilt does this one need a new image.
      const via = chain[0]!;
      if (byName.has(via)) {
        if (decisions.get(via)?.action === 'rebuild') {
          inputs.push(file);
          rebuild ??= { file, reason: `it depends on ${via}, which is rebuilt` };
        }
        continue;
      }
      inputs.push(file);
      rebuild ??= { file, reason: `${file} changed in dependency ${chain.join(' → ')}` };
    }
    if (rebuild) {
      decisions.set(name, { service: name, action: 'rebuild', files: inputs, reason: rebuild.reason });
      continue;
    }
    const manifests = service.manifests;
    const manifestFiles = manifests ? changed.filter((f) => f === manifests || isWithin(f, manifests)) : [];
    if (manifestFiles.length > 0) {
      decisions.set(name, { service: name, action: 'redeploy', files: [...manifestFiles, ...syncable], reason: `${manifestFiles[0]} changed` });
      continue;
    }
    if (syncable.length > 0) {
      decisions.set(name, {
        service: name,
        action: 'sync',
        files: syncable,
        reason: syncable.length === 1 ? `${syncable[0]} matches a sync rule` : `${syncable.length} files match sync rules`,
      });
    }
  }
  return order.map((n) => decisions.get(n)).filter((d): d is Decision => d !== undefined);
}
