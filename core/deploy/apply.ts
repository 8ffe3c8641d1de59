import { UserError } from '../errors.js';
import { isNamespaced } from './transform.js';
import type { K8sObject } from './render.js';
import { isNotFound, kubeCallFailed, type Kube } from './kube.js';
import {
  FIELD_MANAGER,
  INVENTORY_ANNOTATION,
  MANIFEST_HASH_ANNOTATION,
  ownerLabels,
  ownerSelector,
  type Owner,
  SERVICE_LABEL,
  VERSION_ANNOTATION,
} from './labels.js';

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export const describeRef = (r: ObjectRef): string => `${r.kind}/${r.name}`;
const refKey = (r: ObjectRef) => `${r.apiVersion}|${r.kind}|${r.namespace ?? ''}|${r.name}`;
export const refOf = (o: K8sObject): ObjectRef => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  name: o.metadata.name,
  ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
});

/** What devloop last deployed for one service, as recorded in the cluster. */
export interface DeployedRecord {
  service: string;
  version: string;
  manifestHash: string;
  objects: ObjectRef[];
  /** The record's own name (as read from the cluster). */
  recordName?: string;
}

/** The per-service record lives in a ConfigMap devloop owns, next to the objects it lists. */
export const inventoryName = (service: string) => `devloop-${service}`;
const INVENTORY_LABEL = 'devloop.dev/inventory';

export type { Owner };

/** Creates the namespace, labelled as devloop's, when absent. Returns whether it was created. */
export async function ensureNamespace(kube: Kube, namespace: string, owner: Owner): Promise<boolean> {
  let existing;
  try {
    existing = await kube.core.readNamespace({ name: namespace });
  } catch (err) {
    if (!isNotFound(err)) throw kubeCallFailed(`read namespace ${namespace}`, err);
  }
  if (existing) {
    // Objects applied into a terminating namespace vanish (or are refused) moments later.
    if (existing.status?.phase === 'Terminating' || existing.metadata?.deletionTimestamp) {
      throw new UserError(`namespace ${namespace} is being deleted`, { hint: 'wait until it is gone (kubectl get namespace), then run devloop again' });
    }
    return false;
  }
  try {
    await kube.core.createNamespace({ body: { metadata: { name: namespace, labels: ownerLabels(owner) } } });
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 409) return false;
    throw kubeCallFailed(`create namespace ${namespace}`, err);
  }
}

/** Every service record in the namespace for this owner: one list call. */
export async function readDeployedRecords(kube: Kube, namespace: string, owner: Owner): Promise<Map<string, DeployedRecord>> {
  const records = new Map<string, DeployedRecord>();
  let list;
  try {
    list = await kube.core.listNamespacedConfigMap({ namespace, labelSelector: `${ownerSelector(owner.project, owner.developer)},${INVENTORY_LABEL}=true` });
  } catch (err) {
    if (isNotFound(err)) return records;
    throw kubeCallFailed(`list ConfigMaps in ${namespace}`, err);
  }
  for (const cm of list.items) {
    const service = cm.metadata?.labels?.[SERVICE_LABEL];
    if (!service) continue;
    let objects: ObjectRef[] = [];
    try {
      objects = JSON.parse(cm.data?.objects ?? '[]') as ObjectRef[];
    } catch {
      // A record that does not parse lists nothing; the label sweep of `down` still finds the objects.
      objects = [];
    }
    records.set(service, {
      service,
      version: cm.metadata?.annotations?.[VERSION_ANNOTATION] ?? '',
      manifestHash: cm.metadata?.annotations?.[MANIFEST_HASH_ANNOTATION] ?? '',
      objects,
      ...(cm.metadata?.name ? { recordName: cm.metadata.name } : {}),
    });
  }
  return records;
}

/** Order in which kinds are applied: what others refer to comes first. */
const KIND_ORDER = ['CustomResourceDefinition', 'ServiceAccount', 'Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding', 'ConfigMap', 'Secret', 'PersistentVolumeClaim', 'Service'];
const kindRank = (k: string) => {
  const i = KIND_ORDER.indexOf(k);
  return i === -1 ? KIND_ORDER.length : i;
};

/**
 * devloop applies with field manager `devloop`, forcing conflicts (it owns these fields), so it must first make sure
 * each object is its own: one of the same name that exists and is not this service's (by devloop's labels) is never
 * taken over. Throws NotOwned naming them; nothing has changed then.
 */
