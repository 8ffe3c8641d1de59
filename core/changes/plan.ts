import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { joinRel, normaliseRelPath } from '../config/paths.js';
import type { ProjectConfig, ServiceConfig } from '../config/types.js';
import { GitRepo } from '../workspace/git.js';
import { buildGraph } from '../workspace/graph.js';
import { changedSince, DEFAULT_BRANCHES, resolveBase } from './base.js';
import { BuildInputs, isPackageJson, readContextFilters, snapshotReadFrom, type InputExplanation } from './content.js';
import { rangeUnder, readRepoFacts, readSnapshot, type RepoRead, type WorkingChange } from './snapshot.js';
import type { TreeProbe } from './tree-cache.js';

export interface PlannedService {
  name: string;
  /** True when any build input changed since the base (or there is no base). */
  rebuild: boolean;
  /**
   * One line per changed input, naming what made it one: "libs/greet/greet.go (services/api/Dockerfile:3 COPY
   * libs/greet libs/greet)", "libs/common/x.go (via dependency libs/common)".
   */
  reasons: string[];
  /** Content version: the image tag this service's current inputs produce. */
  tag: string;
  dependsOn: { declared: string[]; inferred: string[] };
}

export interface Plan {
  /** The commit changes were measured from, or null when there is none. */
  base: string | null;
  /** How the base was chosen, or why there is none. */
  baseNote?: string;
  services: PlannedService[];
  /** Dockerfile sources devloop could not resolve (each reads the whole context), one line each: "api: <file>:<line>: …". */
  warnings: string[];
}

/**
 * For each service: would it be rebuilt (did a build input change between the base and the working tree), why,
 * and its content version. `base` is any commit-ish; by default the merge-base of HEAD and the default branch.
 */
export async function computePlan(project: ProjectConfig, opts: { base?: string; repoRead?: RepoRead } = {}): Promise<Plan> {
  return (await computePlanWithInputs(project, opts)).plan;
}

/** computePlan, and the build inputs it was computed from (for the tree cache, see tree-cache.ts). */
export async function computePlanWithInputs(project: ProjectConfig, opts: { base?: string; repoRead?: RepoRead } = {}): Promise<{ plan: Plan; inputs: BuildInputs }> {
  const read = opts.repoRead?.root === project.root ? opts.repoRead : startPlanRead(project.root);
  const { git } = read;
  const facts = await read.facts;
  // The snapshot (ls-files + status) and the base (for-each-ref, merge-base) are independent.
  const [snapshot, resolution] = await Promise.all([read.snapshot, resolveBase(facts, opts.base, read.defaultRefs)]);
  const graph = await buildGraph(project, { packageJsonFiles: snapshot.paths.filter(isPackageJson) });
  const [filters, changes] = await Promise.all([
    readContextFilters(project.root, graph),
    resolution.base === null ? Promise.resolve(null) : changedSince(facts, resolution.base, snapshot.changes),
  ]);
  const inputs = new BuildInputs(graph, snapshot, filters);
  const versions = inputs.contentVersions();

  const reasonsFor = changes === null ? () => [resolution.note ?? 'no base commit: every file counts as changed'] : reasonIndex(inputs, changes);
  const configReasons = changes === null || resolution.base === null ? new Map<string, string>() : await configChanges(project, git, resolution.base, changes);

  // A service's settings change reaches the services built on it, as its tag is part of theirs.
  const configReasonFor = (name: string, chain: string[] = []): string | undefined => {
    const own = configReasons.get(name);
    if (own !== undefined) return chain.length === 0 ? own : own.replace(/\)$/, `; via dependency ${chain.join(' → ')})`);
    for (const dep of graph.nodes.get(name)!.services) {
      const r = configReasonFor(dep, [...chain, dep]);
      if (r !== undefined) return r;
    }
    return undefined;
  };

  const services: PlannedService[] = project.services.map((s) => {
    const reasons = [...reasonsFor(s.name)];
    const configReason = configReasons.size > 0 ? configReasonFor(s.name) : undefined;
    if (configReason !== undefined) reasons.unshift(configReason);
    const node = graph.nodes.get(s.name)!;
    return {
      name: s.name,
      rebuild: reasons.length > 0,
      reasons,
      tag: versions.get(s.name)!,
      dependsOn: { declared: [...node.dependsOn.declared], inferred: [...node.dependsOn.inferred] },
    };
  });

  const warnings = project.services.flatMap((s) => (filters.get(s.name)?.reads?.warnings ?? []).map((w) => `${s.name}: ${w}`));
  const plan: Plan = { base: resolution.base, services, warnings };
  const note = resolution.base === null ? resolution.note : `${resolution.describe} (${resolution.base.slice(0, 12)})`;
  if (note !== undefined) plan.baseNote = note;
  return { plan, inputs };
}

/**
 * Starts the git reads a plan needs for the project at `root`; pass the result to computePlan as `repoRead` to
 * overlap them with loading devloop.yaml.
 */
export function startPlanRead(root: string): RepoRead {
  const git = new GitRepo(root);
  const facts = readRepoFacts(git);
  const snapshot = readSnapshot(git, facts, root);
  const defaultRefs = git.output(['for-each-ref', '--format=%(refname)%00%(objectname)', ...DEFAULT_BRANCHES]);
  // Whoever awaits these sees the errors; until then (or if the caller gives up first) they must not go unhandled.
  for (const p of [facts, snapshot, defaultRefs]) p.catch(() => undefined);
  return { root, git, facts, snapshot, defaultRefs };
}

/**
 * The git reads of a plan, from those a TreeProbe has started (nothing is asked twice); where the probe could not
 * answer, GitRepo asks again and reports what is wrong.
 */
