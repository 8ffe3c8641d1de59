import type * as k8s from '@kubernetes/client-node';
import type { Kube } from '../deploy/kube.js';

/** A running container of a service, as the loop cares about it. */
export interface RunningContainer {
  /** Changes whenever the container is a new instance: `<pod>/<container>#<restarts>`. */
  key: string;
  service: string;
  pod: string;
  container: string;
  image: string;
  /** When this instance started (RFC 3339), for log streams that begin at its first line. */
  startedAt?: string;
}

/** A snapshot of a service's pods: which containers run, and which pod is ready to receive traffic. */
export interface ServicePods {
  running: RunningContainer[];
  /** Pods not being deleted, and those of them that are Ready. */
  total: number;
  readyCount: number;
  /** The newest Ready pod, not being deleted. */
  ready?: string;
}

export type PodsListener = (byService: Map<string, ServicePods>) => void;

/**
 * Follows the pods devloop deployed (by label) with a list + watch that reconnects, and tells the listener the
 * current picture after every change. Pod restarts, replacements after a rollout and deletions all show up as a
 * new picture; the listener works out what to connect and disconnect.
 */
export class PodTracker {
  private readonly pods = new Map<string, k8s.V1Pod>();
  private abort: AbortController | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly kube: Kube,
    private readonly namespace: string,
    private readonly labelSelector: string,
    private readonly serviceLabel: string,
    private readonly onChange: PodsListener,
    private readonly onError: (message: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    try {
      const list = await this.kube.core.listNamespacedPod({ namespace: this.namespace, labelSelector: this.labelSelector });
      this.pods.clear();
      for (const p of list.items) if (p.metadata?.name) this.pods.set(p.metadata.name, p);
      this.publish();
      const watch = new this.kube.lib.Watch(this.kube.config);
      this.abort = await watch.watch(
        `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/pods`,
        { labelSelector: this.labelSelector, resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
        (phase: string, pod: k8s.V1Pod) => {
          const name = pod?.metadata?.name;
          if (!name || phase === 'BOOKMARK') return;
          if (phase === 'DELETED') this.pods.delete(name);
          else this.pods.set(name, pod);
          this.publish();
        },
        () => this.reconnectSoon(),
      );
    } catch (err) {
      this.onError(`following pods in ${this.namespace} failed: ${(err as Error).message}`);
      this.reconnectSoon();
    }
  }

  private reconnectSoon(): void {
    if (this.closed) return;
    clearTimeout(this.retry);
    // connect() reports its own failures through onError; close() clears the timer.
    this.retry = setTimeout(() => void this.connect(), 1000);
  }

  private publish(): void {
    this.onChange(summarise([...this.pods.values()], this.serviceLabel));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.abort?.abort();
  }
}

/** Pure: the running containers and the ready pod per service. */
export function summarise(pods: k8s.V1Pod[], serviceLabel: string): Map<string, ServicePods> {
  const out = new Map<string, ServicePods>();
  const readySince = new Map<string, number>();
  for (const pod of pods) {
    const service = pod.metadata?.labels?.[serviceLabel];
    const name = pod.metadata?.name;
    if (!service || !name) continue;
    const entry = out.get(service) ?? out.set(service, { running: [], total: 0, readyCount: 0 }).get(service)!;
    if (pod.metadata?.deletionTimestamp) continue;
    entry.total++;
    const images = new Map((pod.spec?.containers ?? []).map((c) => [c.name, c.image ?? '']));
    for (const s of pod.status?.containerStatuses ?? []) {
      if (!s.state?.running) continue;
      const startedAt = s.state.running.startedAt;
      entry.running.push({
        key: `${name}/${s.name}#${s.restartCount}`,
        service,
        pod: name,
        container: s.name,
        image: images.get(s.name) ?? s.image,
        ...(startedAt ? { startedAt: new Date(startedAt as unknown as string).toISOString() } : {}),
      });
    }
    const ready = pod.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True');
    if (ready) {
      entry.readyCount++;
      const since = new Date((ready.lastTransitionTime as unknown as string) ?? 0).getTime();
      if (!entry.ready || since > (readySince.get(service) ?? 0)) {
        entry.ready = name;
        readySince.set(service, since);
      }
    }
  }
  return out;
}
