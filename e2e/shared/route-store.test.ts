import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKube, type Kube } from '../../core/deploy/kube.js';
import { developerRoute, newVirtualService, routedDevelopers, withoutRoute, withRoute } from '../../core/route/routes.js';
import { readVirtualService, updateVirtualService } from '../../core/route/store.js';
import { infraEnv } from '../support/env.js';
import { createTestNamespace, type TestNamespace } from '../support/kube.js';

// Routes of many developers in one VirtualService, written at the same moment against the real API server (with
// Istio's CRDs): optimistic concurrency must never lose a peer's route.
describe('one VirtualService per host, written by many developers at once', () => {
  let ns: TestNamespace;
  let k: Kube;
  const name = 'devloop-pricing';
  const developers = Array.from({ length: 10 }, (_, i) => `dev${i}`);
  const later = new Date(Date.now() + 3_600_000);

  beforeAll(async () => {
    infraEnv();
    ns = await createTestNamespace('routes');
    k = (await loadKube())!;
  });
  afterAll(async () => {
    await ns?.cleanup();
  });

  it('keeps every developer\'s route when all of them add theirs concurrently (10 rounds)', async () => {
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        developers.map((d) =>
          updateVirtualService(k, ns.name, name, (vs) =>
            withRoute(vs ?? newVirtualService(name, ns.name, 'pricing', { 'app.kubernetes.io/managed-by': 'devloop' }), d, developerRoute(d, `pricing-${d}`), later),
          ),
        ),
      );
      const vs = (await readVirtualService(k, ns.name, name))!;
      expect([...routedDevelopers(vs).keys()].sort(), `round ${round}`).toEqual([...developers].sort());
      expect(vs.spec.http!.at(-1)!.name).toBe('baseline');
      // Half of them leave at once; the other half stay.
      await Promise.all(developers.filter((_, i) => i % 2 === 0).map((d) => updateVirtualService(k, ns.name, name, (cur) => (cur ? withoutRoute(cur, d) : undefined))));
      expect([...routedDevelopers((await readVirtualService(k, ns.name, name))!).keys()].sort(), `round ${round}`).toEqual(developers.filter((_, i) => i % 2 === 1));
      // And the last ones out delete it (only the version they read).
      await Promise.all(developers.filter((_, i) => i % 2 === 1).map((d) => updateVirtualService(k, ns.name, name, (cur) => {
        if (!cur) return undefined;
        const next = withoutRoute(cur, d);
        return routedDevelopers(next).size === 0 ? null : next;
      })));
      expect(await readVirtualService(k, ns.name, name), `round ${round}`).toBeUndefined();
    }
  });
});
