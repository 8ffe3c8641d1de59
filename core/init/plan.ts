import { repositoryOf } from '../build/registry.js';
import { discoverServices, GENERIC_DIRS, projectNameFor } from '../config/discover.js';
import { isWithin } from '../config/paths.js';
import type { WrittenService } from '../config/write.js';
import { attributeObjects } from '../deploy/attribute.js';
import { findManifestTrees, imageBaseName, workloadImages, type ManifestTree } from './manifests.js';

/** One service as `devloop init` writes it (devloop.yaml's entry). Absent fields take devloop's defaults. */
export type InitService = WrittenService;

/** What `devloop init` writes, and what it says about how it got there. */
export interface InitPlan {
  name: string;
  /** The project's manifests tree, when one tree renders several services. */
  manifests?: string;
  services: InitService[];
  /** What was matched, one line each. */
  matched: string[];
  /** Objects of the project tree that belong to no single service: deployed as they are, with the first service. */
  shared: string[];
  /** What could not be matched or carried over, one line each. */
  unmatched: string[];
}

/** The image pattern devloop.yaml accepts (a repository without registry and tag). */
const IMAGE_NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;

const SOURCE_RANK: Record<string, number> = { kustomize: 0, helm: 1, yaml: 2 };

/** The nearest directory of `dir` that is not a generic name (src, app, docker, …): what people call the service. */
export function meaningfulName(dir: string): string | undefined {
  const parts = dir.split('/').filter((p) => p !== '' && !GENERIC_DIRS.has(p.toLowerCase()));
  return parts.at(-1)?.toLowerCase();
}

/**
 * `devloop init` without a skaffold.yaml: services from the Dockerfiles (named as people name them), the manifests
 * trees of the repository rendered as `up` renders them, and each service matched to the workloads whose image has
 * the service's name (or its directory's). A tree inside a service's directory that deploys only it becomes that
 * service's `manifests:`; for the rest, the tree that deploys most of them becomes the project's `manifests:` (or,
 * when it is a directory of one file per service, each service gets its file).
 */
export async function planFromRepository(root: string): Promise<InitPlan> {
  const name = projectNameFor(root);
  const found = await discoverServices(root, name);
  const services: InitService[] = found.map((s) => ({ name: s.name, path: s.path }));
  const trees = await findManifestTrees(root, name);
  return planManifests(name, services, trees);
}

