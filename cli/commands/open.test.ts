import { describe, expect, it } from 'vitest';
import type { ProjectConfig, ServiceConfig } from '../../core/config/types.js';
import { UserError } from '../../core/errors.js';
import { describeOpen, findService, openNamespace, parsePort } from './open.js';

const service = (name: string): ServiceConfig => ({ name, path: `services/${name}`, dockerfile: 'Dockerfile', dependsOn: [], image: `shop/${name}`, buildArgs: {}, ports: [], sync: [] });
const project = (extra: Partial<ProjectConfig> = {}): ProjectConfig => ({ version: 1, name: 'shop', root: '/r', file: '/r/devloop.yaml', services: [service('web'), service('orders')], ...extra });
const devNs = (p: string, d: string) => `${p}-${d}`;

describe('devloop open: input', () => {
  it('takes ports from 1 to 65535 and refuses anything else with a hint', () => {
    expect(parsePort('8080', '--port')).toBe(8080);
    for (const bad of ['0', '65536', '80a', '-1', '', '8.5']) {
      expect(() => parsePort(bad, '--port')).toThrow(UserError);
    }
    expect(() => parsePort('http', '--port')).toThrow('--port must be a port number from 1 to 65535, not "http"');
  });

  it('names the services devloop.yaml lists when the one asked for is unknown', () => {
    expect(findService(project(), 'web').name).toBe('web');
    let err: UserError | undefined;
    try {
      findService(project(), 'webb');
    } catch (e) {
      err = e as UserError;
    }
    expect(err?.message).toBe('unknown service "webb"');
    expect(err?.hint).toBe('devloop.yaml lists: web, orders');
  });

  it('looks in --namespace, else the shared baseline, else devloop.yaml’s namespace, else the developer’s own', () => {
    expect(openNamespace(project({ namespace: 'shop' }), 'alice', { namespace: 'other' }, devNs)).toBe('other');
    expect(openNamespace(project({ namespace: 'shop', shared: { baseline: 'main', leaseSeconds: 60 } }), 'alice', {}, devNs)).toBe('main');
    expect(openNamespace(project({ namespace: 'shop' }), 'alice', {}, devNs)).toBe('shop');
    expect(openNamespace(project(), 'alice', {}, devNs)).toBe('shop-alice');
  });

  it('says where the port leads', () => {
    expect(describeOpen('web', 8080, 'alice', 'to web-alice')).toBe('open web → http://127.0.0.1:8080 (requests carry devloop-route=alice; to web-alice)');
  });
});
