import path from 'node:path';
import type Dockerode from 'dockerode';
import { BuildInputs, readContextFilters } from '../changes/content.js';
import { loadProject } from '../config/load.js';
import type { ProjectConfig } from '../config/types.js';
import { DevloopError, formatError, UserError } from '../errors.js';
import { buildGraph, serviceEdges } from '../workspace/graph.js';
import { repositoryOf } from '../build/registry.js';
import { ownerSelector, SERVICE_LABEL } from '../deploy/labels.js';
import { decide, type InputOracle } from '../sync/decide.js';
import { compileRules, type CompiledRule } from '../sync/rules.js';
import { watchScope } from '../sync/scope.js';
import { ServiceSync } from '../sync/session.js';
import { watchRepo, DEFAULT_QUIET_MS, type RepoWatcher } from '../watch/watcher.js';
import { collectScanGarbage } from '../watch/memory.js';
import type { LogFollow } from '../forward/logs.js';
import type { PortForward } from '../forward/portforward.js';
import type { ServicePods } from '../forward/pods.js';
import type { EngineCommands } from './commands.js';
import type { EngineBus } from './state.js';
import { upOnce, type UpOptions } from './up.js';
import { contentVersions } from './versions.js';

/** What each pass is run with (`upOnce`), plus what the loop itself needs. */
export interface LoopOptions extends Pick<UpOptions, 'project' | 'developer' | 'target' | 'versions' | 'parallel' | 'timeoutMs'> {
  /** Where devloop.yaml is loaded from again when it changes. */
  dir: string;
  /** Quiet period of the file watcher. Default 50 ms. */
  quietMs?: number;
}

export interface RunningLoop {
  bus: EngineBus;
  commands: EngineCommands;
  /** Settles once the loop has stopped (after `commands.stop()`). */
  stopped: Promise<void>;
}

/**
 * `devloop up` without --once: one full pass, then watch the tree and keep the target current. Each batch of
 * changes is decided per service (sync, or rebuild + redeploy); rebuilds run as passes of `upOnce` limited to
 * the services concerned, one pass at a time. Running containers are followed for sync, port-forwards and logs.
 * Failures are reported as events and the loop keeps running.
 */
export async function startLoop(bus: EngineBus, opts: LoopOptions): Promise<RunningLoop> {
  const loop = new DevLoop(bus, opts);
  await loop.start();
  return { bus, commands: loop.commands, stopped: loop.stopped };
}

/** Every service that depends on one of `names`, directly or not, plus the names themselves. */
export function withDependents(project: ProjectConfig, names: readonly string[]): string[] {
  const edges = serviceEdges(project);
  const out = new Set(names);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [name, deps] of edges) {
      if (!out.has(name) && deps.some((d) => out.has(d))) {
        out.add(name);
        grew = true;
      }
    }
  }
  return project.services.map((s) => s.name).filter((n) => out.has(n));
}

/**
 * How long each step of stopping may take. Stopping must always finish (Ctrl-C has to give the terminal back), so a
 * step that does not settle in time is reported and left behind.
 */
const STOP_STEP_MS = 10_000;

const EMPTY_SNAPSHOT = { files: [], paths: [], changes: [], hashed: 0 };

/** Files whose change alters which files are inputs of which service. */
const AFFECTS_INPUTS = /(^|\/)(\.dockerignore|[^/]*\.dockerignore|go\.mod|package\.json|\.gitignore)$/;

class DevLoop {
  readonly commands: EngineCommands;
  readonly stopped: Promise<void>;
  private resolveStopped!: () => void;
  private project: ProjectConfig;
  private versions: Record<string, string>;
  private rules = new Map<string, CompiledRule[]>();
  private oracle: InputOracle & { order: string[] } = { inputChain: () => null, order: [] };
  /** What the watcher covers: the paths that can lead to a decision (the whole tree until they are known). */
  private scope: string[] = [''];
  private syncs = new Map<string, ServiceSync>();
  private attempted = new Map<string, Set<string>>();
  private forwards = new Map<string, PortForward[]>();
  private logs = new Map<string, LogFollow>();
  private readonly logsSeen = new Set<string>();
  /** The pods picture last reported per service ("ready/total"). */
  private readonly podCounts = new Map<string, string>();
  private watcher: RepoWatcher | undefined;
  private followersStop: (() => void) | undefined;
  private readonly startedAt = Date.now();
  private pending = new Map<string, { reason: string; force: boolean }>();
  private passes: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private stopping = false;
  private docker: Dockerode | undefined;
  private batches: Promise<void> = Promise.resolve();

