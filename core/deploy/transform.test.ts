import { describe, expect, it } from 'vitest';
import type { K8sObject } from './render.js';
import { transformObjects } from './transform.js';

const deployment: K8sObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'orders', labels: { app: 'orders' } },
  spec: {
    selector: { matchLabels: { app: 'orders' } },
    template: {
      metadata: { labels: { app: 'orders' } },
      spec: { containers: [{ name: 'orders', image: 'shop/orders' }, { name: 'side', image: 'busybox:1.36' }], initContainers: [{ name: 'init', image: 'registry.example:5000/shop/orders:old' }] },
    },
  },
};

const input = { project: 'Shop', developer: 'Ada Lovelace', service: 'orders', namespace: 'shop-ada', version: 'v1abc', images: { 'shop/orders': '127.0.0.1:5000/shop/orders:v1abc' } };

describe('transformObjects', () => {
  it('sets namespace, images, labels and the content version without touching the selector or the input', () => {
    const before = structuredClone(deployment);
    const { objects, imagesReplaced } = transformObjects([deployment, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'r' } }], input);
    expect(deployment).toEqual(before);
    const d = objects[0] as any;
    expect(d.metadata.namespace).toBe('shop-ada');
    expect(d.metadata.labels).toMatchObject({ app: 'orders', 'app.kubernetes.io/managed-by': 'devloop', 'devloop.dev/developer': 'ada-lovelace', 'devloop.dev/project': 'shop', 'devloop.dev/service': 'orders' });
    expect(d.metadata.annotations['devloop.dev/content-version']).toBe('v1abc');
    expect(d.spec.selector).toEqual({ matchLabels: { app: 'orders' } });
    expect(d.spec.template.metadata.annotations['devloop.dev/content-version']).toBe('v1abc');
    expect(d.spec.template.spec.containers.map((c: any) => c.image)).toEqual(['127.0.0.1:5000/shop/orders:v1abc', 'busybox:1.36']);
    expect(d.spec.template.spec.initContainers[0].image).toBe('127.0.0.1:5000/shop/orders:v1abc');
    expect(imagesReplaced).toBe(2);
    expect(objects[1]!.metadata.namespace).toBeUndefined();
  });

  it('changes the manifest hash only when the result changes', () => {
    const a = transformObjects([deployment], input).manifestHash;
    expect(transformObjects([deployment], input).manifestHash).toBe(a);
    expect(transformObjects([deployment], { ...input, version: 'v2' }).manifestHash).not.toBe(a);
  });

  it('drops Namespace objects with a warning', () => {
    const r = transformObjects([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } }], input);
    expect(r.objects).toEqual([]);
    expect(r.warnings[0]).toMatch(/Namespace x/);
  });
});
