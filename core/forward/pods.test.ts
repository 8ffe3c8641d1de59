import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { summarise } from './pods.js';

const SERVICE = 'devloop.dev/service';

function pod(name: string, service: string, opts: { running?: boolean; restarts?: number; readySince?: string; deleting?: boolean } = {}): k8s.V1Pod {
  return {
    metadata: { name, labels: { [SERVICE]: service }, ...(opts.deleting ? { deletionTimestamp: new Date() } : {}) },
    spec: { containers: [{ name: 'app', image: `127.0.0.1:5000/shop/${service}:abc` }] },
    status: {
      containerStatuses: [
        {
          name: 'app',
          image: 'ignored',
          imageID: '',
          ready: !!opts.readySince,
          restartCount: opts.restarts ?? 0,
          state: opts.running === false ? { waiting: { reason: 'ContainerCreating' } } : { running: { startedAt: new Date('2026-01-01T00:00:00Z') } },
        },
      ],
      conditions: opts.readySince ? [{ type: 'Ready', status: 'True', lastTransitionTime: new Date(opts.readySince) }] : [],
    },
  };
}

describe('summarise', () => {
  it('lists running container instances with a key that changes on restart, and picks the newest ready pod', () => {
    const s = summarise(
      [
        pod('web-1', 'web', { readySince: '2026-01-01T00:00:00Z' }),
        pod('web-2', 'web', { restarts: 2, readySince: '2026-01-01T00:05:00Z' }),
        pod('web-3', 'web', { running: false }),
        pod('web-0', 'web', { deleting: true, readySince: '2026-01-01T00:09:00Z' }),
        pod('api-1', 'api'),
      ],
      SERVICE,
    );
    expect(s.get('web')!.running.map((c) => c.key)).toEqual(['web-1/app#0', 'web-2/app#2']);
    expect(s.get('web')!.ready).toBe('web-2');
    // The one being deleted does not count; the one still creating counts, not ready.
    expect(s.get('web')).toMatchObject({ total: 3, readyCount: 2 });
    expect(s.get('web')!.running[0]!.image).toBe('127.0.0.1:5000/shop/web:abc');
    expect(s.get('api')).toEqual({ running: [expect.objectContaining({ key: 'api-1/app#0' })], total: 1, readyCount: 0 });
  });
});
