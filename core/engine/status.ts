import type { ProjectConfig } from '../config/types.js';
import type { Target } from '../target/select.js';
import { imageRefFor } from '../target/select.js';

export interface ServiceStatus {
  name: string;
  /** Namespace (Kubernetes) or container name (Docker). */
  where: string;
  deployed: boolean;
  deployedVersion?: string;
  workingTreeVersion: string;
  /** The deployed version is the one the working tree would build. */
  current: boolean;
  ready: number;
  desired: number;
  image?: string;
}

export interface StatusReport {
  target: Target['kind'];
  where: string;
  services: ServiceStatus[];
}

/** What runs where for each service, and whether it matches the working tree. Reads only. */
export async function collectStatus(project: ProjectConfig, developer: string, target: Target, versions: Record<string, string>): Promise<StatusReport> {
  const owner = { project: project.name, developer };
  const services: ServiceStatus[] = [];
  if (target.kind === 'docker') {
    const { dockerClient, ensureDockerReachable } = await import('../build/docker.js');
    const { listServiceContainers, containerName } = await import('../target/docker.js');
    const docker = await dockerClient();
    await ensureDockerReachable(docker);
    const running = await listServiceContainers(docker, owner);
    for (const s of project.services) {
      const c = running.find((r) => r.service === s.name);
      const version = versions[s.name] ?? '';
      services.push({
        name: s.name,
        where: containerName(owner, s.name),
        deployed: !!c,
        ...(c ? { deployedVersion: c.version, image: c.image } : {}),
        workingTreeVersion: version,
        current: !!c && c.version === version && c.image === imageRefFor(target, s.image, version),
        ready: c?.running ? 1 : 0,
        desired: c ? 1 : 0,
      });
    }
    return { target: target.kind, where: target.where, services };
  }
  const { readDeployedRecords } = await import('../deploy/apply.js');
  const { WORKLOAD_KINDS, workloadStatus } = await import('../deploy/rollout.js');
  const records = await readDeployedRecords(target.kube, target.namespace, owner);
  await Promise.all(
    project.services.map(async (s) => {
      const record = records.get(s.name);
      const version = versions[s.name] ?? '';
      let ready = 0;
      let desired = 0;
      let image: string | undefined;
      for (const ref of record?.objects.filter((o) => WORKLOAD_KINDS.has(o.kind)) ?? []) {
        const ns = ref.namespace ?? target.namespace;
        try {
          const w =
            ref.kind === 'Deployment'
              ? await target.kube.apps.readNamespacedDeployment({ name: ref.name, namespace: ns })
              : ref.kind === 'StatefulSet'
                ? await target.kube.apps.readNamespacedStatefulSet({ name: ref.name, namespace: ns })
                : await target.kube.apps.readNamespacedDaemonSet({ name: ref.name, namespace: ns });
          const st = workloadStatus(ref.kind, w);
          ready += st.ready;
          desired += st.desired;
          image ??= w.spec?.template.spec?.containers.map((c) => c.image).find((i) => i?.includes(s.image));
        } catch {
          // A workload deleted behind devloop's back counts as not ready.
        }
      }
      services.push({
        name: s.name,
        where: target.namespace,
        deployed: !!record,
        ...(record ? { deployedVersion: record.version } : {}),
        ...(image ? { image } : {}),
        workingTreeVersion: version,
        current: !!record && record.version === version,
        ready,
        desired,
      });
    }),
  );
  services.sort((a, b) => project.services.findIndex((s) => s.name === a.name) - project.services.findIndex((s) => s.name === b.name));
  return { target: target.kind, where: target.where, services };
}
