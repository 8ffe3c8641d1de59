import { describe, expect, it } from 'vitest';
import type { Kube } from '../../core/deploy/kube.js';
import { headerFor } from './start.js';

describe('dashboard header', () => {
  it('names context, namespace, developer and registry for a cluster, and only the developer for Docker', () => {
    // Only the context name of the Kubernetes client is read.
    const kube = { context: 'dev-cluster' } as Kube;
    expect(headerFor({ developer: 'alice', target: { kind: 'remote', registry: '127.0.0.1:5000', kube, namespace: 'shop-alice', where: 'dev-cluster/shop-alice' } })).toEqual({
      command: 'up',
      target: 'remote',
      context: 'dev-cluster',
      namespace: 'shop-alice',
      developer: 'alice',
      registry: '127.0.0.1:5000',
    });
    expect(headerFor({ developer: 'bob', target: { kind: 'kind', cluster: 'dev', kube, namespace: 'shop-bob', where: 'kind-dev/shop-bob' } })).not.toHaveProperty('registry');
    expect(headerFor({ developer: 'carol', target: { kind: 'docker', where: 'local Docker' } })).toEqual({ command: 'up', target: 'docker', developer: 'carol' });
  });
});
