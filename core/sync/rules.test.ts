import { describe, expect, it } from 'vitest';
import type { ServiceConfig } from '../config/types.js';
import { decide, type InputOracle } from './decide.js';
import { compileRules, confinementProblem, containerPath, destinationFor, neverSent } from './rules.js';

function service(name: string, p: string, extra: Partial<ServiceConfig> = {}): ServiceConfig {
  return { name, path: p, dockerfile: 'Dockerfile', dependsOn: [], image: `shop/${name}`, buildArgs: {}, ports: [], sync: [], ...extra };
}

describe('sync rules', () => {
  const web = service('web', 'services/web', {
    sync: [
      { from: 'src/**/*.js', to: '/app/src' },
      { from: 'server.js', to: '/app/' },
      { from: 'static/**', to: '/srv' },
    ],
  });
  const rules = compileRules(web);

  it('maps files below the glob base under `to`', () => {
    const d = destinationFor(rules, 'services/web/src/lib/a.js')!;
    expect(containerPath(d.rule, d.rel)).toBe('/app/src/lib/a.js');
    const s = destinationFor(rules, 'services/web/server.js')!;
    expect(containerPath(s.rule, s.rel)).toBe('/app/server.js');
    const st = destinationFor(rules, 'services/web/static/.hidden/x.css')!;
    expect(containerPath(st.rule, st.rel)).toBe('/srv/.hidden/x.css');
  });

  it('matches nothing outside the rules', () => {
    expect(destinationFor(rules, 'services/web/src/a.ts')).toBeUndefined();
    expect(destinationFor(rules, 'services/web/package.json')).toBeUndefined();
    expect(destinationFor(rules, 'services/other/src/a.js')).toBeUndefined();
  });

  it('never sends .git or .env files, even when a rule matches them', () => {
    expect(destinationFor(rules, 'services/web/static/.env')).toBeUndefined();
    expect(destinationFor(rules, 'services/web/static/.env.local')).toBeUndefined();
    expect(destinationFor(rules, 'services/web/static/.git/config')).toBeUndefined();
    expect(neverSent('a/.envrc')).toBeUndefined();
  });

  it('refuses destination paths that leave the root', () => {
    expect(confinementProblem('../x')).toMatch(/\.\./);
    expect(confinementProblem('a/../../x')).toMatch(/\.\./);
    expect(confinementProblem('/etc/passwd')).toMatch(/absolute/);
    expect(confinementProblem('a//b')).toMatch(/normalised/);
    expect(confinementProblem('a/b c/..d')).toBeUndefined();
  });
});

describe('decide', () => {
  const web = service('web', 'services/web', { sync: [{ from: 'src/**', to: '/app/src' }], manifests: 'services/web/k8s' });
  const api = service('api', 'services/api', { sync: [{ from: '**/*.py', to: '/app' }] });
  const worker = service('worker', 'services/worker', { dependsOn: ['api'] });
  const project = { services: [web, api, worker] };
  const rules = new Map(project.services.map((s) => [s.name, compileRules(s)]));
  // Inputs: each service's own directory (minus k8s/), libs/common for web, and worker sees api's files through api.
  const oracle: InputOracle = {
    inputChain(name, file) {
      const own = project.services.find((s) => s.name === name)!;
      if (file.startsWith(`${own.path}/`) && !file.includes('/k8s/')) return [];
      if (name === 'web' && file.startsWith('libs/common/')) return ['libs/common'];
      if (name === 'worker' && file.startsWith('services/api/')) return ['api'];
      return null;
    },
  };
  const order = ['web', 'api', 'worker'];

  it('syncs when every changed input matches a rule', () => {
    expect(decide(['services/web/src/a.js', 'services/web/src/b/c.js'], project, order, oracle, rules)).toEqual([
      { service: 'web', action: 'sync', files: ['services/web/src/a.js', 'services/web/src/b/c.js'], reason: '2 files match sync rules' },
    ]);
  });

  it('rebuilds when one changed input is not covered, naming it', () => {
    const d = decide(['services/web/src/a.js', 'services/web/package.json'], project, order, oracle, rules);
    expect(d).toEqual([
      { service: 'web', action: 'rebuild', files: ['services/web/src/a.js', 'services/web/package.json'], reason: 'services/web/package.json is not covered by a sync rule' },
    ]);
  });

  it('rebuilds for a change in a directory dependency', () => {
    expect(decide(['libs/common/x.go'], project, order, oracle, rules)[0]).toMatchObject({ service: 'web', action: 'rebuild', reason: expect.stringContaining('libs/common') });
  });

  it('rebuilds dependents of a rebuilt service, not of a synced one', () => {
    expect(decide(['services/api/main.py'], project, order, oracle, rules).map((d) => [d.service, d.action])).toEqual([['api', 'sync']]);
    expect(decide(['services/api/Dockerfile'], project, order, oracle, rules).map((d) => [d.service, d.action, d.reason])).toEqual([
      ['api', 'rebuild', 'services/api/Dockerfile is not covered by a sync rule'],
      ['worker', 'rebuild', 'it depends on api, which is rebuilt'],
    ]);
  });

  it('redeploys when only manifests changed', () => {
    expect(decide(['services/web/k8s/deployment.yaml'], project, order, oracle, rules)).toEqual([
      { service: 'web', action: 'redeploy', files: ['services/web/k8s/deployment.yaml'], reason: 'services/web/k8s/deployment.yaml changed' },
    ]);
  });

  it('ignores files that are nobody’s input', () => {
    expect(decide(['README.md'], project, order, oracle, rules)).toEqual([]);
  });
});