  constructor(
    private readonly bus: EngineBus,
    private readonly opts: LoopOptions,
  ) {
    this.project = opts.project;
    this.versions = opts.versions;
    this.stopped = new Promise((r) => (this.resolveStopped = r));
    this.commands = {
      rebuild: (service) => this.requestRebuild([service]),
      rebuildAll: () => this.requestRebuild(this.project.services.map((s) => s.name)),
      setWatching: (on) => this.setWatching(on),
      swap: () => {
        throw new UserError('swap is not available yet', { hint: 'it arrives with `devloop swap`' });
      },
      stop: (o) => this.stop(o?.cleanup ?? false),
    };
  }

  private emit: EngineBus['emit'] = (e) => this.bus.emit(e);

  async start(): Promise<void> {
    // Changes made during the first pass are held and handled right after it.
    const quietMs = this.opts.quietMs ?? DEFAULT_QUIET_MS;
    await this.refreshOracle();
    this.watcher = await watchRepo({
      root: this.project.root,
      paths: this.scope,
      quietMs,
      // One batch at a time: a devloop.yaml reload must not interleave with the next batch's decisions.
      onBatch: (b) => {
        this.batches = this.batches.then(() => this.onBatch(b.paths)).catch((err: unknown) => this.reportPassError(err));
      },
      onError: (err) => this.emit({ type: 'watch.failed', message: err.message }),
    });
    this.watcher.pause();
    await upOnce(this.bus, this.upOptions()).catch((err: unknown) => this.reportPassError(err));
    if (this.stopping) return;
    await this.configure();
    // The first pass and the initial scan leave a lot of garbage that an idle session would otherwise keep.
    collectScanGarbage();
    this.emit({ type: 'watch.started', root: this.project.root, quietMs });
    this.watcher.resume();
  }

  private upOptions() {
    return {
      project: this.project,
      developer: this.opts.developer,
      target: this.opts.target,
      versions: this.versions,
      signal: this.abort.signal,
      ...(this.opts.parallel ? { parallel: this.opts.parallel } : {}),
      ...(this.opts.timeoutMs ? { timeoutMs: this.opts.timeoutMs } : {}),
    };
  }

  /** (Re)builds everything that depends on the configuration: rules, input oracle, syncs and followers. */
  private async configure(): Promise<void> {
    this.rules = new Map(this.project.services.map((s) => [s.name, compileRules(s)]));
    await this.refreshOracle();
    for (const s of this.project.services) {
      const rules = this.rules.get(s.name)!;
      if (rules.length === 0) continue;
      this.syncs.set(
        s.name,
        new ServiceSync({
          service: s.name,
          root: this.project.root,
          rules,
          isOwnInput: (p) => this.oracle.inputChain(s.name, p)?.length === 0,
          emit: this.emit,
        }),
      );
      this.attempted.set(s.name, new Set());
    }
    this.followersStop = await this.startFollowers();
  }

  private async teardown(): Promise<void> {
    this.followersStop?.();
    this.followersStop = undefined;
    await Promise.all([...this.forwards.values()].flat().map((f) => f.close()));
    this.forwards.clear();
    for (const l of this.logs.values()) l.close();
    this.logs.clear();
    await Promise.all([...this.syncs.values()].map((s) => s.close()));
    this.syncs.clear();
    this.attempted.clear();
  }

  private async refreshOracle(): Promise<void> {
    try {
      const graph = await buildGraph(this.project);
      const filters = await readContextFilters(this.project.root, graph);
      const inputs = new BuildInputs(graph, EMPTY_SNAPSHOT, filters);
      this.oracle = { inputChain: (s, f) => inputs.inputChain(s, f), order: graph.order };
      this.scope = watchScope(this.project, graph, filters);
    } catch (err) {
      this.emit({ type: 'warning', message: `cannot work out the services' inputs: ${oneLine(err)}` });
      this.scope = [''];
    }
    this.watcher?.setPaths(this.scope);
  }

