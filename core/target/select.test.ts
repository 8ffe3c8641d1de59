import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProjectConfig } from '../config/types.js';
import { UserError } from '../errors.js';
import { developerNamespace, selectTarget } from './select.js';

const project: ProjectConfig = { version: 1, name: 'shop', root: '/nowhere', file: null, services: [] };

const kubeconfig = (current: string) => `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: kind-dev
  context: {cluster: c, user: u}
- name: staging
  context: {cluster: c, user: u, namespace: team}
current-context: ${current}
`;

describe('selectTarget', () => {
  let dir: string;
  const saved = { KUBECONFIG: process.env.KUBECONFIG, DEVLOOP_REGISTRY: process.env.DEVLOOP_REGISTRY, HOME: process.env.HOME };
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-select-'));
    await writeFile(path.join(dir, 'kind'), kubeconfig('kind-dev'));
    await writeFile(path.join(dir, 'staging'), kubeconfig('staging'));
    delete process.env.DEVLOOP_REGISTRY;
  });
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('uses local Docker without any kubeconfig, or when asked', async () => {
    delete process.env.KUBECONFIG;
    process.env.HOME = dir; // no ~/.kube/config there
    expect((await selectTarget(project, 'ada', {})).kind).toBe('docker');
    process.env.KUBECONFIG = path.join(dir, 'kind');
    expect((await selectTarget(project, 'ada', { target: 'docker' })).kind).toBe('docker');
  });

  it('refuses a KUBECONFIG that names no existing file, instead of falling back to local Docker', async () => {
    process.env.KUBECONFIG = path.join(dir, 'absent');
    const err = await selectTarget(project, 'ada', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe(`KUBECONFIG names ${path.join(dir, 'absent')}, and no such file exists`);
    expect((await selectTarget(project, 'ada', { target: 'docker' })).kind).toBe('docker');
  });

  it('loads into kind for a kind-<cluster> context, in <project>-<developer>', async () => {
    process.env.KUBECONFIG = path.join(dir, 'kind');
    const t = await selectTarget(project, 'ada', {});
    expect(t).toMatchObject({ kind: 'kind', namespace: 'shop-ada', where: 'kind-dev/shop-ada' });
    expect(t.imageRef('shop/web', 'abc')).toBe('shop/web:abc');
  });

  it('needs a registry for any other context, and names the fix', async () => {
    process.env.KUBECONFIG = path.join(dir, 'staging');
    const err = await selectTarget(project, 'ada', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).hint).toMatch(/DEVLOOP_REGISTRY/);
    // Reading what runs, or removing it, delivers no image: no registry needed.
    expect(await selectTarget(project, 'ada', { needsRegistry: false })).toMatchObject({ kind: 'remote', describe: { namespace: 'shop-ada' } });
    process.env.DEVLOOP_REGISTRY = '127.0.0.1:5000';
    const t = await selectTarget({ ...project, registry: 'ignored.example' }, 'ada', { namespace: 'mine' });
    expect(t).toMatchObject({ kind: 'remote', describe: { registry: '127.0.0.1:5000', namespace: 'mine' } });
    expect(t.imageRef('shop/web', 'abc')).toBe('127.0.0.1:5000/shop/web:abc');
    delete process.env.DEVLOOP_REGISTRY;
  });

  it('switches context on request and rejects unknown ones', async () => {
    process.env.KUBECONFIG = path.join(dir, 'staging');
    expect((await selectTarget(project, 'ada', { context: 'kind-dev' })).kind).toBe('kind');
    await expect(selectTarget(project, 'ada', { context: 'prod' })).rejects.toThrow('kube context "prod" does not exist');
  });

  it('keeps namespaces valid', () => {
    expect(developerNamespace('Shop', 'Ada.Lovelace')).toBe('shop-ada-lovelace');
  });
});
