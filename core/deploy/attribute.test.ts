import { afterEach, describe, expect, it } from 'vitest';
import type { ServiceConfig } from '../config/types.js';
import { TempRepo } from '../workspace/temp-repo.js';
import { attributeObjects } from './attribute.js';
import type { K8sObject } from './render.js';
import { serviceManifests } from './service-objects.js';

const deployment = (name: string, images: string[], extra: Record<string, unknown> = {}): K8sObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name },
  spec: {
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name, tier: 'backend' } }, spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })), ...extra } },
  },
});
const service = (name: string, selector?: Record<string, string>): K8sObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name },
  spec: selector ? { selector, ports: [{ port: 80 }] } : { ports: [{ port: 80 }] },
});
const object = (kind: string, name: string): K8sObject => ({ apiVersion: 'v1', kind, metadata: { name } });

const services = [
  { name: 'cart', image: 'cartservice' },
  { name: 'email', image: 'shop/email' },
];

const names = (objects: K8sObject[] | undefined) => (objects ?? []).map((o) => `${o.kind}/${o.metadata.name}`);

describe('attributeObjects', () => {
  it('gives workloads to the service whose image repository they run, whatever the registry and tag', () => {
    const a = attributeObjects(
      [
        deployment('cart', ['cartservice:v2', 'busybox']),
        deployment('email', ['registry.example:5000/shop/email:v1']),
        // Another repository that ends in the same name is not the service's image.
        deployment('other-cart', ['gcr.io/demo/cartservice']),
        deployment('redis', ['redis:7']),
      ],
      services,
    );
    expect(names(a.byService.get('cart'))).toEqual(['Deployment/cart']);
    expect(names(a.byService.get('email'))).toEqual(['Deployment/email']);
    expect(names(a.shared)).toEqual(['Deployment/other-cart', 'Deployment/redis']);
    expect(a.notes.find((n) => n.object === 'Deployment/redis')).toEqual({ object: 'Deployment/redis', service: null, reason: 'runs redis:7, which no service builds' });
  });

  it('matches the first container that runs a service image, and init containers too', () => {
    const withInit: K8sObject = deployment('cart', ['busybox']);
    (withInit.spec as any).template.spec.initContainers = [{ name: 'migrate', image: 'cartservice:dev' }];
    const a = attributeObjects([withInit, deployment('email', ['busybox', 'shop/email'])], services);
    expect(names(a.byService.get('cart'))).toEqual(['Deployment/cart']);
    expect(names(a.byService.get('email'))).toEqual(['Deployment/email']);
  });

  it('gives a Service to the service whose pods it selects; several, none or no selector make it shared', () => {
    const a = attributeObjects(
      [
        deployment('cart', ['cartservice']),
        deployment('email', ['shop/email']),
        deployment('redis', ['redis']),
        service('cart', { app: 'cart' }),
        service('backends', { tier: 'backend' }),
        service('redis', { app: 'redis' }),
        service('nothing', { app: 'gone' }),
        service('external'),
      ],
      services,
    );
    expect(names(a.byService.get('cart'))).toEqual(['Deployment/cart', 'Service/cart']);
    expect(names(a.shared)).toEqual(['Deployment/redis', 'Service/backends', 'Service/redis', 'Service/nothing', 'Service/external']);
    expect(a.notes.find((n) => n.object === 'Service/backends')?.reason).toBe('selects the pods of cart, email and others');
  });

  it('gives ConfigMaps, Secrets and ServiceAccounts to the one service whose workloads use them', () => {
    const cart = deployment('cart', ['cartservice'], {
      serviceAccountName: 'cart',
      volumes: [{ name: 'v', configMap: { name: 'cart-config' } }, { name: 'p', projected: { sources: [{ secret: { name: 'shared-token' } }] } }],
    });
    const email = deployment('email', ['shop/email'], { imagePullSecrets: [{ name: 'pull' }] });
    (email.spec as any).template.spec.containers[0].envFrom = [{ secretRef: { name: 'shared-token' } }];
    (email.spec as any).template.spec.containers[0].env = [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'email-config', key: 'x' } } }];
    const a = attributeObjects(
      [cart, email, object('ServiceAccount', 'cart'), object('ConfigMap', 'cart-config'), object('ConfigMap', 'email-config'), object('Secret', 'shared-token'), object('Secret', 'pull'), object('ConfigMap', 'unused'), object('Ingress', 'web')],
      services,
    );
    expect(names(a.byService.get('cart'))).toEqual(['Deployment/cart', 'ServiceAccount/cart', 'ConfigMap/cart-config']);
    expect(names(a.byService.get('email'))).toEqual(['Deployment/email', 'ConfigMap/email-config', 'Secret/pull']);
    expect(names(a.shared)).toEqual(['Secret/shared-token', 'ConfigMap/unused', 'Ingress/web']);
  });

  it('finds the pod template of a CronJob and takes a bare Pod as its own template', () => {
    const cron: K8sObject = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'report' },
      spec: { schedule: '* * * * *', jobTemplate: { spec: { template: { spec: { containers: [{ name: 'r', image: 'cartservice' }] } } } } },
    };
    const pod: K8sObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'debug', labels: { app: 'debug' } }, spec: { containers: [{ name: 'd', image: 'shop/email:x' }] } };
    const a = attributeObjects([cron, pod, service('debug', { app: 'debug' })], services);
    expect(names(a.byService.get('cart'))).toEqual(['CronJob/report']);
    expect(names(a.byService.get('email'))).toEqual(['Pod/debug', 'Service/debug']);
  });
});

