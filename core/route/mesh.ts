import type { Kube } from '../deploy/kube.js';
import { isNotFound, kubeCallFailed } from '../deploy/kube.js';
import { MANAGED_BY, MANAGED_BY_VALUE, ownerLabels, type Owner } from '../deploy/labels.js';
import { UserError } from '../errors.js';
import { developerOfKey, developerRoute, dropRoute, expiredKeys, newVirtualService, routedDevelopers, routeKeys, routeName, ROUTES_LABEL, serviceHost, swapKey, withRoute, type HttpRoute, type VirtualService } from './routes.js';
import { readVirtualService, updateVirtualService } from './store.js';

/** One baseline host whose keyed requests go to a developer's fork Service. */
export interface HostRoute {
  /** The baseline Service's name (the host callers address). */
  host: string;
  /** The fork's Service. */
  fork: string;
}

export { ROUTES_LABEL };

const VS_API = 'networking.istio.io/v1';

const fqdn = serviceHost;

/** The short name of a host of `namespace` ("web" for "web.shop.svc.cluster.local"). */
const shortHost = (host: string, namespace: string) => host.replace(new RegExp(`\\.${namespace}(\\.svc(\\.cluster\\.local)?)?$`), '');

/** The names a host can be written as in a VirtualService of `namespace`. */
function hostNames(host: string, namespace: string): Set<string> {
  return new Set([host, `${host}.${namespace}`, `${host}.${namespace}.svc`, `${host}.${namespace}.svc.cluster.local`]);
}

/** Another party's VirtualService routes the host: only one VirtualService per host takes effect, so devloop's routes cannot go beside it. */
export class ForeignVirtualService extends UserError {}

/**
 * The routes of the developers of one project in a shared namespace: one VirtualService per baseline host holds
 * every developer's route (Istio uses only one per host). That is the VirtualService of the baseline's own
 * manifests when they define one for the host (devloop's routes go before its routes and take over their timeouts
 * and retries), else one devloop creates (`devloop-route-<host>`, deleted when its last route goes). A
 * VirtualService for the host that devloop did not make is not touched: the route is refused with a hint.
 */
export class MeshRoutes {
  constructor(
    private readonly kube: Kube,
    readonly namespace: string,
    private readonly project: string,
  ) {}

  private async list(): Promise<VirtualService[]> {
    try {
      const list = (await this.kube.objects.list(VS_API, 'VirtualService', this.namespace)) as unknown as { items: VirtualService[] };
      return list.items;
    } catch (err) {
      if (isNotFound(err)) {
        throw new UserError(`the cluster does not know Istio's VirtualService (listing them in ${this.namespace} was answered "not found")`, {
          hint: 'a shared cluster needs Istio: install its CRDs and istiod, or drop `shared:` from devloop.yaml',
          cause: err,
        });
      }
      throw kubeCallFailed(`list VirtualServices in ${this.namespace}`, err);
    }
  }

  /** Reads nothing but checks that VirtualServices can be listed (Istio's CRDs are installed). */
  async check(): Promise<void> {
    await this.list();
  }

  /** The name of the VirtualService that holds (or will hold) routes for `host`. Throws when a foreign one routes it. */
  async holder(host: string): Promise<string> {
    return this.holderOf(host, await this.list());
  }

  private holderOf(host: string, all: VirtualService[]): string {
    const names = hostNames(host, this.namespace);
    const routing = all.filter((vs) => vs.spec.hosts?.some((h) => names.has(h)));
    const foreign = routing.find((vs) => vs.metadata.labels?.[MANAGED_BY] !== MANAGED_BY_VALUE);
    if (foreign) {
      throw new ForeignVirtualService(`VirtualService ${this.namespace}/${foreign.metadata.name} routes host ${host} and devloop did not make it`, {
        hint: 'Istio uses one VirtualService per host: deploy it with the baseline (in its manifests) so devloop can put its routes before its own, or remove it',
      });
    }
    return routing[0]?.metadata.name ?? `devloop-route-${host}`;
  }

  /**
   * The VirtualServices as they are now, read once: `holderOf(host)` names the one that holds (or will hold) the
   * host's routes, and throws ForeignVirtualService when one devloop did not make routes it.
   */
  async holders(): Promise<{ holderOf(host: string): string }> {
    const all = await this.list();
    return { holderOf: (host) => this.holderOf(host, all) };
  }

  /** Adds (or renews) the developer's route for each host, until `expires`. */
  async add(developer: string, routes: ReadonlyArray<HostRoute>, expires: Date): Promise<void> {
    if (routes.length === 0) return;
    const all = await this.list();
    for (const r of routes) {
      const name = this.holderOf(r.host, all);
      await this.put(name, r.host, developer, developer, r.fork, expires);
    }
  }

  /**
   * Adds (or renews) the developer's personal-swap route for `host`, to the swap agent's Service `to`, in the
   * VirtualService `holder` (see holder()). It goes before the developer's fork route, which serves again once it is gone.
   */
  async addSwap(developer: string, holder: string, host: string, to: string, expires: Date): Promise<void> {
    await this.put(holder, host, developer, swapKey(developer), to, expires);
  }

