import type { ProjectConfig } from '../config/types.js';
import type { Target } from '../target/select.js';
import type { EngineBus } from './state.js';

export interface DownOptions {
  project: ProjectConfig;
  developer: string;
  target: Target;
  keepNamespace: boolean;
}

/** Kinds swept by label as well, so objects whose record was lost are still found. */
const SWEPT_KINDS: [string, string][] = [
  ['apps/v1', 'Deployment'],
  ['apps/v1', 'StatefulSet'],
  ['apps/v1', 'DaemonSet'],
  ['batch/v1', 'Job'],
  ['batch/v1', 'CronJob'],
  ['v1', 'Service'],
  ['v1', 'ConfigMap'],
  ['v1', 'Secret'],
  ['v1', 'ServiceAccount'],
  ['v1', 'PersistentVolumeClaim'],
  ['networking.k8s.io/v1', 'Ingress'],
];

/** Objects that Kubernetes itself puts into every namespace; they do not make a namespace "in use". */
const NAMESPACE_DEFAULTS = new Set(['ConfigMap/kube-root-ca.crt', 'ServiceAccount/default']);

/**
 * Removes everything devloop deployed for this project and developer (checked by label on each object before it
 * is deleted) and nothing else. The namespace goes too, unless asked to keep it, or devloop did not create it, or
 * something that is not devloop's still lives in it. Idempotent.
 */
export async function down(bus: EngineBus, opts: DownOptions): Promise<void> {
  const started = Date.now();
  const { target } = opts;
  const owner = { project: opts.project.name, developer: opts.developer };
  bus.emit({ type: 'run.started', command: 'down', target: target.kind, where: target.where });
  let ok = false;
  try {
    await removeEverything();
    ok = true;
  } finally {
    bus.emit({ type: 'run.finished', ok, durationMs: Date.now() - started, failed: ok ? [] : ['down'] });
  }

  async function removeEverything(): Promise<void> {
    if (target.kind === 'docker') {
      const { dockerClient, ensureDockerReachable } = await import('../build/docker.js');
      const { removeAll } = await import('../target/docker.js');
      const docker = await dockerClient();
      await ensureDockerReachable(docker);
      await removeAll(docker, owner, (object) => bus.emit({ type: 'down.deleted', object }));
      return;
    }
    const { readDeployedRecords, deleteOwned, describeRef, inventoryName, ownedBy } = await import('../deploy/apply.js');
    const { ownerSelector, MANAGED_BY, MANAGED_BY_VALUE } = await import('../deploy/labels.js');
    const { kubeCallFailed, isNotFound } = await import('../deploy/kube.js');
    const { kube, namespace } = target;
    const records = await readDeployedRecords(kube, namespace, owner);
    const refs = [...records.values()].flatMap((r) => r.objects);
    for (const r of records.values()) refs.push({ apiVersion: 'v1', kind: 'ConfigMap', name: inventoryName(r.service), namespace });
    const selector = ownerSelector(owner.project, owner.developer);
    const seen = new Set(refs.map((r) => `${r.kind}/${r.namespace ?? ''}/${r.name}`));
    for (const [apiVersion, kind] of SWEPT_KINDS) {
      try {
        const list = await kube.objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, selector);
        for (const o of list.items) {
          const ref = { apiVersion, kind, name: o.metadata?.name ?? '', namespace };
          if (!seen.has(`${kind}/${namespace}/${ref.name}`)) refs.push(ref);
        }
      } catch (err) {
        if (!isNotFound(err)) throw kubeCallFailed(`list ${kind} in ${namespace}`, err);
      }
    }
    for (const ref of refs) {
      const outcome = await deleteOwned(kube, ref, owner);
      if (outcome === 'deleted') bus.emit({ type: 'down.deleted', object: describeRef(ref) });
      if (outcome === 'not-owned') bus.emit({ type: 'down.kept', object: describeRef(ref), reason: 'not labelled as devloop’s' });
    }

    let ns;
    try {
      ns = await kube.core.readNamespace({ name: namespace });
    } catch (err) {
      if (isNotFound(err)) return;
      throw kubeCallFailed(`read namespace ${namespace}`, err);
    }
    if (opts.keepNamespace) {
      bus.emit({ type: 'down.kept', object: `Namespace/${namespace}`, reason: '--keep-namespace' });
      return;
    }
    if (!ownedBy(ns.metadata?.labels, owner) || ns.metadata?.labels?.[MANAGED_BY] !== MANAGED_BY_VALUE) {
      bus.emit({ type: 'down.kept', object: `Namespace/${namespace}`, reason: 'devloop did not create it' });
      return;
    }
    const foreign: string[] = [];
    for (const [apiVersion, kind] of SWEPT_KINDS) {
      const list = await kube.objects.list(apiVersion, kind, namespace).catch(() => ({ items: [] }));
      for (const o of list.items) {
        const id = `${kind}/${o.metadata?.name}`;
        if (NAMESPACE_DEFAULTS.has(id) || ownedBy(o.metadata?.labels, owner)) continue;
        // Objects a controller made for a devloop object (ReplicaSets, Pods, token Secrets) go with their owner.
        if ((o.metadata?.ownerReferences?.length ?? 0) > 0) continue;
        foreign.push(id);
      }
    }
    if (foreign.length) {
      bus.emit({ type: 'down.kept', object: `Namespace/${namespace}`, reason: `it also holds ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}` });
      return;
    }
    try {
      await kube.core.deleteNamespace({ name: namespace });
      bus.emit({ type: 'down.deleted', object: `Namespace/${namespace}` });
    } catch (err) {
      if (!isNotFound(err)) throw kubeCallFailed(`delete namespace ${namespace}`, err);
    }
  }
}
