import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import type { ProjectConfig, ServiceConfig } from '../config/types.js';
import { serviceEdges } from '../workspace/graph.js';
import { DevloopError, ExternalError, formatError, InternalError, UserError, UserErrors } from '../errors.js';
import { buildImage, BuildFailure } from '../build/build.js';
import { dockerClient, ensureDockerReachable } from '../build/docker.js';
import { runInDependencyOrder } from '../build/schedule.js';
import type { Target } from '../target/select.js';
import { imageRefFor } from '../target/select.js';
import { repositoryOf } from '../build/registry.js';
import { SERVICE_LABEL, VERSION_ANNOTATION, MANAGED_BY, MANAGED_BY_VALUE } from '../deploy/labels.js';
import type { K8sObject } from '../deploy/render.js';
import type { DeployedRecord, Owner } from '../deploy/apply.js';
import type { EngineBus } from './state.js';
import type { PlannedService } from './events.js';

export interface UpOptions {
  project: ProjectConfig;
  developer: string;
  target: Target;
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
}

interface Prepared {
  service: ServiceConfig;
  version: string;
  ref: string;
  objects?: K8sObject[];
  manifestHash?: string;
}

/**
 * `up --once`: plan → build → deliver → deploy → wait. Status before action: a service whose recorded content
 * version and manifests match, and whose workloads are rolled out, is neither built nor applied.
 */
