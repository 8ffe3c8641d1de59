import { describe, expect, it } from 'vitest';
import { baggageRegex, developerOfKey, developerRoute, dropRoute, expiredDevelopers, expiredKeys, newVirtualService, onlyBaseline, routedDevelopers, routeKeys, ROUTES_LABEL, swapKey, withoutRoute, withoutRouteTo, withRoute, type VirtualService } from './routes.js';

const HOUR = 3_600_000;
const at = (h: number) => new Date(Date.UTC(2026, 10, 30, h));

/** The same regex Istio applies (RE2, anchored to the whole value); JavaScript's engine agrees on this subset. */
const matches = (developer: string, baggage: string) => new RegExp(`^(?:${baggageRegex(developer)})$`).test(baggage);

describe('routing key matches', () => {
  it('match the developer\'s baggage member wherever it stands, and nobody else\'s', () => {
    for (const b of ['devloop-route=alice', 'a=1,devloop-route=alice', 'devloop-route=alice,b=2', 'a=1, devloop-route=alice ;p=q, b=2', ' devloop-route=alice']) {
      expect(matches('alice', b), b).toBe(true);
    }
    for (const b of ['devloop-route=alice2', 'devloop-route=bob', 'x-devloop-route=alice', 'devloop-route=alic', 'devloop-route=alice2,a=1', '']) {
      expect(matches('alice', b), b).toBe(false);
    }
    expect(matches('al-ice', 'devloop-route=al-ice')).toBe(true);
    expect(() => baggageRegex('Alice.*')).toThrow(/not a valid developer name/);
  });
});

describe('one VirtualService per host, every developer in it', () => {
  const created = newVirtualService('devloop-pricing', 'shop', 'pricing', { 'app.kubernetes.io/managed-by': 'devloop' });

  it('puts developers\' routes first, sorted, with their leases, and the baseline default last', () => {
    let vs = withRoute(created, 'bob', developerRoute('bob', 'pricing-bob'), at(12));
    vs = withRoute(vs, 'alice', developerRoute('alice', 'pricing-alice', 8080), at(13));
    expect(vs.spec.http!.map((r) => r.name)).toEqual(['devloop-alice', 'devloop-bob', 'baseline']);
    expect(vs.spec.http![0]!.route).toEqual([{ destination: { host: 'pricing-alice', port: { number: 8080 } } }]);
    expect(vs.spec.http![0]!.match).toEqual([{ headers: { baggage: { regex: baggageRegex('alice') } } }, { headers: { 'x-devloop-route': { exact: 'alice' } } }]);
    expect(routedDevelopers(vs)).toEqual(new Map([['alice', at(13)], ['bob', at(12)]]));
    // Renewing moves nothing and only extends the lease.
    const renewed = withRoute(vs, 'bob', developerRoute('bob', 'pricing-bob'), at(20));
    expect(renewed.spec.http).toEqual(vs.spec.http);
    expect(routedDevelopers(renewed).get('bob')).toEqual(at(20));
    expect(created.spec.http!.map((r) => r.name)).toEqual(['baseline']);
  });

  it('keeps the user\'s own routes, with their timeouts and retries, after the developers\' matches', () => {
    const theirs: VirtualService = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'pricing', namespace: 'shop' },
      spec: { hosts: ['pricing'], http: [{ name: 'v2-canary', match: [{ headers: { canary: { exact: '1' } } }], route: [{ destination: { host: 'pricing', subset: 'v2' } }] }, { route: [{ destination: { host: 'pricing' } }], timeout: '3s', retries: { attempts: 2 } }] },
    };
    const vs = withRoute(theirs, 'alice', developerRoute('alice', 'pricing-alice'), at(12));
    expect(vs.spec.http!.slice(1)).toEqual(theirs.spec.http);
    expect(vs.spec.http![0]!.name).toBe('devloop-alice');
    expect(withoutRoute(vs, 'alice')).toEqual({ ...theirs, metadata: { ...theirs.metadata, annotations: {} } });
  });

  it('removes one developer and nothing else, and tells whose leases ended', () => {
    let vs = withRoute(created, 'alice', developerRoute('alice', 'pricing-alice'), at(10));
    vs = withRoute(vs, 'bob', developerRoute('bob', 'pricing-bob'), at(14));
    expect(expiredDevelopers(vs, new Date(at(12).getTime()))).toEqual(['alice']);
    expect(expiredDevelopers(vs, new Date(at(14).getTime() + HOUR))).toEqual(['alice', 'bob']);
    const lessAlice = withoutRoute(vs, 'alice');
    expect(lessAlice.spec.http!.map((r) => r.name)).toEqual(['devloop-bob', 'baseline']);
    expect(Object.keys(lessAlice.metadata.annotations ?? {})).toEqual(['devloop.dev/lease.bob']);
    expect(onlyBaseline(withoutRoute(lessAlice, 'bob'))).toBe(true);
    // A route whose lease annotation is missing or broken counts as expired.
    const broken = { ...vs, metadata: { ...vs.metadata, annotations: { 'devloop.dev/lease.bob': 'never' } } };
    expect(expiredDevelopers(broken, at(0))).toEqual(['alice', 'bob']);
  });
});

