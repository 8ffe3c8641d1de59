import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ServicePods } from '../forward/pods.js';
import { baselinePodSelector, chooseUpstream, forkPodSelector, servicePodPort } from './upstream.js';

const pods = (ready?: string): ServicePods => ({ running: [], total: 1, readyCount: ready ? 1 : 0, ...(ready ? { ready } : {}) });

describe('chooseUpstream', () => {
  it('prefers a ready pod of the developer’s fork', () => {
    expect(chooseUpstream('web', 'alice', pods('web-alice-1'), pods('web-1'))).toEqual({ pod: 'web-alice-1', kind: 'fork', name: 'web-alice' });
  });

  it('goes to the baseline when the fork has no ready pod, or there is none', () => {
    expect(chooseUpstream('web', 'alice', pods(), pods('web-1'))).toEqual({ pod: 'web-1', kind: 'baseline', name: 'web' });
    expect(chooseUpstream('web', 'alice', undefined, pods('web-1'))).toEqual({ pod: 'web-1', kind: 'baseline', name: 'web' });
  });

  it('has nothing when no pod is ready', () => {
    expect(chooseUpstream('web', 'alice', pods(), undefined)).toBeUndefined();
  });
});

describe('selectors', () => {
  it('selects the developer’s fork pods of a service by devloop’s labels and the route label', () => {
    expect(forkPodSelector('web', 'alice')).toBe('app.kubernetes.io/managed-by=devloop,devloop.dev/service=web,devloop.dev/route=alice');
  });

  it('selects the baseline Service’s pods, never a fork’s', () => {
    expect(baselinePodSelector({ app: 'web', tier: 'front' })).toBe('app=web,tier=front,!devloop.dev/route');
  });
});

describe('servicePodPort', () => {
  const svc = (ports: k8s.V1ServicePort[]): k8s.V1Service => ({ spec: { ports } });

  it('maps the Service’s first port (or the one asked for) to its numeric target port', () => {
    const s = svc([{ port: 80, targetPort: 8080 as unknown as k8s.IntOrString }, { port: 9090 }]);
    expect(servicePodPort(s)).toEqual({ port: 80, podPort: 8080 });
    expect(servicePodPort(s, 9090)).toEqual({ port: 9090, podPort: 9090 });
    expect(servicePodPort(s, 1234)).toBeUndefined();
  });

  it('leaves a named target port to the caller', () => {
    expect(servicePodPort(svc([{ port: 80, targetPort: 'http' as unknown as k8s.IntOrString }]))).toEqual({ port: 80, podPort: undefined });
  });
});
