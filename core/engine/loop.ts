import path from 'node:path';
import { BuildInputs, readContextFilters } from '../changes/content.js';
import { loadProject } from '../config/load.js';
import type { ProjectConfig } from '../config/types.js';
import { DevloopError, formatError, oneLine, UserError } from '../errors.js';
import { buildGraph, serviceEdges } from '../workspace/graph.js';
import type { ImageBuilder } from '../build/builder.js';
import { decide, type InputOracle } from '../sync/decide.js';
import { compileRules, type CompiledRule } from '../sync/rules.js';
import { watchScope } from '../sync/scope.js';
import { ServiceSync } from '../sync/session.js';
import { watchRepo, DEFAULT_QUIET_MS, type RepoWatcher } from '../watch/watcher.js';
import { collectScanGarbage } from '../watch/memory.js';
import type { LogFollow } from '../forward/logs.js';
import type { Follower, Forwarder, ServiceInstances, TargetContext } from '../target/target.js';
import { NO_INSTANCES } from '../target/target.js';
import type { EngineCommands } from './commands.js';
import { initialControl, logsToOpen, nextPass, reduceControl, syncChanges, type ControlAction, type ControlState } from './control.js';
import type { EngineBus } from './state.js';
import { TaskGroup } from './tasks.js';
import { SwapToggles } from '../swap/toggle.js';
import { upOnce, type UpOptions } from './up.js';
import { contentVersions } from './versions.js';

