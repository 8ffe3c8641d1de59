import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import dockerignore, { type Ignore } from '@balena/dockerignore';
import { isWithin, joinRel } from '../config/paths.js';
import type { ProjectConfig } from '../config/types.js';
import { GitRepo } from '../workspace/git.js';
import { buildGraph, type ServiceGraph, type ServiceNode } from '../workspace/graph.js';
import { analyseDockerfile, readingOf, withDockerfile, type DockerfileReads, type ReadingInstruction } from './dockerfile-reads.js';
import { buildSnapshot, parseRepoFacts, rangeUnder, readRepoFacts, readSnapshot, type FileEntry, type RepoFacts, type RepoRead, type Snapshot } from './snapshot.js';
import type { TreeProbe } from './tree-cache.js';

/** Bumped whenever what goes into a content version changes, so old tags are never reused for new meanings. */
const VERSION_FORMAT = 'devloop-content-v1';

/** Which files of its build context a service's build can read: Docker's .dockerignore rules and its Dockerfile. */
export interface ContextFilter {
  /** Repo-relative path of the ignore file in use, or null without one. */
  file: string | null;
  /** True when Docker leaves `relToContext` out of the build context. */
  ignores(relToContext: string): boolean;
  /** What the Dockerfile's instructions read from the context; absent (the whole context) without a Dockerfile. */
  reads?: DockerfileReads;
}

/** Why a file is an input of a service. */
export interface InputExplanation {
  /** [] for the service's own inputs, else the dependency chain that makes it one (['libs/common'], ['api']). */
  chain: string[];
  /** For a file of the build context: the Dockerfile instruction that reads it. */
  instruction?: ReadingInstruction;
}

/**
 * Which files are a service's build inputs, and their content versions. Inputs: the files of the build context
 * that the Dockerfile's instructions can read (COPY/ADD sources, `RUN --mount=type=bind` sources) and that
 * .dockerignore lets through, the Dockerfile and the ignore file (they decide what is read), every file under the
 * service's directory dependencies, and the inputs of the services it depends on. The version also covers build
 * args and target.
 */
export class BuildInputs {
  private readonly dirDigests = new Map<string, string>();
  private readonly versions = new Map<string, string>();

  constructor(
    readonly graph: ServiceGraph,
    readonly snapshot: Snapshot,
    readonly filters: ReadonlyMap<string, ContextFilter>,
  ) {}

  /** Content version of every service: a Docker-valid tag (16 hex digits). */
  contentVersions(): Map<string, string> {
    const out = new Map<string, string>();
    for (const name of this.graph.order) out.set(name, this.contentVersion(name));
    return out;
  }

  contentVersion(name: string): string {
    const cached = this.versions.get(name);
    if (cached) return cached;
    const node = this.node(name);
    const filter = this.filters.get(name)!;
    const { files, paths } = this.snapshot;
    // One string, hashed once: thousands of small hash updates cost more than building it.
    let key = `${VERSION_FORMAT}\n`;
    const dockerfileRel = relTo(node.dockerfile, node.context);
    key += `dockerfile\0${dockerfileRel ?? node.dockerfile}\0${entryKey(this.entry(node.dockerfile))}\n`;
    // The ignore file decides what the Dockerfile reads, so it counts even where no instruction reads it itself.
    if (filter.file && (filter.reads || !isWithin(filter.file, node.context))) key += `ignorefile\0${filter.file}\0${entryKey(this.entry(filter.file))}\n`;
    if (node.service.target !== undefined) key += `target\0${node.service.target}\n`;
    for (const k of Object.keys(node.service.buildArgs).sort()) key += `arg\0${k}\0${node.service.buildArgs[k]}\n`;

    // Context files are named relative to the context: moving a service's directory keeps its version.
    for (const [start, end] of this.readRanges(node, filter)) {
      for (let i = start; i < end; i++) {
        const f = files[i]!;
        const rel = relTo(f.path, node.context)!;
        if (this.isFilteredOut(node, filter, f.path, rel)) continue;
        key += `c\0${rel}\0${f.mode}\0${f.oid}\n`;
      }
    }
    for (const d of node.dirs) key += `dir\0${d.dir}\0${this.dirDigest(d.dir)}\n`;
    for (const s of [...node.services].sort()) key += `service\0${s}\0${this.contentVersion(s)}\n`;

    const version = createHash('sha256').update(key).digest('hex').slice(0, 16);
    this.versions.set(name, version);
    return version;
  }

