import type { Kube } from '../deploy/kube.js';
import { isNotFound, kubeCallFailed, statusCode } from '../deploy/kube.js';
import { DEVELOPER_LABEL, MANAGED_BY, MANAGED_BY_VALUE, ownerLabels, PROJECT_LABEL, toLabelValue, type Owner } from '../deploy/labels.js';

/**
 * A developer's lease in a shared namespace: one coordination.k8s.io Lease per project and developer, renewed while
 * their `up` runs. Everything the developer has there (forks, routes) lives as long as the lease: once it ends
 * (renewTime + leaseDurationSeconds in the past), any devloop run against the namespace removes all of it.
 */
export interface DeveloperLease {
  developer: string;
  /** When it ends unless renewed. */
  expires: Date;
}

const LEASE_API = 'coordination.k8s.io/v1';

export const leaseName = (owner: Owner) => toLabelValue(`devloop-${owner.project}-${owner.developer}`);

interface LeaseObject {
  metadata?: { name?: string; resourceVersion?: string; labels?: Record<string, string> };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; acquireTime?: string };
}

const leaseRef = (namespace: string, name: string) => ({ apiVersion: LEASE_API, kind: 'Lease', metadata: { name, namespace } });

/** Creates or renews the developer's lease: it ends `seconds` from now. Returns when it ends. */
export async function renewLease(kube: Kube, namespace: string, owner: Owner, seconds: number, now = new Date()): Promise<Date> {
  const name = leaseName(owner);
  // MicroTime: the API server wants microseconds.
  const renewTime = now.toISOString().replace('Z', '000Z');
  const body = {
    ...leaseRef(namespace, name),
    metadata: { name, namespace, labels: ownerLabels(owner) },
    spec: { holderIdentity: owner.developer, leaseDurationSeconds: seconds, renewTime },
  };
  for (let attempt = 0; ; attempt++) {
    try {
      const current = (await kube.objects.read(leaseRef(namespace, name)).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      })) as LeaseObject | undefined;
      if (!current) await kube.objects.create({ ...body, spec: { ...body.spec, acquireTime: renewTime } });
      else await kube.objects.replace({ ...body, metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion }, spec: { ...current.spec, ...body.spec } });
      return new Date(now.getTime() + seconds * 1000);
    } catch (err) {
      // Two runs of the same developer renewing at once: either write is as good; read again and retry once more.
      if ((statusCode(err) === 409 || statusCode(err) === 422) && attempt < 3) continue;
      throw kubeCallFailed(`renew lease ${namespace}/${name}`, err);
    }
  }
}

/** Every developer's lease of the project in the namespace. */
export async function listLeases(kube: Kube, namespace: string, project: string): Promise<DeveloperLease[]> {
  let list;
  try {
    list = (await kube.objects.list(LEASE_API, 'Lease', namespace, undefined, undefined, undefined, undefined, `${MANAGED_BY}=${MANAGED_BY_VALUE},${PROJECT_LABEL}=${toLabelValue(project)}`)) as {
      items: LeaseObject[];
    };
  } catch (err) {
    if (isNotFound(err)) return [];
    throw kubeCallFailed(`list leases in ${namespace}`, err);
  }
  return list.items.flatMap((l) => {
    const developer = l.metadata?.labels?.[DEVELOPER_LABEL];
    if (!developer) return [];
    const renewed = Date.parse(l.spec?.renewTime ?? '');
    // A lease without a renewal time has ended: nothing keeps what it covers alive.
    const expires = new Date(Number.isNaN(renewed) ? 0 : renewed + (l.spec?.leaseDurationSeconds ?? 0) * 1000);
    return [{ developer, expires }];
  });
}

/** Deletes the developer's lease (after everything it covered is gone). */
export async function deleteLease(kube: Kube, namespace: string, owner: Owner): Promise<boolean> {
  try {
    await kube.objects.delete(leaseRef(namespace, leaseName(owner)));
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw kubeCallFailed(`delete lease ${namespace}/${leaseName(owner)}`, err);
  }
}
