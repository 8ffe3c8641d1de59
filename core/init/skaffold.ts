import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import { isMap, isScalar, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { repositoryOf } from '../build/registry.js';
import { projectNameFor } from '../config/discover.js';
import { formatKeyPath } from '../config/load.js';
import { displayPath, joinRel, normaliseRelPath, toDnsLabel } from '../config/paths.js';
import type { SyncRule } from '../config/types.js';
import { attributeObjects } from '../deploy/attribute.js';
import { detectSource, renderManifests } from '../deploy/render.js';
import { oneLine, UserError } from '../errors.js';
import type { ManifestTree } from './manifests.js';
import { imageBaseName } from './manifests.js';
import { planManifests, type InitPlan, type InitService } from './plan.js';

/** The builders devloop does not have: artifacts built with them are listed, not carried over. */
const OTHER_BUILDERS = ['custom', 'bazel', 'jib', 'buildpacks', 'ko', 'kaniko'];
/** Top-level sections of a Skaffold config with no devloop equivalent. */
const NOT_CARRIED = ['test', 'verify', 'customActions', 'resourceSelector'];

interface Position {
  file: string;
  doc: Document;
  lines: LineCounter;
}

/**
 * `devloop init` from a skaffold.yaml (schemas skaffold/v2* to v4*): every config of the file is used, as
 * `skaffold run` without profiles would. Artifacts become services (image, context, dockerfile, buildArgs, target,
 * sync.manual); manifests (rawYaml, kustomize paths, Helm releases; v2's deploy.kubectl/kustomize/helm) are rendered
 * and mapped to the services as `init` maps the repository's own (one tree: the project's `manifests:`, one tree
 * per service: the service's); port-forwards go to the service whose objects they name. Whatever has no devloop
 * equivalent is listed with the line it came from.
 */
export async function planFromSkaffold(root: string, file: string): Promise<InitPlan & { configs: string[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${displayPath(file)}: ${(err as Error).message}`, { hint: 'pass the path of a skaffold.yaml: devloop init --from skaffold.yaml' });
  }
  const label = labelFor(root, file);
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    if (doc.errors.length) {
      const pos = lines.linePos(doc.errors[0]!.pos[0]);
      throw new UserError(`${label}:${pos.line}:${pos.col} ${doc.errors[0]!.message.split('\n')[0]}`, { hint: 'fix the YAML of skaffold.yaml, then run devloop init again' });
    }
  }
  const base = path.dirname(file);
  const rel = (p: string) => {
    const n = normaliseRelPath(path.relative(root, path.resolve(base, p)).split(path.sep).join('/'));
    return 'error' in n ? undefined : n.path;
  };
  const at = (pos: Position, keyPath: (string | number)[]) => {
    // The key's line for a mapping entry (`hooks:`), the item's for a list entry.
    const parent = keyPath.length > 1 ? pos.doc.getIn(keyPath.slice(0, -1), true) : pos.doc.contents;
    const last = keyPath.at(-1);
    const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === last) : undefined;
    const node = (pair && isScalar(pair.key) ? pair.key : pos.doc.getIn(keyPath, true)) as { range?: [number, number, number] } | undefined;
    const line = node?.range ? lines.linePos(node.range[0]).line : 1;
    return `${label}:${line}`;
  };
  const notes: { line: number; text: string }[] = [];
  const note = (pos: Position, keyPath: (string | number)[], message: string) => {
    const where = at(pos, keyPath);
    notes.push({ line: Number(where.slice(where.lastIndexOf(':') + 1)), text: `${where} ${formatKeyPath(keyPath)}: ${message}` });
  };

  const services: InitService[] = [];
  const configs: string[] = [];
  const manifests: { path: string; pos: Position; keyPath: (string | number)[] }[] = [];
  const forwards: { type: string; name: string; port: number; localPort: number; pos: Position; keyPath: (string | number)[] }[] = [];
  const usedNames = new Set<string>();

  for (const [d, doc] of list.entries()) {
    const pos: Position = { file, doc, lines };
    const config = doc.toJS() as Record<string, any> | null;
    if (!config || typeof config !== 'object') continue;
    const api = String(config.apiVersion ?? '');
    if (!/^skaffold\/v[2-9]/.test(api)) {
      throw new UserError(`${at(pos, ['apiVersion'])} apiVersion "${api}" is not a Skaffold v2+ schema`, {
        hint: 'upgrade it with `skaffold fix` (devloop reads skaffold/v2beta* to skaffold/v4beta*)',
      });
    }
    configs.push(typeof config.metadata?.name === 'string' ? config.metadata.name : `config ${d + 1}`);
    if (Array.isArray(config.requires) && config.requires.length) note(pos, ['requires'], 'configs from other files are not read; run devloop init --from on each of them, or list their services here');
    if (Array.isArray(config.profiles)) {
      config.profiles.forEach((p: { name?: string }, i: number) => note(pos, ['profiles', i], `profile "${p?.name ?? i}" is not carried over (devloop uses the configuration without profiles)`));
    }
    for (const key of NOT_CARRIED) if (config[key] !== undefined) note(pos, [key], 'has no devloop equivalent; not carried over');
    if (config.build?.googleCloudBuild || config.build?.cluster) note(pos, ['build', config.build.googleCloudBuild ? 'googleCloudBuild' : 'cluster'], 'devloop builds with the local Docker engine');
    if (config.build?.tagPolicy) note(pos, ['build', 'tagPolicy'], 'devloop tags images by content version');

    const artifacts = Array.isArray(config.build?.artifacts) ? (config.build.artifacts as Record<string, any>[]) : [];
    for (const [i, a] of artifacts.entries()) {
      const k = ['build', 'artifacts', i];
      if (typeof a?.image !== 'string') continue;
      const builder = OTHER_BUILDERS.find((b) => a[b] !== undefined);
      if (builder) {
        note(pos, [...k, builder], `${a.image} is built with ${builder}; devloop builds Dockerfiles only, so it is not carried over`);
        continue;
      }
      const context = rel(typeof a.context === 'string' ? a.context : '.');
      if (context === undefined) {
        note(pos, [...k, 'context'], `${a.image}: the context is outside the repository; not carried over`);
        continue;
      }
      let name = toDnsLabel(imageBaseName(a.image)) || 'service';
      for (let n = 2; usedNames.has(name); n++) name = `${toDnsLabel(imageBaseName(a.image)).slice(0, 60)}-${n}`;
      usedNames.add(name);
      const s: InitService = { name, path: context };
      const repo = repositoryOf(a.image);
      if (/^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/.test(repo)) s.image = repo;
      const docker = (a.docker ?? {}) as Record<string, any>;
      if (typeof docker.dockerfile === 'string') s.dockerfile = docker.dockerfile;
      if (typeof docker.target === 'string') s.target = docker.target;
      if (docker.buildArgs && typeof docker.buildArgs === 'object') {
        const args: Record<string, string> = {};
        for (const [key, v] of Object.entries(docker.buildArgs as Record<string, unknown>)) {
          if (v === null || v === undefined) note(pos, [...k, 'docker', 'buildArgs', key], 'a build arg without a value (taken from the environment) is not carried over');
          else if (typeof v === 'string' && v.includes('{{')) note(pos, [...k, 'docker', 'buildArgs', key], 'a templated build arg is not carried over');
          else args[key] = String(v);
        }
        if (Object.keys(args).length) s.buildArgs = args;
      }
      for (const key of ['cacheFrom', 'network', 'secrets', 'ssh', 'noCache', 'squash', 'addHost', 'cliFlags']) {
        if (docker[key] !== undefined) note(pos, [...k, 'docker', key], 'not carried over');
      }
      if (a.hooks !== undefined) note(pos, [...k, 'hooks'], 'hooks are not carried over');
      if (a.requires !== undefined) note(pos, [...k, 'requires'], `artifact dependencies become dependsOn only when devloop finds them (go.mod, package.json); add dependsOn by hand`);
      if (a.platforms !== undefined) note(pos, [...k, 'platforms'], 'not carried over');
      const sync = (a.sync ?? {}) as Record<string, any>;
      if (sync.infer !== undefined) note(pos, [...k, 'sync', 'infer'], 'inferred sync is not carried over; write devloop sync rules (from, to)');
      if (sync.auto !== undefined) note(pos, [...k, 'sync', 'auto'], 'auto sync is not carried over');
      if (Array.isArray(sync.manual)) {
        const rules: SyncRule[] = [];
        const workdir = await dockerWorkdir(root, s);
        for (const [j, r] of (sync.manual as { src?: string; dest?: string; strip?: string }[]).entries()) {
          const converted = syncRule(r, workdir);
          if ('rule' in converted) rules.push(converted.rule);
          else note(pos, [...k, 'sync', 'manual', j], converted.problem);
        }
        if (rules.length) s.sync = rules;
      }
      services.push(s);
    }

    // Manifests: v3/v4 `manifests:`, v2 `deploy.kubectl/kustomize/helm` (v4 `deploy.helm` as well).
    const m = (config.manifests ?? {}) as Record<string, any>;
    const deploy = (config.deploy ?? {}) as Record<string, any>;
    const raw: [unknown, (string | number)[]][] = [
      [m.rawYaml, ['manifests', 'rawYaml']],
      [deploy.kubectl?.manifests, ['deploy', 'kubectl', 'manifests']],
    ];
    for (const [globs, k] of raw) {
      if (!Array.isArray(globs)) continue;
      for (const [j, g] of globs.entries()) {
        const p = typeof g === 'string' ? globRoot(g) : undefined;
        const r = p === undefined ? undefined : rel(p);
        if (r === undefined) note(pos, [...k, j], 'not a path inside the repository; not carried over');
        else manifests.push({ path: r, pos, keyPath: [...k, j] });
      }
    }
    for (const [paths, k] of [
      [m.kustomize?.paths, ['manifests', 'kustomize', 'paths']],
      [deploy.kustomize?.paths, ['deploy', 'kustomize', 'paths']],
    ] as [unknown, string[]][]) {
      if (!Array.isArray(paths)) continue;
      for (const [j, p] of paths.entries()) {
        const r = typeof p === 'string' ? rel(p) : undefined;
        if (r === undefined) note(pos, [...k, j], 'not a path inside the repository; not carried over');
        else manifests.push({ path: r, pos, keyPath: [...k, j] });
      }
    }
    for (const [releases, k] of [
      [m.helm?.releases, ['manifests', 'helm', 'releases']],
      [deploy.helm?.releases, ['deploy', 'helm', 'releases']],
    ] as [unknown, string[]][]) {
      if (!Array.isArray(releases)) continue;
      for (const [j, r] of (releases as Record<string, unknown>[]).entries()) {
        const chart = typeof r?.chartPath === 'string' ? rel(r.chartPath) : undefined;
        if (chart === undefined) {
          note(pos, [...k, j], `release ${String(r?.name ?? j)}: only local charts (chartPath) are carried over`);
          continue;
        }
        manifests.push({ path: chart, pos, keyPath: [...k, j] });
        if (typeof r.name === 'string' && r.name !== projectNameFor(root)) {
          note(pos, [...k, j, 'name'], `release "${r.name}": devloop names the release after the project ("${projectNameFor(root)}") when the chart deploys several services, else after the service`);
        }
        for (const key of ['valuesFiles', 'setValues', 'setValueTemplates', 'artifactOverrides', 'overrides', 'setFiles']) {
          if (r[key] !== undefined) {
            note(pos, [...k, j, key], key === 'artifactOverrides' || key === 'setValueTemplates'
              ? 'not carried over: devloop renders the chart with its own values and replaces the images it builds by repository'
              : 'not carried over: devloop renders the chart with its own values (helm template)');
          }
        }
      }
    }
    for (const [key, value] of Object.entries(deploy)) {
      if (!['kubectl', 'kustomize', 'helm', 'statusCheck', 'statusCheckDeadlineSeconds', 'kubeContext', 'logs', 'tolerateFailuresUntilDeadline'].includes(key) && value !== undefined) {
        note(pos, ['deploy', key], 'has no devloop equivalent; not carried over');
      }
      if (value && typeof value === 'object' && (value as Record<string, unknown>).hooks !== undefined) note(pos, ['deploy', key, 'hooks'], 'hooks are not carried over');
    }
    if (m.hooks !== undefined) note(pos, ['manifests', 'hooks'], 'hooks are not carried over');
    if (m.kpt !== undefined) note(pos, ['manifests', 'kpt'], 'kpt is not carried over');

    if (Array.isArray(config.portForward)) {
      for (const [j, f] of (config.portForward as Record<string, unknown>[]).entries()) {
        const port = typeof f?.port === 'number' ? f.port : Number(f?.port);
        if (!f || typeof f.resourceName !== 'string' || !Number.isInteger(port)) {
          note(pos, ['portForward', j], 'needs resourceName and a numeric port; not carried over');
          continue;
        }
        forwards.push({
          type: String(f.resourceType ?? 'service').toLowerCase(),
          name: f.resourceName,
          port,
          localPort: typeof f.localPort === 'number' ? f.localPort : port,
          pos,
          keyPath: ['portForward', j],
        });
      }
    }
  }

  // Render what the configs deploy, as up would, and map it to the services.
  const seen = new Set<string>();
  const trees: ManifestTree[] = [];
  for (const m of manifests) {
    if (seen.has(m.path)) continue;
    seen.add(m.path);
    let source: ManifestTree['source'] = 'yaml';
    try {
      source = await detectSource(path.join(root, m.path));
      trees.push({ path: m.path, source, objects: (await renderManifests(root, m.path, { release: projectNameFor(root), namespace: 'default' })).objects });
    } catch (err) {
      note(m.pos, m.keyPath, `${m.path} does not render: ${oneLine(err)}`);
    }
  }
  const plan = planManifests(projectNameFor(root), services, trees);

  // Port-forwards: to the service whose objects include the resource, through the Service's targetPort.
  const allObjects = trees.flatMap((t) => t.objects ?? []);
  const attribution = attributeObjects(allObjects, services.map((s) => ({ name: s.name, image: s.image ?? `${plan.name}/${s.name}` })));
  const localPorts = new Set<number>();
  for (const f of forwards) {
    const kind = { service: 'Service', deployment: 'Deployment', statefulset: 'StatefulSet', pod: 'Pod', daemonset: 'DaemonSet' }[f.type];
    const owner = [...attribution.byService].find(([, objs]) => objs.some((o) => o.kind === kind && o.metadata.name === f.name))?.[0] ?? services.find((s) => s.name === f.name)?.name;
    const s = services.find((x) => x.name === owner);
    if (!s) {
      note(f.pos, f.keyPath, `${f.type}/${f.name} is not an object of any service devloop builds; not carried over`);
      continue;
    }
    let remote = f.port;
    if (kind === 'Service') {
      const svc = allObjects.find((o) => o.kind === 'Service' && o.metadata.name === f.name);
      const p = (svc?.spec as { ports?: { port?: number; targetPort?: number | string }[] } | undefined)?.ports?.find((x) => x.port === f.port);
      if (typeof p?.targetPort === 'number') remote = p.targetPort;
      else if (typeof p?.targetPort === 'string') {
        note(f.pos, f.keyPath, `${f.type}/${f.name} port ${f.port} targets the named port "${p.targetPort}"; forwarded to ${f.port} in the pod, check it`);
      }
    }
    if (localPorts.has(f.localPort)) {
      note(f.pos, f.keyPath, `local port ${f.localPort} is forwarded already; not carried over`);
      continue;
    }
    localPorts.add(f.localPort);
    s.ports = [...(s.ports ?? []), `${f.localPort}:${remote}`];
  }
  plan.unmatched.push(...notes.sort((a, b) => a.line - b.line).map((n) => n.text));
  return { ...plan, configs };
}

/** How skaffold.yaml is named in messages: relative to the project when inside it. */
export function labelFor(root: string, file: string): string {
  const rel = path.relative(root, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : displayPath(file);
}

/** The directory (or file) a rawYaml glob reads: `k8s/*.yaml` → k8s, `k8s/**` → k8s, `a.yaml` → a.yaml. */
function globRoot(glob: string): string {
  const scan = picomatch.scan(glob.replace(/^\.\//, ''));
  return scan.isGlob ? scan.base || '.' : glob;
}

/** The last WORKDIR of the service's Dockerfile (for sync rules whose destination is relative to it). */
async function dockerWorkdir(root: string, s: InitService): Promise<string | undefined> {
  try {
    const text = await readFile(path.join(root, joinRel(s.path, s.dockerfile ?? 'Dockerfile')), 'utf8');
    const dirs = [...text.matchAll(/^\s*WORKDIR\s+(\S+)/gim)].map((m) => m[1]!);
    const last = dirs.at(-1);
    return last && last.startsWith('/') ? last : undefined;
  } catch {
    // No readable Dockerfile: relative destinations cannot be resolved, and say so.
    return undefined;
  }
}

/**
 * A Skaffold manual sync rule as a devloop rule. Skaffold puts `src/lib/a.js` (src "src/**\/*.js", strip "src/")
 * at `<dest>/lib/a.js`; devloop puts a file at `<to>/<path below the glob's static part>`, so `to` is `dest` plus
 * whatever of that static part is not stripped.
 */
export function syncRule(r: { src?: string; dest?: string; strip?: string }, workdir?: string): { rule: SyncRule } | { problem: string } {
  if (typeof r.src !== 'string' || typeof r.dest !== 'string') return { problem: 'needs src and dest; not carried over' };
  const from = r.src.replace(/^\.\//, '');
  let dest = r.dest;
  if (!dest.startsWith('/')) {
    if (!workdir) return { problem: `destination "${dest}" is relative and the Dockerfile sets no absolute WORKDIR; not carried over` };
    dest = path.posix.join(workdir, dest);
  }
  const scan = picomatch.scan(from);
  const staticPart = scan.isGlob ? scan.base : path.posix.dirname(from) === '.' ? '' : path.posix.dirname(from);
  const strip = (r.strip ?? '').replace(/^\.\//, '').replace(/\/+$/, '');
  if (strip !== '' && staticPart !== strip && !staticPart.startsWith(`${strip}/`)) {
    return { problem: `strip "${r.strip}" is not a leading directory of "${r.src}"; not carried over` };
  }
  const kept = strip === '' ? staticPart : staticPart.slice(strip.length).replace(/^\//, '');
  const to = path.posix.join(dest, kept);
  return { rule: { from, to: to.length > 1 ? to.replace(/\/+$/, '') : to } };
}

/** skaffold.yaml (or skaffold.yml) at the root, if there is one. */
export async function findSkaffoldFile(root: string): Promise<string | undefined> {
  for (const name of ['skaffold.yaml', 'skaffold.yml']) {
    const file = path.join(root, name);
    if ((await stat(file).catch(() => undefined))?.isFile()) return file;
  }
  return undefined;
}
