import { describe, expect, it } from 'vitest';
import type { Kube } from '../../core/deploy/kube.js';
import { DockerTarget } from '../../core/target/docker-target.js';
import { KindDelivery, RegistryDelivery } from '../../core/target/delivery.js';
import { KubernetesTarget } from '../../core/target/kubernetes.js';
import { headerFor } from './start.js';

describe('dashboard header', () => {
  it('names context, namespace, developer and registry for a cluster, and only the developer for Docker', () => {
    // Only the context name of the Kubernetes client is read.
    const kube = { context: 'dev-cluster' } as Kube;
    expect(headerFor({ developer: 'alice', target: new KubernetesTarget('remote', kube, 'shop-alice', new RegistryDelivery('127.0.0.1:5000')) })).toEqual({
      command: 'up',
      target: 'remote',
      context: 'dev-cluster',
      namespace: 'shop-alice',
      developer: 'alice',
      registry: '127.0.0.1:5000',
    });
    expect(headerFor({ developer: 'bob', target: new KubernetesTarget('kind', kube, 'shop-bob', new KindDelivery('dev')) })).not.toHaveProperty('registry');
    expect(headerFor({ developer: 'carol', target: new DockerTarget() })).toEqual({ command: 'up', target: 'docker', developer: 'carol' });
  });
});
