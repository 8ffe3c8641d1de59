import os from 'node:os';
import path from 'node:path';
import type { ProjectConfig } from '../config/types.js';
import { serviceEdges } from '../workspace/graph.js';
import { InternalError, oneLine } from '../errors.js';
import { BuildFailure, ContextChanged } from '../build/failures.js';
import { DockerBuilder, type ImageBuilder } from '../build/builder.js';
import { runInDependencyOrder } from '../build/schedule.js';
import { repositoryOf } from '../build/registry.js';
import { ownerLabels, VERSION_ANNOTATION } from '../deploy/labels.js';
import type { Deployable, Reporter, Target, TargetContext } from '../target/target.js';
import type { EngineBus } from './state.js';
import type { PlannedService } from './events.js';

export interface UpOptions {
  project: ProjectConfig;
  developer: string;
  target: Target;
  /** Builds images; default: the local Docker engine. */
  builder?: ImageBuilder;
  /** Content version per service (the image tag). */
  versions: Record<string, string>;
  /** Build concurrency; default: number of CPUs. */
  parallel?: number;
  /** Per-service rollout timeout. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Inside a running loop: check and update only these services, and leave the run's start, plan and finish
   * events to the loop (which reports its own passes).
   */
  only?: string[];
  /** Services to build and deploy even when their status says they are current. */
  force?: string[];
}

export interface UpResult {
  ok: boolean;
  failed: string[];
  /** Services whose build context changed while it was sent: to be planned and built again from the tree as it is. */
  changed: string[];
}

/** The plan's services with the image reference each is built and deployed as on this target. */
export function plannedServices(project: ProjectConfig, target: Target, versions: Record<string, string>): PlannedService[] {
  const edges = serviceEdges(project);
  return project.services.map((s) => {
    const version = versions[s.name];
    if (!version) throw new InternalError(`no content version for service ${s.name}`);
    return { name: s.name, version, image: target.imageRef(s.image, version), dependsOn: edges.get(s.name) ?? [] };
  });
}

/**
 * `up --once`: plan → build → deliver → deploy → wait. Status before action: a service the target calls current
 * (same version, same configuration, rolled out) is neither built nor applied.
 */
