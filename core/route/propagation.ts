import type { K8sObject } from '../deploy/render.js';

/** On a workload or its pod template: the service passes the routing key of each request on to the calls it makes. */
export const PROPAGATES_ANNOTATION = 'devloop.dev/propagates-route';

export interface Caller {
  service: string;
  /** Whether its manifests say it passes the routing key on (the scaffold templates do). */
  propagates: boolean;
}

interface WorkloadLike {
  kind: string;
  metadata: { annotations?: Record<string, string> };
  spec?: { template?: { metadata?: { annotations?: Record<string, string> }; spec?: { containers?: ContainerLike[]; initContainers?: ContainerLike[] } } };
}
interface ContainerLike {
  env?: { value?: string }[];
  args?: string[];
  command?: string[];
}

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob']);

/**
 * Who calls whom, as far as the manifests tell: a service calls a host when a container's env value, command or
 * args names it (`orders:8080`, `http://orders.shop.svc…`, `xds:///orders…`). For each host: its callers, and whether
 * each is known to propagate the routing key — a fork is reached through a caller only if the caller passes the key
 * on. Pure.
 */
export function callersByHost(services: ReadonlyMap<string, { objects: ReadonlyArray<K8sObject>; hosts: ReadonlyArray<string> }>): Map<string, Caller[]> {
  const out = new Map<string, Caller[]>();
  const allHosts = [...services.values()].flatMap((s) => s.hosts);
  for (const [service, { objects, hosts: own }] of services) {
    const texts: string[] = [];
    let propagates = false;
    for (const o of objects as ReadonlyArray<WorkloadLike>) {
      if (!WORKLOADS.has(o.kind)) continue;
      const template = o.kind === 'CronJob' ? (o.spec as { jobTemplate?: { spec?: WorkloadLike['spec'] } } | undefined)?.jobTemplate?.spec?.template : o.spec?.template;
      if (o.metadata.annotations?.[PROPAGATES_ANNOTATION] === 'true' || template?.metadata?.annotations?.[PROPAGATES_ANNOTATION] === 'true') propagates = true;
      for (const c of [...(template?.spec?.containers ?? []), ...(template?.spec?.initContainers ?? [])]) {
        for (const e of c.env ?? []) if (e.value) texts.push(e.value);
        texts.push(...(c.args ?? []), ...(c.command ?? []));
      }
    }
    for (const host of allHosts) {
      if (own.includes(host)) continue;
      const named = new RegExp(`(^|[^a-z0-9-])${host.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\.|:|/|$)`);
      if (texts.some((t) => named.test(t))) out.set(host, [...(out.get(host) ?? []), { service, propagates }]);
    }
  }
  return out;
}
