import { mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UserErrors } from '../errors.js';
import { TempRepo } from '../workspace/temp-repo.js';
import { loadProject, parseProjectConfig } from './load.js';

const repos: TempRepo[] = [];
afterEach(() => {
  while (repos.length) repos.pop()!.remove();
});

function shop(): TempRepo {
  const repo = TempRepo.create();
  repos.push(repo);
  repo.write({
    'services/orders/Dockerfile': 'FROM scratch\n',
    'services/orders/k8s/deployment.yaml': 'kind: Deployment\n',
    'services/payments/Dockerfile': 'FROM scratch\n',
    'services/payments/build.Dockerfile': 'FROM scratch\n',
    'libs/common/x.go': 'package common\n',
  });
  return repo;
}

/** The problems of a config that must fail, as lines with the absolute file name replaced by "devloop.yaml". */
async function problemsOf(repo: TempRepo, text: string): Promise<string[]> {
  const file = repo.path('devloop.yaml');
  try {
    await parseProjectConfig(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(UserErrors);
    return (err as UserErrors).problems.map((p) => p.replace(file, 'devloop.yaml'));
  }
  throw new Error('expected the config to be rejected');
}

describe('devloop.yaml validation', () => {
  it('reads shared: with its lease, and refuses a lease that is not a duration at its line', async () => {
    const repo = shop();
    const base = ['version: 1', 'name: shop', 'services:', '  - name: orders', '    path: services/orders'];
    const shared = await parseProjectConfig([...base, 'shared:', '  baseline: shop', '  lease: 30m'].join('\n'), repo.path('devloop.yaml'));
    expect(shared.shared).toEqual({ baseline: 'shop', leaseSeconds: 1800 });
    const defaults = await parseProjectConfig([...base, 'shared: { baseline: shop }'].join('\n'), repo.path('devloop.yaml'));
    expect(defaults.shared).toEqual({ baseline: 'shop', leaseSeconds: 12 * 3600 });
    const problems = await problemsOf(repo, [...base, 'shared:', '  baseline: shop', '  lease: 12 hours'].join('\n'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^devloop\.yaml:8:\d+ shared\.lease: .*"12h"/);
  });

  it('accepts the minimal contract and resolves defaults', async () => {
    const repo = shop();
    const project = await parseProjectConfig(
      [
        'version: 1',
        'name: shop',
        'services:',
        '  - name: orders',
        '    path: ./services/orders/',
        '    dependsOn: [libs/common]',
        '    manifests: services/orders/k8s',
        '    ports: ["8080:80", 9090]',
        '    buildArgs: { VERSION: 3, DEBUG: true }',
        '    sync:',
        '      - { from: "src/**/*.js", to: /app/src, then: "npm run build" }',
        '  - name: payments',
        '    path: services/payments',
        '    dockerfile: build.Dockerfile',
        '    dependsOn: [orders]',
        '    image: shop/pay',
        '    target: dev',
      ].join('\n'),
      repo.path('devloop.yaml'),
    );
    expect(project.root).toBe(repo.dir);
    expect(project.file).toBe(repo.path('devloop.yaml'));
    expect(project.name).toBe('shop');
    const [orders, payments] = project.services;
    expect(orders).toEqual({
      name: 'orders',
      path: 'services/orders',
      dockerfile: 'Dockerfile',
      dependsOn: ['libs/common'],
      image: 'shop/orders',
      manifests: 'services/orders/k8s',
      buildArgs: { VERSION: '3', DEBUG: 'true' },
      ports: ['8080:80', '9090:9090'],
      sync: [{ from: 'src/**/*.js', to: '/app/src', then: ['sh', '-c', 'npm run build'] }],
    });
    expect(payments).toMatchObject({ dockerfile: 'build.Dockerfile', dependsOn: ['orders'], image: 'shop/pay', target: 'dev', ports: [], sync: [], buildArgs: {} });
  });

  it('accepts YAML anchors and merge keys under x- extension keys', async () => {
    const repo = shop();
    const project = await parseProjectConfig(
      'version: 1\nx-defaults: &defaults\n  buildArgs: { GO: "1.22" }\n  ports: ["8080:80"]\nservices:\n  - <<: *defaults\n    name: orders\n    path: services/orders\n',
      repo.path('devloop.yaml'),
    );
    expect(project.services[0]).toMatchObject({ name: 'orders', buildArgs: { GO: '1.22' }, ports: ['8080:80'] });
    expect(await problemsOf(repo, 'version: 1\ncommon: 1\nservices: []\n')).toEqual(['devloop.yaml:2:1 unknown key "common" (extension keys start with "x-")']);
  });

  it('gives a top-level manifests tree to every service without manifests of its own', async () => {
    const repo = shop();
    repo.write({ 'deploy/all.yaml': 'kind: List\n' });
    const project = await parseProjectConfig(
      'version: 1\nmanifests: ./deploy/\nservices:\n  - { name: orders, path: services/orders, manifests: services/orders/k8s }\n  - { name: payments, path: services/payments }\n',
      repo.path('devloop.yaml'),
    );
    expect(project.manifests).toBe('deploy');
    expect(project.services[0]).toMatchObject({ manifests: 'services/orders/k8s' });
    expect(project.services[0]!.fromProjectManifests).toBeUndefined();
    expect(project.services[1]).toMatchObject({ manifests: 'deploy', fromProjectManifests: true });
    expect(await problemsOf(repo, 'version: 1\nmanifests: deplyo\nservices: []\n')).toEqual(['devloop.yaml:2:12 manifests: path "deplyo" does not exist (did you mean "deploy"?)']);
  });

  it('names file, line, column and key of a missing directory', async () => {
    const repo = shop();
    const problems = await problemsOf(
      repo,
      ['version: 1', 'name: shop', 'services:', '  - name: orders', '    path: services/orders', '  - name: payments', '    path: services/ordrs', ''].join('\n'),
    );
    expect(problems).toEqual(['devloop.yaml:7:11 services[1].path: directory "services/ordrs" does not exist (did you mean "services/orders"?)']);
  });

  it('keeps the report of a file that is not a devloop.yaml at all short', async () => {
    const repo = shop();
    const binary = Buffer.alloc(1 << 20);
    for (let i = 0; i < binary.length; i++) binary[i] = (i * 131 + 7) % 256;
    await expect(parseProjectConfig(binary.toString('latin1'), repo.path('devloop.yaml'))).rejects.toThrow(/is not a text file \(it holds NUL bytes\)/);
    // Text, but 10,000 broken lines: twenty problems and a count, each line bounded.
    const problems = await problemsOf(repo, Array.from({ length: 10_000 }, (_, i) => `key${i}: [unclosed ${'x'.repeat(500)}`).join('\n'));
    expect(problems.length).toBeLessThanOrEqual(21);
    expect(problems.every((p) => p.length <= 320)).toBe(true);
    expect(problems.join('\n').length).toBeLessThan(10_000);
  });

  it('reports every problem at once, one line each, in file order', async () => {
    const repo = shop();
    const problems = await problemsOf(
      repo,
      [
        'version: 2', // 1
        'name: Shop', // 2
        'servics: []', // 3
        'services:', // 4
        '  - name: orders', // 5
        '    pth: services/orders', // 6
        '    ports: ["80"]', // 7
        '  - name: orders', // 8
        '    path: services/payments', // 9
        '    dependsOn: [libs/comon, payments]', // 10
        '    sync:', // 11
        '      - from: src', // 12
        '        to: app', // 13
        '',
      ].join('\n'),
    );
    expect(problems).toEqual([
      'devloop.yaml:1:10 version: expected 1, got number 2',
      'devloop.yaml:2:7 name: expected a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters, got "Shop"',
      'devloop.yaml:3:1 unknown key "servics" (did you mean "services"?)',
      'devloop.yaml:5:5 services[0]: missing required key "path"',
      'devloop.yaml:6:5 services[0]: unknown key "pth" (did you mean "path"?)',
      'devloop.yaml:7:13 services[0].ports[0]: expected "local:remote" with ports between 1 and 65535, e.g. "8080:80", got "80"',
      'devloop.yaml:8:11 services[1].name: duplicate service name "orders" (also services[0])',
      'devloop.yaml:10:17 services[1].dependsOn[0]: "libs/comon" is neither a service name nor an existing path: path "libs/comon" does not exist (did you mean "libs/common"?)',
      'devloop.yaml:10:29 services[1].dependsOn[1]: "payments" is neither a service name nor an existing path: path "payments" does not exist',
      'devloop.yaml:13:13 services[1].sync[0].to: expected an absolute directory in the container, e.g. /app, got "app"',
    ]);
  });

  it('points at broken YAML', async () => {
    const repo = shop();
    const problems = await problemsOf(repo, 'version: 1\nservices:\n  - name: a\n    path: [unclosed\n');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^devloop\.yaml:\d+:\d+ /);
    const dup = await problemsOf(repo, 'version: 1\nversion: 1\nservices: []\n');
    expect(dup).toEqual([expect.stringMatching(/^devloop\.yaml:2:1 Map keys must be unique/)]);
  });

  it('rejects an empty file and wrong top-level types', async () => {
    const repo = shop();
    expect(await problemsOf(repo, '')).toEqual(['devloop.yaml:1:1 the file is empty; expected a mapping with "version: 1" and "services"']);
    expect(await problemsOf(repo, 'version: 1\nservices: orders\n')).toEqual(['devloop.yaml:2:11 services: expected a list, got "orders"']);
    expect(await problemsOf(repo, 'version: 1\nservices:\n')).toEqual(['devloop.yaml:2:1 services: expected a list, got nothing']);
  });

  it('names a dependency cycle', async () => {
    const repo = shop();
    const problems = await problemsOf(
      repo,
      [
        'version: 1',
        'services:',
        '  - { name: orders, path: services/orders, dependsOn: [payments] }',
        '  - { name: payments, path: services/payments, dependsOn: [orders] }',
      ].join('\n'),
    );
    expect(problems).toEqual(['devloop.yaml:3:56 services[0].dependsOn[0]: dependency cycle: orders → payments → orders']);
  });

  it('checks Dockerfiles, manifests, ports, images and paths leaving the project', async () => {
    const repo = shop();
    const problems = await problemsOf(
      repo,
      [
        'version: 1',
        'name: shop',
        'services:',
        '  - name: orders',
        '    path: services/orders',
        '    dockerfile: Dockerfile.dev',
        '    manifests: services/orders/k8z',
        '    ports: ["8080:80", "70000:1"]',
        '  - name: payments',
        '    path: ../outside',
        '    image: shop/orders',
        '    ports: [8080]',
        '  - name: self',
        '    path: services/payments',
        '    dependsOn: [self]',
        '    image: Shop/Self',
      ].join('\n'),
    );
    expect(problems).toEqual([
      'devloop.yaml:6:17 services[0].dockerfile: Dockerfile "services/orders/Dockerfile.dev" does not exist',
      'devloop.yaml:7:16 services[0].manifests: path "services/orders/k8z" does not exist (did you mean "services/orders/k8s"?)',
      'devloop.yaml:8:24 services[0].ports[1]: port 70000 is out of range (1-65535)',
      'devloop.yaml:10:11 services[1].path: "../outside" points outside the project directory',
      'devloop.yaml:11:12 services[1].image: image "shop/orders" is also used by services[0]; each service needs its own image',
      'devloop.yaml:12:13 services[1].ports[0]: local port 8080 is already forwarded by services[0].ports[0]',
      'devloop.yaml:15:17 services[2].dependsOn[0]: a service cannot depend on itself',
      'devloop.yaml:16:12 services[2].image: expected a Docker repository name such as "shop/orders" (lowercase, no registry and no tag), got "Shop/Self"',
    ]);
  });

  it('refuses a service path that is a symlink leading out of the project', async () => {
    const repo = shop();
    const outside = TempRepo.create();
    repos.push(outside);
    symlinkSync(outside.dir, repo.path('services/elsewhere'));
    const problems = await problemsOf(repo, 'version: 1\nservices:\n  - { name: x, path: services/elsewhere }\n');
    expect(problems).toEqual([`devloop.yaml:3:22 services[0].path: "services/elsewhere" resolves to ${outside.dir}, outside the project directory`]);
  });
});

describe('loadProject', () => {
  it('finds devloop.yaml from a subdirectory', async () => {
    const repo = shop();
    repo.write({ 'devloop.yaml': 'version: 1\nname: shop\nservices:\n  - { name: orders, path: services/orders }\n' });
    const project = await loadProject(repo.path('services/orders/k8s'));
    expect(project.file).toBe(repo.path('devloop.yaml'));
    expect(project.services.map((s) => s.name)).toEqual(['orders']);
  });

  it('does not look above the git top level', async () => {
    const outer = TempRepo.create();
    repos.push(outer);
    outer.write({ 'devloop.yaml': 'version: 1\nservices: []\n' });
    const inner = path.join(outer.dir, 'nested');
    mkdirSync(inner);
    const repo = TempRepo.at(inner);
    repo.git('init', '-q', '-b', 'main');
    repo.write({ 'svc/Dockerfile': 'FROM scratch\n' });
    const project = await loadProject(inner);
    expect(project.file).toBeNull();
    expect(project.root).toBe(inner);
    expect(project.services.map((s) => s.path)).toEqual(['svc']);
  });

  it('discovers services from Dockerfiles without a devloop.yaml', async () => {
    const repo = shop();
    repo.write({
      'tools/orders/Dockerfile': 'FROM scratch\n',
      'Dockerfile': 'FROM scratch\n',
      'web/node_modules/pkg/Dockerfile': 'FROM scratch\n',
      'ignored/Dockerfile': 'FROM scratch\n',
      '.gitignore': 'ignored/\n',
      'services/My_API/Dockerfile': 'FROM scratch\n',
    });
    repo.commit();
    const project = await loadProject(repo.dir);
    expect(project.file).toBeNull();
    const name = path.basename(repo.dir).toLowerCase();
    expect(project.services.map((s) => [s.name, s.path, s.manifests ?? null, s.image])).toEqual([
      [name, '', null, `${name}/${name}`],
      ['my-api', 'services/My_API', null, `${name}/my-api`],
      ['services-orders', 'services/orders', 'services/orders/k8s', `${name}/services-orders`],
      ['payments', 'services/payments', null, `${name}/payments`],
      ['tools-orders', 'tools/orders', null, `${name}/tools-orders`],
    ]);
  });

  it('says what is missing outside any repository', async () => {
    const dir = TempRepo.create();
    repos.push(dir);
    await expect(loadProject(path.join(dir.dir, 'missing'))).rejects.toThrow(/does not exist/);
  });
});
