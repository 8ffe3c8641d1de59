/**
 * The request's routing context: the W3C `baggage` header and the devloop routing key. A developer's key on a
 * request makes the mesh route it, hop by hop, to that developer's versions of the services; it only works if
 * every service forwards it. `runWithRouting` makes it the context of a request's handling, and `routedFetch`
 * adds it to every outgoing call made while handling that request.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingHttpHeaders } from 'node:http';

/** The W3C Baggage header (https://www.w3.org/TR/baggage/). */
export const baggageHeader = 'baggage';
/** Carries the routing key on its own, for mesh routes that match a header exactly. */
export const routeHeader = 'x-devloop-route';
/** The baggage member that carries the routing key. */
export const routeBaggageKey = 'devloop-route';

export interface RoutingContext {
  /** The incoming baggage header, forwarded as is. */
  baggage: string;
  /** The routing key: the route header, else the baggage member. */
  route: string;
}

const storage = new AsyncLocalStorage<RoutingContext>();

/** Returns the value of member `key` in a W3C baggage header, or '' when absent. */
export function baggageMember(baggage: string, key: string): string {
  for (const member of baggage.split(',')) {
    const [kv = ''] = member.split(';'); // drop member properties
    const eq = kv.indexOf('=');
    if (eq > 0 && kv.slice(0, eq).trim() === key) return kv.slice(eq + 1).trim();
  }
  return '';
}

export function routingFromHeaders(headers: IncomingHttpHeaders): RoutingContext {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(',') : (v ?? ''));
  const baggage = one(headers[baggageHeader]);
  const route = one(headers[routeHeader]) || baggageMember(baggage, routeBaggageKey);
  return { baggage, route };
}

/** Runs `fn` with `rc` as the current routing context (including everything it awaits). */
export function runWithRouting<T>(rc: RoutingContext, fn: () => T): T {
  return storage.run(rc, fn);
}

export function currentRouting(): RoutingContext | undefined {
  return storage.getStore();
}

/** The outgoing headers for a routing context; a routing key without baggage still travels in both forms. */
export function routingHeaders(rc: RoutingContext | undefined): Record<string, string> {
  if (!rc) return {};
  const out: Record<string, string> = {};
  let baggage = rc.baggage;
  if (rc.route && !baggageMember(baggage, routeBaggageKey)) {
    baggage = baggage ? `${baggage},${routeBaggageKey}=${rc.route}` : `${routeBaggageKey}=${rc.route}`;
  }
  if (baggage) out[baggageHeader] = baggage;
  if (rc.route) out[routeHeader] = rc.route;
  return out;
}

/** `fetch` that adds the current routing context's headers: use it for every call to another service. */
export function routedFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  for (const [k, v] of Object.entries(routingHeaders(currentRouting()))) headers.set(k, v);
  return fetch(input, { ...init, headers });
}