/** What each pass is run with (`upOnce`), plus what the loop itself needs. */
export interface LoopOptions extends Pick<UpOptions, 'project' | 'developer' | 'target' | 'versions' | 'parallel' | 'timeoutMs'> {
  /** Where devloop.yaml is loaded from again when it changes. */
  dir: string;
  /** Quiet period of the file watcher. Default 50 ms. */
  quietMs?: number;
  /** Builds images; default: the local Docker engine. */
  builder?: ImageBuilder;
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
 * the services concerned, one pass at a time. Running instances are followed for sync, port-forwards and logs.
 * Failures are reported as events and the loop keeps running. Returns at once: commands are accepted during the
 * first pass too (a stop aborts it).
 */
export function startLoop(bus: EngineBus, opts: LoopOptions): RunningLoop {
  const loop = new DevLoop(bus, opts);
  loop.start();
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

/**
 * The loop's controllers around one control state: the watcher feeds batches, the pass controller runs passes,
 * the follower reports instances, and reconcile() turns the state's decisions into sync attachments, log streams
 * and forward targets. All background work belongs to `tasks`, which stopping awaits.
 */
class DevLoop {
  readonly commands: EngineCommands;
  readonly stopped: Promise<void>;
  private resolveStopped!: () => void;
  private control: ControlState = initialControl;
  private project: ProjectConfig;
  private versions: Record<string, string>;
  private rules = new Map<string, CompiledRule[]>();
  private oracle: InputOracle & { order: string[]; dockerfiles: Set<string> } = { inputChain: () => null, order: [], dockerfiles: new Set() };
  /** What the watcher covers: the paths that can lead to a decision (the whole tree until they are known). */
  private scope: string[] = [''];
  private readonly syncs = new Map<string, ServiceSync>();
  private readonly forwarders = new Map<string, Forwarder>();
  private readonly logs = new Map<string, LogFollow>();
  /** The pods picture last reported per service ("ready/total"). */
  private readonly podCounts = new Map<string, string>();
  private watcher: RepoWatcher | undefined;
  private follower: Follower | undefined;
  private readonly startedAt = Date.now();
  private readonly abort = new AbortController();
  private readonly tasks: TaskGroup;
  private stopping: Promise<void> | undefined;
  /** Services swapped from the dashboard; restored when the loop stops. */
  private readonly swaps: SwapToggles;

  constructor(
    private readonly bus: EngineBus,
    private readonly opts: LoopOptions,
  ) {
    this.project = opts.project;
    this.versions = opts.versions;
    this.stopped = new Promise((r) => (this.resolveStopped = r));
    this.tasks = new TaskGroup((what, err) => this.emit({ type: 'warning', message: `${what}: ${oneLine(err)}` }));
    this.swaps = new SwapToggles(opts.target, () => this.ctx, (e) => this.emit(e));
    this.commands = {
      rebuild: (service) => this.requestRebuild([service]),
      rebuildAll: () => this.requestRebuild(this.project.services.map((s) => s.name)),
      setWatching: (on) => this.setWatching(on),
      swap: (service) => this.swaps.toggle(service),
      stop: (o) => this.stop(o?.cleanup ?? false),
    };
  }

  private emit: EngineBus['emit'] = (e) => this.bus.emit(e);

  private get isStopping(): boolean {
    return this.control.phase === 'stopping';
  }

  private get ctx(): TargetContext {
    return { project: this.project, developer: this.opts.developer };
  }

  private dispatch(action: ControlAction, reconcile = true): void {
    this.control = reduceControl(this.control, action);
    if (reconcile) this.reconcile();
  }

  start(): void {
    this.tasks.run('starting the loop', () => this.firstPass());
  }

  private async firstPass(): Promise<void> {
    // Changes made during the first pass are held and handled right after it.
    const quietMs = this.opts.quietMs ?? DEFAULT_QUIET_MS;
    await this.refreshOracle();
    if (this.isStopping) return;
    this.watcher = await watchRepo({
      root: this.project.root,
      paths: this.scope,
      quietMs,
      // One batch at a time: a devloop.yaml reload must not interleave with the next batch's decisions.
      onBatch: (b) => this.tasks.serial('batches', 'handling file changes', () => this.onBatch(b.paths)),
      onError: (err) => this.emit({ type: 'watch.failed', message: err.message }),
    });
    this.watcher.pause();
    if (this.isStopping) return;
    await upOnce(this.bus, this.upOptions()).catch((err: unknown) => this.reportPassError(err));
    if (this.isStopping) return;
    await this.configure();
    if (this.isStopping) return;
    // The first pass and the initial scan leave a lot of garbage that an idle session would otherwise keep.
    collectScanGarbage();
    this.emit({ type: 'watch.started', root: this.project.root, quietMs });
    this.watcher.resume();
    this.dispatch({ type: 'first-pass.done' });
  }

  private upOptions(): UpOptions {
    return {
      project: this.project,
      developer: this.opts.developer,
      target: this.opts.target,
      versions: this.versions,
      signal: this.abort.signal,
      ...(this.opts.builder ? { builder: this.opts.builder } : {}),
      ...(this.opts.parallel ? { parallel: this.opts.parallel } : {}),
      ...(this.opts.timeoutMs ? { timeoutMs: this.opts.timeoutMs } : {}),
    };
  }

  /** (Re)builds everything that depends on the configuration: rules, input oracle, syncs, forwards and the follower. */
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
          // What a broken connection did not carry arrives with a rebuild.
          onLost: () => this.dispatch({ type: 'queue', services: [s.name], reason: 'the sync connection broke', force: false }),
        }),
      );
    }
    for (const s of this.project.services.filter((x) => x.ports.length > 0)) {
      this.forwarders.set(s.name, await this.opts.target.forward(this.ctx, s, this.emit));
    }
    this.follower = await this.opts.target.follow(this.ctx, {
      onChange: (byService) => this.dispatch({ type: 'instances', byService: Object.fromEntries(byService) }),
      onError: (message) => this.emit({ type: 'warning', message }),
      onLost: (what, gone) => {
        this.emit({ type: 'environment.lost', what, redeploying: gone });
        // Everything the developer had there is deployed again (the pass recreates the namespace first).
        if (gone) this.dispatch({ type: 'queue', services: this.project.services.map((s) => s.name), reason: what, force: false });
      },
    });
  }

  private async teardown(): Promise<void> {
    await this.follower?.close();
    this.follower = undefined;
    await Promise.all([...this.forwarders.values()].map((f) => f.close()));
    this.forwarders.clear();
    for (const l of this.logs.values()) l.close();
    this.logs.clear();
    await Promise.all([...this.syncs.values()].map((s) => s.close()));
    this.syncs.clear();
    this.dispatch({ type: 'syncs.reset' }, false);
  }

  /** Carries out what the control state asks for now: the next pass, sync attachments, forwards and logs. */
  private reconcile(): void {
    const pass = nextPass(this.control);
    if (pass) {
      this.dispatch({ type: 'pass.started', services: pass.services, force: pass.force }, false);
      this.tasks.run('running a pass', () => this.runPass(pass));
    }
    const withSync = this.project.services.filter((s) => this.syncs.has(s.name));
    for (const change of syncChanges(this.control, withSync, (s) => this.syncs.get(s)?.connected() ?? [])) {
      const sync = this.syncs.get(change.service)!;
      for (const key of change.detach) this.tasks.run(`closing the sync into ${key}`, () => sync.detach(key));
      for (const instance of change.attach) {
        this.dispatch({ type: 'sync.started', service: change.service, key: instance.key }, false);
        this.tasks.run(`syncing into ${instance.where}`, () =>
          sync.attach({ key: instance.key, where: instance.where, connect: (roots) => instance.connectSync(roots) }),
        );
      }
    }
    if (this.isStopping) return;
    for (const s of this.project.services) {
      const instances = this.control.instances[s.name] ?? NO_INSTANCES;
      this.reportPods(s.name, instances);
      this.forwarders.get(s.name)?.update(instances);
    }
    for (const { service, instance, fromStart } of logsToOpen(this.control, this.startedAt)) {
      this.dispatch({ type: 'log.opened', key: instance.key }, false);
      this.tasks.run(`following the log of ${instance.where}`, async () => {
        try {
          const follow = await instance.followLog(fromStart, (line) => {
            if (!this.isStopping) this.emit({ type: 'log.line', service, where: instance.where, line });
          });
          if (this.isStopping) follow.close();
          else this.logs.set(instance.key, follow);
          await follow.done;
        } finally {
          this.logs.delete(instance.key);
          // A finished stream is forgotten; the next picture of the instances opens it again if it still runs.
          this.dispatch({ type: 'log.closed', key: instance.key }, false);
        }
      });
    }
  }

  private async refreshOracle(): Promise<void> {
    try {
      const graph = await buildGraph(this.project);
      const filters = await readContextFilters(this.project.root, graph);
      const inputs = new BuildInputs(graph, EMPTY_SNAPSHOT, filters);
      const dockerfiles = new Set([...graph.nodes.values()].map((n) => n.dockerfile));
      this.oracle = { inputChain: (s, f) => inputs.inputChain(s, f), order: graph.order, dockerfiles };
      this.scope = watchScope(this.project, graph, filters);
    } catch (err) {
      this.emit({ type: 'warning', message: `cannot work out the services' inputs: ${oneLine(err)}` });
      this.scope = [''];
    }
    this.watcher?.setPaths(this.scope);
  }

  private async onBatch(paths: string[]): Promise<void> {
    if (this.isStopping) return;
    const configFile = this.project.file ? path.relative(this.project.root, this.project.file).split(path.sep).join('/') : undefined;
    if (configFile && paths.includes(configFile)) {
      await this.reload(configFile);
      paths = paths.filter((p) => p !== configFile);
      if (paths.length === 0) return;
    }
    const decisions = decide(paths, this.project, this.oracle.order, this.oracle, this.rules).map((d) => {
      // Files that cannot reach the containers (no perl and no tar there, or none of the developer's runs: a shared
      // baseline serves the service) are delivered by a rebuild.
      const why = d.action === 'sync' ? (this.syncs.get(d.service)?.cannotSync() ?? this.nothingToSyncInto(d.service)) : undefined;
      return why ? { ...d, action: 'rebuild' as const, reason: `sync is not possible (${why})` } : d;
    });
    this.emit({
      type: 'watch.batch',
      files: paths.length,
      decisions: decisions.map((d) => ({ service: d.service, action: d.action, files: d.files.length, reason: d.reason })),
    });
    for (const d of decisions) {
      const sync = d.action === 'sync' || d.action === 'redeploy' ? this.syncs.get(d.service) : undefined;
      if (sync) this.tasks.run(`syncing ${d.service}`, () => sync.sync(d.files));
    }
    const update = decisions.filter((d) => d.action !== 'sync');
    if (update.length > 0) this.dispatch({ type: 'queue', services: update.map((d) => d.service), reason: update[0]!.reason, force: false });
    // A Dockerfile decides what its service reads.
    if (paths.some((p) => AFFECTS_INPUTS.test(p) || this.oracle.dockerfiles.has(p))) await this.refreshOracle();
  }

  /** Why a sync has nowhere to go: after the first pass, no instance of the service runs for this developer. */
  private nothingToSyncInto(service: string): string | undefined {
    const s = this.project.services.find((x) => x.name === service);
    if (!s || this.control.phase !== 'running' || this.control.pass?.services.includes(service) || this.control.pending[service]) return undefined;
    return (this.control.instances[service]?.total ?? 0) === 0 ? 'nothing of yours runs it' : undefined;
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
    this.dispatch({ type: 'queue', services: next.services.map((s) => s.name), reason: `${configFile} changed`, force: false });
  }

  private requestRebuild(services: string[]): void {
    const known = services.filter((s) => this.project.services.some((x) => x.name === s));
    if (known.length === 0) throw new UserError(`no service named ${services.join(', ')}`);
    this.dispatch({ type: 'queue', services: withDependents(this.project, known), reason: 'rebuild requested', force: true });
  }

  private setWatching(on: boolean): void {
    if (!this.watcher) throw new UserError('the first pass is still running');
    if (on) this.watcher.resume();
    else this.watcher.pause();
    this.emit({ type: 'watch.paused', paused: !on });
  }

  private async runPass(pass: { services: string[]; force: string[]; reason: string }): Promise<void> {
    const started = Date.now();
    try {
      this.versions = await contentVersions(this.project);
      this.emit({ type: 'pass.started', services: pass.services, reason: pass.reason, versions: pick(this.versions, pass.services) });
      const result = await upOnce(this.bus, { ...this.upOptions(), only: pass.services, force: pass.force });
      // Built from a tree that changed under it: planned again, with the versions of the tree as it is now.
      if (result.changed.length > 0) this.dispatch({ type: 'queue', services: result.changed, reason: 'files changed during the build', force: false }, false);
      for (const service of pass.force) {
        await this.opts.target.restart(this.ctx, service).catch((err: unknown) => this.emit({ type: 'warning', service, message: `restarting failed: ${oneLine(err)}` }));
      }
      this.emit({ type: 'pass.finished', ok: result.ok, durationMs: Date.now() - started, failed: result.failed });
    } catch (err) {
      this.reportPassError(err);
      this.emit({ type: 'pass.finished', ok: false, durationMs: Date.now() - started, failed: pass.services });
    } finally {
      this.dispatch({ type: 'pass.finished' });
    }
  }

  private reportPassError(err: unknown): void {
    this.emit({ type: 'warning', message: oneLine(err) });
  }

  private reportPods(service: string, instances: ServiceInstances): void {
    const counts = `${instances.ready}/${instances.total}`;
    if (this.podCounts.get(service) === counts) return;
    this.podCounts.set(service, counts);
    this.emit({ type: 'pods.changed', service, ready: instances.ready, total: instances.total });
  }

  /** Waits for `work` to settle, at most STOP_STEP_MS; past that, says which step is left behind and goes on. */
  private async boundedStep(what: string, work: Promise<unknown> | undefined): Promise<void> {
    if (!work) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_STEP_MS)));
    const late = await Promise.race([
      work.then(
        () => false,
        (err: unknown) => {
          this.emit({ type: 'warning', message: `stopping: ${what} failed: ${oneLine(err)}` });
          return false;
        },
      ),
      timedOut,
    ]);
    clearTimeout(timer);
    if (late) this.emit({ type: 'warning', message: `stopping: ${what} did not finish within ${STOP_STEP_MS / 1000} s; left behind` });
  }

  private stop(cleanup: boolean): Promise<void> {
    this.stopping ??= this.stopNow(cleanup);
    return this.stopping;
  }

  private async stopNow(cleanup: boolean): Promise<void> {
    this.dispatch({ type: 'stop' }, false);
    // A pass in flight (the first one too) stops building and applies nothing more.
    this.abort.abort();
    try {
      await this.boundedStep('closing the file watcher', this.watcher?.close());
      await this.boundedStep('restoring swapped services', this.swaps.stopAll());
      await this.boundedStep('closing syncs, port-forwards and log streams', this.teardown());
      await this.boundedStep('finishing the running pass and background work', this.tasks.settled());
      // What the first pass opened while it was being stopped (it checks between steps, not inside them).
      await this.boundedStep('closing what the first pass opened', Promise.all([this.watcher?.close(), this.teardown()]));
      this.emit({ type: 'loop.stopped', cleanup });
      if (cleanup) {
        const { down } = await import('./down.js');
        await down(this.bus, { project: this.project, developer: this.opts.developer, target: this.opts.target, keepNamespace: false }).catch((err: unknown) =>
          this.emit({ type: 'warning', message: `removing what was deployed failed: ${oneLine(err)}` }),
        );
      }
    } finally {
      this.resolveStopped();
    }
  }
}

function pick(record: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => k in record).map((k) => [k, record[k]!]));
}
