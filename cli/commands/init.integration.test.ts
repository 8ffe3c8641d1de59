import { cpSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadProject } from '../../core/config/load.js';
import { runCli } from '../run-in-process.js';
import { tempRepos } from './testing.js';

// `devloop init` on repositories laid out as real ones are, rendering kustomizations and Helm charts with the real
// kubectl and helm (hence an integration test).
const newRepo = tempRepos();
const fixtures = path.resolve(import.meta.dirname, '../../e2e/fixtures');

function fixture(name: string, drop: string[] = []) {
  const repo = newRepo({});
  cpSync(path.join(fixtures, name), repo.dir, { recursive: true });
  for (const f of drop) rmSync(repo.path(f));
  return repo;
}

const written = (dir: string) => parse(readFileSync(path.join(dir, 'devloop.yaml'), 'utf8')) as Record<string, any>;

describe('devloop init from Dockerfiles and manifests', () => {
  it('names services as people do, takes the images the kustomization uses and writes it as the project manifests', async () => {
    const repo = fixture('boutique', ['skaffold.yaml']);
    const r = await runCli(`--cwd=${repo.dir}`, 'init');
    expect(r.code, r.stderr).toBe(0);
    const config = written(repo.dir);
    expect(config.manifests).toBe('kubernetes-manifests');
    expect(config.services).toEqual([
      // The Dockerfile in src/cartservice/src: named after cartservice, not "src".
      { name: 'cartservice', path: 'src/cartservice/src', image: 'cartservice' },
      { name: 'emailservice', path: 'src/emailservice', image: 'emailservice' },
      { name: 'frontend', path: 'src/frontend', image: 'frontend' },
    ]);
    expect(r.stdout).toContain('project manifests kubernetes-manifests (kustomize): 10 objects for 3 services');
    expect(r.stdout).toContain('cartservice: image cartservice ← ServiceAccount/cartservice, ConfigMap/cart-settings, Service/cartservice, Deployment/cartservice');
    expect(r.stdout).toContain('Deployment/redis-cart runs registry.k8s.io/pause:3.10.1, which no service builds (with cartservice)');
    // What it wrote is what devloop loads: every service takes its objects from the project tree.
    const project = await loadProject(repo.dir);
    expect(project.services.map((s) => [s.name, s.manifests, s.fromProjectManifests])).toEqual([
      ['cartservice', 'kubernetes-manifests', true],
      ['emailservice', 'kubernetes-manifests', true],
      ['frontend', 'kubernetes-manifests', true],
    ]);
  });

  it('takes a Helm umbrella chart as the project manifests, with the image repositories of its values', async () => {
    const repo = fixture('umbrella');
    const r = await runCli(`--cwd=${repo.dir}`, 'init');
    expect(r.code, r.stderr).toBe(0);
    const config = written(repo.dir);
    expect(config.manifests).toBe('deploy/chart');
    expect(config.services).toEqual([
      { name: 'api', path: 'services/api', image: 'acme/api' },
      { name: 'worker', path: 'services/worker/app', image: 'acme/worker' },
    ]);
    expect(r.stdout).toMatch(/Ingress\/\S+-web goes with the shared objects \(kind Ingress\) \(with api\)/);
  });

  it('gives each service its own file when a directory holds one file per service, and its own tree when it has one', async () => {
    const deployment = (name: string, image: string) =>
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ${name}}\nspec:\n  selector: {matchLabels: {app: ${name}}}\n  template:\n    metadata: {labels: {app: ${name}}}\n    spec: {containers: [{name: c, image: "${image}"}]}\n`;
    const repo = newRepo({
      'services/orders/Dockerfile': 'FROM scratch\n',
      'services/payments/docker/Dockerfile': 'FROM scratch\n',
      'services/search/Dockerfile': 'FROM scratch\n',
      'services/search/k8s/deployment.yaml': deployment('search', 'registry.example.com/team/search:1.2'),
      'k8s/orders.yaml': deployment('orders', 'shop/orders'),
      'k8s/payments.yaml': deployment('payments', 'ghcr.io/acme/payments:latest'),
      'k8s/values.yaml': 'replicas: 2\n',
    });
    const r = await runCli(`--cwd=${repo.dir}`, 'init');
    expect(r.code, r.stderr).toBe(0);
    const config = written(repo.dir);
    expect(config.manifests).toBeUndefined();
    expect(config.services).toEqual([
      { name: 'orders', path: 'services/orders', image: 'shop/orders', manifests: 'k8s/orders.yaml' },
      { name: 'payments', path: 'services/payments/docker', image: 'acme/payments', manifests: 'k8s/payments.yaml' },
      { name: 'search', path: 'services/search', image: 'team/search', manifests: 'services/search/k8s' },
    ]);
  });

  it('says which services no manifest deploys, and keeps the default image for them', async () => {
    const repo = newRepo({ 'tools/migrate/Dockerfile': 'FROM scratch\n', 'app/Dockerfile': 'FROM scratch\n', 'app/src/Dockerfile': 'FROM scratch\n' });
    const r = await runCli(`--cwd=${repo.dir}`, 'init');
    expect(r.code, r.stderr).toBe(0);
    const names = (written(repo.dir).services as { name: string }[]).map((s) => s.name);
    // "app" and "app/src" are both generic: named after the directories, de-duplicated.
    expect(names).toHaveLength(3);
    expect(new Set(names).size).toBe(3);
    expect(names).toContain('migrate');
    expect(r.stdout).toMatch(/migrate: no workload in the manifests runs its image \(\S+\/migrate\); it is built but not deployed/);
  });
});

describe('devloop init from skaffold.yaml', () => {
  it('carries over artifacts, manifests, sync rules and port-forwards of every config, and lists what it cannot with its line', async () => {
    const repo = fixture('boutique');
    const r = await runCli(`--cwd=${repo.dir}`, 'init');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('from skaffold.yaml: 2 configs (app, frontend), all used as `skaffold run` would without profiles');
    const config = written(repo.dir);
    expect(config.manifests).toBe('kubernetes-manifests');
    expect(config.services).toEqual([
      // The Service's port 5000 targets 8080 in the pod: that is where devloop forwards.
      { name: 'emailservice', path: 'src/emailservice', image: 'emailservice', ports: ['15000:8080'] },
      { name: 'cartservice', path: 'src/cartservice/src', image: 'cartservice', buildArgs: { GO_FLAGS: '-trimpath' } },
      // dest "." is the Dockerfile's WORKDIR; the glob's static part (static/) is kept, as Skaffold keeps it.
      { name: 'frontend', path: 'src/frontend', image: 'frontend', ports: ['18080:8080'], sync: [{ from: 'static/**/*.txt', to: '/app/static' }] },
    ]);
    expect(r.stdout).toContain('skaffold.yaml:18 build.artifacts[2].custom: loadgenerator is built with custom; devloop builds Dockerfiles only, so it is not carried over');
    expect(r.stdout).toContain('skaffold.yaml:20 build.tagPolicy: devloop tags images by content version');
    expect(r.stdout).toContain('skaffold.yaml:34 profiles[0]: profile "gcb" is not carried over (devloop uses the configuration without profiles)');
    const project = await loadProject(repo.dir);
    expect(project.services.find((s) => s.name === 'frontend')!.sync).toEqual([{ from: 'static/**/*.txt', to: '/app/static' }]);
  });

  it('reads the v2 schema: kubectl manifests globs, helm releases, hooks', async () => {
    const deployment = (name: string, image: string, port: number) =>
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ${name}}\nspec:\n  selector: {matchLabels: {app: ${name}}}\n  template:\n    metadata: {labels: {app: ${name}}}\n    spec: {containers: [{name: c, image: ${image}, ports: [{containerPort: ${port}}]}]}\n`;
    const repo = newRepo({
      'api/Dockerfile': 'FROM scratch\nWORKDIR /srv\n',
      'web/Dockerfile.dev': 'FROM scratch\n',
      'k8s/api.yaml': deployment('api', 'example/api', 9000),
      'k8s/web.yaml': deployment('web', 'example/web', 3000),
      'skaffold.yaml': [
        'apiVersion: skaffold/v2beta29',
        'kind: Config',
        'build:',
        '  artifacts:',
        '    - image: example/api',
        '      context: api',
        '      docker: {target: dev, buildArgs: {MODE: debug, TOKEN: null}}',
        '      sync:',
        '        manual:',
        '          - {src: "lib/**/*.py", dest: app, strip: lib/}',
        '      hooks:',
        '        before: [{command: ["make"]}]',
        '    - image: example/web',
        '      context: web',
        '      docker: {dockerfile: Dockerfile.dev}',
        'deploy:',
        '  kubectl:',
        '    manifests: ["k8s/*.yaml"]',
        '  helm:',
        '    releases:',
        '      - {name: cache, remoteChart: bitnami/redis}',
        'portForward:',
        '  - {resourceType: deployment, resourceName: web, port: 3000}',
        '  - {resourceType: service, resourceName: nowhere, port: 1}',
        '',
      ].join('\n'),
    });
    const r = await runCli(`--cwd=${repo.dir}`, 'init');
    expect(r.code, r.stderr).toBe(0);
    const config = written(repo.dir);
    expect(config.manifests).toBe('k8s');
    expect(config.services).toEqual([
      { name: 'api', path: 'api', image: 'example/api', buildArgs: { MODE: 'debug' }, target: 'dev', sync: [{ from: 'lib/**/*.py', to: '/srv/app' }] },
      { name: 'web', path: 'web', dockerfile: 'Dockerfile.dev', image: 'example/web', ports: ['3000:3000'] },
    ]);
    expect(r.stdout).toContain('skaffold.yaml:7 build.artifacts[0].docker.buildArgs.TOKEN: a build arg without a value (taken from the environment) is not carried over');
    expect(r.stdout).toContain('skaffold.yaml:11 build.artifacts[0].hooks: hooks are not carried over');
    expect(r.stdout).toContain('skaffold.yaml:21 deploy.helm.releases[0]: release cache: only local charts (chartPath) are carried over');
    expect(r.stdout).toContain('skaffold.yaml:24 portForward[1]: service/nowhere is not an object of any service devloop builds; not carried over');
  });

  it('--from reads the Skaffold config named, and says so when it is missing or not v2+', async () => {
    const repo = fixture('boutique');
    rmSync(repo.path('skaffold.yaml'));
    cpSync(path.join(fixtures, 'boutique/skaffold.yaml'), repo.path('skaffold.dev.yaml'));
    const plain = await runCli(`--cwd=${repo.dir}`, 'init', '--stdout');
    // Without a skaffold.yaml, init works from the Dockerfiles: no port-forwards, no sync rules.
    expect(plain.stdout).not.toContain('ports:');
    const r = await runCli(`--cwd=${repo.dir}`, 'init', '--stdout', '--from', 'skaffold.dev.yaml');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('15000:8080');
    expect(r.stderr).toContain('from skaffold.dev.yaml: 2 configs');

    const missing = await runCli(`--cwd=${repo.dir}`, 'init', '--from', 'nope.yaml');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read');
    repo.write({ 'old.yaml': 'apiVersion: skaffold/v1beta2\nkind: Config\n' });
    const old = await runCli(`--cwd=${repo.dir}`, 'init', '--from', 'old.yaml');
    expect(old.code).toBe(2);
    expect(old.stderr).toMatch(/old\.yaml:1 apiVersion "skaffold\/v1beta2" is not a Skaffold v2\+ schema/);
    expect(readFileSync(repo.path('skaffold.dev.yaml'), 'utf8')).toBe(readFileSync(path.join(fixtures, 'boutique/skaffold.yaml'), 'utf8'));
  });
});
