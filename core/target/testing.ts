/**
 * Test doubles of devloop's own interfaces, for unit tests of the engine's loop: an in-memory Target and a scripted
 * ImageBuilder. They stand in for Docker and a cluster so that the loop's decisions can be driven step by step; the
 * e2e suite proves the real targets. Nothing here talks to anything outside the process.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { BuildProgress, BuildRequest } from '../build/build.js';
import { BuildFailure, ContextChanged } from '../build/failures.js';
import type { ImageBuilder } from '../build/builder.js';
import type { ServiceConfig } from '../config/types.js';
import type { LogFollow } from '../forward/logs.js';
import type { ApplyResult, SyncOp, SyncTransport } from '../sync/transport.js';
import type {
  Deployable,
  Deployed,
  DeployOptions,
  Follower,
  FollowListener,
  Forwarder,
  Instance,
  PlannedDeploy,
  Reporter,
  ServiceInstances,
  Target,
  TargetContext,
} from './target.js';

/** A gate a test opens when it wants a step to go on. */
export class Gate {
  private open!: () => void;
  readonly opened = new Promise<void>((r) => (this.open = r));
  release(): void {
    this.open();
  }
}

/** A fake container: its files (container path → content), the commands run in it, and whether it is alive. */
export class FakeContainer {
  readonly files = new Map<string, string>();
  readonly commands: string[][] = [];
  alive = true;
  /** While set, writes wait for it (a stalled connection); dying fails them. */
  stall: Gate | undefined;
  private readonly deaths = new Set<() => void>();
  private readonly printers = new Set<(line: string) => void>();

  constructor(
    readonly key: string,
    readonly service: string,
    readonly image: string,
  ) {}

  die(): void {
    this.alive = false;
    for (const d of this.deaths) d();
    this.deaths.clear();
    this.breakConnections();
  }

  private readonly breaks = new Set<() => void>();
  /** How many sync connections were opened into it. */
  connections = 0;

  /** The sync connections break (a dropped stream) while the container keeps running. */
  breakConnections(): void {
    for (const b of this.breaks) b();
    this.breaks.clear();
  }

  onBreak(fn: () => void): void {
    this.breaks.add(fn);
  }

  print(line: string): void {
    for (const p of this.printers) p(line);
  }

  /** Resolves when the container dies. */
  onDeath(fn: () => void): () => void {
    if (!this.alive) fn();
    else this.deaths.add(fn);
    return () => this.deaths.delete(fn);
  }

  onPrint(fn: (line: string) => void): () => void {
    this.printers.add(fn);
    return () => this.printers.delete(fn);
  }
}

/** The sync channel into a FakeContainer: applies ops to its file map; fails once the container died. */
class FakeSyncTransport implements SyncTransport {
  readonly mode = 'stream' as const;
  readonly where: string;
  readonly ended: Promise<string>;
  private closed = false;

  constructor(
    private readonly container: FakeContainer,
    readonly roots: readonly string[],
  ) {
    this.where = `fake ${container.key}`;
    container.connections++;
    this.ended = new Promise((resolve) => {
      container.onDeath(() => resolve('the container died'));
      container.onBreak(() => {
        this.broken = true;
        resolve('the connection broke');
      });
    });
  }

  private broken = false;

  async apply(ops: readonly SyncOp[]): Promise<ApplyResult> {
    if (this.container.stall) {
      const died = new Promise<void>((resolve) => this.container.onDeath(resolve));
      await Promise.race([this.container.stall.opened, died]);
    }
    if (!this.container.alive || this.closed || this.broken) throw new Error(`connection to ${this.where} closed`);
    for (const op of ops) {
      const p = path.posix.join(this.roots[op.root]!, op.rel);
      if (op.kind === 'write') this.container.files.set(p, op.data.toString('utf8'));
      else if (op.kind === 'link') this.container.files.set(p, `-> ${op.target}`);
      else for (const k of [...this.container.files.keys()]) if (k === p || k.startsWith(`${p}/`)) this.container.files.delete(k);
    }
    return { errors: [] };
  }