  private async onBatch(paths: string[]): Promise<void> {
    if (this.stopping) return;
    const configFile = this.project.file ? path.relative(this.project.root, this.project.file).split(path.sep).join('/') : undefined;
    if (configFile && paths.includes(configFile)) {
      await this.reload(configFile);
      paths = paths.filter((p) => p !== configFile);
      if (paths.length === 0) return;
    }
    const decisions = decide(paths, this.project, this.oracle.order, this.oracle, this.rules).map((d) => {
      // Files that cannot reach the containers (no perl and no tar there) are delivered by a rebuild.
      const why = d.action === 'sync' ? this.syncs.get(d.service)?.cannotSync() : undefined;
      return why ? { ...d, action: 'rebuild' as const, reason: `sync is not possible (${why})` } : d;
    });
    this.emit({
      type: 'watch.batch',
      files: paths.length,
      decisions: decisions.map((d) => ({ service: d.service, action: d.action, files: d.files.length, reason: d.reason })),
    });
    for (const d of decisions) {
      if (d.action === 'sync' || d.action === 'redeploy') void this.syncs.get(d.service)?.sync(d.files);
    }
    const update = decisions.filter((d) => d.action !== 'sync');
    if (update.length > 0) this.queuePass(update.map((d) => d.service), update[0]!.reason, false);
    if (paths.some((p) => AFFECTS_INPUTS.test(p))) await this.refreshOracle();
  }

  private async reload(configFile: string): Promise<void> {
    let next: ProjectConfig;
    try {
      next = await loadProject(this.opts.dir);
    } catch (err) {
      this.emit({ type: 'config.failed', message: err instanceof DevloopError ? err.message : formatError(err) });
      return;
    }
    if (next.name !== this.project.name || next.root !== this.project.root) {
      this.emit({ type: 'config.failed', message: 'the project name or root changed; restart devloop up to use them' });
      return;
    }
    await this.teardown();
    this.project = next;
    await this.configure();
    this.emit({ type: 'config.reloaded', file: configFile, services: next.services.map((s) => s.name) });
    // The status check inside the pass builds and deploys only what the new configuration changed.
    this.queuePass(next.services.map((s) => s.name), `${configFile} changed`, false);
  }

  private requestRebuild(services: string[]): void {
    const known = services.filter((s) => this.project.services.some((x) => x.name === s));
    if (known.length === 0) throw new UserError(`no service named ${services.join(', ')}`);
    this.queuePass(withDependents(this.project, known), 'rebuild requested', true);
  }

  private setWatching(on: boolean): void {
    if (!this.watcher) return;
    if (on) this.watcher.resume();
    else this.watcher.pause();
    this.emit({ type: 'watch.paused', paused: !on });
  }

  private queuePass(services: string[], reason: string, force: boolean): void {
    for (const s of services) {
      const prev = this.pending.get(s);
      this.pending.set(s, { reason: prev?.reason ?? reason, force: force || (prev?.force ?? false) });
    }
    this.passes ??= this.runPasses().finally(() => (this.passes = undefined));
  }

  /** Passes run one at a time; what arrives meanwhile is collected into the next one. */
  private async runPasses(): Promise<void> {
    while (this.pending.size > 0 && !this.stopping) {
      const batch = new Map(this.pending);
      this.pending.clear();
      const only = [...batch.keys()];
      const force = only.filter((s) => batch.get(s)!.force);
      const started = Date.now();
      try {
        this.versions = await contentVersions(this.project);
        this.emit({ type: 'pass.started', services: only, reason: [...batch.values()][0]!.reason, versions: pick(this.versions, only) });
        const result = await upOnce(this.bus, { ...this.upOptions(), only, force });
        if (force.length > 0) await this.restart(force);
        this.emit({ type: 'pass.finished', ok: result.ok, durationMs: Date.now() - started, failed: result.failed });
      } catch (err) {
        this.reportPassError(err);
        this.emit({ type: 'pass.finished', ok: false, durationMs: Date.now() - started, failed: only });
      }
    }
  }

  private reportPassError(err: unknown): void {
    this.emit({ type: 'warning', message: oneLine(err) });
  }