export async function upOnce(bus: EngineBus, opts: UpOptions): Promise<UpResult> {
  const started = Date.now();
  const { project, target } = opts;
  const owner: Owner = { project: project.name, developer: opts.developer };
  const failed = new Set<string>();
  const fail = (name: string) => failed.add(name);
  let aborted = false;
  const inScope = (name: string) => !opts.only || opts.only.includes(name);
  const forced = new Set(opts.force ?? []);
  if (!opts.only) bus.emit({ type: 'run.started', command: 'up', target: target.kind, where: target.where });

  const edges = serviceEdges(project);
  const planned: PlannedService[] = project.services.map((s) => ({
    name: s.name,
    version: opts.versions[s.name] ?? '',
    image: imageRefFor(target.kind === 'remote' ? { kind: 'remote', registry: target.registry } : { kind: target.kind }, s.image, opts.versions[s.name] ?? ''),
    dependsOn: edges.get(s.name) ?? [],
  }));
  for (const p of planned) {
    if (!p.version) throw new InternalError(`no content version for service ${p.name}`);
  }
  if (!opts.only) bus.emit({ type: 'plan.computed', services: planned });
  const byName = new Map(planned.map((p) => [p.name, p]));
  const images = Object.fromEntries(planned.map((p) => [repositoryOf(p.image), p.image]));

  // dockerode is only loaded when something has to be built, delivered or run.
  let docker: Dockerode | undefined;
  const getDocker = async () => (docker ??= await dockerClient());

  try {
    // Status before action.
    const prepared = new Map<string, Prepared>();
    const current = new Set<string>();
    let records = new Map<string, DeployedRecord>();
    if (target.kind === 'docker') {
      const docker = await getDocker();
      await ensureDockerReachable(docker);
      const { ensureNetwork, listServiceContainers } = await import('../target/docker.js');
      await ensureNetwork(docker, owner);
      const running = await listServiceContainers(docker, owner);
      for (const s of project.services.filter((x) => inScope(x.name))) {
        const p = byName.get(s.name)!;
        prepared.set(s.name, { service: s, version: p.version, ref: p.image });
        const c = running.find((r) => r.service === s.name);
        if (c?.running && c.version === p.version && c.image === p.image && !forced.has(s.name)) current.add(s.name);
      }
    } else {
      const { ensureNamespace, readDeployedRecords } = await import('../deploy/apply.js');
      const { renderManifests } = await import('../deploy/render.js');
      const { transformObjects } = await import('../deploy/transform.js');
      const renderProblems: unknown[] = [];
      await Promise.all(
        project.services.filter((x) => inScope(x.name)).map(async (s) => {
          const p = byName.get(s.name)!;
          const prep: Prepared = { service: s, version: p.version, ref: p.image };
          prepared.set(s.name, prep);
          if (!s.manifests) return;
          try {
            const rendered = await renderManifests(project.root, s.manifests, { release: s.name, namespace: target.namespace });
            const t = transformObjects(rendered.objects, {
              project: project.name,
              developer: opts.developer,
              service: s.name,
              namespace: target.namespace,
              version: p.version,
              images,
            });
            for (const w of t.warnings) bus.emit({ type: 'warning', service: s.name, message: w });
            if (t.imagesReplaced === 0) bus.emit({ type: 'warning', service: s.name, message: `no container in ${s.manifests} uses image ${s.image}` });
            prep.objects = t.objects;
            prep.manifestHash = t.manifestHash;
          } catch (err) {
            renderProblems.push(err);
          }
        }),
      );
      // A manifest problem stops the run before anything is built or applied.
      if (renderProblems.length === 1) throw renderProblems[0];
      if (renderProblems.length > 1) {
        // Every service's manifest problem at once, one line each, when all of them are the user's to fix.
        if (renderProblems.every((e) => e instanceof UserError)) {
          throw new UserErrors(renderProblems.flatMap((e) => (e instanceof UserErrors ? [...e.problems] : [(e as UserError).message])), {
            hint: 'fix the manifests; nothing was built or applied',
          });
        }
        throw new ExternalError(renderProblems.map((e) => (e instanceof Error ? e.message : String(e))).join('\n'));
      }
      // Only with manifests that render does anything change in the cluster.
      if (await ensureNamespace(target.kube, target.namespace, owner)) bus.emit({ type: 'namespace.created', namespace: target.namespace });
      records = await readDeployedRecords(target.kube, target.namespace, owner);
      await Promise.all(
        [...prepared.values()].map(async (prep) => {
          const record = records.get(prep.service.name);
          if (!prep.objects || !record || forced.has(prep.service.name)) return;
          if (record.version !== prep.version || record.manifestHash !== prep.manifestHash) return;
          if (await rolledOut(target.kube, record, target.namespace)) current.add(prep.service.name);
        }),
      );
    }
    for (const name of current) bus.emit({ type: 'service.current', service: name, version: byName.get(name)!.version });

    const todo = planned.filter((p) => inScope(p.name) && !current.has(p.name));
    if (todo.length > 0 && target.kind !== 'docker') await ensureDockerReachable(await getDocker());
    const deployments: Promise<void>[] = [];

    await runInDependencyOrder(
      todo.map((p) => ({ name: p.name, dependsOn: p.dependsOn })),
      opts.parallel ?? os.availableParallelism(),
      async (name) => {
        const prep = prepared.get(name)!;
        if (opts.signal?.aborted) {
          fail(name);
          bus.emit({ type: 'build.blocked', service: name, because: 'interrupted' });
          throw new Error('interrupted');
        }
        const ok = await buildAndDeliver(bus, await getDocker(), target, project.root, prep, opts.signal);
        if (!ok) {
          fail(name);
          throw new Error('failed');
        }
        deployments.push(
          deploy(bus, await getDocker(), target, owner, prep, records.get(name), opts.timeoutMs ?? 120_000, opts.signal).then((deployed) => {
            if (!deployed) fail(name);
          }),
        );
      },
      (name, because) => {
        fail(name);
        bus.emit({ type: 'build.blocked', service: name, because });
      },
    );
    await Promise.all(deployments);
  } catch (err) {
    // A run-wide problem (bad manifest, unreachable cluster) is reported by the caller; the run did not succeed.
    aborted = true;
    throw err;
  } finally {
    const durationMs = Date.now() - started;
    const failedList = planned.map((p) => p.name).filter((n) => failed.has(n));
    if (!opts.only) bus.emit({ type: 'run.finished', ok: !aborted && failedList.length === 0, durationMs, failed: failedList });
  }
  const failedList = planned.map((p) => p.name).filter((n) => failed.has(n));
  return { ok: failedList.length === 0, failed: failedList };
}

