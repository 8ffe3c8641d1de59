import type * as k8s from '@kubernetes/client-node';
import type { ObjectRef } from './apply.js';
import { kubeCallFailed, type Kube } from './kube.js';
import { VERSION_ANNOTATION } from './labels.js';

export const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

export interface WorkloadStatus {
  done: boolean;
  ready: number;
  desired: number;
  /** Set when the workload itself reports a terminal failure (e.g. progress deadline exceeded). */
  failed?: string;
  message?: string;
}

export type Workload = k8s.V1Deployment | k8s.V1StatefulSet | k8s.V1DaemonSet;

/** Rollout status of one workload, with the same rules as `kubectl rollout status`. */
export function workloadStatus(kind: string, w: Workload): WorkloadStatus {
  const generation = w.metadata?.generation ?? 0;
  const observed = w.status?.observedGeneration ?? 0;
  if (kind === 'DaemonSet') {
    const s = (w as k8s.V1DaemonSet).status;
    const desired = s?.desiredNumberScheduled ?? 0;
    const ready = s?.numberAvailable ?? 0;
    const done = observed >= generation && (s?.updatedNumberScheduled ?? 0) >= desired && ready >= desired;
    return { done, ready, desired };
  }
  if (kind === 'StatefulSet') {
    const ss = w as k8s.V1StatefulSet;
    const desired = ss.spec?.replicas ?? 1;
    const ready = ss.status?.readyReplicas ?? 0;
    const updated = ss.status?.updatedReplicas ?? 0;
    const revisionsMatch = !ss.status?.updateRevision || ss.status.updateRevision === ss.status.currentRevision;
    const done = observed >= generation && ready >= desired && (updated >= desired || revisionsMatch);
    return { done, ready, desired };
  }
  const d = w as k8s.V1Deployment;
  const desired = d.spec?.replicas ?? 1;
  const st = d.status;
  const updated = st?.updatedReplicas ?? 0;
  const available = st?.availableReplicas ?? 0;
  const progressing = st?.conditions?.find((c) => c.type === 'Progressing');
  if (observed >= generation && progressing?.reason === 'ProgressDeadlineExceeded') {
    return { done: false, ready: Math.min(updated, available), desired, failed: 'ProgressDeadlineExceeded', message: progressing.message };
  }
  // Available counts old pods too; while old ones remain, only what exceeds them can be new.
  const ready = Math.max(0, Math.min(updated, available - Math.max(0, (st?.replicas ?? 0) - updated)));
  const done = observed >= generation && updated >= desired && (st?.replicas ?? 0) <= updated && available >= updated;
  let message: string | undefined;
  if (observed < generation) message = 'waiting for the controller';
  else if (updated < desired) message = `${updated} of ${desired} updated`;
  else if (available < updated) message = `${available} of ${updated} updated replicas available`;
  else if ((st?.replicas ?? 0) > updated) message = `${(st?.replicas ?? 0) - updated} old replicas pending termination`;
  return { done, ready, desired, ...(message ? { message } : {}) };
}

export interface PodDiagnosis {
  reason: 'ImagePullBackOff' | 'CrashLoopBackOff' | 'Pending' | 'Unready' | 'ContainerError';
  message: string;
  /** True when waiting longer will not help (fail now rather than at the timeout). */
  definitive: boolean;
  pod: string;
  container?: string;
}