describe('serviceManifests', () => {
  const repos: TempRepo[] = [];
  afterEach(() => {
    while (repos.length) repos.pop()!.remove();
  });

  const svc = (name: string, image: string, manifests?: string, fromProject = false): ServiceConfig => ({
    name,
    path: name,
    dockerfile: 'Dockerfile',
    dependsOn: [],
    image,
    buildArgs: {},
    ports: [],
    sync: [],
    ...(manifests ? { manifests } : {}),
    ...(fromProject ? { fromProjectManifests: true } : {}),
  });

  it('splits the project tree among its services, the shared group going with the first, and renders own manifests as they are', async () => {
    const repo = TempRepo.create();
    repos.push(repo);
    const yaml = (o: K8sObject) => JSON.stringify(o);
    repo.write({
      'deploy/apps.yaml': [deployment('cart', ['cartservice']), service('cart', { app: 'cart' }), deployment('email', ['shop/email']), deployment('redis', ['redis']), deployment('web-in-tree', ['shop/web'])]
        .map(yaml)
        .join('\n---\n'),
      'deploy/ingress.yaml': yaml(object('Ingress', 'web')),
      'own/k8s/web.yaml': yaml(deployment('web', ['shop/web'])),
    });
    const project = {
      root: repo.dir,
      name: 'shop',
      services: [svc('web', 'shop/web', 'own/k8s'), svc('email', 'shop/email', 'deploy', true), svc('cart', 'cartservice', 'deploy', true), svc('tools', 'shop/tools')],
    };
    const of = serviceManifests(project, 'shop-ada');
    const [web, email, cart, tools] = await Promise.all(project.services.map((s) => of(s)));
    // web deploys from its own manifests: the tree's workload for it is left out.
    expect(names(web!.objects)).toEqual(['Deployment/web']);
    // email is the first service of the tree in devloop.yaml: it deploys the shared objects too.
    expect(names(email!.objects)).toEqual(['Deployment/redis', 'Ingress/web', 'Deployment/email']);
    expect(names(cart!.objects)).toEqual(['Deployment/cart', 'Service/cart']);
    expect(tools!.objects).toEqual([]);
  });

  it('fails every service of the tree with the same error when the tree does not render', async () => {
    const repo = TempRepo.create();
    repos.push(repo);
    repo.write({ 'deploy/bad.yaml': 'kind: [\n' });
    const project = { root: repo.dir, name: 'shop', services: [svc('a', 'a', 'deploy', true), svc('b', 'b', 'deploy', true)] };
    const of = serviceManifests(project, 'ns');
    const errors = await Promise.all(project.services.map((s) => of(s).then(() => undefined, (e: unknown) => e)));
    expect(errors[0]).toBeInstanceOf(Error);
    expect(errors[1]).toBe(errors[0]);
    expect((errors[0] as Error).message).toContain('deploy/bad.yaml');
  });
});
