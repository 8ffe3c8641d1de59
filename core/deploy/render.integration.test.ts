import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError, UserErrors } from '../errors.js';
import { renderManifests } from './render.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'devloop-render-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  a: "1"\n`;

describe('renderManifests', () => {
  it('reads every YAML file of a plain directory in order, with multiple documents and Lists', async () => {
    await mkdir(path.join(root, 'k8s'));
    await writeFile(path.join(root, 'k8s', 'b.yaml'), `${cm('b1')}---\n${cm('b2')}---\n`);
    await writeFile(path.join(root, 'k8s', 'a.yml'), `apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n`);
    await writeFile(path.join(root, 'k8s', 'notes.txt'), 'not yaml: [');
    const r = await renderManifests(root, 'k8s', { release: 's', namespace: 'ns' });
    expect(r.source).toBe('yaml');
    expect(r.objects.map((o) => o.metadata.name)).toEqual(['a', 'b1', 'b2']);
  });

  it('reports YAML errors and non-objects as file:line:col', async () => {
    await writeFile(path.join(root, 'bad.yaml'), `${cm('ok')}---\nkind: ConfigMap\nmetadata: {name: x}\n---\na: [1, 2\n`);
    const err = await renderManifests(root, 'bad.yaml', { release: 's', namespace: 'ns' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserErrors);
    const problems = (err as UserErrors).problems;
    expect(problems[0]).toBe('bad.yaml:8:1: expected a Kubernetes object with apiVersion, kind and metadata.name');
    expect(problems[1]).toMatch(/^bad\.yaml:12:1: Flow sequence/);
  });

  it('renders a kustomization with kubectl kustomize', async () => {
    await mkdir(path.join(root, 'kz'));
    await writeFile(path.join(root, 'kz', 'cm.yaml'), cm('base'));
    await writeFile(path.join(root, 'kz', 'kustomization.yaml'), 'resources: [cm.yaml]\nnamePrefix: dev-\n');
    const r = await renderManifests(root, 'kz', { release: 's', namespace: 'ns' });
    expect(r.source).toBe('kustomize');
    expect(r.objects.map((o) => o.metadata.name)).toEqual(['dev-base']);
  });

  it('reports a kustomization that does not build as the user\'s problem, in kustomize\'s words', async () => {
    await mkdir(path.join(root, 'kz'));
    await writeFile(path.join(root, 'kz', 'kustomization.yaml'), 'resources: [missing.yaml]\n');
    const err = await renderManifests(root, 'kz', { release: 's', namespace: 'ns' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/^the kustomization kz does not render \(kubectl exited 1\): accumulating resources: .*missing\.yaml/);
  });

  it('renders a Helm chart with helm template, with the release name and namespace', async () => {
    await mkdir(path.join(root, 'chart', 'templates'), { recursive: true });
    await writeFile(path.join(root, 'chart', 'Chart.yaml'), 'apiVersion: v2\nname: c\nversion: 0.1.0\n');
    await writeFile(path.join(root, 'chart', 'values.yaml'), 'greeting: hello\n');
    await writeFile(
      path.join(root, 'chart', 'templates', 'cm.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n  namespace: {{ .Release.Namespace }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n',
    );
    const r = await renderManifests(root, 'chart', { release: 'orders', namespace: 'shop-dev' }).catch((err: unknown) => {
      throw new Error(`helm template failed (helm comes with \`npm run infra:up\`): ${String(err)}`);
    });
    expect(r.source).toBe('helm');
    expect(r.objects).toHaveLength(1);
    expect(r.objects[0]!.metadata).toMatchObject({ name: 'orders-config', namespace: 'shop-dev' });
    expect((r.objects[0] as unknown as { data: Record<string, string> }).data.greeting).toBe('hello');
  });

  it('says clearly when the tool a chart needs is missing', async () => {
    await mkdir(path.join(root, 'chart'));
    await writeFile(path.join(root, 'chart', 'Chart.yaml'), 'apiVersion: v2\nname: c\nversion: 0.1.0\n');
    const savedPath = process.env.PATH;
    process.env.PATH = path.join(root, 'empty-bin');
    try {
      const err = await renderManifests(root, 'chart', { release: 's', namespace: 'ns' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).message).toBe('helm is needed to render the Helm chart chart but was not found on PATH');
      expect((err as UserError).hint).toMatch(/install helm/);
    } finally {
      process.env.PATH = savedPath;
    }
  });
});