/** What is wrong with a pod, from its status alone (logs and events are added by the caller). */
export function diagnosePod(pod: k8s.V1Pod): PodDiagnosis | undefined {
  const name = pod.metadata?.name ?? '?';
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const c of statuses) {
    const waiting = c.state?.waiting;
    if (!waiting?.reason) continue;
    if (['ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'ErrImageNeverPull'].includes(waiting.reason)) {
      return {
        reason: 'ImagePullBackOff',
        message: `image ${c.image} cannot be pulled (${waiting.reason}${waiting.message ? `: ${pullCause(waiting.message)}` : ''})`,
        definitive: waiting.reason !== 'ErrImagePull',
        pod: name,
        container: c.name,
      };
    }
    if (waiting.reason === 'CrashLoopBackOff') {
      const t = c.lastState?.terminated;
      return {
        reason: 'CrashLoopBackOff',
        message: `container ${c.name} keeps exiting${t ? ` (exit code ${t.exitCode}${t.reason ? `, ${t.reason}` : ''})` : ''}, ${c.restartCount} restart${c.restartCount === 1 ? '' : 's'}`,
        definitive: true,
        pod: name,
        container: c.name,
      };
    }
    if (['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError'].includes(waiting.reason)) {
      return { reason: 'ContainerError', message: `container ${c.name}: ${waiting.reason}: ${firstLine(waiting.message ?? '')}`, definitive: true, pod: name, container: c.name };
    }
  }
  if (pod.status?.phase === 'Pending') {
    const scheduled = pod.status.conditions?.find((c) => c.type === 'PodScheduled');
    if (scheduled?.status === 'False') {
      // The scheduler's first sentence says why; what follows is about preemption.
      const why = firstLine(scheduled.message ?? scheduled.reason ?? 'no reason given').replace(/^(.*?\.)\s.*$/, '$1');
      return { reason: 'Pending', message: `pod cannot be scheduled: ${why}`, definitive: false, pod: name };
    }
  }
  if (pod.status?.phase === 'Running') {
    const notReady = (pod.status.containerStatuses ?? []).find((c) => c.state?.running && !c.ready);
    if (notReady) return { reason: 'Unready', message: `container ${notReady.name} is running but not ready`, definitive: false, pod: name, container: notReady.name };
  }
  return undefined;
}

const firstLine = (s: string) => s.split('\n')[0]!.trim();

/** The runtime's pull errors nest causes with ": "; the innermost one ("not found", "connection refused") says why. */
function pullCause(message: string): string {
  const parts = firstLine(message).split(': ').map((p) => p.trim()).filter(Boolean);
  return parts[parts.length - 1] ?? message;
}

function selectorString(w: Workload): string | undefined {
  const labels = w.spec?.selector?.matchLabels;
  if (!labels || Object.keys(labels).length === 0) return undefined;
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
}