  /** Replaces the running containers of forced services, so they restart from their image. */
  private async restart(services: string[]): Promise<void> {
    const target = this.opts.target;
    const owner = { project: this.project.name, developer: this.opts.developer };
    for (const service of services) {
      if (target.kind === 'docker') {
        const { containerName } = await import('../target/docker.js');
        await (await this.dockerClient())
          .getContainer(containerName(owner, service))
          .restart()
          .catch(() => undefined);
      } else {
        // Only pods carrying devloop's labels for this project, developer and service.
        await target.kube.core
          .deleteCollectionNamespacedPod({ namespace: target.namespace, labelSelector: ownerSelector(owner.project, owner.developer, service) })
          .catch((err: unknown) => this.emit({ type: 'warning', service, message: `restarting pods failed: ${oneLine(err)}` }));
      }
    }
  }

  private async dockerClient(): Promise<Dockerode> {
    if (!this.docker) {
      const { dockerClient } = await import('../build/docker.js');
      this.docker = await dockerClient();
    }
    return this.docker;
  }

  private async startFollowers(): Promise<() => void> {
    const target = this.opts.target;
    const owner = { project: this.project.name, developer: this.opts.developer };
    if (target.kind === 'docker') {
      const { DockerFollower } = await import('../forward/docker.js');
      const follower = new DockerFollower(await this.dockerClient(), owner, (byService) => this.onContainers(byService), (m) =>
        this.emit({ type: 'warning', message: m }),
      );
      await follower.start();
      return () => follower.close();
    }
    const { PodTracker } = await import('../forward/pods.js');
    const { PortForward } = await import('../forward/portforward.js');
    for (const s of this.project.services) {
      const list: PortForward[] = [];
      for (const p of s.ports) {
        const [local, remote] = p.split(':').map(Number) as [number, number | undefined];
        const fw = new PortForward(target.kube, target.namespace, local, remote ?? local);
        try {
          await fw.listen();
          list.push(fw);
        } catch (err) {
          this.emit({ type: 'forward.failed', service: s.name, local, remote: remote ?? local, message: oneLine(err) });
        }
      }
      if (list.length) this.forwards.set(s.name, list);
    }
    const tracker = new PodTracker(target.kube, target.namespace, ownerSelector(owner.project, owner.developer), SERVICE_LABEL, (byService) => this.onPods(byService), (m) =>
      this.emit({ type: 'warning', message: m }),
    );
    await tracker.start();
    return () => tracker.close();
  }

  /** Kubernetes: attach syncs and logs to new containers, point forwards at the ready pod. */
  private onPods(byService: Map<string, ServicePods>): void {
    if (this.stopping) return;
    const target = this.opts.target;
    if (target.kind === 'docker') return;
    for (const s of this.project.services) {
      const pods: ServicePods = byService.get(s.name) ?? { running: [], total: 0, readyCount: 0 };
      this.reportPods(s.name, pods.readyCount, pods.total);
      const own = pods.running.filter((c) => repositoryOf(c.image) === repositoryOf(s.image) || repositoryOf(c.image).endsWith(`/${repositoryOf(s.image)}`));
      const sync = this.syncs.get(s.name);
      if (sync) {
        void import('../sync/channel.js').then(({ kubeExec }) => {
          const seen = this.attempted.get(s.name)!;
          const live = new Set(own.map((c) => c.key));
          for (const key of sync.connected()) if (!live.has(key)) sync.detach(key);
          for (const key of [...seen]) if (!live.has(key)) seen.delete(key);
          for (const c of own) {
            if (seen.has(c.key)) continue;
            seen.add(c.key);
            void sync.attach({ key: c.key, exec: kubeExec(target.kube, target.namespace, c.pod, c.container) });
          }
        });
      }
      for (const fw of this.forwards.get(s.name) ?? []) {
        if (fw.currentPod === pods.ready) continue;
        fw.setPod(pods.ready);
        if (pods.ready) this.emit({ type: 'forward.ready', service: s.name, local: fw.local, remote: fw.remote, where: `pod/${pods.ready}` });
      }
      for (const c of pods.running) this.followLog(s.name, c.key, c.startedAt, async (fromStart, onLine) => {
        const { followKubeLog } = await import('../forward/logs.js');
        return followKubeLog(target.kube, target.namespace, c.pod, c.container, fromStart, onLine);
      }, `${c.pod}/${c.container}`);
    }
  }