  async list(root: number): Promise<string[]> {
    const prefix = `${this.roots[root]!}/`;
    return [...this.container.files.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  async run(command: string[]): Promise<{ code: number; output: string }> {
    this.container.commands.push(command);
    return { code: 0, output: '' };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

interface FakeService {
  version: string;
  configHash: string;
  ref: string;
  containers: FakeContainer[];
}

/**
 * An in-memory Target (a test double of devloop's own interface): deploying a service starts one FakeContainer for
 * it, which the follower reports at once. Every call is recorded in `calls`. `deployGate` holds deploys until
 * released.
 */
export class InMemoryTarget implements Target {
  readonly kind = 'docker' as const;
  readonly where = 'in-memory target';
  readonly describe = {};
  readonly calls: string[] = [];
  readonly services = new Map<string, FakeService>();
  deployGate: Gate | undefined;
  private generation = 0;
  private readonly followers = new Set<FollowListener>();

  imageRef(image: string, version: string): string {
    return `${image}:${version}`;
  }

  async prepare(_ctx: TargetContext, req: { services: ReadonlyArray<PlannedDeploy> }): Promise<Deployable[]> {
    return req.services.map((p) => ({ ...p, configHash: JSON.stringify(p.service.ports), detail: null }));
  }

  async inspect(_ctx: TargetContext, deployables: ReadonlyArray<Deployable>): Promise<Map<string, Deployed>> {
    const out = new Map<string, Deployed>();
    for (const d of deployables) {
      const s = this.services.get(d.service.name);
      if (!s) continue;
      const alive = s.containers.filter((c) => c.alive).length;
      out.set(d.service.name, {
        service: d.service.name,
        version: s.version,
        current: s.version === d.version && s.configHash === d.configHash && alive > 0,
        where: this.where,
        image: s.ref,
        ready: alive,
        desired: 1,
      });
    }
    return out;
  }

  async ensureEnvironment(): Promise<void> {
    this.calls.push('environment');
  }

  async pruneImages(repository: string, keep: string[]): Promise<string[]> {
    this.calls.push(`prune ${repository} keep ${keep.join(',')}`);
    return [];
  }

  async imageAtTarget(): Promise<undefined> {
    return undefined;
  }

  async deliver(service: string, ref: string, report: Reporter): Promise<void> {
    this.calls.push(`deliver ${service} ${ref}`);
    report({ type: 'deliver.finished', service, image: ref, skipped: false });
  }

  async deploy(_ctx: TargetContext, d: Deployable, _previous: Deployed | undefined, opts: DeployOptions, report: Reporter): Promise<boolean> {
    const name = d.service.name;
    this.calls.push(`deploy ${name} ${d.version}`);
    if (this.deployGate) await this.deployGate.opened;
    if (opts.signal?.aborted) return false;
    const old = this.services.get(name);
    for (const c of old?.containers ?? []) c.die();
    this.services.set(name, { version: d.version, configHash: d.configHash, ref: d.ref, containers: [this.newContainer(name, d.ref)] });
    report({ type: 'deploy.applied', service: name, objects: [`fake/${name}`] });
    report({ type: 'rollout.ready', service: name, durationMs: 0 });
    this.publish();
    return true;
  }

  async remove(_ctx: TargetContext, _opts: { keepNamespace: boolean }, report: Reporter): Promise<void> {
    for (const [name, s] of this.services) {
      for (const c of s.containers) c.die();
      report({ type: 'down.deleted', object: `fake/${name}` });
    }
    this.services.clear();
    this.publish();
  }

  async follow(_ctx: TargetContext, listener: FollowListener): Promise<Follower> {
    this.followers.add(listener);
    listener.onChange(this.picture());
    return {
      close: async () => {
        this.followers.delete(listener);
      },
    };
  }

  /** Everything deployed disappears behind devloop's back (a deleted namespace): the followers are told. */
  loseEnvironment(): void {
    for (const s of this.services.values()) for (const c of s.containers) c.die();
    this.services.clear();
    this.publish();
    for (const f of this.followers) f.onLost('the in-memory environment was deleted', true);
  }

  async forward(_ctx: TargetContext, service: ServiceConfig): Promise<Forwarder> {
    this.calls.push(`forward ${service.name}`);
    return { update: () => undefined, close: async () => undefined };
  }

  async restart(_ctx: TargetContext, service: string): Promise<void> {
    this.calls.push(`restart ${service}`);
    this.replaceContainer(service);
  }

  /** The service's live container (the newest). */
  container(service: string): FakeContainer | undefined {
    return this.services.get(service)?.containers.filter((c) => c.alive).at(-1);
  }

  /** Kills the service's container and starts a new one of the same version (a crash and a restart). */
  replaceContainer(service: string): FakeContainer {
    const s = this.services.get(service);
    if (!s) throw new Error(`${service} is not deployed`);
    for (const c of s.containers) c.die();
    const next = this.newContainer(service, s.ref);
    s.containers = [next];
    this.publish();
    return next;
  }

  private newContainer(service: string, ref: string): FakeContainer {
    return new FakeContainer(`${service}#${++this.generation}`, service, ref);
  }

  private picture(): Map<string, ServiceInstances> {
    const out = new Map<string, ServiceInstances>();
    for (const [name, s] of this.services) {
      const live = s.containers.filter((c) => c.alive);
      out.set(name, { running: live.map((c) => this.instance(c)), ready: live.length, total: live.length, ...(live[0] ? { readyAt: `fake/${live[0].key}` } : {}) });
    }
    return out;
  }

  private instance(c: FakeContainer): Instance {
    return {
      key: c.key,
      image: c.image,
      startedAt: new Date().toISOString(),
      where: `fake ${c.key}`,
      connectSync: async (roots) => {
        if (!c.alive) throw new Error(`${c.key} is not running`);
        return new FakeSyncTransport(c, roots);
      },
      followLog: async (_fromStart, onLine) => {
        let stop!: () => void;
        const done = new Promise<void>((r) => (stop = r));
        const off = c.onPrint(onLine);
        const dead = c.onDeath(stop);
        return {
          close: () => stop(),
          done: done.then(() => {
            off();
            dead();
          }),
        } satisfies LogFollow;
      },
    };
  }

  private publish(): void {
    const picture = this.picture();
    for (const f of this.followers) f.onChange(picture);
  }
}

/**
 * An ImageBuilder (a test double of devloop's own interface) that "builds" by reading the Dockerfile: one whose text
 * contains FAIL fails at that line. `gate` holds builds until released; an aborted signal stops a held build.
 */
export class ScriptedBuilder implements ImageBuilder {
  readonly built = new Set<string>();
  readonly builds: string[] = [];
  gate: Gate | undefined;
  /** The next this-many builds find their context changed under them (a branch switch mid-build). */
  contextChanges = 0;

  async ensureReachable(): Promise<void> {}

  async prune(_owner: unknown, service: string, keep: number, protect: string[], when?: Promise<boolean>): Promise<{ removed: string[]; kept: string[] }> {
    if (when && !(await when.catch(() => false))) return { removed: [], kept: [] };
    const mine = [...this.built].filter((r) => r.includes(`/${service}:`)).reverse();
    const kept = mine.filter((r, i) => i < keep || protect.includes(r));
    const removed = mine.filter((r) => !kept.includes(r));
    for (const r of removed) this.built.delete(r);
    return { removed, kept };
  }

  async exists(ref: string): Promise<boolean> {
    return this.built.has(ref);
  }

  async build(req: BuildRequest, onProgress: (p: BuildProgress) => void): Promise<void> {
    this.builds.push(req.image);
    if (this.gate) {
      const aborted = new Promise<void>((resolve) => req.signal?.addEventListener('abort', () => resolve(), { once: true }));
      await Promise.race([this.gate.opened, aborted]);
    }
    if (req.signal?.aborted) throw new BuildFailure('the build was cancelled', undefined, []);
    if (this.contextChanges > 0) {
      this.contextChanges--;
      throw new ContextChanged(req.dockerfile, new Error('ENOENT (scripted)'));
    }
    const text = await readFile(path.join(req.contextDir, req.dockerfile), 'utf8');
    const lines = text.split('\n');
    lines.forEach((instruction, i) => onProgress({ kind: 'step', step: i + 1, total: lines.length, instruction }));
    const bad = lines.findIndex((l) => l.includes('FAIL'));
    if (bad >= 0) throw new BuildFailure(`the command returned a non-zero code: 1`, `Step ${bad + 1}/${lines.length} : ${lines[bad]}`, ['FAIL']);
    this.built.add(req.image);
  }
}