/** The manifests part of init, given the services and the rendered trees. Pure. */
export function planManifests(name: string, services: InitService[], trees: ManifestTree[]): InitPlan {
  const matched: string[] = [];
  const unmatched: string[] = [];
  const shared: string[] = [];
  const plan: InitPlan = { name, services, matched, shared, unmatched };
  for (const t of trees) if (t.error) unmatched.push(`${t.path} (${t.source}) does not render: ${t.error}`);

  // Which service an image stands for: its base name is the service's name or its directory's.
  const byKey = new Map<string, InitService[]>();
  for (const s of services) {
    for (const key of new Set([s.name, meaningfulName(s.path) ?? s.name, ...(s.image ? [imageBaseName(s.image)] : [])])) byKey.set(key, [...(byKey.get(key) ?? []), s]);
  }
  const serviceFor = (image: string): InitService | undefined => {
    if (services.some((s) => s.image && repositoryOf(s.image) === repositoryOf(image))) return services.find((s) => s.image && repositoryOf(s.image) === repositoryOf(image));
    const candidates = byKey.get(imageBaseName(image).toLowerCase());
    return candidates?.length === 1 ? candidates[0] : undefined;
  };
  /** Per tree: service → the image the tree runs it as. */
  const matches = new Map<ManifestTree, Map<InitService, string>>();
  for (const t of trees) {
    const m = new Map<InitService, string>();
    for (const w of workloadImages(t.objects ?? [])) {
      for (const image of w.images) {
        const s = serviceFor(image);
        if (s && !m.has(s)) m.set(s, image);
      }
    }
    matches.set(t, m);
  }
  const imageFor = (s: InitService, t: ManifestTree) => {
    const image = matches.get(t)?.get(s);
    if (image && !s.image) {
      const repo = repositoryOf(image);
      if (IMAGE_NAME.test(repo) && !services.some((o) => o.image === repo)) s.image = repo;
    }
  };
  const describeTree = (t: ManifestTree) => `${t.path || '.'} (${t.source === 'yaml' ? 'YAML' : t.source})`;

  // A service's own tree: inside its directory (or its named directory: src/cart for src/cart/src), deploying only it.
  const used = new Set<ManifestTree>();
  for (const s of services) {
    const homes = [s.path, s.path.split('/').slice(0, s.path.split('/').lastIndexOf(meaningfulName(s.path) ?? '') + 1).join('/')].filter((d) => d !== '');
    const own = trees.find((t) => !used.has(t) && homes.some((h) => isWithin(t.path, h)) && matches.get(t)!.size === 1 && matches.get(t)!.has(s));
    if (!own) continue;
    used.add(own);
    s.manifests = own.path;
    imageFor(s, own);
    matched.push(`${s.name}: manifests ${describeTree(own)}, image ${s.image ?? '(default)'}`);
  }

  // The rest from one project tree: the one that deploys most of them.
  const rest = () => services.filter((s) => s.manifests === undefined && !(plan.manifests !== undefined && matches.get(treeAt(plan.manifests))?.has(s)));
  const treeAt = (p: string) => trees.find((t) => t.path === p)!;
  const ranked = trees
    .filter((t) => !used.has(t) && !t.error)
    .map((t) => ({ t, count: rest().filter((s) => matches.get(t)!.has(s)).length }))
    // A tree that deploys one service only is that service's own (below); one tree for several is the project's.
    .filter((r) => r.count > 1)
    .sort((a, b) => b.count - a.count || SOURCE_RANK[a.t.source]! - SOURCE_RANK[b.t.source]! || Number(!!a.t.files) - Number(!!b.t.files) || (a.t.path < b.t.path ? -1 : 1));
  const best = ranked[0]?.t;
  if (best) {
    used.add(best);
    const deployed = [...matches.get(best)!.keys()].filter((s) => s.manifests === undefined);
    const perFile = best.files && best.files.every((f) => services.filter((s) => workloadImages(f.objects).some((w) => w.images.some((i) => serviceFor(i) === s))).length === 1);
    if (perFile && best.files) {
      for (const f of best.files) {
        const s = services.find((x) => workloadImages(f.objects).some((w) => w.images.some((i) => serviceFor(i) === x)))!;
        if (s.manifests !== undefined) continue;
        s.manifests = f.path;
        imageFor(s, best);
        matched.push(`${s.name}: manifests ${f.path} (YAML), image ${s.image ?? '(default)'}`);
      }
    } else {
      plan.manifests = best.path;
      for (const s of deployed) imageFor(s, best);
      const attribution = attributeObjects(best.objects ?? [], services.map((s) => ({ name: s.name, image: s.image ?? `${name}/${s.name}` })));
      matched.push(`project manifests ${describeTree(best)}: ${best.objects?.length ?? 0} objects for ${deployed.length} service${deployed.length === 1 ? '' : 's'}`);
      for (const s of deployed) {
        const objects = (attribution.byService.get(s.name) ?? []).map((o) => `${o.kind}/${o.metadata.name}`);
        matched.push(`${s.name}: image ${s.image ?? '(default)'} ← ${objects.join(', ') || 'no objects'}`);
      }
      const firstUser = services.find((s) => s.manifests === undefined);
      for (const s of services.filter((x) => x.manifests !== undefined)) {
        for (const o of attribution.byService.get(s.name) ?? []) unmatched.push(`${o.kind}/${o.metadata.name} in ${best.path || '.'} is left out: ${s.name} deploys from ${s.manifests}`);
      }
      for (const n of attribution.notes.filter((n) => n.service === null)) {
        shared.push(`${n.object} ${n.reason} (with ${firstUser?.name ?? 'the first service'})`);
      }
    }
  }
  // A further tree that deploys exactly one of the services left is that service's.
  for (const t of trees.filter((x) => !used.has(x) && !x.error)) {
    const left = rest().filter((s) => matches.get(t)!.has(s));
    if (left.length === 1 && matches.get(t)!.size === 1) {
      used.add(t);
      left[0]!.manifests = t.path;
      imageFor(left[0]!, t);
      matched.push(`${left[0]!.name}: manifests ${describeTree(t)}, image ${left[0]!.image ?? '(default)'}`);
    }
  }
  // Services the manifests do not deploy: still built; the image as another tree names it, if one does.
  for (const s of rest()) {
    for (const t of trees) imageFor(s, t);
    unmatched.push(`${s.name}: no workload in the manifests runs its image (${s.image ?? `${name}/${s.name}`}); it is built but not deployed`);
  }
  for (const t of trees.filter((x) => !used.has(x) && !x.error && matches.get(x)!.size > 0)) {
    unmatched.push(`${describeTree(t)} is not used (it deploys ${[...matches.get(t)!.keys()].map((s) => s.name).join(', ')} too)`);
  }
  return plan;
}
