/**
 * Per-developer routes in a shared cluster, as Istio VirtualService specs. Pure: what a VirtualService for one
 * baseline host looks like after a developer's route is added, renewed or removed.
 *
 * Only one VirtualService per host takes effect for mesh traffic, so every developer's match lives in one: each as an
 * HTTP route named `devloop-<developer>`, placed before every other route, matching the developer's routing key —
 * the W3C baggage member `devloop-route=<developer>`, or the header `x-devloop-route: <developer>` — and sending it
 * to the developer's fork. A developer's personal swap adds a second route for the same key, `devloop-swap.<developer>`,
 * before every fork route, to the swap's agent; removing it lets the fork route (if any) serve again. The routes that were there before (the user's own, or the baseline default that devloop
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

/** Marks the key of a developer's swap route (`swap.<developer>`); a dot never occurs in a developer name. */
const SWAP_KEY_PREFIX = 'swap.';

/** Marks a VirtualService devloop created only to hold routes (deleted again once no route is left in it). */
export const ROUTES_LABEL = 'devloop.dev/routes';

/** A developer name as it may appear in a route: the label-value form devloop uses everywhere ([a-z0-9-]). */
function checkDeveloper(developer: string): string {
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(developer)) throw new Error(`not a valid developer name for a route: "${developer}"`);
  return developer;
}

/**
 * A route's key: the developer's name for the route to their fork, `swap.<developer>` for the route of their
 * personal swap (which goes before every fork route, so that it wins while it exists and the fork route serves again
 * when it goes).
 */
function checkKey(key: string): string {
  checkDeveloper(key.startsWith(SWAP_KEY_PREFIX) ? key.slice(SWAP_KEY_PREFIX.length) : key);
  return key;
}

/** The key of a developer's personal-swap route. */
export const swapKey = (developer: string) => `${SWAP_KEY_PREFIX}${checkDeveloper(developer)}`;

/** The developer a route key belongs to. */
export const developerOfKey = (key: string) => (key.startsWith(SWAP_KEY_PREFIX) ? key.slice(SWAP_KEY_PREFIX.length) : key);

const isSwapKey = (key: string) => key.startsWith(SWAP_KEY_PREFIX);

/**
 * The baggage match for a developer's key. It matches the member anywhere in the list, with optional spaces and
 * properties, and only this developer: `devloop-route=alice` must not match `alice2` (a plain `.*alice.*` would).
 */
export function baggageRegex(developer: string): string {
  const d = checkDeveloper(developer).replace(/-/g, '\\-');
  return `(.*,)?\\s*${BAGGAGE_MEMBER}=${d}\\s*(;[^,]*)?(,.*)?`;
}

/** A route's name from its key: `devloop-alice`, `devloop-swap.alice`. */
export const routeName = (key: string) => `${ROUTE_PREFIX}${checkKey(key)}`;
export const leaseAnnotation = (key: string) => `${LEASE_ANNOTATION_PREFIX}${checkKey(key)}`;

/** The route that sends one developer's keyed requests to `destinationHost`: their fork, or (key `swap.<developer>`) their swap's agent. */
export function developerRoute(developer: string, destinationHost: string, port?: number, key = developer): HttpRoute {
  return {
    name: routeName(key),
    match: [{ headers: { baggage: { regex: baggageRegex(developer) } } }, { headers: { [ROUTE_HEADER]: { exact: developer } } }],
    route: [{ destination: { host: destinationHost, ...(port ? { port: { number: port } } : {}) } }],
  };
}

const isDevloopRoute = (r: HttpRoute) => typeof r.name === 'string' && r.name.startsWith(ROUTE_PREFIX);
const keyOf = (r: HttpRoute) => r.name!.slice(ROUTE_PREFIX.length);

/** Swap routes first, then fork routes, each sorted by name: a personal swap wins over the developer's fork. */
function routeOrder(a: HttpRoute, b: HttpRoute): number {
  const swapA = isSwapKey(keyOf(a)), swapB = isSwapKey(keyOf(b));
  if (swapA !== swapB) return swapA ? -1 : 1;
  return a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0;
}

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
 * Adds (or renews) the route with this key, with its lease ending at `expires`. Devloop's routes stay before every
 * other route (swap routes first, then fork routes, by name); the others keep their order and fields (timeouts,
 * retries), and other developers' routes and leases are untouched.
 */
