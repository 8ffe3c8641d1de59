import os from 'node:os';
import type * as k8s from '@kubernetes/client-node';
import { isNotFound, kubeCallFailed, type Kube } from '../deploy/kube.js';
import { DEVELOPER_LABEL, MANAGED_BY, MANAGED_BY_VALUE, ownerLabels, toLabelValue, type Owner } from '../deploy/labels.js';
import type { SwappedPort } from './resolve.js';

/** Marks a swap's Lease; the value is the swapped Service's name. */
export const SWAP_LABEL = 'devloop.dev/swap';
const ANNOTATION = 'devloop.dev/swap';
/** How long a swap outlives the last renewal of its Lease; devloop renews it every RENEW_EVERY_MS. */
export const LEASE_SECONDS = 15;
export const RENEW_EVERY_MS = 3_000;

/**
 * The swap's Lease (and agent) name. A global swap takes the whole Service, so there is one per Service; personal
 * swaps of one Service by different developers live side by side, one per developer.
 */
export const swapName = (service: string, personalFor?: string) => toLabelValue(`devloop-swap-${service}${personalFor ? `-${personalFor}` : ''}`);

export type SwapMode = 'global' | 'personal';

/** A personal swap's route: the developer's keyed requests for `host` go to the agent's Service `destination`. */
export interface SwapRoute {
  /** The VirtualService that holds the route. */
  virtualService: string;
  /** The route's key (`swap.<developer>`, see core/route/routes.ts). */
  key: string;
  host: string;
  /** The agent's Service (short name, in the swap's namespace). */
  destination: string;
}

/** What a swap's Lease records: enough for anyone to list it and for devloop or the agent to undo it. */
export interface SwapRecord {
  name: string;
  namespace: string;
  service: string;
  developer: string;
  holder: string;
  mode: SwapMode;
  /** The Service's selector before the swap, and the agent's that replaced it (global); empty for a personal swap. */
  selector: Record<string, string>;
  /** A personal swap's route. */
  route?: SwapRoute;
  agentSelector: Record<string, string>;
  ports: SwappedPort[];
  /** The Service's managedFields before the swap. */
  managedFields?: ManagedFieldsEntry[];
  since: string;
  renewedAt?: string;
  /** When the Lease runs out unless renewed (wall clock of whoever renewed it). */
  expiresAt?: string;
  uid: string;
  resourceVersion: string;
}

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  time?: string | Date;
  [k: string]: unknown;
}

/**
 * Whether nobody but the swap wrote the Service since `before` was recorded: the same writers (manager, operation,
 * subresource, time) besides the swap's own entry. Only then may the recorded managedFields be put back.
 */
export function onlySwapWroteSince(before: readonly ManagedFieldsEntry[], now: readonly ManagedFieldsEntry[], swapManager: string): boolean {
  const key = (e: ManagedFieldsEntry) => `${e.manager}|${e.operation}|${e.subresource ?? ''}|${e.time ? Math.floor(new Date(e.time).getTime() / 1000) : ''}`;
  const a = before.filter((e) => e.manager !== swapManager).map(key).sort();
  const b = now.filter((e) => e.manager !== swapManager).map(key).sort();
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(d = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export const holderIdentity = (developer: string) => `${developer}@${os.hostname()}`;

export interface LeaseSpec {
  owner: Owner;
  namespace: string;
  name: string;
  service: string;
  mode: SwapMode;
  /** Global: the Service's selector before the swap. */
  selector: Record<string, string>;
  agentSelector: Record<string, string>;
  ports: SwappedPort[];
  /** Global: the Service's managedFields before the swap. */
  managedFields?: unknown[] | undefined;
  /** Personal: the route the swap adds. */
  route?: SwapRoute;
}

export function leaseObject(spec: LeaseSpec): k8s.V1Lease {
  const { owner, namespace, service, selector, agentSelector, ports, managedFields, route } = spec;
  const now = microTime();
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: spec.name,
      namespace,
      labels: { ...ownerLabels(owner), [SWAP_LABEL]: service },
      annotations: {
        [`${ANNOTATION}-service`]: service,
        [`${ANNOTATION}-mode`]: spec.mode,
        [`${ANNOTATION}-selector`]: JSON.stringify(selector),
        [`${ANNOTATION}-agent-selector`]: JSON.stringify(agentSelector),
        [`${ANNOTATION}-ports`]: JSON.stringify(ports),
        // Who managed which field of the Service before the swap, put back with the selector (see restoreService).
        ...(managedFields ? { [`${ANNOTATION}-managed-fields`]: JSON.stringify(managedFields) } : {}),
        ...(route ? { [`${ANNOTATION}-route`]: JSON.stringify(route) } : {}),
      },
    },
    spec: {
      holderIdentity: holderIdentity(owner.developer),
      leaseDurationSeconds: LEASE_SECONDS,
      acquireTime: now as unknown as Date,
      renewTime: now as unknown as Date,
    },
  };
}