async function rolledOut(kube: Extract<Target, { kube: unknown }>['kube'], record: DeployedRecord, namespace: string): Promise<boolean> {
  const { WORKLOAD_KINDS, workloadStatus } = await import('../deploy/rollout.js');
  for (const ref of record.objects.filter((o) => WORKLOAD_KINDS.has(o.kind))) {
    try {
      const ns = ref.namespace ?? namespace;
      const w =
        ref.kind === 'Deployment'
          ? await kube.apps.readNamespacedDeployment({ name: ref.name, namespace: ns })
          : ref.kind === 'StatefulSet'
            ? await kube.apps.readNamespacedStatefulSet({ name: ref.name, namespace: ns })
            : await kube.apps.readNamespacedDaemonSet({ name: ref.name, namespace: ns });
      if (w.metadata?.annotations?.[VERSION_ANNOTATION] !== record.version) return false;
      if (!workloadStatus(ref.kind, w).done) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** Builds (unless the tag already exists) and delivers one service's image. Emits events; false on failure. */
async function buildAndDeliver(
  bus: EngineBus,
  docker: Dockerode,
  target: Target,
  root: string,
  prep: Prepared,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const name = prep.service.name;
  const ref = prep.ref;
  let haveLocally = false;
  try {
    await docker.getImage(ref).inspect();
    haveLocally = true;
  } catch {
    haveLocally = false;
  }
  let inRegistry = false;
  let auth: Awaited<ReturnType<typeof import('../build/registry.js').registryAuth>>;
  if (target.kind === 'remote') {
    const registry = await import('../build/registry.js');
    try {
      auth = await registry.registryAuth(target.registry);
      inRegistry = await registry.existsInRegistry(ref, auth);
    } catch (err) {
      bus.emit({ type: 'deliver.failed', service: name, message: oneLine(err) });
      return false;
    }
  }

  if (inRegistry) {
    bus.emit({ type: 'build.skipped', service: name, image: ref, reason: 'exists-in-registry' });
  } else if (haveLocally) {
    bus.emit({ type: 'build.skipped', service: name, image: ref, reason: 'exists-locally' });
  } else {
    const t0 = Date.now();
    bus.emit({ type: 'build.started', service: name, image: ref });
    try {
      await buildImage(
        docker,
        {
          service: name,
          contextDir: path.resolve(root, prep.service.path),
          dockerfile: prep.service.dockerfile,
          dockerfileLabel: path.posix.join(prep.service.path, prep.service.dockerfile),
          image: ref,
          buildArgs: prep.service.buildArgs,
          ...(prep.service.target ? { target: prep.service.target } : {}),
          labels: { [MANAGED_BY]: MANAGED_BY_VALUE, [SERVICE_LABEL]: name, [VERSION_ANNOTATION]: prep.version },
          ...(signal ? { signal } : {}),
        },
        (p) => {
          if (p.kind === 'step') bus.emit({ type: 'build.step', service: name, step: p.step, total: p.total, instruction: p.instruction });
          else bus.emit({ type: 'build.log', service: name, line: p.line });
        },
      );
    } catch (err) {
      if (err instanceof BuildFailure) {
        bus.emit({ type: 'build.failed', service: name, message: err.message, ...(err.step ? { step: err.step } : {}), lastLines: err.lastLines });
      } else {
        bus.emit({ type: 'build.failed', service: name, message: oneLine(err), lastLines: [] });
      }
      return false;
    }
    bus.emit({ type: 'build.finished', service: name, image: ref, durationMs: Date.now() - t0 });
  }

  try {
    if (target.kind === 'remote' && !inRegistry) {
      bus.emit({ type: 'deliver.started', service: name, image: ref, target: target.kind });
      const { pushImage } = await import('../build/push.js');
      await pushImage(docker, ref, auth, (message) => bus.emit({ type: 'deliver.progress', service: name, message }));
      bus.emit({ type: 'deliver.finished', service: name, image: ref, skipped: false });
    } else if (target.kind === 'kind') {
      bus.emit({ type: 'deliver.started', service: name, image: ref, target: target.kind });
      const { kindLoad } = await import('../build/kind.js');
      const r = await kindLoad(docker, target.cluster, ref, (message) => bus.emit({ type: 'deliver.progress', service: name, message }));
      bus.emit({ type: 'deliver.finished', service: name, image: ref, skipped: r.loaded.length === 0 });
    }
  } catch (err) {
    bus.emit({ type: 'deliver.failed', service: name, message: oneLine(err) });
    return false;
  }
  return true;
}

/** Applies (or runs) one service and waits until it is ready. Emits events; false on failure. */
async function deploy(
  bus: EngineBus,
  docker: Dockerode,
  target: Target,
  owner: Owner,
  prep: Prepared,
  previous: DeployedRecord | undefined,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const name = prep.service.name;
  const t0 = Date.now();
  if (target.kind === 'docker') {
    const { containerName, parsePorts, runServiceContainer, waitForContainer } = await import('../target/docker.js');
    try {
      const req = { service: name, image: prep.ref, version: prep.version, ports: parsePorts(name, prep.service.ports) };
      await runServiceContainer(docker, owner, req);
      bus.emit({ type: 'deploy.applied', service: name, objects: [`container/${containerName(owner, name)}`] });
      const r = await waitForContainer(docker, owner, req, timeoutMs);
      if (!r.ok) {
        bus.emit({ type: 'rollout.failed', service: name, reason: r.reason, message: r.message });
        return false;
      }
      bus.emit({ type: 'rollout.ready', service: name, durationMs: Date.now() - t0 });
      return true;
    } catch (err) {
      bus.emit({ type: 'deploy.failed', service: name, message: oneLine(err) });
      return false;
    }
  }
  if (!prep.objects) return true; // Built and delivered; nothing to deploy to Kubernetes.
  const { applyObjects, deleteOwned, objectsToPrune, refOf, describeRef, writeDeployedRecord } = await import('../deploy/apply.js');
  const { waitForRollout, WORKLOAD_KINDS } = await import('../deploy/rollout.js');
  const refs = prep.objects.map(refOf);
  try {
    await applyObjects(target.kube, prep.objects, owner, name);
    await writeDeployedRecord(target.kube, target.namespace, owner, {
      service: name,
      version: prep.version,
      manifestHash: prep.manifestHash ?? '',
      objects: refs,
    });
    bus.emit({ type: 'deploy.applied', service: name, objects: refs.map(describeRef) });
    for (const stale of objectsToPrune(previous?.objects ?? [], refs)) {
      const outcome = await deleteOwned(target.kube, stale, owner, name);
      if (outcome === 'deleted') bus.emit({ type: 'deploy.pruned', service: name, object: describeRef(stale) });
      if (outcome === 'not-owned') bus.emit({ type: 'warning', service: name, message: `${describeRef(stale)} is no longer devloop's; left in place` });
    }
  } catch (err) {
    bus.emit({ type: 'deploy.failed', service: name, message: oneLine(err) });
    return false;
  }
  const workloads = refs.filter((r) => WORKLOAD_KINDS.has(r.kind));
  const result = await waitForRollout(target.kube, workloads, {
    namespace: target.namespace,
    version: prep.version,
    timeoutMs,
    onProgress: (ready, desired, message) => bus.emit({ type: 'rollout.progress', service: name, ready, desired, ...(message ? { message } : {}) }),
    ...(signal ? { signal } : {}),
  }).catch((err: unknown) => ({ ok: false as const, reason: 'Error', message: oneLine(err) }));
  if (!result.ok) {
    bus.emit({ type: 'rollout.failed', service: name, reason: result.reason, message: result.message });
    return false;
  }
  bus.emit({ type: 'rollout.ready', service: name, durationMs: Date.now() - t0 });
  return true;
}

function oneLine(err: unknown): string {
  if (err instanceof DevloopError) return err.hint ? `${err.message} (${err.hint})` : err.message;
  return formatError(err).split('\n')[0]!;
}
