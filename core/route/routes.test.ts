import { describe, expect, it } from 'vitest';
import { baggageRegex, developerRoute, expiredDevelopers, newVirtualService, onlyBaseline, routedDevelopers, withoutRoute, withRoute, type VirtualService } from './routes.js';

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
