import { describe, expect, it } from 'vitest';
import type { K8sObject } from '../deploy/render.js';
import { forkName, forkObjects, ROUTE_LABEL } from './fork.js';

const deployment: K8sObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'pricing', labels: { app: 'pricing' } },
  spec: {
    selector: { matchLabels: { app: 'pricing' } },
    template: {
      metadata: { labels: { app: 'pricing', tier: 'backend' } },
      spec: {
        containers: [
          {
            name: 'pricing',
            image: 'shop/pricing:v2',
            env: [{ name: 'RATE', valueFrom: { configMapKeyRef: { name: 'pricing-config', key: 'rate' } } }, { name: 'DB', valueFrom: { secretKeyRef: { name: 'shared-db', key: 'url' } } }],
            envFrom: [{ secretRef: { name: 'pricing-secret' } }],
          },
        ],
        volumes: [{ name: 'c', configMap: { name: 'pricing-config' } }, { name: 'ca', configMap: { name: 'cluster-ca' } }],
      },
    },
  },
};
const service: K8sObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'pricing' },
  spec: { selector: { app: 'pricing' }, clusterIP: '10.0.0.7', type: 'NodePort', ports: [{ name: 'grpc', port: 8080, nodePort: 30080 }] },
};
const config: K8sObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pricing-config' }, data: { rate: '1' } };
const secret: K8sObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pricing-secret' }, stringData: { k: 'v' } };
const pdb: K8sObject = { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'pricing' }, spec: {} };

describe('a developer\'s fork of a service', () => {
  const fork = forkObjects([deployment, service, config, secret, pdb], 'alice');
  const byKind = (kind: string) => fork.objects.find((o) => o.kind === kind) as K8sObject & { spec: any };

  it('renames workloads, Services and the service\'s own ConfigMaps and Secrets', () => {
    expect(fork.objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'Deployment/pricing-alice',
      'Service/pricing-alice',
      'ConfigMap/pricing-config-alice',
      'Secret/pricing-secret-alice',
    ]);
    expect(fork.services).toEqual([{ service: 'pricing', fork: 'pricing-alice', ports: [8080] }]);
    expect(fork.warnings).toEqual(['PodDisruptionBudget/pricing is not forked: the baseline\'s serves the fork too']);
  });

  it('gives the fork\'s pods labels no baseline selector matches, and its Service selects only them', () => {
    const d = byKind('Deployment');
    expect(d.spec.selector.matchLabels).toEqual({ app: 'pricing-alice', [ROUTE_LABEL]: 'alice' });
    expect(d.spec.template.metadata.labels).toEqual({ app: 'pricing-alice', tier: 'backend', [ROUTE_LABEL]: 'alice' });
    const baselineSelector = (service.spec as { selector: Record<string, string> }).selector;
    const podLabels = d.spec.template.metadata.labels as Record<string, string>;
    expect(Object.entries(baselineSelector).every(([k, v]) => podLabels[k] === v)).toBe(false);
    const s = byKind('Service');
    expect(s.spec.selector).toEqual({ app: 'pricing-alice', [ROUTE_LABEL]: 'alice' });
    expect(s.spec).not.toHaveProperty('clusterIP');
    expect(s.spec.type).toBe('ClusterIP');
    expect(s.spec.ports).toEqual([{ name: 'grpc', port: 8080 }]);
  });

  it('points the fork\'s pods at its own ConfigMaps and Secrets, and at the baseline\'s for the rest', () => {
    const c = byKind('Deployment').spec.template.spec;
    expect(c.containers[0].env.map((e: any) => e.valueFrom.configMapKeyRef?.name ?? e.valueFrom.secretKeyRef?.name)).toEqual(['pricing-config-alice', 'shared-db']);
    expect(c.containers[0].envFrom[0].secretRef.name).toBe('pricing-secret-alice');
    expect(c.volumes.map((v: any) => v.configMap.name)).toEqual(['pricing-config-alice', 'cluster-ca']);
    // The input is left as it was.
    expect((deployment.spec as any).template.spec.volumes[0].configMap.name).toBe('pricing-config');
  });

  it('keeps names valid DNS labels', () => {
    const long = 'a'.repeat(60);
    expect(forkName(long, 'alice')).toHaveLength(63);
    expect(forkName(long, 'alice')).toMatch(/^a+-[0-9a-f]{6}-alice$/);
    expect(forkName(long, 'alice')).not.toBe(forkName(`${'a'.repeat(59)}b`, 'alice'));
  });
});