  /** Docker: the same for local containers (ports are published by Docker itself). */
  private onContainers(byService: Map<string, { key: string; container: string; startedAt: string; ports: { host: number; container: number }[] }>): void {
    if (this.stopping) return;
    for (const s of this.project.services) {
      const c = byService.get(s.name);
      this.reportPods(s.name, c ? 1 : 0, c ? 1 : 0);
      const sync = this.syncs.get(s.name);
      if (sync) {
        const seen = this.attempted.get(s.name)!;
        for (const key of sync.connected()) if (key !== c?.key) sync.detach(key);
        if (c && !seen.has(c.key)) {
          seen.clear();
          seen.add(c.key);
          void this.dockerClient().then(async (docker) => {
            const { dockerExec } = await import('../sync/channel.js');
            await sync.attach({ key: c.key, exec: dockerExec(docker, c.container), docker: { docker, container: c.container } });
          });
        }
      }
      if (!c) continue;
      const fwKey = `docker:${c.key}`;
      if (!this.attempted.get(`ports:${s.name}`)?.has(fwKey)) {
        this.attempted.set(`ports:${s.name}`, new Set([fwKey]));
        for (const p of c.ports) this.emit({ type: 'forward.ready', service: s.name, local: p.host, remote: p.container, where: `container/${c.container}` });
      }
      this.followLog(s.name, c.key, c.startedAt, async (fromStart, onLine) => {
        const { followDockerLog } = await import('../forward/logs.js');
        const since = fromStart ? 0 : Math.floor(Date.now() / 1000);
        return followDockerLog(await this.dockerClient(), c.container, since, onLine);
      }, c.container);
    }
  }

  private reportPods(service: string, ready: number, total: number): void {
    const counts = `${ready}/${total}`;
    if (this.podCounts.get(service) === counts) return;
    this.podCounts.set(service, counts);
    this.emit({ type: 'pods.changed', service, ready, total });
  }

  private followLog(
    service: string,
    key: string,
    startedAt: string | undefined,
    open: (fromStart: boolean, onLine: (line: string) => void) => Promise<LogFollow>,
    where: string,
  ): void {
    if (this.logs.has(key)) return;
    // Placeholder until the stream is open, so a second picture does not open another.
    const entry: LogFollow & { inner?: LogFollow; closed?: boolean } = {
      close() {
        entry.closed = true;
        entry.inner?.close();
      },
      done: Promise.resolve(),
    };
    this.logs.set(key, entry);
    // A new instance is shown from its first line; a stream opened again for the same instance only from now.
    const fromStart = !this.logsSeen.has(key) && startedAt !== undefined && new Date(startedAt).getTime() >= this.startedAt - 1000;
    this.logsSeen.add(key);
    open(fromStart, (line) => {
      if (!this.stopping) this.emit({ type: 'log.line', service, where, line });
    }).then(
      (inner) => {
        entry.inner = inner;
        if (entry.closed) inner.close();
        // A finished stream (the instance stopped) is forgotten; a new instance has a new key anyway.
        void inner.done.then(() => {
          if (this.logs.get(key) === entry) this.logs.delete(key);
        });
      },
      () => this.logs.delete(key),
    );
  }

  /** Waits for `work` to settle, at most STOP_STEP_MS; past that, says which step is left behind and goes on. */
  private async boundedStep(what: string, work: Promise<unknown> | undefined): Promise<void> {
    if (!work) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_STEP_MS)));
    const late = await Promise.race([work.then(() => false, () => false), timedOut]);
    clearTimeout(timer);
    if (late) this.emit({ type: 'warning', message: `stopping: ${what} did not finish within ${STOP_STEP_MS / 1000} s; left behind` });
  }

  private async stop(cleanup: boolean): Promise<void> {
    if (this.stopping) return this.stopped;
    this.stopping = true;
    this.abort.abort();
    await this.boundedStep('closing the file watcher', this.watcher?.close());
    await this.boundedStep('closing syncs, port-forwards and log streams', this.teardown());
    await this.boundedStep('finishing the running pass', this.passes);
    this.emit({ type: 'loop.stopped', cleanup });
    try {
      if (cleanup) {
        const { down } = await import('./down.js');
        await down(this.bus, { project: this.project, developer: this.opts.developer, target: this.opts.target, keepNamespace: false });
      }
    } finally {
      this.resolveStopped();
    }
  }
}

function pick(record: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => k in record).map((k) => [k, record[k]!]));
}

function oneLine(err: unknown): string {
  if (err instanceof DevloopError) return err.hint ? `${err.message} (${err.hint})` : err.message;
  return formatError(err).split('\n')[0]!;
}
