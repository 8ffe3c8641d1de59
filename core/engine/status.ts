import type { ProjectConfig } from '../config/types.js';
import { repositoryOf } from '../build/registry.js';
import type { Target, TargetContext } from '../target/target.js';
import type { TargetKind } from './events.js';
import { plannedServices } from './up.js';
import type { EngineBus } from './state.js';

export interface ServiceStatus {
  name: string;
  /** Namespace (Kubernetes) or container name (Docker). */
  where: string;
  deployed: boolean;
  deployedVersion?: string;
  workingTreeVersion: string;
  /** What runs is what `up` would deploy from the working tree, and it is rolled out (the same test `up` makes). */
  current: boolean;
  ready: number;
  desired: number;
  image?: string;
  /** How it is served where that is not obvious (a shared cluster: baseline or fork, and the route). */
  note?: string;
}

export interface StatusReport {
  target: TargetKind;
  where: string;
  services: ServiceStatus[];
  /** Lines about the environment beyond the services (a shared cluster's routes and other developers). */
  environment?: string[];
}

/** What runs where for each service, and whether it matches the working tree. Reads only. */
export async function collectStatus(project: ProjectConfig, developer: string, target: Target, versions: Record<string, string>, bus: EngineBus): Promise<StatusReport> {
  const ctx: TargetContext = { project, developer };
  const planned = plannedServices(project, target, versions);
  const images = Object.fromEntries(planned.map((p) => [repositoryOf(p.image), p.image]));
  const deployables = await target.prepare(
    ctx,
    { services: project.services.map((s, i) => ({ service: s, version: planned[i]!.version, ref: planned[i]!.image })), images },
    (e) => bus.emit(e),
  );
  const [deployed, environment] = await Promise.all([target.inspect(ctx, deployables), target.overview?.(ctx)]);
  return {
    target: target.kind,
    where: target.where,
    ...(environment ? { environment } : {}),
    services: planned.map((p) => {
      const d = deployed.get(p.name);
      return {
        name: p.name,
        where: d?.where ?? target.where,
        deployed: !!d,
        ...(d ? { deployedVersion: d.version } : {}),
        ...(d?.image ? { image: d.image } : {}),
        workingTreeVersion: p.version,
        current: d?.current ?? false,
        ready: d?.ready ?? 0,
        desired: d?.desired ?? 0,
        ...(d?.note ? { note: d.note } : {}),
      };
    }),
  };
}