  /**
   * Why `file` is an input of service `name`: null when it is not, else the dependency chain that makes it one
   * ([] for the service's own files, ['libs/common'] or ['api', 'libs/common'] through dependencies).
   */
  inputChain(name: string, file: string): string[] | null {
    return this.explainInput(name, file)?.chain ?? null;
  }

  /** Why `file` is an input of service `name` (the dependency chain, and the instruction that reads it), or null. */
  explainInput(name: string, file: string): InputExplanation | null {
    const node = this.node(name);
    if (file === node.dockerfile) return { chain: [] };
    const filter = this.filters.get(name)!;
    if (filter.file === file) return { chain: [] };
    const rel = relTo(file, node.context);
    if (rel !== null && !this.isFilteredOut(node, filter, file, rel)) {
      if (!filter.reads) return { chain: [] };
      const read = readingOf(filter.reads, rel);
      if (read) return { chain: [], instruction: read.instruction };
    }
    for (const d of node.dirs) if (isWithin(file, d.dir)) return { chain: d.via };
    for (const s of node.services) {
      const chain = this.inputChain(s, file);
      if (chain) return { chain: [s, ...chain] };
    }
    return null;
  }

  /**
   * The slices of the snapshot's sorted paths that the Dockerfile can read, as [start, end) index ranges in order,
   * not overlapping (the ignore rules are applied by the caller). Without a Dockerfile: the whole context.
   */
  private readRanges(node: ServiceNode, filter: ContextFilter): [number, number][] {
    const { paths } = this.snapshot;
    const reads = filter.reads?.reads;
    if (!reads) return [rangeUnder(paths, node.context)];
    const ranges: [number, number][] = [];
    for (const r of reads) {
      const [start, end] = rangeUnder(paths, joinRel(node.context, r.prefix));
      if (!r.pattern) {
        if (end > start) ranges.push([start, end]);
        continue;
      }
      for (let i = start; i < end; i++) if (r.pattern.test(relTo(paths[i]!, node.context)!)) ranges.push([i, i + 1]);
    }
    if (ranges.length <= 1) return ranges;
    ranges.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [ranges[0]!];
    for (const r of ranges.slice(1)) {
      const last = merged.at(-1)!;
      if (r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
      else merged.push(r);
    }
    return merged;
  }

  private isFilteredOut(node: ServiceNode, filter: ContextFilter, file: string, rel: string): boolean {
    if (file === node.dockerfile || file === filter.file) return false;
    if (rel === '.dockerignore') return false;
    return filter.ignores(rel);
  }

  private dirDigest(dir: string): string {
    let d = this.dirDigests.get(dir);
    if (d === undefined) {
      let key = '';
      const [start, end] = rangeUnder(this.snapshot.paths, dir);
      for (let i = start; i < end; i++) {
        const f = this.snapshot.files[i]!;
        key += `${f.path}\0${f.mode}\0${f.oid}\n`;
      }
      d = createHash('sha256').update(key).digest('hex');
      this.dirDigests.set(dir, d);
    }
    return d;
  }

  private entry(p: string): FileEntry | undefined {
    const [start, end] = rangeUnder(this.snapshot.paths, p);
    return end === start + 1 && this.snapshot.paths[start] === p ? this.snapshot.files[start] : undefined;
  }

  private node(name: string): ServiceNode {
    const node = this.graph.nodes.get(name);
    if (!node) throw new Error(`unknown service ${name}`);
    return node;
  }
}

function entryKey(e: FileEntry | undefined): string {
  return e ? `${e.mode}\0${e.oid}` : 'missing';
}

/** `file` relative to `dir`, or null when it is not below it. */
function relTo(file: string, dir: string): string | null {
  if (dir === '') return file;
  return file.startsWith(dir + '/') ? file.slice(dir.length + 1) : null;
}

/**
 * Each service's .dockerignore, by Docker's rules (`<Dockerfile>.dockerignore` next to the Dockerfile wins over
 * `.dockerignore` at the context root, BuildKit's behaviour), and what its Dockerfile reads from the context.
 */
export async function readContextFilters(root: string, graph: ServiceGraph): Promise<Map<string, ContextFilter>> {
  const out = new Map<string, ContextFilter>();
  // Services generated from one template share their Dockerfile's text: analysed once.
  const analysed = new Map<string, DockerfileReads>();
  // Services with one context and the same ignore rules share a matcher (and its per-path cache): services built
  // from the repository root all read the shared libraries, whose paths are then matched once.
  const matchers = new Map<string, Ignore>();
  for (const node of graph.nodes.values()) {
    let found: ContextFilter = { file: null, ignores: () => false };
    for (const candidate of [`${node.dockerfile}.dockerignore`, node.context === '' ? '.dockerignore' : `${node.context}/.dockerignore`]) {
      let text: string;
      try {
        text = readFileSync(path.join(root, candidate), 'utf8');
      } catch {
        // No such .dockerignore: try the next candidate, as Docker does.
        continue;
      }
      // Not shared across contexts even when texts repeat: each per-path result cache stays small, which is
      // faster than one shared cache growing to every path of the repository. Docker matches case-sensitively.
      // (The package is CommonJS with `module.exports.default = factory`; NodeNext types see the factory there.)
      const key = `${node.context}\0${text}`;
      let matcher = matchers.get(key);
      if (!matcher) {
        matcher = dockerignore.default({ ignorecase: false }).add(text);
        matchers.set(key, matcher);
      }
      const shared = matcher;
      found = { file: candidate, ignores: (rel) => shared.ignores(rel) };
      break;
    }
    const reads = readDockerfileReads(root, node, analysed);
    out.set(node.service.name, reads ? { ...found, reads } : found);
  }
  return out;
}

/** What the service's Dockerfile reads; undefined when there is no Dockerfile to read (the build fails anyway). */
function readDockerfileReads(root: string, node: ServiceNode, analysed: Map<string, DockerfileReads>): DockerfileReads | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(root, node.dockerfile), 'utf8');
  } catch {
    // No Dockerfile (yet): every file of the context counts, as before a Dockerfile says otherwise.
    return undefined;
  }
  const { buildArgs, target } = node.service;
  // Build args whose names the text does not contain cannot change what it reads.
  const args = Object.keys(buildArgs)
    .filter((k) => text.includes(k))
    .sort()
    .map((k) => `${k}=${buildArgs[k]}`);
  const key = `${target ?? ''}\0${args.join('\0')}\0${text}`;
  const known = analysed.get(key);
  if (known) return known.reads[0]?.instruction.dockerfile === node.dockerfile ? known : withDockerfile(known, node.dockerfile);
  const reads = analyseDockerfile(text, { dockerfile: node.dockerfile, buildArgs, target });
  analysed.set(key, reads);
  return reads;
}

