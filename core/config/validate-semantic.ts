import { readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { findCycles } from './cycles.js';
import type { ConfigProblem } from './load.js';
import { joinRel, normaliseRelPath, toDnsLabel } from './paths.js';
import { closest } from './suggest.js';
import type { ProjectConfig, ServiceConfig, SyncRule } from './types.js';

type Resolved = Omit<ProjectConfig, 'root' | 'file'>;

/**
 * Checks what a schema cannot: paths that must exist inside the project, unique names and images, dependsOn
 * entries that name a service or an existing path, dependency cycles, port ranges and clashes. Works on
 * partially invalid data (schema problems are reported separately) and resolves defaults.
 */
export async function semanticProblems(data: unknown, root: string): Promise<{ problems: ConfigProblem[]; project?: Resolved }> {
  const problems: ConfigProblem[] = [];
  if (!isObject(data)) return { problems };
  const realRoot = realpathSync.native(root);

  const projectName = typeof data.name === 'string' ? data.name : toDnsLabel(path.basename(root)) || 'project';
  const rawServices = Array.isArray(data.services) ? data.services : [];

  const names = new Map<string, number>();
  rawServices.forEach((s, i) => {
    if (isObject(s) && typeof s.name === 'string') {
      const first = names.get(s.name);
      if (first !== undefined) {
        problems.push({ keyPath: ['services', i, 'name'], at: 'value', message: `duplicate service name "${s.name}" (also services[${first}])` });
      } else {
        names.set(s.name, i);
      }
    }
  });

  let projectManifests: string | undefined;
  if (typeof data.manifests === 'string' && data.manifests !== '') {
    const n = normaliseRelPath(data.manifests);
    if ('error' in n) problems.push({ keyPath: ['manifests'], at: 'value', message: n.error });
    else {
      projectManifests = n.path;
      const problem = await checkPath(root, realRoot, n.path, 'any');
      if (problem) problems.push({ keyPath: ['manifests'], at: 'value', message: problem });
    }
  }

  const services: ServiceConfig[] = [];
  const images = new Map<string, number>();
  const serviceEdges = new Map<string, string[]>();
  const edgeIndex = new Map<string, number>(); // "from\0to" → dependsOn index, to point at the right entry

  await Promise.all(
    rawServices.map(async (raw, i) => {
      if (!isObject(raw)) return;
      const at = (...rest: (string | number)[]) => ['services', i, ...rest];
      const name = typeof raw.name === 'string' ? raw.name : `services[${i}]`;

      let svcPath = '';
      let pathOk = false;
      if (typeof raw.path === 'string' && raw.path !== '') {
        const n = normaliseRelPath(raw.path);
        if ('error' in n) problems.push({ keyPath: at('path'), at: 'value', message: n.error });
        else {
          svcPath = n.path;
          const problem = await checkPath(root, realRoot, svcPath, 'directory');
          if (problem) problems.push({ keyPath: at('path'), at: 'value', message: problem });
          else pathOk = true;
        }
      }

      const dockerfile = typeof raw.dockerfile === 'string' && raw.dockerfile !== '' ? raw.dockerfile : 'Dockerfile';
      const dockerfileRel = normaliseRelPath(joinRel(svcPath, dockerfile.replace(/\\/g, '/')));
      if ('error' in dockerfileRel) {
        problems.push({ keyPath: at('dockerfile'), at: 'value', message: dockerfileRel.error });
      } else if (pathOk) {
        const problem = await checkPath(root, realRoot, dockerfileRel.path, 'file');
        if (problem) problems.push({ keyPath: raw.dockerfile === undefined ? at('path') : at('dockerfile'), at: 'value', message: problem.replace(/^file/, 'Dockerfile') });
      }

      let manifests: string | undefined;
      if (typeof raw.manifests === 'string' && raw.manifests !== '') {
        const n = normaliseRelPath(raw.manifests);
        if ('error' in n) problems.push({ keyPath: at('manifests'), at: 'value', message: n.error });
        else {
          manifests = n.path;
          const problem = await checkPath(root, realRoot, n.path, 'any');
          if (problem) problems.push({ keyPath: at('manifests'), at: 'value', message: problem });
        }
      }

      const dependsOn: string[] = [];
      const edges: string[] = [];
      if (Array.isArray(raw.dependsOn)) {
        for (const [j, dep] of raw.dependsOn.entries()) {
          if (typeof dep !== 'string' || dep === '') continue;
          if (names.has(dep)) {
            if (dep === raw.name) {
              problems.push({ keyPath: at('dependsOn', j), at: 'value', message: `a service cannot depend on itself` });
            } else {
              dependsOn.push(dep);
              edges.push(dep);
              edgeIndex.set(`${name}\0${dep}`, j);
            }
            continue;
          }
          const n = normaliseRelPath(dep);
          if ('error' in n) {
            problems.push({ keyPath: at('dependsOn', j), at: 'value', message: n.error });
            continue;
          }
          const problem = await checkPath(root, realRoot, n.path, 'any');
          if (problem) {
            const suggestion = closest(dep, names.keys());
            problems.push({
              keyPath: at('dependsOn', j),
              at: 'value',
              message: suggestion
                ? `"${dep}" is neither a service name nor an existing path (did you mean "${suggestion}"?)`
                : `"${dep}" is neither a service name nor an existing path: ${problem}`,
            });
            continue;
          }
          dependsOn.push(n.path);
        }
      }
      serviceEdges.set(name, edges);

      const image = typeof raw.image === 'string' ? raw.image : `${projectName}/${typeof raw.name === 'string' ? raw.name : ''}`;

      const buildArgs: Record<string, string> = {};
      if (isObject(raw.buildArgs)) {
        for (const [k, v] of Object.entries(raw.buildArgs)) {
          if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') buildArgs[k] = String(v);
        }
      }

      const ports: string[] = [];
      if (Array.isArray(raw.ports)) {
        raw.ports.forEach((p, j) => {
          const text = typeof p === 'number' && Number.isInteger(p) ? `${p}:${p}` : typeof p === 'string' ? p : null;
          const m = text === null ? null : /^(\d{1,5}):(\d{1,5})$/.exec(text);
          if (!m) return; // schema reports it
          const local = Number(m[1]);
          const remote = Number(m[2]);
          for (const port of [local, remote]) {
            if (port < 1 || port > 65535) {
              problems.push({ keyPath: at('ports', j), at: 'value', message: `port ${port} is out of range (1-65535)` });
              return;
            }
          }
          ports.push(`${local}:${remote}`);
        });
      }

      const sync: SyncRule[] = [];
      if (Array.isArray(raw.sync)) {
        for (const r of raw.sync) {
          if (!isObject(r) || typeof r.from !== 'string' || typeof r.to !== 'string') continue;
          const rule: SyncRule = { from: r.from.replace(/^\.\//, ''), to: r.to };
          if (typeof r.then === 'string' && r.then !== '') rule.then = ['sh', '-c', r.then];
          else if (Array.isArray(r.then) && r.then.length > 0 && r.then.every((x) => typeof x === 'string')) rule.then = r.then as string[];
          sync.push(rule);
        }
      }

      const service: ServiceConfig = {
        name,
        path: svcPath,
        dockerfile: path.posix.normalize(dockerfile.replace(/\\/g, '/')),
        dependsOn,
        image,
        buildArgs,
        ports,
        sync,
      };
      if (manifests !== undefined) service.manifests = manifests;
      else if (projectManifests !== undefined) {
        service.manifests = projectManifests;
        service.fromProjectManifests = true;
      }
      if (typeof raw.target === 'string') service.target = raw.target;
      services[i] = service;
    }),
  );

  // Clashes are found after the fact, in file order, so "also used by" names the earlier entry.
  const localPorts = new Map<string, string>();
  services.forEach((s, i) => {
    s?.ports.forEach((p, j) => {
      const local = p.split(':')[0]!;
      const other = localPorts.get(local);
      if (other !== undefined) {
        problems.push({ keyPath: ['services', i, 'ports', j], at: 'value', message: `local port ${local} is already forwarded by ${other}` });
      } else {
        localPorts.set(local, `services[${i}].ports[${j}]`);
      }
    });
  });
  services.forEach((s, i) => {
    if (!s || names.get(s.name) !== i) return; // a duplicate name is reported already
    const first = images.get(s.image);
    if (first !== undefined) {
      problems.push({ keyPath: ['services', i, rawHas(rawServices[i], 'image') ? 'image' : 'name'], at: 'value', message: `image "${s.image}" is also used by services[${first}]; each service needs its own image` });
    } else {
      images.set(s.image, i);
    }
  });

  const order = [...names.keys()];
  for (const cycle of findCycles(order, serviceEdges)) {
    const from = cycle[0]!;
    const to = cycle[1]!;
    problems.push({
      keyPath: ['services', names.get(from)!, 'dependsOn', edgeIndex.get(`${from}\0${to}`) ?? 0],
      at: 'value',
      message: `dependency cycle: ${cycle.join(' → ')}`,
    });
  }

  if (problems.length > 0) return { problems };

  const project: Resolved = {
    version: 1,
    name: projectName,
    services: services.filter(Boolean),
  };
  const registry = process.env.DEVLOOP_REGISTRY || (typeof data.registry === 'string' ? data.registry : undefined);
  const developer = process.env.DEVLOOP_DEVELOPER || (typeof data.developer === 'string' ? data.developer : undefined);
  if (registry) project.registry = registry;
  if (developer) project.developer = developer;
  if (typeof data.namespace === 'string') project.namespace = data.namespace;
  if (typeof data.keepImages === 'number') project.keepImages = data.keepImages;
  const shared = data.shared as { baseline?: unknown; lease?: unknown } | undefined;
  if (shared && typeof shared.baseline === 'string') {
    project.shared = { baseline: shared.baseline, leaseSeconds: typeof shared.lease === 'string' ? durationSeconds(shared.lease) : DEFAULT_LEASE_SECONDS };
  }
  if (projectManifests !== undefined) project.manifests = projectManifests;
  return { problems, project };
}

/**
 * Why `rel` is not a usable path of the given kind inside the project, or null when it is. Synchronous on
 * purpose: a few hundred stat calls take a millisecond this way, and much longer through the thread pool.
 */
async function checkPath(root: string, realRoot: string, rel: string, kind: 'file' | 'directory' | 'any'): Promise<string | null> {
  const abs = path.join(root, rel);
  const what = kind === 'any' ? 'path' : kind;
  const st = statSync(abs, { throwIfNoEntry: false });
  if (!st) return `${what} "${rel}" does not exist${siblingSuggestion(root, rel)}`;
  if (kind === 'directory' && !st.isDirectory()) return `"${rel}" is not a directory`;
  if (kind === 'file' && !st.isFile()) return `"${rel}" is not a file`;
  // A symlink may lead out of the project, where git sees no changes: refuse rather than miss them.
  const real = realpathSync.native(abs);
  const relReal = path.relative(realRoot, real).split(path.sep).join('/');
  if (relReal.startsWith('../') || relReal === '..' || path.isAbsolute(relReal)) {
    return `"${rel}" resolves to ${real}, outside the project directory`;
  }
  return null;
}

/** " (did you mean "services/orders"?)" when a sibling of the missing path's first missing component is close. */
function siblingSuggestion(root: string, rel: string): string {
  const parts = rel.split('/');
  for (let i = 0; i < parts.length; i++) {
    const parent = path.join(root, ...parts.slice(0, i));
    let entries: string[];
    try {
      entries = readdirSync(parent);
    } catch {
      // The parent cannot be listed: no suggestion, the error itself still names the path.
      return '';
    }
    if (!entries.includes(parts[i]!)) {
      const guess = closest(parts[i]!, entries);
      return guess ? ` (did you mean "${[...parts.slice(0, i), guess, ...parts.slice(i + 1)].join('/')}"?)` : '';
    }
  }
  return '';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function rawHas(v: unknown, key: string): boolean {
  return isObject(v) && v[key] !== undefined;
}


/** A developer's forks and routes outlive the last renewal by this much unless devloop.yaml says otherwise. */
export const DEFAULT_LEASE_SECONDS = 12 * 3600;

/** "90s", "30m", "12h" (the schema checked the form) in seconds. */
function durationSeconds(text: string): number {
  const n = Number(text.slice(0, -1));
  return n * ({ s: 1, m: 60, h: 3600 } as Record<string, number>)[text.slice(-1)]!;
}