export function recordOf(lease: k8s.V1Lease): SwapRecord | undefined {
  const a = lease.metadata?.annotations ?? {};
  const labels = lease.metadata?.labels ?? {};
  if (labels[MANAGED_BY] !== MANAGED_BY_VALUE || !labels[SWAP_LABEL]) return undefined;
  const parse = <T>(s: string | undefined, fallback: T): T => {
    try {
      return s ? (JSON.parse(s) as T) : fallback;
    } catch {
      // A hand-edited annotation: treated as absent, which makes the record unusable for a restore below.
      return fallback;
    }
  };
  const renewed = lease.spec?.renewTime ? String(lease.spec.renewTime as unknown) : undefined;
  const expires = renewed ? new Date(new Date(renewed).getTime() + (lease.spec?.leaseDurationSeconds ?? LEASE_SECONDS) * 1000).toISOString() : undefined;
  return {
    name: lease.metadata!.name!,
    namespace: lease.metadata!.namespace!,
    service: a[`${ANNOTATION}-service`] ?? labels[SWAP_LABEL],
    developer: labels[DEVELOPER_LABEL] ?? '',
    holder: lease.spec?.holderIdentity ?? '',
    mode: a[`${ANNOTATION}-mode`] === 'personal' ? 'personal' : 'global',
    selector: parse(a[`${ANNOTATION}-selector`], {}),
    ...(a[`${ANNOTATION}-route`] ? { route: parse<SwapRoute | undefined>(a[`${ANNOTATION}-route`], undefined) } : {}),
    agentSelector: parse(a[`${ANNOTATION}-agent-selector`], {}),
    ports: parse(a[`${ANNOTATION}-ports`], []),
    ...(a[`${ANNOTATION}-managed-fields`] ? { managedFields: parse<ManagedFieldsEntry[]>(a[`${ANNOTATION}-managed-fields`], []) } : {}),
    since: lease.spec?.acquireTime ? String(lease.spec.acquireTime as unknown) : (lease.metadata?.creationTimestamp?.toString() ?? ''),
    ...(renewed ? { renewedAt: renewed } : {}),
    ...(expires ? { expiresAt: expires } : {}),
    uid: lease.metadata!.uid!,
    resourceVersion: lease.metadata!.resourceVersion!,
  };
}

/**
 * Whether a swap's Lease ran out, with a margin for the difference between the developer's clock (which wrote the
 * renewal) and this one.
 */
export function isExpired(record: SwapRecord, now = Date.now(), marginMs = 5_000): boolean {
  return !record.expiresAt || new Date(record.expiresAt).getTime() + marginMs < now;
}

/** The global swap of a Service, or (with `personalFor`) that developer's personal swap of it. */
export async function readSwap(kube: Kube, namespace: string, service: string, personalFor?: string): Promise<SwapRecord | undefined> {
  const name = swapName(service, personalFor);
  try {
    return recordOf(await coordination(kube).readNamespacedLease({ name, namespace }));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw kubeCallFailed(`reading Lease ${name}`, err);
  }
}

/** Every swap in the namespace (or in every namespace the caller may list). */
export async function listSwaps(kube: Kube, namespace: string | undefined): Promise<SwapRecord[]> {
  const api = coordination(kube);
  const labelSelector = `${MANAGED_BY}=${MANAGED_BY_VALUE},${SWAP_LABEL}`;
  try {
    const list = namespace ? await api.listNamespacedLease({ namespace, labelSelector }) : await api.listLeaseForAllNamespaces({ labelSelector });
    return list.items.map(recordOf).filter((r): r is SwapRecord => !!r);
  } catch (err) {
    throw kubeCallFailed(namespace ? `listing the Leases of namespace ${namespace}` : 'listing Leases in all namespaces', err);
  }
}

export function coordination(kube: Kube): k8s.CoordinationV1Api {
  return kube.config.makeApiClient(kube.lib.CoordinationV1Api);
}
