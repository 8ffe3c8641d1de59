import { describe, expect, it } from 'vitest';
import type { K8sObject } from '../deploy/render.js';
import { callersByHost, PROPAGATES_ANNOTATION } from './propagation.js';

const deployment = (name: string, env: Record<string, string>, propagates = false): K8sObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name },
  spec: {
    template: {
      metadata: propagates ? { annotations: { [PROPAGATES_ANNOTATION]: 'true' } } : {},
      spec: { containers: [{ name, env: Object.entries(env).map(([k, value]) => ({ name: k, value })) }] },
    },
  },
});

describe('callersByHost', () => {
  it('finds callers by the host their env names, and whether each passes the key on', () => {
    const callers = callersByHost(
      new Map([
        ['web', { objects: [deployment('web', { NEXT_HOP: 'xds:///orders.shop.svc.cluster.local:8080' }, true)], hosts: ['web'] }],
        ['admin', { objects: [deployment('admin', { ORDERS_URL: 'http://orders:8080/v1' })], hosts: ['admin'] }],
        ['orders', { objects: [deployment('orders', { DB: 'orders-db:5432' })], hosts: ['orders'] }],
      ]),
    );
    expect(callers.get('orders')).toEqual([
      { service: 'web', propagates: true },
      { service: 'admin', propagates: false },
    ]);
    // orders-db is not a host of the project, and a name that only starts with a host is not that host.
    expect(callers.get('web')).toBeUndefined();
    expect([...callers.keys()]).toEqual(['orders']);
  });
});
