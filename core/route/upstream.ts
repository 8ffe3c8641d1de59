import type * as k8s from '@kubernetes/client-node';
import { isNotFound, kubeCallFailed, statusCode, type Kube } from '../deploy/kube.js';
import { MANAGED_BY, MANAGED_BY_VALUE, SERVICE_LABEL } from '../deploy/labels.js';
import { UserError } from '../errors.js';
import { PodTracker, type ServicePods } from '../forward/pods.js';
import { forkName, ROUTE_LABEL } from './fork.js';

/** Where the first hop of a developer's request to a service goes. */
export interface Upstream {
  pod: string;
  /** The developer's fork of the service, or the pods the baseline Service selects. */
  kind: 'fork' | 'baseline';
  /** `<service>-<developer>` for a fork, `<service>` for the baseline: what the messages name. */
  name: string;
}

/** Pure: the developer's fork when one of its pods is ready, else a ready pod of the baseline, else none. */
export function chooseUpstream(service: string, developer: string, fork: ServicePods | undefined, baseline: ServicePods | undefined): Upstream | undefined {
  if (fork?.ready) return { pod: fork.ready, kind: 'fork', name: forkName(service, developer) };
  if (baseline?.ready) return { pod: baseline.ready, kind: 'baseline', name: service };
  return undefined;
}

/** The selector of a developer's fork pods of `service`: devloop's, marked with the developer's route. */
export function forkPodSelector(service: string, developer: string): string {
  return `${MANAGED_BY}=${MANAGED_BY_VALUE},${SERVICE_LABEL}=${service},${ROUTE_LABEL}=${developer}`;
}

/** The selector of the baseline Service's pods; a fork's pod is never one of them, whatever its labels say. */
export function baselinePodSelector(selector: Record<string, string>): string {
  return [...Object.entries(selector).map(([k, v]) => `${k}=${v}`), `!${ROUTE_LABEL}`].join(',');
}

/**
 * The baseline Service `service` in `namespace`; a missing namespace, a missing Service or one without a selector
 * (nothing to forward to) is a user error.
 */
export async function readBaselineService(kube: Kube, namespace: string, service: string): Promise<k8s.V1Service> {
  try {
    await kube.core.readNamespace({ name: namespace });
  } catch (err) {
    if (isNotFound(err)) throw new UserError(`namespace "${namespace}" does not exist`, { hint: 'pass --namespace, or set `namespace:` in devloop.yaml' });
    // Reading namespaces may be forbidden where reading Services is not: the Service read below says what is wrong.
    if (statusCode(err) !== 403) throw kubeCallFailed(`read namespace ${namespace}`, err);
  }
  let svc: k8s.V1Service;
  try {
    svc = await kube.core.readNamespacedService({ name: service, namespace });
  } catch (err) {
    if (isNotFound(err)) {
      throw new UserError(`there is no Service "${service}" in namespace "${namespace}"`, {
        hint: `deploy it first (devloop up), or name the namespace it runs in with --namespace`,
      });
    }
    throw kubeCallFailed(`read Service ${service} in ${namespace}`, err);
  }
  if (!svc.spec?.selector || Object.keys(svc.spec.selector).length === 0) {
    throw new UserError(`Service "${service}" in namespace "${namespace}" has no selector, so there are no pods to forward to`);
  }
  return svc;
}

/**
 * The pod port behind a Service port (`port`, else the Service's first): its target port when that is a number,
 * else undefined (a named port is the container's to say).
 */
export function servicePodPort(svc: k8s.V1Service, port?: number): { port: number; podPort: number | undefined } | undefined {
  const ports = svc.spec?.ports ?? [];
  const p = port === undefined ? ports[0] : ports.find((x) => x.port === port);
  if (!p) return undefined;
  const target = p.targetPort as unknown;
  const podPort = target === undefined ? p.port : typeof target === 'number' ? target : /^\d+$/.test(String(target)) ? Number(target) : undefined;
  return { port: p.port, podPort };
}

/**
 * Follows where a developer's requests to `service` should enter the cluster: the newest ready pod of the
 * developer's fork (pods labelled `devloop.dev/route: <developer>` and devloop's service label) when there is one,
 * else the newest ready pod the baseline Service selects. Both are watched; `onChange` hears every change of choice
 * (undefined: no pod is ready).
 */
export class UpstreamFollower {
  private fork: ServicePods | undefined;
  private baseline: ServicePods | undefined;
  private current: Upstream | undefined;
  private started = false;
  private readonly trackers: PodTracker[];

  constructor(
    kube: Kube,
    namespace: string,
    private readonly service: string,
    private readonly developer: string,
    baselineSelector: Record<string, string>,
    private readonly onChange: (upstream: Upstream | undefined) => void,
    onError: (message: string) => void,
  ) {
    // PodTracker groups pods by a label: for the baseline, any label of the Service's selector does (all its pods
    // carry the same value).
    const groupBy = Object.keys(baselineSelector)[0]!;
    this.trackers = [
      new PodTracker(kube, namespace, forkPodSelector(service, developer), SERVICE_LABEL, (by) => this.update('fork', by.get(service)), onError),
      new PodTracker(kube, namespace, baselinePodSelector(baselineSelector), groupBy, (by) => this.update('baseline', by.get(baselineSelector[groupBy]!)), onError),
    ];
  }

  /** Lists both sets of pods once (the first choice is known when this resolves), then keeps watching. */
  async start(): Promise<Upstream | undefined> {
    await Promise.all(this.trackers.map((t) => t.start()));
    this.started = true;
    this.current = chooseUpstream(this.service, this.developer, this.fork, this.baseline);
    this.onChange(this.current);
    return this.current;
  }

  get upstream(): Upstream | undefined {
    return this.current;
  }

  private update(which: 'fork' | 'baseline', pods: ServicePods | undefined): void {
    if (which === 'fork') this.fork = pods;
    else this.baseline = pods;
    if (!this.started) return;
    const next = chooseUpstream(this.service, this.developer, this.fork, this.baseline);
    if (next?.pod === this.current?.pod && next?.kind === this.current?.kind) return;
    this.current = next;
    this.onChange(next);
  }

  close(): void {
    for (const t of this.trackers) t.close();
  }
}