describe('a personal swap\'s route beside the fork routes', () => {
  const created = newVirtualService('devloop-route-pricing', 'shop', 'pricing.shop.svc.cluster.local', { 'app.kubernetes.io/managed-by': 'devloop', [ROUTES_LABEL]: 'true' });
  const swapRoute = (developer: string, agent: string) => developerRoute(developer, agent, undefined, swapKey(developer));

  it('goes before every fork route, matches the same key, and leaves the fork route in place', () => {
    let vs = withRoute(created, 'alice', developerRoute('alice', 'pricing-alice'), at(12));
    vs = withRoute(vs, 'bob', developerRoute('bob', 'pricing-bob'), at(12));
    vs = withRoute(vs, swapKey('bob'), swapRoute('bob', 'agent-bob'), at(13));
    expect(vs.spec.http!.map((r) => r.name)).toEqual(['devloop-swap.bob', 'devloop-alice', 'devloop-bob', 'baseline']);
    expect(vs.spec.http![0]!.match).toEqual(developerRoute('bob', 'x').match);
    expect(vs.metadata.annotations?.['devloop.dev/lease.swap.bob']).toBe(at(13).toISOString());
    // Fork routes are what `status` lists per developer; every route has a key with a lease.
    expect([...routedDevelopers(vs).keys()]).toEqual(['alice', 'bob']);
    expect([...routeKeys(vs).keys()]).toEqual(['swap.bob', 'alice', 'bob']);
    expect(developerOfKey('swap.bob')).toBe('bob');
    expect(expiredKeys(vs, new Date(at(12).getTime() + 1))).toEqual(['alice', 'bob']);
    expect(expiredDevelopers(vs, new Date(at(13).getTime() + 1))).toEqual(['alice', 'bob']);
  });

  it('is removed only while it still goes to that swap\'s agent, and takes a routes-only VirtualService with it', () => {
    const withSwap = withRoute(created, swapKey('bob'), swapRoute('bob', 'agent-1'), at(13));
    expect(withoutRouteTo(withSwap, swapKey('bob'), 'agent-2')).toBeUndefined();
    expect(withoutRouteTo(withSwap, swapKey('carol'), 'agent-1')).toBeUndefined();
    expect(withoutRouteTo(withSwap, swapKey('bob'), 'agent-1')).toBeNull();
    const withFork = withRoute(withSwap, 'bob', developerRoute('bob', 'pricing-bob'), at(12));
    const back = withoutRouteTo(withFork, swapKey('bob'), 'agent-1');
    expect(back?.spec.http!.map((r) => r.name)).toEqual(['devloop-bob', 'baseline']);
    expect(Object.keys(back?.metadata.annotations ?? {})).toEqual(['devloop.dev/lease.bob']);
    // The baseline's own VirtualService stays when its last devloop route goes.
    const own = { ...withSwap, metadata: { ...withSwap.metadata, labels: { 'app.kubernetes.io/managed-by': 'devloop' } } };
    expect(dropRoute(own, swapKey('bob'))?.spec.http!.map((r) => r.name)).toEqual(['baseline']);
  });

  it('refuses a key that is not a developer\'s', () => {
    expect(() => swapKey('Bob')).toThrow(/not a valid developer name/);
    expect(() => withoutRoute(created, 'swap.Bob')).toThrow(/not a valid developer name/);
  });
});
