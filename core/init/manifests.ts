import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { repositoryOf } from '../build/registry.js';
import { isWithin } from '../config/paths.js';
import { imagesOf, podTemplateOf } from '../deploy/attribute.js';
import { renderManifests, type K8sObject, type ManifestSource } from '../deploy/render.js';
import { oneLine } from '../errors.js';
import { GitRepo, splitNul } from '../workspace/git.js';

/** Directories never searched for manifests: dependencies, vendored code, test data. */
const SKIPPED_DIRS = new Set(['node_modules', 'vendor', 'testdata', '.git', '.devloop', '.github']);
const KUSTOMIZATION = /(^|\/)(kustomization\.ya?ml|Kustomization)$/;

/** A manifests tree in the repository, as `up` would render it. */
export interface ManifestTree {
  /** Repo-relative: a directory (kustomization, chart, YAML files) or one file. */
  path: string;
  source: ManifestSource;
  /** The rendered objects, or why it does not render. */
  objects?: K8sObject[];
  error?: string;
  /** For a YAML directory: each file's objects, to tell whether the files are per service. */
  files?: { path: string; objects: K8sObject[] }[];
}

/**
 * Every manifests tree of the repository, rendered: kustomizations that no other kustomization includes, Helm charts
 * that are not another chart's subchart, and directories of plain YAML that hold Kubernetes objects (outside those).
 * Files are listed through git (tracked, or untracked and not ignored). Charts are rendered as release `release`, as
 * `up` renders a project tree (the project's name).
 */
export async function findManifestTrees(root: string, release: string): Promise<ManifestTree[]> {
  const out = await new GitRepo(root).output(['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ':(glob)**/*.yaml', ':(glob)**/*.yml', ':(glob)**/Kustomization', ':(glob)**/*.json']);
  const files = splitNul(out).filter((f) => !f.split('/').some((p) => SKIPPED_DIRS.has(p)));
  const kustomizations = files.filter((f) => KUSTOMIZATION.test(f)).map((f) => dirOf(f));
  const charts = files.filter((f) => path.posix.basename(f) === 'Chart.yaml').map((f) => dirOf(f));

  // A kustomization that another one includes (resources, bases, components) is part of that one.
  const included = new Set<string>();
  for (const dir of kustomizations) {
    const file = files.find((f) => KUSTOMIZATION.test(f) && dirOf(f) === dir)!;
    const k = await readYaml(path.join(root, file));
    const refs = ['resources', 'bases', 'components'].flatMap((key) => (Array.isArray(k?.[key]) ? (k[key] as unknown[]) : []));
    for (const r of refs) if (typeof r === 'string' && !r.includes('://')) included.add(path.posix.normalize(path.posix.join(dir, r)).replace(/^\.$/, ''));
  }
  const trees: ManifestTree[] = [];
  for (const dir of kustomizations) if (!included.has(dir)) trees.push({ path: dir, source: 'kustomize' });
  for (const dir of charts) if (!charts.some((c) => c !== dir && isWithin(dir, `${c === '' ? '' : `${c}/`}charts`))) trees.push({ path: dir, source: 'helm' });

  // Plain YAML outside kustomizations and charts, grouped by directory.
  const owned = [...kustomizations, ...charts];
  const byDir = new Map<string, string[]>();
  for (const f of files) {
    if (!/\.(ya?ml|json)$/.test(f) || KUSTOMIZATION.test(f)) continue;
    if (owned.some((d) => isWithin(f, d))) continue;
    const base = path.posix.basename(f);
    if (/^(devloop|skaffold|docker-compose|compose|\.gitlab-ci|package|tsconfig|package-lock|cloudbuild)\b/.test(base)) continue;
    byDir.set(dirOf(f), [...(byDir.get(dirOf(f)) ?? []), f]);
  }
  for (const [dir, list] of byDir) {
    const perFile: { path: string; objects: K8sObject[] }[] = [];
    for (const f of list.sort()) {
      const objects = await parseKubernetesFile(root, f);
      if (objects.length > 0) perFile.push({ path: f, objects });
    }
    if (perFile.length === 0) continue;
    // A directory renders every YAML file in it; when some are not Kubernetes objects, only the files that are can be used.
    if (perFile.length === list.length && dir !== '') trees.push({ path: dir, source: 'yaml', files: perFile, objects: perFile.flatMap((p) => p.objects) });
    else for (const p of perFile) trees.push({ path: p.path, source: 'yaml', objects: p.objects });
  }

  await Promise.all(
    trees
      .filter((t) => t.objects === undefined)
      .map(async (t) => {
        try {
          t.objects = (await renderManifests(root, t.path, { release, namespace: 'default' })).objects;
        } catch (err) {
          t.error = oneLine(err);
        }
      }),
  );
  return trees.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The Kubernetes objects of one YAML file, or none when it is something else (a values file, a CI config). */
async function parseKubernetesFile(root: string, file: string): Promise<K8sObject[]> {
  let text: string;
  try {
    text = await readFile(path.join(root, file), 'utf8');
  } catch {
    // Unreadable (deleted since git listed it): not a manifest init can use.
    return [];
  }
  if (!/^kind:/m.test(text) || !/^apiVersion:/m.test(text)) return [];
  const { parseAllDocuments } = await import('yaml');
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) return [];
    const o = doc.toJS() as Partial<K8sObject> | null;
    if (o && typeof o.apiVersion === 'string' && typeof o.kind === 'string' && typeof o.metadata?.name === 'string') objects.push(o as K8sObject);
  }
  return objects;
}

async function readYaml(file: string): Promise<Record<string, unknown> | undefined> {
  try {
    const v = parse(await readFile(file, 'utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    // A kustomization that does not parse includes nothing; rendering it reports the problem.
    return undefined;
  }
}

const dirOf = (f: string) => {
  const d = path.posix.dirname(f);
  return d === '.' ? '' : d;
};

/** The workloads of a rendered tree with the image repositories their pods run. */
export function workloadImages(objects: ReadonlyArray<K8sObject>): { object: K8sObject; images: string[] }[] {
  const out: { object: K8sObject; images: string[] }[] = [];
  for (const o of objects) {
    const t = podTemplateOf(o);
    if (t) out.push({ object: o, images: imagesOf(t.spec) });
  }
  return out;
}

/** The last path segment of an image's repository: `gcr.io/demo/cartservice:v1` → cartservice. */
export const imageBaseName = (image: string): string => repositoryOf(image).split('/').pop()!;