  private async put(name: string, host: string, developer: string, key: string, to: string, expires: Date): Promise<void> {
    await updateVirtualService(this.kube, this.namespace, name, (vs) => {
      const base = vs ?? newVirtualService(name, this.namespace, fqdn(host, this.namespace), { ...ownerLabels({ project: this.project, developer: 'routes' }), [ROUTES_LABEL]: 'true' });
      return withRoute(base, key, { ...inherited(base), ...developerRoute(developer, fqdn(to, this.namespace), undefined, key) }, expires);
    });
  }

  /** Renews the lease of every route the developer has; routes that went missing (a baseline re-apply) are added again. */
  async renew(developer: string, routes: ReadonlyArray<HostRoute>, expires: Date): Promise<void> {
    await this.add(developer, routes, expires);
  }

  /** Removes the developer's routes: for the given hosts, or all of them. Returns the hosts whose route went. */
  async remove(developer: string, hosts?: ReadonlyArray<string>): Promise<string[]> {
    const all = await this.list();
    const removed: string[] = [];
    for (const vs of all) {
      if (!vs.spec.http?.some((r) => r.name === routeName(developer))) continue;
      if (hosts && !hosts.some((h) => vs.spec.hosts?.some((x) => hostNames(h, this.namespace).has(x)))) continue;
      await updateVirtualService(this.kube, this.namespace, vs.metadata.name, (cur) => (cur ? dropRoute(cur, developer) : undefined));
      removed.push(shortHost(vs.spec.hosts?.[0] ?? vs.metadata.name, this.namespace));
    }
    return removed;
  }

  /** Every developer's routes, per host, with the lease end of each. */
  async routes(): Promise<{ host: string; virtualService: string; developers: Map<string, Date | undefined> }[]> {
    return (await this.list())
      .filter((vs) => vs.metadata.labels?.[MANAGED_BY] === MANAGED_BY_VALUE)
      .map((vs) => ({ host: shortHost(vs.spec.hosts?.[0] ?? '', this.namespace), virtualService: vs.metadata.name, developers: routedDevelopers(vs) }))
      .filter((r) => r.developers.size > 0);
  }

  /**
   * Removes every route whose lease has ended (its developer stopped renewing it), and the routes (fork and swap) of
   * `developers` (whose lease object ended). Returns the developers whose routes went, per host.
   */
  async sweep(now: Date, developers: ReadonlySet<string>): Promise<{ host: string; developer: string }[]> {
    const out: { host: string; developer: string }[] = [];
    const ended = (vs: VirtualService) => new Set([...expiredKeys(vs, now), ...[...routeKeys(vs).keys()].filter((k) => developers.has(developerOfKey(k)))]);
    for (const vs of await this.list()) {
      if (vs.metadata.labels?.[MANAGED_BY] !== MANAGED_BY_VALUE) continue;
      const gone = ended(vs);
      if (gone.size === 0) continue;
      await updateVirtualService(this.kube, this.namespace, vs.metadata.name, (cur) => {
        if (!cur) return undefined;
        let next: VirtualService | null = cur;
        // Read again under concurrency: a developer who renewed meanwhile keeps the route.
        for (const k of ended(cur)) next = next ? dropRoute(next, k) : null;
        return next;
      });
      for (const d of new Set([...gone].map(developerOfKey))) out.push({ host: shortHost(vs.spec.hosts?.[0] ?? vs.metadata.name, this.namespace), developer: d });
    }
    return out;
  }

  async read(name: string): Promise<VirtualService | undefined> {
    return readVirtualService(this.kube, this.namespace, name);
  }
}

/**
 * Applying a VirtualService replaces its whole route list: one that is about to be applied (the baseline's own, from
 * its manifests) keeps the developers' routes and leases the live one holds, so deploying the baseline never drops
 * a developer's route. Other objects pass unchanged.
 */
export async function keepDevelopersRoutes<T extends { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }>(
  kube: Kube,
  namespace: string,
  objects: T[],
): Promise<T[]> {
  return Promise.all(
    objects.map(async (o) => {
      if (o.kind !== 'VirtualService' || !o.apiVersion.startsWith('networking.istio.io/')) return o;
      const live = await readVirtualService(kube, o.metadata.namespace ?? namespace, o.metadata.name);
      if (!live) return o;
      let next = o as unknown as VirtualService;
      next = { ...next, spec: { ...next.spec }, metadata: { ...next.metadata, annotations: { ...next.metadata.annotations } } };
      for (const [key, expires] of routeKeys(live)) {
        const route = live.spec.http?.find((r) => r.name === routeName(key));
        if (route) next = withRoute(next, key, route, expires ?? new Date(0));
      }
      return next as unknown as T;
    }),
  );
}

/** What a developer's route takes over from the route that serves the host otherwise: its timeout and retries. */
function inherited(vs: VirtualService): Partial<HttpRoute> {
  const others = (vs.spec.http ?? []).filter((r) => !(typeof r.name === 'string' && r.name.startsWith('devloop-')));
  const fallback = others.find((r) => !r.match) ?? others[0];
  const out: Partial<HttpRoute> = {};
  for (const field of ['timeout', 'retries'] as const) if (fallback?.[field] !== undefined) out[field] = fallback[field];
  return out;
}