export function planReadFrom(probe: TreeProbe): RepoRead {
  const { git, facts, snapshot } = snapshotReadFrom(probe);
  const defaultRefs = (probe.refs ?? Promise.resolve(null)).then((refs) => refs ?? git.output(['for-each-ref', '--format=%(refname)%00%(objectname)', ...DEFAULT_BRANCHES]));
  defaultRefs.catch(() => undefined); // awaited by computePlan, which reports the failure
  return { root: probe.root, git, facts, snapshot, defaultRefs };
}

/** service name → reason lines, looking up only the changed paths below each of the service's input locations. */
function reasonIndex(inputs: BuildInputs, changes: WorkingChange[]): (name: string) => string[] {
  const paths = changes.map((c) => c.path); // sorted by changedSince
  const memo = new Map<string, string[]>();
  return (name) => {
    let out = memo.get(name);
    if (out) return out;
    const candidates = new Set<number>();
    for (const loc of inputLocations(inputs, name)) {
      const [start, end] = rangeUnder(paths, loc);
      for (let i = start; i < end; i++) candidates.add(i);
    }
    out = [...candidates]
      .sort((a, b) => a - b)
      .flatMap((i) => {
        const change = changes[i]!;
        const why = inputs.explainInput(name, change.path);
        return why === null ? [] : [describeChange(change, why)];
      });
    memo.set(name, out);
    return out;
  };
}

/**
 * Every place an input of `name` can live: what its Dockerfile reads from the context (the whole context without
 * one), Dockerfiles, ignore files and dependency dirs, transitively.
 */
function inputLocations(inputs: BuildInputs, name: string, seen = new Set<string>()): string[] {
  if (seen.has(name)) return [];
  seen.add(name);
  const node = inputs.graph.nodes.get(name)!;
  const filter = inputs.filters.get(name);
  const reads = filter?.reads?.reads;
  const context = reads ? reads.map((r) => joinRel(node.context, r.prefix)) : [node.context];
  const out = [...context, node.dockerfile, ...node.dirs.map((d) => d.dir)];
  if (filter?.file) out.push(filter.file);
  for (const s of node.services) out.push(...inputLocations(inputs, s, seen));
  return out;
}

function describeChange(change: WorkingChange, { chain, instruction }: InputExplanation): string {
  const notes: string[] = [];
  if (change.kind === 'deleted') notes.push('deleted');
  else if (change.renamedTo !== undefined) notes.push(`renamed to ${change.renamedTo}`);
  else if (change.renamedFrom !== undefined) notes.push(`renamed from ${change.renamedFrom}`);
  else if (change.kind === 'untracked') notes.push('untracked');
  else if (change.kind === 'added') notes.push('added');
  else if (change.kind === 'conflicted') notes.push('merge conflict');
  if (chain.length > 0) notes.push(`via dependency ${chain.join(' → ')}`);
  else if (instruction) notes.push(`${instruction.dockerfile}:${instruction.line} ${instruction.text}`);
  return notes.length > 0 ? `${change.path} (${notes.join('; ')})` : change.path;
}

/**
 * Services whose build settings in devloop.yaml (path, dockerfile, build args, target, dependsOn) differ from
 * the base commit's devloop.yaml. Only looked at when devloop.yaml itself changed; a base without one (the
 * services were discovered then) says nothing.
 */
async function configChanges(project: ProjectConfig, git: GitRepo, base: string, changes: WorkingChange[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (project.file === null) return out;
  const rel = path.relative(project.root, project.file).split(path.sep).join('/');
  if (!changes.some((c) => c.path === rel)) return out;
  // "<commit>:./<path>" is resolved relative to the current directory (the project root).
  const text = await git.run(['show', `${base}:./${rel}`], { allowExit: [128] });
  if (text === null) return out;
  let before: unknown;
  try {
    before = parseYaml(text, { merge: true });
  } catch {
    // The committed devloop.yaml did not parse: every service counts as changed by it.
    before = null;
  }
  const old = new Map<string, string>();
  const services = (before as { services?: unknown } | null)?.services;
  if (Array.isArray(services)) {
    for (const raw of services) {
      if (raw && typeof raw === 'object' && typeof (raw as { name?: unknown }).name === 'string') {
        old.set((raw as { name: string }).name, buildSettingsKey(raw as Record<string, unknown>));
      }
    }
  }
  for (const s of project.services) {
    const was = old.get(s.name);
    if (was === undefined) out.set(s.name, `${rel} (new service)`);
    else if (was !== buildSettingsKey(s)) out.set(s.name, `${rel} (build settings changed)`);
  }
  return out;
}

/** The build-relevant keys of a service entry, normalised the way loading does, as a comparable string. */
function buildSettingsKey(raw: Record<string, unknown> | ServiceConfig): string {
  const norm = (v: unknown) => {
    if (typeof v !== 'string') return v;
    const n = normaliseRelPath(v);
    return 'path' in n ? n.path : v;
  };
  const args = raw.buildArgs && typeof raw.buildArgs === 'object' ? (raw.buildArgs as Record<string, unknown>) : {};
  return JSON.stringify({
    path: norm(raw.path),
    dockerfile: typeof raw.dockerfile === 'string' ? raw.dockerfile.replace(/^\.\//, '') : 'Dockerfile',
    target: raw.target ?? null,
    buildArgs: Object.keys(args)
      .sort()
      .map((k) => [k, String(args[k])]),
    dependsOn: Array.isArray(raw.dependsOn) ? raw.dependsOn.map(norm) : [],
  });
}
