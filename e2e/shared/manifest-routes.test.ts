import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { istiodAddress, uniqueName } from '../support/env.js';
import { deleteNamespace, kube } from '../support/kube.js';
import { expectAnsweredBy, expectNoIstioErrors, whoamiBinary, whoamiWorkload, WHOAMI_DOCKERFILE } from '../support/mesh.js';
import { buildCli, devloop, explain } from '../up/harness.js';

/** The whoami image, with api/CHANGED in it when there: writing that file makes alice's version differ from the baseline's. */
const API_DOCKERFILE = WHOAMI_DOCKERFILE.replace('COPY whoami /whoami', 'COPY whoami CHANGE[D] /');

// The baseline's own manifests define the VirtualService of a host (with a timeout and retries): a developer's
// route goes into that one (Istio uses one per host), before its routes and with their timeout and retries; the
// baseline deployed again keeps the developer's route; `down` takes out only the developer's route.
const git = (dir: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', ...args], { cwd: dir, stdio: 'pipe' });

interface Vs {
  metadata: { labels?: Record<string, string> };
  spec: { hosts: string[]; http: { name?: string; timeout?: string; retries?: unknown; route: { destination: { host: string } }[] }[] };
}

describe('shared cluster: a VirtualService of the baseline’s manifests', () => {
  const baseline = uniqueName('shared-vs');
  const host = `api.${baseline}.svc.cluster.local`;
  let dir: string;
  const readVs = async () => (await kube().objects.read({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'api', namespace: baseline } })) as unknown as Vs;
  const virtualService = (timeout: string) => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'api' },
    spec: { hosts: [host], http: [{ name: 'main', timeout, retries: { attempts: 2, perTryTimeout: '2s' }, route: [{ destination: { host } }] }] },
  });
  const writeManifests = (timeout: string) =>
    writeFile(
      path.join(dir, 'api/k8s/api.yaml'),
      [...whoamiWorkload(baseline, 'api', 'shared/api'), virtualService(timeout)].map((o) => stringify({ ...o, metadata: { ...o.metadata, namespace: undefined } })).join('---\n'),
    );

  beforeAll(async () => {
    istiodAddress();
    buildCli();
    dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-shared-vs-'));
    await mkdir(path.join(dir, 'api/k8s'), { recursive: true });
    await writeFile(path.join(dir, 'api/Dockerfile'), API_DOCKERFILE);
    await writeFile(path.join(dir, 'api/.dockerignore'), 'k8s\n');
    await copyFile(await whoamiBinary(), path.join(dir, 'api/whoami'));
    await writeManifests('7s');
    // A second service that calls api (its env names the host) and does not say it passes the routing key on.
    await mkdir(path.join(dir, 'caller/k8s'), { recursive: true });
    await writeFile(path.join(dir, 'caller/Dockerfile'), API_DOCKERFILE);
    await copyFile(await whoamiBinary(), path.join(dir, 'caller/whoami'));
    const caller = whoamiWorkload(baseline, 'caller', 'shared/caller');
    (caller[0] as unknown as { spec: { template: { spec: { containers: { env: unknown[] }[] } } } }).spec.template.spec.containers[0]!.env.push({ name: 'API_ADDR', value: `${host}:8080` });
    await writeFile(path.join(dir, 'caller/k8s/caller.yaml'), caller.map((o) => stringify({ ...o, metadata: { ...o.metadata, namespace: undefined } })).join('---\n'));
    await writeFile(
      path.join(dir, 'devloop.yaml'),
      stringify({
        version: 1,
        name: 'vs',
        shared: { baseline },
        services: [
          { name: 'api', path: 'api', manifests: 'api/k8s', image: 'shared/api' },
          { name: 'caller', path: 'caller', manifests: 'caller/k8s', image: 'shared/caller' },
        ],
      }),
    );
    git(dir, 'init', '-q', '-b', 'main');
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', 'api');
    const run = await devloop(dir, 'ci', ['up', '--baseline', '--once']);
    expect(run.code, explain(run)).toBe(0);
  }, 600_000);

  afterAll(async () => {
    await deleteNamespace(baseline).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("alice's route goes first into the baseline's VirtualService, with its timeout and retries", async () => {
    await writeFile(path.join(dir, 'api/CHANGED'), 'alice\n');
    const run = await devloop(dir, 'alice', ['up', '--once', '--json']);
    expect(run.code, explain(run)).toBe(0);
    // caller reaches api but drops the key: up and status say so.
    expect(run.events.find((e) => e.type === 'warning' && /caller calls api/.test(String(e.message)))).toMatchObject({
      service: 'api',
      message: expect.stringMatching(/^caller calls api and is not known to pass the routing key on/),
    });
    const status = await devloop(dir, 'alice', ['status']);
    expect(status.stdout).toMatch(/warning: caller calls api and is not known to pass the routing key on/);
    const vs = await readVs();
    expect(vs.spec.http.map((r) => r.name)).toEqual(['devloop-alice', 'main']);
    expect(vs.spec.http[0]).toMatchObject({ timeout: '7s', retries: { attempts: 2, perTryTimeout: '2s' }, route: [{ destination: { host: `api-alice.${baseline}.svc.cluster.local` } }] });
    expect(vs.spec.http[1]).toEqual({ name: 'main', timeout: '7s', retries: { attempts: 2, perTryTimeout: '2s' }, route: [{ destination: { host } }] });
    // devloop made no VirtualService of its own for the host: only one takes effect.
    const all = await kube().objects.list('networking.istio.io/v1', 'VirtualService', baseline);
    expect(all.items.map((v) => v.metadata?.name)).toEqual(['api']);
    await expectAnsweredBy({ namespace: baseline, host: `xds:///${host}:8080`, key: 'alice', pod: /^api-alice-/ });
    await expectAnsweredBy({ namespace: baseline, host: `xds:///${host}:8080`, pod: /^api-[a-z0-9]+-[a-z0-9]{5}$/ });
    await expectNoIstioErrors([baseline]);
  }, 600_000);

  it("deploying the baseline again (a changed VirtualService) keeps alice's route", async () => {
    await rm(path.join(dir, 'api/CHANGED'));
    await writeManifests('9s');
    const run = await devloop(dir, 'ci', ['up', '--baseline', '--once']);
    expect(run.code, explain(run)).toBe(0);
    const vs = await readVs();
    expect(vs.spec.http.map((r) => r.name)).toEqual(['devloop-alice', 'main']);
    expect(vs.spec.http[1]!.timeout).toBe('9s');
    await expectAnsweredBy({ namespace: baseline, host: `xds:///${host}:8080`, key: 'alice', pod: /^api-alice-/ });
  }, 600_000);

  it("alice's down takes out her route only; the baseline's VirtualService stays as its manifests say", async () => {
    await writeFile(path.join(dir, 'api/CHANGED'), 'alice\n');
    const run = await devloop(dir, 'alice', ['down']);
    expect(run.code, explain(run)).toBe(0);
    const vs = await readVs();
    expect(vs.spec).toEqual({ hosts: [host], http: [{ name: 'main', timeout: '9s', retries: { attempts: 2, perTryTimeout: '2s' }, route: [{ destination: { host } }] }] });
    expect(JSON.stringify(await readFile(path.join(dir, 'api/CHANGED'), 'utf8'))).toBe('"alice\\n"');
  }, 300_000);
});
