import type * as k8s from '@kubernetes/client-node';
import { isNotFound, kubeCallFailed, type Kube } from '../deploy/kube.js';
import { MANAGED_BY, MANAGED_BY_VALUE, PROJECT_LABEL, SERVICE_LABEL, toLabelValue } from '../deploy/labels.js';
import { UserError } from '../errors.js';

/** Marks a swap's agent and its pods (the value is the swap's name); the Service points at it while swapped. */
export const SWAP_AGENT_LABEL = 'devloop.dev/swap-agent';

/** `--port LOCAL:REMOTE` (REMOTE: a port of the Service, by number or name) or `--port LOCAL` (the Service's only port). */
export interface PortRequest {
  local: number;
  remote?: string;
}

/** One Service port as swapped: the cluster sends `targetPort` to the agent, which carries it to `local`. */
export interface SwappedPort {
  name?: string;
  port: number;
  targetPort: number;
  local: number;
}

/** What a swap changes, resolved and checked before anything is changed. */
export interface SwapPlan {
  namespace: string;
  service: k8s.V1Service;
  serviceName: string;
  selector: Record<string, string>;
  /** The workload whose pods the Service selects (its environment is the local process's). */
  workload?: { kind: 'Deployment' | 'StatefulSet'; name: string; template: k8s.V1PodTemplateSpec };
  ports: SwappedPort[];
}

/** Parses `--port` values: "3000:8080", "3000:http", "3000". A bad one is a user error. */
export function parsePortRequests(values: readonly string[]): PortRequest[] {
  return values.map((v) => {
    const m = /^(\d+)(?::([A-Za-z0-9-]+))?$/.exec(v.trim());
    const local = m ? Number(m[1]) : NaN;
    if (!m || !Number.isInteger(local) || local < 1 || local > 65535) {
      throw new UserError(`--port ${v} is not a valid port mapping`, { hint: 'write LOCAL:REMOTE, e.g. --port 3000:8080 (LOCAL 1–65535, REMOTE a port of the Service by number or name)' });
    }
    return m[2] ? { local, remote: m[2] } : { local };
  });
}

const matches = (selector: Record<string, string>, labels: Record<string, string> | undefined) =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/**
 * Finds the Service that `name` means (a Service, the Service of a devloop service, or the Service in front of a
 * workload), checks that devloop owns it and that the requested ports are its own, and maps every port to a local
 * one. Throws a user error naming what is wrong; reads only.
 */