export async function upOnce(bus: EngineBus, opts: UpOptions): Promise<UpResult> {
  const started = Date.now();
  const { project, target } = opts;
  const ctx: TargetContext = { project, developer: opts.developer };
  const builder = opts.builder ?? new DockerBuilder();
  const report: Reporter = (e) => bus.emit(e);
  const failed = new Set<string>();
  const fail = (name: string) => failed.add(name);
  const changed = new Set<string>();
  let aborted = false;
  const inScope = (name: string) => !opts.only || opts.only.includes(name);
  const forced = new Set(opts.force ?? []);
  if (!opts.only) bus.emit({ type: 'run.started', command: 'up', target: target.kind, where: target.where });

  const planned = plannedServices(project, target, opts.versions);
  if (!opts.only) bus.emit({ type: 'plan.computed', services: planned });
  const byName = new Map(planned.map((p) => [p.name, p]));
  const images = Object.fromEntries(planned.map((p) => [repositoryOf(p.image), p.image]));

  try {
    // A shared target removes what expired peers left before reading what runs (while the manifests render); a
    // failure there only warns.
    const tidied =
      !opts.only && target.tidy
        ? target.tidy(ctx, report).catch((err: unknown) => report({ type: 'warning', message: `tidying ${target.where} failed: ${oneLine(err)}` }))
        : undefined;
    // Status before action: render first (a manifest problem changes nothing), then read what runs.
    const preparing = target.prepare(
      ctx,
      {
        services: project.services.filter((s) => inScope(s.name)).map((s) => ({ service: s, version: byName.get(s.name)!.version, ref: byName.get(s.name)!.image })),
        images,
      },
      report,
    );
    // Both settle before going on: a manifest problem does not leave the tidying running unowned.
    const [prep] = await Promise.allSettled([preparing, tidied]);
    if (prep.status === 'rejected') throw prep.reason;
    const deployables = prep.value;
    const prepared = new Map(deployables.map((d) => [d.service.name, d]));
    const deployed = await target.inspect(ctx, deployables);
    const current = new Set(deployables.filter((d) => deployed.get(d.service.name)?.current && !forced.has(d.service.name)).map((d) => d.service.name));
    for (const name of current) bus.emit({ type: 'service.current', service: name, version: byName.get(name)!.version });

    const todo = planned.filter((p) => inScope(p.name) && !current.has(p.name));
    if (todo.length > 0) {
      await builder.ensureReachable();
      if (opts.signal?.aborted) throw new Interrupted();
      await target.ensureEnvironment(ctx, report);
    }
    const deployments: Promise<void>[] = [];

    await runInDependencyOrder(
      todo.map((p) => ({ name: p.name, dependsOn: p.dependsOn })),
      opts.parallel ?? os.availableParallelism(),
      async (name) => {
        const d = prepared.get(name)!;
        if (opts.signal?.aborted) {
          fail(name);
          bus.emit({ type: 'build.blocked', service: name, because: 'interrupted' });
          throw new Error('interrupted');
        }
        const outcome = await buildAndDeliver(bus, builder, target, ctx, d, opts.signal);
        if (outcome === 'context-changed') changed.add(name);
        const ok = outcome === 'ok';
        if (!ok || opts.signal?.aborted) {
          // After an interrupt nothing more is applied: the signal came before the deploy.
          if (ok) bus.emit({ type: 'build.blocked', service: name, because: 'interrupted' });
          fail(name);
          throw new Error('failed');
        }
        const deployment = target.deploy(ctx, d, deployed.get(name), { timeoutMs: opts.timeoutMs ?? 120_000, ...(opts.signal ? { signal: opts.signal } : {}) }, report);
        deployments.push(
          deployment.then((ok) => {
            if (!ok) fail(name);
          }),
          // Once the new version serves, older images of the service go (never the deployed one); they are looked
          // up while it rolls out.
          pruneImages(bus, builder, target, ctx, d, project.keepImages ?? DEFAULT_KEEP_IMAGES, deployment),
        );
      },
      (name, because) => {
        fail(name);
        bus.emit({ type: 'build.blocked', service: name, because });
      },
    );
    // Every deploy settles before the run ends; one that was refused outright (not devloop's to change) ends it.
    const refused = (await Promise.allSettled(deployments)).find((r) => r.status === 'rejected');
    if (refused) throw (refused as PromiseRejectedResult).reason;
  } catch (err) {
    // A run-wide problem (bad manifest, unreachable cluster) is reported by the caller; the run did not succeed.
    aborted = true;
    if (err instanceof Interrupted) return { ok: false, failed: planned.filter((p) => inScope(p.name)).map((p) => p.name), changed: [] };
    throw err;
  } finally {
    const durationMs = Date.now() - started;
    const failedList = planned.map((p) => p.name).filter((n) => failed.has(n));
    if (!opts.only) bus.emit({ type: 'run.finished', ok: !aborted && failedList.length === 0, durationMs, failed: failedList });
  }
  const failedList = planned.map((p) => p.name).filter((n) => failed.has(n));
  return { ok: failedList.length === 0, failed: failedList, changed: [...changed] };
}

/** Images devloop built to keep per service when devloop.yaml does not say (`keepImages`). */
export const DEFAULT_KEEP_IMAGES = 3;

/**
 * Once `deployed` resolves true, removes older images of a service devloop built, locally and where the target keeps
 * them; nothing when the deploy failed. A failure only warns.
 */