/** Adds the evidence a one-line diagnosis needs: the crashed container's last log lines, the failing probe's event. */
async function enrich(kube: Kube, namespace: string, d: PodDiagnosis): Promise<PodDiagnosis> {
  try {
    if (d.reason === 'CrashLoopBackOff' && d.container) {
      const log = await kube.core.readNamespacedPodLog({ name: d.pod, namespace, container: d.container, previous: true, tailLines: 5 });
      const lines = String(log ?? '').trim().split('\n').map((l) => l.trim()).filter(Boolean).slice(-3);
      if (lines.length) return { ...d, message: `${d.message}; last log: ${lines.join(' | ')}` };
    }
    if (d.reason === 'Unready') {
      const events = await kube.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${d.pod},involvedObject.kind=Pod,reason=Unhealthy` });
      const last = events.items.sort((a, b) => eventTime(b) - eventTime(a))[0];
      if (last?.message) return { ...d, message: `readiness probe failing: ${firstLine(last.message)}` };
    }
  } catch {
    // Evidence is best effort; the status-based diagnosis still stands.
  }
  return d;
}

function eventTime(e: k8s.CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp;
  return t ? new Date(t as unknown as string).getTime() : 0;
}

export interface RolloutOptions {
  namespace: string;
  version: string;
  timeoutMs: number;
  pollMs?: number;
  onProgress: (ready: number, desired: number, message?: string) => void;
  signal?: AbortSignal;
}

export type RolloutResult = { ok: true } | { ok: false; reason: string; message: string };

/**
 * The Deployments in `namespace` that carry `labelSelector`, by name: one list call where reading each would take
 * one call apiece (and, when they run at once, a connection apiece).
 */
export async function listDeployments(kube: Kube, namespace: string, labelSelector: string): Promise<Map<string, Workload>> {
  try {
    const list = await kube.apps.listNamespacedDeployment({ namespace, labelSelector });
    return new Map(list.items.map((d) => [d.metadata?.name ?? '', d]));
  } catch (err) {
    throw kubeCallFailed(`list Deployments in ${namespace}`, err);
  }
}

/** Reads a workload (Deployment, StatefulSet, DaemonSet) by reference; the one place that picks the API call by kind. */
export async function readWorkload(kube: Kube, ref: ObjectRef, namespace: string): Promise<Workload> {
  const ns = ref.namespace ?? namespace;
  try {
    if (ref.kind === 'Deployment') return await kube.apps.readNamespacedDeployment({ name: ref.name, namespace: ns });
    if (ref.kind === 'StatefulSet') return await kube.apps.readNamespacedStatefulSet({ name: ref.name, namespace: ns });
    return await kube.apps.readNamespacedDaemonSet({ name: ref.name, namespace: ns });
  } catch (err) {
    throw kubeCallFailed(`read ${ref.kind}/${ref.name}`, err);
  }
}

/**
 * The label that marks the pods of a workload's current revision: a Deployment's newest ReplicaSet
 * (`pod-template-hash`), a StatefulSet's update revision (`controller-revision-hash`). `undefined` where the
 * revision is not tracked (DaemonSets); `null` while the controller has not caught up with the latest spec yet,
 * so no pod can be told to be of this rollout.
 */
async function currentRevision(
  kube: Kube,
  ref: ObjectRef,
  w: Workload,
  selector: string,
  namespace: string,
): Promise<{ label: string; value: string } | null | undefined> {
  if ((w.status?.observedGeneration ?? 0) < (w.metadata?.generation ?? 0)) return null;
  if (ref.kind === 'StatefulSet') {
    const rev = (w as k8s.V1StatefulSet).status?.updateRevision;
    return rev ? { label: 'controller-revision-hash', value: rev } : undefined;
  }
  if (ref.kind !== 'Deployment') return undefined;
  const revision = w.metadata?.annotations?.[DEPLOYMENT_REVISION];
  if (!revision) return null;
  const sets = await kube.apps.listNamespacedReplicaSet({ namespace: ref.namespace ?? namespace, labelSelector: selector });
  const current = sets.items.find(
    (rs) =>
      rs.metadata?.annotations?.[DEPLOYMENT_REVISION] === revision &&
      rs.metadata?.ownerReferences?.some((o) => o.kind === 'Deployment' && o.name === ref.name),
  );
  const hash = current?.metadata?.labels?.['pod-template-hash'];
  return hash ? { label: 'pod-template-hash', value: hash } : null;
}

const DEPLOYMENT_REVISION = 'deployment.kubernetes.io/revision';

const WORKLOAD_RESOURCES: Record<string, string> = { Deployment: 'deployments', StatefulSet: 'statefulsets', DaemonSet: 'daemonsets' };

/**
 * Wakes a rollout's wait as soon as one of its workloads changes (a watch on each, from the version last read), so a
 * workload that becomes ready is seen at once rather than at the next poll. Only a shortcut: a watch that cannot be
 * opened, or ends, leaves the wait to its polling.
 */
class WorkloadChanges {
  private readonly watches: Promise<AbortController | undefined>[] = [];
  private changed = false;
  private wake: (() => void) | undefined;

  constructor(kube: Kube, workloads: ReadonlyArray<{ ref: ObjectRef; namespace: string; resourceVersion: string | undefined }>) {
    for (const { ref, namespace, resourceVersion } of workloads) {
      const resource = WORKLOAD_RESOURCES[ref.kind];
      if (!resource) continue;
      const watch = new kube.lib.Watch(kube.config);
      this.watches.push(
        watch
          .watch(
            `/apis/apps/v1/namespaces/${namespace}/${resource}`,
            { fieldSelector: `metadata.name=${ref.name}`, ...(resourceVersion ? { resourceVersion } : {}) },
            () => this.poke(),
            // Ended (or refused): polling alone goes on.
            () => undefined,
          )
          // Not opened: polling alone goes on.
          .catch(() => undefined),
      );
    }
  }

  private poke(): void {
    this.changed = true;
    this.wake?.();
  }

  /** Resolves when a workload changed since the last call, or after `ms`. */
  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.changed = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
      if (this.changed) done();
    });
  }

  async close(): Promise<void> {
    this.wake = undefined;
    for (const abort of await Promise.all(this.watches)) abort?.abort();
  }
}

/**
 * Waits until every workload of a service has rolled out: reads their status when one of them changes (watched) and
 * at least every `pollMs`. Fails early when a new pod shows a definitive problem (image pull, crash loop, container
 * error), else at the timeout with the best diagnosis found.
 */
export async function waitForRollout(kube: Kube, workloads: ObjectRef[], opts: RolloutOptions): Promise<RolloutResult> {
  let changes: WorkloadChanges | undefined;
  try {
    return await pollRollout(kube, workloads, opts, (read) => (changes ??= new WorkloadChanges(kube, read)));
  } finally {
    await changes?.close();
  }
}

async function pollRollout(
  kube: Kube,
  workloads: ObjectRef[],
  opts: RolloutOptions,
  watch: (read: { ref: ObjectRef; namespace: string; resourceVersion: string | undefined }[]) => WorkloadChanges,
): Promise<RolloutResult> {
  const deadline = Date.now() + opts.timeoutMs;
  const pollMs = opts.pollMs ?? 250;
  let lastReport = '';
  for (;;) {
    const read: { ref: ObjectRef; namespace: string; resourceVersion: string | undefined }[] = [];
    let ready = 0;
    let desired = 0;
    let allDone = true;
    let message: string | undefined;
    let diagnosis: PodDiagnosis | undefined;
    for (const ref of workloads) {
      const w = await readWorkload(kube, ref, opts.namespace);
      read.push({ ref, namespace: ref.namespace ?? opts.namespace, resourceVersion: w.metadata?.resourceVersion });
      const st = workloadStatus(ref.kind, w);
      ready += st.ready;
      desired += st.desired;
      if (st.done) continue;
      allDone = false;
      message = st.message;
      const selector = selectorString(w);
      const revision = selector ? await currentRevision(kube, ref, w, selector, opts.namespace) : undefined;
      if (selector && revision !== null) {
        const pods = await kube.core.listNamespacedPod({ namespace: ref.namespace ?? opts.namespace, labelSelector: selector });
        // Only the pods of this rollout speak for it; the previous ones (still serving) may carry the same content
        // version when only the manifests changed, so the workload's current revision decides where it is known.
        for (const pod of pods.items) {
          if (pod.metadata?.deletionTimestamp) continue;
          if (pod.metadata?.annotations?.[VERSION_ANNOTATION] !== opts.version) continue;
          if (revision && pod.metadata?.labels?.[revision.label] !== revision.value) continue;
          const d = diagnosePod(pod);
          if (d && (!diagnosis || (d.definitive && !diagnosis.definitive))) diagnosis = d;
        }
      }
      if (st.failed) {
        const d = diagnosis ? await enrich(kube, opts.namespace, diagnosis) : undefined;
        return { ok: false, reason: d?.reason ?? st.failed, message: d?.message ?? st.message ?? st.failed };
      }
    }
    if (allDone) {
      opts.onProgress(ready, desired);
      return { ok: true };
    }
    const report = `${ready}/${desired} ${diagnosis?.message ?? message ?? ''}`;
    if (report !== lastReport) {
      lastReport = report;
      opts.onProgress(ready, desired, diagnosis?.message ?? message);
    }
    if (diagnosis?.definitive) {
      const d = await enrich(kube, opts.namespace, diagnosis);
      return { ok: false, reason: d.reason, message: d.message };
    }
    if (Date.now() >= deadline) {
      const d = diagnosis ? await enrich(kube, opts.namespace, diagnosis) : undefined;
      return { ok: false, reason: d?.reason ?? 'Timeout', message: `${d?.message ?? message ?? 'not ready'} (gave up after ${Math.round(opts.timeoutMs / 1000)} s)` };
    }
    if (opts.signal?.aborted) return { ok: false, reason: 'Aborted', message: 'interrupted' };
    // Watched from the versions just read: a change after them ends the wait early.
    await watch(read).next(pollMs);
  }
}