export async function planSwap(
  kube: Kube,
  namespace: string,
  project: string,
  name: string,
  requests: readonly PortRequest[],
  /** The selector a swap recorded for a Service that is swapped now (its selector is the agent's). */
  recordedSelector: (service: string) => Promise<Record<string, string> | undefined> = async () => undefined,
): Promise<SwapPlan> {
  const [services, workloads] = await Promise.all([
    kube.core.listNamespacedService({ namespace }).then(
      (list) => list.items,
      (err: unknown) => {
        throw kubeCallFailed(`listing the Services of namespace ${namespace}`, err);
      },
    ),
    listWorkloads(kube, namespace),
  ]);
  let service = services.find((s) => s.metadata?.name === name);
  let workload: SwapPlan['workload'];
  if (!service) {
    const labelled = services.filter((s) => s.metadata?.labels?.[SERVICE_LABEL] === name);
    if (labelled.length === 1) service = labelled[0];
    else if (labelled.length > 1) {
      throw new UserError(`service ${name} has ${labelled.length} Services in ${namespace}: ${labelled.map((s) => s.metadata!.name).join(', ')}`, {
        hint: `name one of them: devloop swap ${labelled[0]!.metadata!.name}`,
      });
    }
  }
  if (!service) {
    const named = workloads.find((w) => w.name === name);
    if (named) {
      const selectors = await Promise.all(
        services.map(async (s) => (s.spec?.selector?.[SWAP_AGENT_LABEL] ? ((await recordedSelector(s.metadata!.name!)) ?? s.spec.selector) : s.spec?.selector)),
      );
      const fronting = services.filter((_s, i) => selectors[i] && Object.keys(selectors[i]!).length > 0 && matches(selectors[i]!, named.template.metadata?.labels));
      if (fronting.length === 0) {
        throw new UserError(`${named.kind} ${name} in ${namespace} has no Service in front of it: nothing sends it traffic to swap`, {
          hint: 'add a Service that selects its pods, or run the process locally without swapping',
        });
      }
      service = fronting[0];
      workload = named;
    }
  }
  if (!service) {
    const known = services.map((s) => s.metadata!.name!).filter((n) => n !== 'kubernetes');
    throw new UserError(`no Service or workload named ${name} in namespace ${namespace}`, {
      hint: known.length ? `Services there: ${known.join(', ')}` : 'deploy it first with devloop up (or pick the namespace with --namespace)',
    });
  }
  const serviceName = service.metadata!.name!;
  const labels = service.metadata?.labels ?? {};
  if (labels[MANAGED_BY] !== MANAGED_BY_VALUE || labels[PROJECT_LABEL] !== toLabelValue(project)) {
    throw new UserError(`Service ${serviceName} in ${namespace} was not deployed by devloop for project ${project}: swap changes only what devloop owns`, {
      hint: 'deploy it with devloop up, or swap a service of this project',
    });
  }
  let selector = service.spec?.selector ?? {};
  if (selector[SWAP_AGENT_LABEL]) selector = (await recordedSelector(serviceName)) ?? selector;
  if (service.spec?.type === 'ExternalName' || Object.keys(selector).length === 0) {
    throw new UserError(`Service ${serviceName} has no pod selector: its traffic does not go to pods devloop could stand in for`, { hint: 'swap a Service that selects pods' });
  }
  workload ??= workloads.find((w) => matches(selector, w.template.metadata?.labels));

  const servicePorts = service.spec?.ports ?? [];
  const udp = servicePorts.find((p) => (p.protocol ?? 'TCP') !== 'TCP');
  if (udp) throw new UserError(`Service ${serviceName} port ${udp.port} is ${udp.protocol}: swap carries TCP only`, { hint: 'swap a Service whose ports are TCP' });
  const resolveTarget = (p: k8s.V1ServicePort): number => {
    const t = p.targetPort ?? p.port;
    if (typeof t === 'number' || /^\d+$/.test(String(t))) return Number(t);
    const containerPort = workload?.template.spec?.containers.flatMap((c) => c.ports ?? []).find((cp) => cp.name === t)?.containerPort;
    if (!containerPort) {
      throw new UserError(`Service ${serviceName} port ${p.port} targets the container port named "${t}", which no workload it selects declares`, {
        hint: 'give the port a number, or name it in the workload’s container ports',
      });
    }
    return containerPort;
  };
  const ports: SwappedPort[] = servicePorts.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, targetPort: resolveTarget(p), local: resolveTarget(p) }));
  const given = new Set<SwappedPort>();
  for (const r of requests) {
    const port =
      r.remote === undefined
        ? ports.length === 1
          ? ports[0]
          : undefined
        : ports.find((p) => String(p.port) === r.remote || p.name === r.remote || String(p.targetPort) === r.remote);
    if (!port) {
      const list = ports.map((p) => (p.name ? `${p.port} (${p.name})` : String(p.port))).join(', ');
      throw new UserError(
        r.remote === undefined
          ? `--port ${r.local} does not say which of Service ${serviceName}'s ports it takes: ${list}`
          : `--port ${r.local}:${r.remote}: ${r.remote} is not a port of Service ${serviceName} (its ports: ${list})`,
        { hint: `write --port LOCAL:REMOTE with REMOTE one of ${list}` },
      );
    }
    if (given.has(port)) throw new UserError(`--port names Service port ${port.port} twice`, { hint: 'give each Service port one local port' });
    given.add(port);
    port.local = r.local;
  }
  return { namespace, service, serviceName, selector, ...(workload ? { workload } : {}), ports };
}

async function listWorkloads(kube: Kube, namespace: string): Promise<NonNullable<SwapPlan['workload']>[]> {
  try {
    const [deployments, statefulSets] = await Promise.all([kube.apps.listNamespacedDeployment({ namespace }), kube.apps.listNamespacedStatefulSet({ namespace })]);
    return [
      ...deployments.items.filter((d) => !d.metadata?.labels?.[SWAP_AGENT_LABEL]).map((d) => ({ kind: 'Deployment' as const, name: d.metadata!.name!, template: d.spec!.template })),
      ...statefulSets.items.map((s) => ({ kind: 'StatefulSet' as const, name: s.metadata!.name!, template: s.spec!.template })),
    ];
  } catch (err) {
    if (isNotFound(err)) return [];
    throw kubeCallFailed(`listing the workloads of namespace ${namespace}`, err);
  }
}
