import type { Kube } from '../deploy/kube.js';
import { isNotFound, kubeCallFailed, statusCode } from '../deploy/kube.js';
import { UserError } from '../errors.js';
import type { VirtualService } from './routes.js';

/** How often a change is tried again after another writer changed the VirtualService first. */
const CONFLICT_RETRIES = 10;

const header = (namespace: string, name: string) => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace } });

export async function readVirtualService(kube: Kube, namespace: string, name: string): Promise<VirtualService | undefined> {
  try {
    return (await kube.objects.read(header(namespace, name))) as unknown as VirtualService;
  } catch (err) {
    if (isNotFound(err)) {
      // Not found is also what a cluster without Istio's CRDs answers; tell the two apart for the error message.
      return undefined;
    }
    throw kubeCallFailed(`read VirtualService ${namespace}/${name}`, err);
  }
}

/**
 * Changes one VirtualService with optimistic concurrency: read it (with its resourceVersion), compute the new one,
 * write it back only if nobody changed it meanwhile; on a conflict, read again and recompute, so a peer's change is
 * never lost. `change` returns undefined to leave it as it is, or `null` to delete it. Returns what is stored.
 */
export async function updateVirtualService(
  kube: Kube,
  namespace: string,
  name: string,
  change: (current: VirtualService | undefined) => VirtualService | null | undefined,
): Promise<VirtualService | undefined> {
  for (let attempt = 0; ; attempt++) {
    const current = await readVirtualService(kube, namespace, name);
    const next = change(current);
    if (next === undefined) return current;
    try {
      if (next === null) {
        if (!current) return undefined;
        // Deleting only the version that was read: a peer's newer route keeps it alive.
        await kube.objects.delete(header(namespace, name), undefined, undefined, undefined, undefined, undefined, {
          preconditions: { resourceVersion: current.metadata.resourceVersion },
        });
        return undefined;
      }
      if (!current) return (await kube.objects.create(next)) as unknown as VirtualService;
      const body = { ...next, metadata: { ...next.metadata, resourceVersion: current.metadata.resourceVersion } };
      return (await kube.objects.replace(body)) as unknown as VirtualService;
    } catch (err) {
      // 409: someone else wrote it first (or created it meanwhile): read again and redo the change.
      if (statusCode(err) === 409 && attempt < CONFLICT_RETRIES) continue;
      if (isNotFound(err) && next !== null) throw noIstio(namespace, err);
      throw kubeCallFailed(`write VirtualService ${namespace}/${name}`, err);
    }
  }
}

/** The cluster has no VirtualService kind: Istio is not installed (or not its CRDs). */
function noIstio(namespace: string, cause: unknown): UserError {
  return new UserError(`the cluster does not know Istio's VirtualService (writing one in ${namespace} was refused as not found)`, {
    hint: 'a shared cluster needs Istio: install its CRDs and istiod, or drop `shared:` from devloop.yaml',
    cause,
  });
}
