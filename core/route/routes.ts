/**
 * Per-developer routes in a shared cluster, as Istio VirtualService specs. Pure: what a VirtualService for one
 * baseline host looks like after a developer's route is added, renewed or removed.
 *
 * Only one VirtualService per host takes effect for mesh traffic, so every developer's match lives in one: each as an
 * HTTP route named `devloop-<developer>`, placed before every other route, matching the developer's routing key —
 * the W3C baggage member `devloop-route=<developer>`, or the header `x-devloop-route: <developer>` — and sending it
 * to the developer's fork. The routes that were there before (the user's own, or the baseline default that devloop
 * adds when it creates the VirtualService) follow unchanged. Each developer's lease (when the route expires unless
 * renewed) is kept in an annotation, so any devloop run can remove expired routes.
 */

export const ROUTE_HEADER = 'x-devloop-route';
export const BAGGAGE_MEMBER = 'devloop-route';
const ROUTE_PREFIX = 'devloop-';
const LEASE_ANNOTATION_PREFIX = 'devloop.dev/lease.';

export interface HttpRoute {
  name?: string;
  match?: Record<string, unknown>[];
  route?: { destination: { host: string; port?: { number: number }; subset?: string }; weight?: number }[];
  [field: string]: unknown;
}

export interface VirtualServiceSpec {
  hosts: string[];
  http?: HttpRoute[];
  [field: string]: unknown;
}

export interface VirtualService {
  apiVersion: 'networking.istio.io/v1';
  kind: 'VirtualService';
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: VirtualServiceSpec;
}

/** A developer name as it may appear in a route: the label-value form devloop uses everywhere ([a-z0-9-]). */
function checkDeveloper(developer: string): string {
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(developer)) throw new Error(`not a valid developer name for a route: "${developer}"`);
  return developer;
}

/**
 * The baggage match for a developer's key. It matches the member anywhere in the list, with optional spaces and
 * properties, and only this developer: `devloop-route=alice` must not match `alice2` (a plain `.*alice.*` would).
 */
export function baggageRegex(developer: string): string {
  const d = checkDeveloper(developer).replace(/-/g, '\\-');
  return `(.*,)?\\s*${BAGGAGE_MEMBER}=${d}\\s*(;[^,]*)?(,.*)?`;
}

export const routeName = (developer: string) => `${ROUTE_PREFIX}${checkDeveloper(developer)}`;
export const leaseAnnotation = (developer: string) => `${LEASE_ANNOTATION_PREFIX}${checkDeveloper(developer)}`;

/** The route that sends one developer's keyed requests to their fork. */
export function developerRoute(developer: string, destinationHost: string, port?: number): HttpRoute {
  return {
    name: routeName(developer),
    match: [{ headers: { baggage: { regex: baggageRegex(developer) } } }, { headers: { [ROUTE_HEADER]: { exact: developer } } }],
    route: [{ destination: { host: destinationHost, ...(port ? { port: { number: port } } : {}) } }],
  };
}

const isDevloopRoute = (r: HttpRoute) => typeof r.name === 'string' && r.name.startsWith(ROUTE_PREFIX);

/**
 * The VirtualService devloop creates for a baseline host that has none: routes go first, then everything else to
 * the baseline Service.
 */
export function newVirtualService(name: string, namespace: string, host: string, labels: Record<string, string>): VirtualService {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace, labels: { ...labels }, annotations: {} },
    spec: { hosts: [host], http: [{ name: 'baseline', route: [{ destination: { host } }] }] },
  };
}

/**
 * Adds (or renews) `developer`'s route, with its lease ending at `expires`. Devloop's routes stay sorted by name
 * before every other route; the others keep their order and fields (timeouts, retries), and other developers'
 * routes and leases are untouched.
 */
export function withRoute(vs: VirtualService, developer: string, route: HttpRoute, expires: Date): VirtualService {
  const others = (vs.spec.http ?? []).filter((r) => r.name !== routeName(developer));
  const ours = [...others.filter(isDevloopRoute), route].sort((a, b) => (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0));
  return {
    ...vs,
    metadata: { ...vs.metadata, annotations: { ...vs.metadata.annotations, [leaseAnnotation(developer)]: expires.toISOString() } },
    spec: { ...vs.spec, http: [...ours, ...others.filter((r) => !isDevloopRoute(r))] },
  };
}

/** Removes `developer`'s route and lease; nothing else changes. */
export function withoutRoute(vs: VirtualService, developer: string): VirtualService {
  const { [leaseAnnotation(developer)]: _gone, ...annotations } = vs.metadata.annotations ?? {};
  return { ...vs, metadata: { ...vs.metadata, annotations }, spec: { ...vs.spec, http: (vs.spec.http ?? []).filter((r) => r.name !== routeName(developer)) } };
}

/** Developers with a route in `vs`, and when each lease ends (undefined: no lease recorded, treated as expired). */
export function routedDevelopers(vs: VirtualService): Map<string, Date | undefined> {
  const out = new Map<string, Date | undefined>();
  for (const r of vs.spec.http ?? []) {
    if (!isDevloopRoute(r)) continue;
    const developer = r.name!.slice(ROUTE_PREFIX.length);
    const lease = vs.metadata.annotations?.[`${LEASE_ANNOTATION_PREFIX}${developer}`];
    const at = lease ? new Date(lease) : undefined;
    out.set(developer, at && !Number.isNaN(at.getTime()) ? at : undefined);
  }
  return out;
}

/** Developers whose lease ended before `now`. */
export function expiredDevelopers(vs: VirtualService, now: Date): string[] {
  return [...routedDevelopers(vs)].filter(([, at]) => !at || at.getTime() <= now.getTime()).map(([d]) => d);
}

/** Whether nothing of devloop's is left in a VirtualService it created (only the baseline default). */
export function onlyBaseline(vs: VirtualService): boolean {
  return !(vs.spec.http ?? []).some(isDevloopRoute);
}