export function withRoute(vs: VirtualService, key: string, route: HttpRoute, expires: Date): VirtualService {
  const others = (vs.spec.http ?? []).filter((r) => r.name !== routeName(key));
  const ours = [...others.filter(isDevloopRoute), route].sort(routeOrder);
  return {
    ...vs,
    metadata: { ...vs.metadata, annotations: { ...vs.metadata.annotations, [leaseAnnotation(key)]: expires.toISOString() } },
    spec: { ...vs.spec, http: [...ours, ...others.filter((r) => !isDevloopRoute(r))] },
  };
}

/** Removes the route with this key and its lease; nothing else changes. */
export function withoutRoute(vs: VirtualService, key: string): VirtualService {
  const { [leaseAnnotation(key)]: _gone, ...annotations } = vs.metadata.annotations ?? {};
  return { ...vs, metadata: { ...vs.metadata, annotations }, spec: { ...vs.spec, http: (vs.spec.http ?? []).filter((r) => r.name !== routeName(key)) } };
}

/**
 * The VirtualService without the route with this key; `null` (delete it) when devloop made it only to hold routes
 * and none is left.
 */
export function dropRoute(vs: VirtualService, key: string): VirtualService | null {
  const next = withoutRoute(vs, key);
  return next.metadata.labels?.[ROUTES_LABEL] === 'true' && onlyBaseline(next) ? null : next;
}

/** Every devloop route's key in `vs` (fork and swap routes), and when its lease ends (undefined: none recorded, treated as expired). */
export function routeKeys(vs: VirtualService): Map<string, Date | undefined> {
  const out = new Map<string, Date | undefined>();
  for (const r of vs.spec.http ?? []) {
    if (!isDevloopRoute(r)) continue;
    const key = keyOf(r);
    const lease = vs.metadata.annotations?.[`${LEASE_ANNOTATION_PREFIX}${key}`];
    const at = lease ? new Date(lease) : undefined;
    out.set(key, at && !Number.isNaN(at.getTime()) ? at : undefined);
  }
  return out;
}

/** Developers with a route to their fork in `vs`, and when each lease ends (undefined: no lease recorded, treated as expired). */
export function routedDevelopers(vs: VirtualService): Map<string, Date | undefined> {
  return new Map([...routeKeys(vs)].filter(([key]) => !isSwapKey(key)));
}

/** Keys of the routes whose lease ended before `now`. */
export function expiredKeys(vs: VirtualService, now: Date): string[] {
  return [...routeKeys(vs)].filter(([, at]) => !at || at.getTime() <= now.getTime()).map(([k]) => k);
}

/** Developers whose fork route's lease ended before `now`. */
export function expiredDevelopers(vs: VirtualService, now: Date): string[] {
  return expiredKeys(vs, now).filter((k) => !isSwapKey(k));
}

/** A Service's name as a fully qualified host: unambiguous in every VirtualService field. */
export const serviceHost = (name: string, namespace: string) => `${name}.${namespace}.svc.cluster.local`;

/**
 * `vs` without the route with this key if that route still sends to `destinationHost` (a newer route under the same
 * key is left alone): `undefined` when there is nothing to remove, `null` when the VirtualService should go
 * (see dropRoute).
 */
export function withoutRouteTo(vs: VirtualService, key: string, destinationHost: string): VirtualService | null | undefined {
  const route = (vs.spec.http ?? []).find((r) => r.name === routeName(key));
  if (!route?.route?.some((d) => d.destination.host === destinationHost)) return undefined;
  return dropRoute(vs, key);
}

/** Whether nothing of devloop's is left in a VirtualService it created (only the baseline default). */
export function onlyBaseline(vs: VirtualService): boolean {
  return !(vs.spec.http ?? []).some(isDevloopRoute);
}