/**
 * Everything needed to answer "what are the inputs and versions" for the project as it is on disk now; `read`
 * passes git reads already started (see snapshotReadFrom).
 */
export async function readBuildInputs(
  project: ProjectConfig,
  read?: Pick<RepoRead, 'facts' | 'snapshot'>,
): Promise<{ inputs: BuildInputs; facts: Awaited<ReturnType<typeof readRepoFacts>> }> {
  let facts: Promise<RepoFacts>;
  let snapshotRead: Promise<Snapshot>;
  if (read) {
    facts = read.facts;
    snapshotRead = read.snapshot;
  } else {
    const git = new GitRepo(project.root);
    facts = readRepoFacts(git);
    snapshotRead = readSnapshot(git, facts, project.root);
  }
  const snapshot = await snapshotRead;
  const graph = await buildGraph(project, { packageJsonFiles: snapshot.paths.filter(isPackageJson) });
  const filters = await readContextFilters(project.root, graph);
  return { inputs: new BuildInputs(graph, snapshot, filters), facts: await facts };
}

/**
 * The repository facts and snapshot from the git reads a TreeProbe has started (nothing is asked twice); where the
 * probe could not answer, GitRepo asks again and reports what is wrong.
 */
export function snapshotReadFrom(probe: TreeProbe): { git: GitRepo; facts: Promise<RepoFacts>; snapshot: Promise<Snapshot> } {
  const { root } = probe;
  const git = new GitRepo(root);
  const facts = probe.revParse.then((out) => (out === null ? readRepoFacts(git) : { git, ...parseRepoFacts(out, true) }));
  const snapshot = Promise.all([probe.staged(), probe.status, facts]).then(([staged, status, f]) =>
    staged === null || status === null ? readSnapshot(git, facts, root) : buildSnapshot(root, staged, status, f),
  );
  // Whoever awaits these sees the errors; until then (or if the caller gives up first) they must not go unhandled.
  for (const p of [facts, snapshot]) p.catch(() => undefined);
  return { git, facts, snapshot };
}

/** The content version (image tag) of every service, from the working tree as it is now. */
export async function computeContentVersions(project: ProjectConfig): Promise<Map<string, string>> {
  const { inputs } = await readBuildInputs(project);
  return inputs.contentVersions();
}

export function isPackageJson(p: string): boolean {
  return p === 'package.json' || p.endsWith('/package.json');
}
