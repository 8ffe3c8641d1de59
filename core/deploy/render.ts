import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ExternalError, UserError, UserErrors } from '../errors.js';
import { exists } from '../fs.js';

/** A Kubernetes object as rendered: plain data, before devloop's transform. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

export type ManifestSource = 'yaml' | 'kustomize' | 'helm';

export interface RenderResult {
  source: ManifestSource;
  objects: K8sObject[];
}

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];


/** Which renderer a manifests path needs: a kustomization, a Helm chart, or plain YAML file(s). */
export async function detectSource(abs: string): Promise<ManifestSource> {
  const st = await stat(abs).catch(() => undefined);
  if (!st) throw new UserError(`manifests path ${abs} does not exist`, { hint: 'fix `manifests:` in devloop.yaml' });
  if (st.isFile()) return 'yaml';
  for (const f of KUSTOMIZATION_FILES) if (await exists(path.join(abs, f))) return 'kustomize';
  if (await exists(path.join(abs, 'Chart.yaml'))) return 'helm';
  return 'yaml';
}

let yamlLoad: Promise<typeof import('yaml')> | undefined;

/** The build's one-module bundle of `yaml` (scripts/bundle-vendor.mjs; package.json "imports"), else the package. */
function yamlLibrary(): Promise<typeof import('yaml')> {
  const bundled = '#yaml'; // a variable: resolved at run time only (sources run by the test runner have no build)
  yamlLoad ??= (import(bundled) as Promise<typeof import('yaml')>).catch((err: unknown) => {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_IMPORT_NOT_DEFINED') return import('yaml');
    throw err;
  });
  return yamlLoad;
}

/** Parses a multi-document YAML text into objects; syntax errors and non-objects are reported as file:line:col. */
export async function parseManifests(text: string, file: string): Promise<K8sObject[]> {
  const { parseAllDocuments, LineCounter } = await yamlLibrary();
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter });
  const problems: string[] = [];
  const objects: K8sObject[] = [];
  const docList = Array.isArray(docs) ? docs : [docs];
  for (const doc of docList) {
    for (const e of doc.errors) {
      const pos = lineCounter.linePos(e.pos[0]);
      // The parser appends its own "at line L, column C:"; the prefix already says where.
      problems.push(`${file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
    }
    if (doc.errors.length) continue;
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    const start = doc.contents?.range?.[0] ?? 0;
    const pos = lineCounter.linePos(start);
    const where = `${file}:${pos.line}:${pos.col}`;
    const items = isList(value) ? (value as { items: unknown[] }).items : [value];
    for (const item of items) {
      const o = item as Partial<K8sObject> | null;
      if (!o || typeof o !== 'object' || typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') {
        problems.push(`${where}: expected a Kubernetes object with apiVersion, kind and metadata.name`);
        continue;
      }
      objects.push(o as K8sObject);
    }
  }
  if (problems.length) throw new UserErrors(problems, { hint: 'fix the manifest; nothing was applied' });
  return objects;
}

function isList(v: unknown): boolean {
  const o = v as { kind?: unknown; items?: unknown };
  return typeof o === 'object' && o !== null && typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items);
}

async function runTool(tool: string, args: string[], purpose: string, hint: string): Promise<string> {
  const { execa } = await import('execa');
  try {
    const { stdout } = await execa(tool, args, { stripFinalNewline: false });
    return stdout;
  } catch (err) {
    const e = err as { code?: string; stderr?: string; shortMessage?: string };
    if (e.code === 'ENOENT') throw new UserError(`${tool} is needed to render ${purpose} but was not found on PATH`, { hint });
    // The tool ran and rejected the input: that is the user's manifest to fix, said in the tool's own words.
    const exitCode = (err as { exitCode?: number }).exitCode;
    const output = (e.stderr ?? e.shortMessage ?? '').trim().replace(/^error: /, '');
    if (typeof exitCode === 'number' && exitCode !== 0) {
      throw new UserError(`${purpose} does not render (${tool} exited ${exitCode}): ${output}`, { hint: 'fix it; nothing was built or applied', cause: err });
    }
    throw new ExternalError(`${tool} ${args.join(' ')} failed: ${output}`, { cause: err });
  }
}

/**
 * Renders a service's manifests: plain YAML (a file, or every .yaml/.yml/.json file in a directory, sorted),
 * a kustomization via `kubectl kustomize`, or a Helm chart via `helm template`.
 */
export async function renderManifests(
  root: string,
  manifests: string,
  opts: { release: string; namespace: string },
): Promise<RenderResult> {
  const abs = path.resolve(root, manifests);
  const source = await detectSource(abs);
  if (source === 'kustomize') {
    const out = await runTool('kubectl', ['kustomize', abs], `the kustomization ${manifests}`, 'install kubectl (it includes kustomize) and put it on PATH');
    return { source, objects: await parseManifests(out, `kubectl kustomize ${manifests}`) };
  }
  if (source === 'helm') {
    const out = await runTool(
      'helm',
      ['template', opts.release, abs, '--namespace', opts.namespace],
      `the Helm chart ${manifests}`,
      'install helm 3 (https://helm.sh/docs/intro/install/) and put it on PATH',
    );
    return { source, objects: await parseManifests(out, `helm template ${manifests}`) };
  }
  const st = await stat(abs);
  const files = st.isFile()
    ? [abs]
    : (await readdir(abs)).filter((f) => /\.(ya?ml|json)$/.test(f)).sort().map((f) => path.join(abs, f));
  const objects: K8sObject[] = [];
  const problems: string[] = [];
  for (const f of files) {
    const rel = path.relative(root, f).split(path.sep).join('/');
    try {
      objects.push(...(await parseManifests(await readFile(f, 'utf8'), rel)));
    } catch (err) {
      if (err instanceof UserErrors) problems.push(...err.problems);
      else throw err;
    }
  }
  if (problems.length) throw new UserErrors(problems, { hint: 'fix the manifest; nothing was applied' });
  return { source, objects };
}
