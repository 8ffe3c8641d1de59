import { afterEach, describe, expect, it } from 'vitest';
import { loadProject } from '../config/load.js';
import type { ProjectConfig, ServiceConfig } from '../config/types.js';
import { UserError } from '../errors.js';
import { buildGraph, buildOrder, buildWaves, inputDirectories } from './graph.js';
import { goModLocalReplaces } from './infer.js';
import { TempRepo } from './temp-repo.js';

const repos: TempRepo[] = [];
afterEach(() => {
  while (repos.length) repos.pop()!.remove();
});

function monorepo(): TempRepo {
  const repo = TempRepo.create();
  repos.push(repo);
  repo.write({
    'devloop.yaml': [
      'version: 1',
      'services:',
      '  - { name: orders, path: services/orders }',
      '  - { name: web, path: services/web }',
      '  - { name: gateway, path: services/gateway, dependsOn: [orders, web, tools/proto] }',
      '  - { name: batch, path: services/batch, dependsOn: [libs/money] }',
      '',
    ].join('\n'),
    'package.json': JSON.stringify({ name: 'root', private: true, workspaces: ['libs/*', 'services/*'] }),
    'services/orders/Dockerfile': 'FROM scratch\n',
    'services/orders/go.mod': [
      'module example.com/shop/orders',
      '',
      'go 1.22',
      '',
      'replace example.com/shop/money => ../../libs/money // shared money types',
      'replace (',
      '\texample.com/shop/ids v1.0.0 => "../../libs/ids"',
      '\texample.com/upstream => example.com/fork v1.2.3',
      '\texample.com/gone => ../../libs/gone',
      '\texample.com/outside => ../../../outside',
      ')',
      '',
    ].join('\n'),
    'services/orders/internal/go.mod': 'module x\nreplace y => ../../../libs/ignored\n',
    'libs/money/go.mod': 'module example.com/shop/money\nreplace example.com/shop/decimal => ../decimal\n',
    'libs/money/money.go': 'package money\n',
    'libs/decimal/go.mod': 'module example.com/shop/decimal\n',
    'libs/ids/go.mod': 'module example.com/shop/ids\n',
    'libs/ignored/go.mod': 'module x\n',
    'services/web/Dockerfile': 'FROM scratch\n',
    'services/web/package.json': JSON.stringify({
      name: '@shop/web',
      dependencies: { '@shop/ui': 'workspace:*', react: '^19' },
      devDependencies: { '@shop/testing': '1.0.0', local: 'file:../../tools/local' },
    }),
    'libs/ui/package.json': JSON.stringify({ name: '@shop/ui', dependencies: { '@shop/tokens': '*' } }),
    'libs/tokens/package.json': JSON.stringify({ name: '@shop/tokens' }),
    'libs/testing/package.json': JSON.stringify({ name: '@shop/testing' }),
    'tools/local/package.json': JSON.stringify({ name: 'local' }),
    'tools/proto/orders.proto': 'syntax = "proto3";\n',
    'services/gateway/Dockerfile': 'FROM scratch\n',
    'services/batch/Dockerfile': 'FROM scratch\n',
    'services/batch/go.mod': 'module b\nreplace example.com/shop/money => ../../libs/money\n',
  });
  return repo;
}

describe('dependency inference', () => {
  it('reads local replace directives of go.mod, single-line and block form', () => {
    expect(
      goModLocalReplaces('replace a => ../a\nreplace b v1 => ./b // why\nreplace (\n  c => "../c"\n  d => example.com/d v1.0.0\n  e => /abs/e\n)\n// replace f => ../f\n'),
    ).toEqual(['../a', './b', '../c']);
  });

  it('infers Go and Node dependencies transitively and keeps declared ones apart', async () => {
    const repo = monorepo();
    const graph = await buildGraph(await loadProject(repo.dir));
    const deps = (name: string) => graph.nodes.get(name)!.dependsOn;
    expect(deps('orders')).toEqual({ declared: [], inferred: ['libs/decimal', 'libs/ids', 'libs/money'] });
    expect(deps('web')).toEqual({ declared: [], inferred: ['libs/testing', 'libs/tokens', 'libs/ui', 'tools/local'] });
    expect(deps('gateway')).toEqual({ declared: ['orders', 'web', 'tools/proto'], inferred: [] });
    // Declared and inferred at once: declared wins, what it leads to is inferred.
    expect(deps('batch')).toEqual({ declared: ['libs/money'], inferred: ['libs/decimal'] });

    const orders = graph.nodes.get('orders')!;
    expect(orders.dirs.map((d) => [d.dir, d.via.join(' → ')])).toEqual([
      ['libs/decimal', 'libs/money → libs/decimal'],
      ['libs/ids', 'libs/ids'],
      ['libs/money', 'libs/money'],
    ]);
    expect(inputDirectories(graph, 'gateway').sort()).toEqual(
      ['services/gateway', 'tools/proto', 'services/orders', 'libs/decimal', 'libs/ids', 'libs/money', 'services/web', 'libs/testing', 'libs/tokens', 'libs/ui', 'tools/local'].sort(),
    );
  });

  it('orders builds by dependsOn and groups them in waves', async () => {
    const repo = monorepo();
    const project = await loadProject(repo.dir);
    expect(buildOrder(project)).toEqual(['orders', 'web', 'gateway', 'batch']);
    expect(buildWaves(project)).toEqual([['orders', 'web', 'batch'], ['gateway']]);
  });

  it('names a service cycle', async () => {
    const svc = (name: string, dependsOn: string[]): ServiceConfig => ({
      name,
      path: name,
      dockerfile: 'Dockerfile',
      dependsOn,
      image: `x/${name}`,
      buildArgs: {},
      ports: [],
      sync: [],
    });
    const project: ProjectConfig = {
      version: 1,
      name: 'x',
      root: '/nonexistent',
      file: null,
      services: [svc('a', ['b']), svc('b', ['c']), svc('c', ['a']), svc('d', [])],
    };
    expect(() => buildOrder(project)).toThrow(UserError);
    expect(() => buildOrder(project)).toThrow('dependency cycle between services: a → b → c → a');
    await expect(buildGraph(project)).rejects.toThrow('a → b → c → a');
  });
});