export async function refuseForeign(kube: Kube, refs: ObjectRef[], owner: Owner, service: string): Promise<void> {
  const foreign: ObjectRef[] = [];
  await Promise.all(
    refs.map(async (r) => {
      try {
        const live = (await kube.objects.read({ apiVersion: r.apiVersion, kind: r.kind, metadata: { name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}) } })) as K8sObject;
        if (!ownedBy(live.metadata.labels, owner, service)) foreign.push(r);
      } catch (err) {
        if (!isNotFound(err)) throw kubeCallFailed(`read ${describeRef(r)}`, err);
      }
    }),
  );
  if (foreign.length) throw notOwned(foreign, service);
}

/** Server-side apply, in an order that puts what others refer to first. Check ownership first (refuseForeign). */
export async function applyObjects(kube: Kube, objects: K8sObject[]): Promise<void> {  const sorted = [...objects].sort((a, b) => kindRank(a.kind) - kindRank(b.kind));
  for (const o of sorted) {
    try {
      await kube.objects.patch(o, undefined, undefined, FIELD_MANAGER, true, kube.lib.PatchStrategy.ServerSideApply);
    } catch (err) {
      throw kubeCallFailed(`apply ${describeRef(refOf(o))}`, err);
    }
  }
}

/** devloop never takes over an object it did not create: it says which, and changes nothing. */
export class NotOwned extends UserError {}

function notOwned(foreign: ObjectRef[], service: string): NotOwned {
  const names = foreign.map(describeRef).sort();
  const shared = foreign.filter((r) => !isNamespaced(r.kind)).map(describeRef);
  const one = names.length === 1;
  return new NotOwned(
    `${names.join(', ')} already exist${one ? 's' : ''} and ${one ? 'is' : 'are'} not ${service}'s (not labelled by devloop); nothing was applied` +
      (shared.length ? `; ${shared.join(', ')} ${shared.length === 1 ? 'is' : 'are'} cluster-scoped, so one name is shared by every namespace and developer` : ''),
    {
      hint: shared.length
        ? 'give the cluster-scoped object a name of its own per developer, or create it once outside devloop and leave it out of the manifests'
        : 'rename the object in the manifests, or remove the existing one if it is yours',
    },
  );
}

/** Records what was applied for a service (its inventory ConfigMap), so later runs can skip and prune. */
export async function writeDeployedRecord(kube: Kube, namespace: string, owner: Owner, record: DeployedRecord, name = inventoryName(record.service)): Promise<void> {
  const cm = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace,
      labels: { ...ownerLabels(owner, record.service), [INVENTORY_LABEL]: 'true' },
      annotations: { [VERSION_ANNOTATION]: record.version, [MANIFEST_HASH_ANNOTATION]: record.manifestHash, [INVENTORY_ANNOTATION]: String(record.objects.length) },
    },
    data: { objects: JSON.stringify(record.objects) },
  };
  try {
    await kube.objects.patch(cm, undefined, undefined, FIELD_MANAGER, true, kube.lib.PatchStrategy.ServerSideApply);
  } catch (err) {
    throw kubeCallFailed(`record deployment of ${record.service}`, err);
  }
}

/** Whether a live object carries devloop's ownership labels for this owner (and service, when given). */
export function ownedBy(labels: Record<string, string> | undefined, owner: Owner, service?: string): boolean {
  const want = ownerLabels(owner, service);
  return Object.entries(want).every(([k, v]) => labels?.[k] === v);
}

export type DeleteOutcome = 'deleted' | 'absent' | 'not-owned';

/** Deletes one object, but only after reading it back and checking that devloop owns it. */
export async function deleteOwned(kube: Kube, ref: ObjectRef, owner: Owner, service?: string): Promise<DeleteOutcome> {
  const header = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) } };
  let live: K8sObject;
  try {
    live = (await kube.objects.read(header)) as K8sObject;
  } catch (err) {
    if (isNotFound(err)) return 'absent';
    throw kubeCallFailed(`read ${describeRef(ref)}`, err);
  }
  if (!ownedBy(live.metadata.labels, owner, service)) return 'not-owned';
  try {
    await kube.objects.delete(header, undefined, undefined, undefined, undefined, 'Background');
    return 'deleted';
  } catch (err) {
    if (isNotFound(err)) return 'absent';
    throw kubeCallFailed(`delete ${describeRef(ref)}`, err);
  }
}

/** Objects in the previous record that the service no longer renders. */
export function objectsToPrune(previous: ObjectRef[], current: ObjectRef[]): ObjectRef[] {
  const keep = new Set(current.map(refKey));
  return previous.filter((r) => !keep.has(refKey(r)));
}