async function pruneImages(bus: EngineBus, builder: ImageBuilder, target: Target, ctx: TargetContext, d: Deployable, keep: number, deployed: Promise<boolean>): Promise<void> {
  const name = d.service.name;
  try {
    const local = await builder.prune({ project: ctx.project.name, developer: ctx.developer }, name, keep, [d.ref], deployed);
    // The deploy failed (or was refused, which the run reports): nothing was removed, and nothing goes from the target.
    if (!(await deployed.catch(() => false))) return;
    if (local.removed.length) bus.emit({ type: 'images.pruned', service: name, where: 'local engine', images: local.removed });
    const remote = await target.pruneImages(repositoryOf(d.ref), local.kept.includes(d.ref) ? local.kept : [...local.kept, d.ref]);
    if (remote.length) bus.emit({ type: 'images.pruned', service: name, where: target.where, images: remote });
  } catch (err) {
    bus.emit({ type: 'warning', service: name, message: `removing older images failed: ${oneLine(err)}` });
  }
}

/** The run was stopped before it changed anything. */
class Interrupted extends Error {}

/** Builds (unless the image exists already) and delivers one service's image. Emits events. */
async function buildAndDeliver(
  bus: EngineBus,
  builder: ImageBuilder,
  target: Target,
  ctx: TargetContext,
  d: Deployable,
  signal: AbortSignal | undefined,
): Promise<'ok' | 'failed' | 'context-changed'> {
  const name = d.service.name;
  const root = ctx.project.root;
  const owner = { project: ctx.project.name, developer: ctx.developer };
  const ref = d.ref;
  let atTarget;
  try {
    atTarget = await target.imageAtTarget(ref);
  } catch (err) {
    bus.emit({ type: 'deliver.failed', service: name, message: oneLine(err) });
    return 'failed';
  }
  if (atTarget) {
    bus.emit({ type: 'build.skipped', service: name, image: ref, reason: atTarget });
    return 'ok';
  }
  if (await builder.exists(ref)) {
    bus.emit({ type: 'build.skipped', service: name, image: ref, reason: 'exists-locally' });
  } else {
    const t0 = Date.now();
    bus.emit({ type: 'build.started', service: name, image: ref });
    try {
      await builder.build(
        {
          service: name,
          contextDir: path.resolve(root, d.service.path),
          dockerfile: d.service.dockerfile,
          dockerfileLabel: path.posix.join(d.service.path, d.service.dockerfile),
          image: ref,
          buildArgs: d.service.buildArgs,
          ...(d.service.target ? { target: d.service.target } : {}),
          // devloop's ownership labels: pruning and `down --images` remove only images that carry them.
          labels: { ...ownerLabels(owner, name), [VERSION_ANNOTATION]: d.version },
          ...(signal ? { signal } : {}),
        },
        (p) => {
          if (p.kind === 'step') bus.emit({ type: 'build.step', service: name, step: p.step, total: p.total, instruction: p.instruction });
          else if (p.kind === 'log') bus.emit({ type: 'build.log', service: name, line: p.line });
          else bus.emit({ type: 'warning', service: name, message: p.message });
        },
      );
    } catch (err) {
      if (signal?.aborted) {
        // Stopped on purpose (Ctrl-C): not the build's failure.
        bus.emit({ type: 'build.blocked', service: name, because: 'interrupted: the build was cancelled' });
        return 'failed';
      }
      if (err instanceof ContextChanged) {
        // A branch switch or a generator changed the tree under the build: not the service's failure.
        bus.emit({ type: 'build.blocked', service: name, because: `${err.message}; it is built again from the tree as it is now` });
        return 'context-changed';
      }
      if (err instanceof BuildFailure) {
        bus.emit({ type: 'build.failed', service: name, message: err.message, ...(err.step ? { step: err.step } : {}), lastLines: err.lastLines });
      } else {
        bus.emit({ type: 'build.failed', service: name, message: oneLine(err), lastLines: [] });
      }
      return 'failed';
    }
    bus.emit({ type: 'build.finished', service: name, image: ref, durationMs: Date.now() - t0 });
  }
  try {
    await target.deliver(name, ref, (e) => bus.emit(e));
  } catch (err) {
    bus.emit({ type: 'deliver.failed', service: name, message: oneLine(err) });
    return 'failed';
  }
  return 'ok';
}
