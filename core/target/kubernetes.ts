import type { ServiceConfig } from '../config/types.js';
import { ExternalError, oneLine, UserError, UserErrors } from '../errors.js';
import { repositoryOf } from '../build/registry.js';
import type { Kube } from '../deploy/kube.js';
import { isNotFound, kubeCallFailed } from '../deploy/kube.js';
import {
  applyObjects,
  NotOwned,
  refuseForeign,
  deleteOwned,
  describeRef,
  ensureNamespace,
  inventoryName,
  objectsToPrune,
  ownedBy,
  readDeployedRecords,
  refOf,
  writeDeployedRecord,
  type DeployedRecord,
  type ObjectRef,
  type Owner,
} from '../deploy/apply.js';
import { MANAGED_BY, MANAGED_BY_VALUE, ownerSelector, SERVICE_LABEL, toLabelValue, VERSION_ANNOTATION } from '../deploy/labels.js';
import type { K8sObject } from '../deploy/render.js';
import { serviceManifests } from '../deploy/service-objects.js';
import { listDeployments, readWorkload, waitForRollout, WORKLOAD_KINDS, workloadStatus, type Workload } from '../deploy/rollout.js';
import { transformObjects } from '../deploy/transform.js';
import { keepDevelopersRoutes } from '../route/mesh.js';
import type { ServicePods } from '../forward/pods.js';
import type { PortForward } from '../forward/portforward.js';
import type { BuildSkipReason, TargetKind } from '../engine/events.js';
import type { SwapContext } from '../swap/session.js';
import type {
  Deployable,
  Deployed,
  DeployOptions,
  Follower,
  FollowListener,
  Forwarder,
  PlannedDeploy,
  Reporter,
  ServiceInstances,
  Target,
  TargetContext,
  TargetDescription,
} from './target.js';

/** How images reach the cluster: loaded into kind's nodes, or pushed to a registry the cluster pulls from. */
export interface ImageDelivery {
  readonly registry?: string;
  /** The reference an image is deployed as. */
  imageRef(image: string, version: string): string;
  imageAtTarget(ref: string): Promise<BuildSkipReason | undefined>;
  deliver(service: string, ref: string, report: Reporter): Promise<void>;
  pruneImages(repository: string, keep: string[]): Promise<string[]>;
}

const ownerOf = (ctx: TargetContext) => ({ project: ctx.project.name, developer: ctx.developer });

/** Rendered, transformed objects of one service. */
export interface Rendered {
  objects?: K8sObject[];
}

/** A service's rendered objects as the target places them (a shared cluster renames them into forks). */
export interface Placed {
  objects: K8sObject[];
  warnings: string[];
}

/** Kinds swept by label as well as by record, so objects whose record was lost are still found and removed. */
export const SWEPT_KINDS: ReadonlyArray<readonly [string, string]> = [
  ['apps/v1', 'Deployment'],
  ['apps/v1', 'StatefulSet'],
  ['apps/v1', 'DaemonSet'],
  ['batch/v1', 'Job'],
  ['batch/v1', 'CronJob'],
  ['v1', 'Service'],
  ['v1', 'ConfigMap'],
  ['v1', 'Secret'],
  ['v1', 'ServiceAccount'],
  ['v1', 'PersistentVolumeClaim'],
  ['networking.k8s.io/v1', 'Ingress'],
];

/**
 * Objects the cluster itself puts into every namespace (Kubernetes; in a mesh, istiod's root certificate and
 * revocation list); they do not make a namespace "in use".
 */
const NAMESPACE_DEFAULTS = new Set(['ConfigMap/kube-root-ca.crt', 'ServiceAccount/default', 'ConfigMap/istio-ca-root-cert', 'ConfigMap/istio-ca-crl']);

/**
 * A namespace of a Kubernetes cluster: manifests rendered, transformed and server-side applied, each service's
 * objects recorded in its inventory ConfigMap, rollouts watched, pods followed by devloop's labels. Images arrive
 * through an ImageDelivery (kind load or registry push).
 */
export class KubernetesTarget implements Target {
  readonly where: string;
  readonly describe: TargetDescription;

  constructor(
    readonly kind: TargetKind,
    readonly kube: Kube,
    readonly namespace: string,
    private readonly delivery: ImageDelivery,
    /** What reports call the namespace ("shop (shared baseline)"); default its name. */
    label = namespace,
  ) {
    this.where = `${kube.context}/${label}`;
    this.describe = { context: kube.context, namespace: label, ...(delivery.registry ? { registry: delivery.registry } : {}) };
  }

  imageRef(image: string, version: string): string {
    return this.delivery.imageRef(image, version);
  }

  swapContext(ctx: TargetContext, report: Reporter): SwapContext {
    return { kube: this.kube, namespace: this.namespace, owner: ownerOf(ctx), delivery: this.delivery, report };
  }

  imageAtTarget(ref: string): Promise<BuildSkipReason | undefined> {
    return this.delivery.imageAtTarget(ref);
  }

  deliver(service: string, ref: string, report: Reporter): Promise<void> {
    return this.delivery.deliver(service, ref, report);
  }

  pruneImages(repository: string, keep: string[]): Promise<string[]> {
    return this.delivery.pruneImages(repository, keep);
  }

  async prepare(
    ctx: TargetContext,
    req: { services: ReadonlyArray<PlannedDeploy>; images: Record<string, string> },
    report: Reporter,
  ): Promise<Deployable[]> {
    // What runs is read while the manifests render; inspect, which the engine calls next, takes the answer.
    const read = this.readDeployed(ctx);
    read.catch(() => undefined); // inspect awaits it and reports a failure; after a manifest problem nothing needs it
    this.deployedRead = { owner: ctx, read };
    const problems: unknown[] = [];
    const manifestsOf = serviceManifests(ctx.project, this.namespace);
    const out = await Promise.all(
      req.services.map(async (p): Promise<Deployable> => {
        const s = p.service;
        if (!s.manifests) return { ...p, configHash: '', detail: {} satisfies Rendered };
        try {
          const rendered = await manifestsOf(s);
          const placed = this.place(rendered.objects, ctx);
          for (const w of placed.warnings) report({ type: 'warning', service: s.name, message: w });
          const t = transformObjects(placed.objects, {
            project: ctx.project.name,
            developer: ctx.developer,
            service: s.name,
            namespace: this.namespace,
            version: p.version,
            images: req.images,
          });
          for (const w of t.warnings) report({ type: 'warning', service: s.name, message: w });
          if (t.imagesReplaced === 0) report({ type: 'warning', service: s.name, message: `no container in ${s.manifests} uses image ${s.image}` });
          return { ...p, configHash: t.manifestHash, detail: { objects: t.objects } satisfies Rendered };
        } catch (err) {
          if (!problems.includes(err)) problems.push(err); // the project's tree fails once for all its services
          return { ...p, configHash: '', detail: {} };
        }
      }),
    );
    // A manifest problem stops the run before anything is built or applied.
    if (problems.length === 1) throw problems[0];
    if (problems.length > 1) {
      // Every service's manifest problem at once, one line each, when all of them are the user's to fix.
      if (problems.every((e) => e instanceof UserError)) {
        throw new UserErrors(problems.flatMap((e) => (e instanceof UserErrors ? [...e.problems] : [(e as UserError).message])), {
          hint: 'fix the manifests; nothing was built or applied',
        });
      }
      throw new ExternalError(problems.map((e) => (e instanceof Error ? e.message : String(e))).join('\n'));
    }
    return out;
  }

  /** How a service's rendered objects are placed in the namespace: as they are (it is the developer's own). */
  protected place(objects: K8sObject[], _ctx: TargetContext): Placed {
    return { objects, warnings: [] };
  }

  /** The name of a service's record (its inventory ConfigMap). */
  protected recordName(service: string, _ctx: TargetContext): string {
    return inventoryName(service);
  }

  /** The owner's records, and its Deployments in one list (see inspect); started by prepare, taken by inspect. */
  private deployedRead: { owner: TargetContext; read: Promise<[Map<string, DeployedRecord>, Map<string, Workload>]> } | undefined;

  private readDeployed(ctx: TargetContext): Promise<[Map<string, DeployedRecord>, Map<string, Workload>]> {
    const owner = ownerOf(ctx);
    // Whatever the list lacks (other kinds, other namespaces, a failed list) is read one by one in inspect.
    return Promise.all([
      readDeployedRecords(this.kube, this.namespace, owner),
      listDeployments(this.kube, this.namespace, ownerSelector(owner.project, owner.developer)).catch(() => new Map<string, Workload>()),
    ]);
  }

  async inspect(ctx: TargetContext, deployables: ReadonlyArray<Deployable>): Promise<Map<string, Deployed>> {
    const started = this.deployedRead?.owner === ctx ? this.deployedRead.read : undefined;
    this.deployedRead = undefined;
    const [records, deployments] = await (started ?? this.readDeployed(ctx));
    const out = new Map<string, Deployed>();
    await Promise.all(
      deployables.map(async (d) => {
        const record = records.get(d.service.name);
        if (!record) return;
        let ready = 0;
        let desired = 0;
        let image: string | undefined;
        let rolledOut = true;
        for (const ref of record.objects.filter((o) => WORKLOAD_KINDS.has(o.kind))) {
          try {
            const listed = ref.kind === 'Deployment' && (ref.namespace ?? this.namespace) === this.namespace ? deployments.get(ref.name) : undefined;
            const w = listed ?? (await readWorkload(this.kube, ref, this.namespace));
            const st = workloadStatus(ref.kind, w);
            ready += st.ready;
            desired += st.desired;
            image ??= w.spec?.template.spec?.containers.map((c) => c.image).find((i) => i !== undefined && repositoryOf(i).endsWith(repositoryOf(d.service.image)));
            if (w.metadata?.annotations?.[VERSION_ANNOTATION] !== record.version || !st.done) rolledOut = false;
          } catch {
            // A workload deleted behind devloop's back is not rolled out: the next up applies it again.
            rolledOut = false;
          }
        }
        out.set(d.service.name, {
          service: d.service.name,
          version: record.version,
          current: d.service.manifests !== undefined && record.version === d.version && record.manifestHash === d.configHash && rolledOut,
          where: this.namespace,
          ...(image ? { image } : {}),
          ready,
          desired,
          detail: record,
        });
      }),
    );
    return out;
  }

  async ensureEnvironment(ctx: TargetContext, report: Reporter): Promise<void> {
    if (await ensureNamespace(this.kube, this.namespace, ownerOf(ctx))) report({ type: 'namespace.created', namespace: this.namespace });
  }

  async deploy(ctx: TargetContext, d: Deployable, previous: Deployed | undefined, opts: DeployOptions, report: Reporter): Promise<boolean> {
    const objects = (d.detail as Rendered).objects;
    if (!objects) return true; // Built and delivered; the service has no manifests to apply.
    const name = d.service.name;
    const owner = ownerOf(ctx);
    const t0 = Date.now();
    const refs = objects.map(refOf);
    const recordName = this.recordName(name, ctx);
    const record = { apiVersion: 'v1', kind: 'ConfigMap', name: recordName, namespace: this.namespace };
    const before = (previous?.detail as DeployedRecord | undefined)?.objects ?? [];
    try {
      // The service's own record is checked too: a user's ConfigMap of that name is not devloop's.
      await refuseForeign(this.kube, [...refs, record], owner, name);
      // Intent first: if devloop dies while applying, the record already names every object it may have labelled
      // (and no version, so nothing counts as current): the next up converges and prunes exactly those.
      await writeDeployedRecord(this.kube, this.namespace, owner, { service: name, version: '', manifestHash: '', objects: unionRefs(before, refs) }, recordName);
      // A VirtualService of the manifests keeps the routes developers added to it (a shared cluster's baseline).
      await applyObjects(this.kube, await keepDevelopersRoutes(this.kube, this.namespace, objects));
      await writeDeployedRecord(this.kube, this.namespace, owner, { service: name, version: d.version, manifestHash: d.configHash, objects: refs }, recordName);
      report({ type: 'deploy.applied', service: name, objects: refs.map(describeRef) });
      for (const stale of objectsToPrune(before, refs)) {
        const outcome = await deleteOwned(this.kube, stale, owner, name);
        if (outcome === 'deleted') report({ type: 'deploy.pruned', service: name, object: describeRef(stale) });
        if (outcome === 'not-owned') report({ type: 'warning', service: name, message: `${describeRef(stale)} is no longer devloop's; left in place` });
      }
    } catch (err) {
      report({ type: 'deploy.failed', service: name, message: oneLine(err) });
      // Taking over what is not devloop's is refused for the whole run (exit 2), not counted as one failed service.
      if (err instanceof NotOwned) throw err;
      return false;
    }
    const result = await waitForRollout(
      this.kube,
      refs.filter((r) => WORKLOAD_KINDS.has(r.kind)),
      {
        namespace: this.namespace,
        version: d.version,
        timeoutMs: opts.timeoutMs,
        onProgress: (ready, desired, message) => report({ type: 'rollout.progress', service: name, ready, desired, ...(message ? { message } : {}) }),
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
    ).catch((err: unknown) => ({ ok: false as const, reason: 'Error', message: oneLine(err) }));
    if (!result.ok) {
      report({ type: 'rollout.failed', service: name, reason: result.reason, message: result.message });
      return false;
    }
    report({ type: 'rollout.ready', service: name, durationMs: Date.now() - t0 });
    return true;
  }

  /**
   * Removes everything devloop deployed for this project and developer (checked by label on each object before it
   * is deleted) and nothing else. The namespace goes too, unless asked to keep it, or devloop did not create it, or
   * something that is not devloop's still lives in it. Idempotent.
   */
  async remove(ctx: TargetContext, opts: { keepNamespace: boolean }, report: Reporter): Promise<void> {
    const owner = ownerOf(ctx);
    await this.restoreSwaps(owner, report);
    await this.removeOwned(owner, report);
    await this.removeNamespace(owner, opts, report);
  }

  /**
   * Restores the developer's swaps in the namespace first (their Services' selectors back, then the agents gone):
   * removing the workloads under a swap would leave a Service that selects nothing.
   */
  protected async restoreSwaps(owner: Owner, report: Reporter): Promise<void> {
    const [{ listSwaps }, { undoSwap }] = await Promise.all([import('../swap/lease.js'), import('../swap/session.js')]);
    for (const swap of (await listSwaps(this.kube, this.namespace)).filter((r) => r.developer === toLabelValue(owner.developer))) {
      await undoSwap(this.kube, swap, swap.uid);
      report({ type: 'swap.restored', service: swap.service, namespace: this.namespace, by: 'devloop', reason: 'devloop down' });
    }
  }

  /** Deletes every object of this owner in the namespace (recorded or labelled), checking the labels of each first. */
  protected async removeOwned(owner: Owner, report: Reporter, service?: string): Promise<void> {
    const { kube, namespace } = this;
    const records = await readDeployedRecords(kube, namespace, owner);
    const refs: ObjectRef[] = [];
    for (const r of records.values()) {
      if (service && r.service !== service) continue;
      refs.push(...r.objects, { apiVersion: 'v1', kind: 'ConfigMap', name: r.recordName ?? inventoryName(r.service), namespace });
    }
    const selector = ownerSelector(owner.project, owner.developer, service);
    const seen = new Set(refs.map((r) => `${r.kind}/${r.namespace ?? ''}/${r.name}`));
    for (const [apiVersion, kind] of SWEPT_KINDS) {
      try {
        const list = await kube.objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, selector);
        for (const o of list.items) {
          const ref = { apiVersion, kind, name: o.metadata?.name ?? '', namespace };
          if (!seen.has(`${kind}/${namespace}/${ref.name}`)) refs.push(ref);
        }
      } catch (err) {
        if (!isNotFound(err)) throw kubeCallFailed(`list ${kind} in ${namespace}`, err);
      }
    }
    for (const ref of refs) {
      const outcome = await deleteOwned(kube, ref, owner, service);
      if (outcome === 'deleted') report({ type: 'down.deleted', object: describeRef(ref) });
      if (outcome === 'not-owned') report({ type: 'down.kept', object: describeRef(ref), reason: 'not labelled as devloop’s' });
    }
  }

  /** The namespace goes too, unless asked to keep it, or devloop did not create it, or something else lives in it. */
  protected async removeNamespace(owner: Owner, opts: { keepNamespace: boolean }, report: Reporter): Promise<void> {
    const { kube, namespace } = this;
    let ns;
    try {
      ns = await kube.core.readNamespace({ name: namespace });
    } catch (err) {
      if (isNotFound(err)) return;
      throw kubeCallFailed(`read namespace ${namespace}`, err);
    }
    if (opts.keepNamespace) {
      report({ type: 'down.kept', object: `Namespace/${namespace}`, reason: '--keep-namespace' });
      return;
    }
    if (!ownedBy(ns.metadata?.labels, owner) || ns.metadata?.labels?.[MANAGED_BY] !== MANAGED_BY_VALUE) {
      report({ type: 'down.kept', object: `Namespace/${namespace}`, reason: 'devloop did not create it' });
      return;
    }
    const foreign: string[] = [];
    for (const [apiVersion, kind] of SWEPT_KINDS) {
      let list;
      try {
        list = await kube.objects.list(apiVersion, kind, namespace);
      } catch (err) {
        // A kind this cluster does not serve holds nothing; any other failure keeps the namespace (the safe side).
        if (isNotFound(err)) continue;
        throw kubeCallFailed(`list ${kind} in ${namespace}`, err);
      }
      for (const o of list.items) {
        const id = `${kind}/${o.metadata?.name}`;
        if (NAMESPACE_DEFAULTS.has(id) || ownedBy(o.metadata?.labels, owner)) continue;
        // Objects a controller made for a devloop object (ReplicaSets, Pods, token Secrets) go with their owner.
        if ((o.metadata?.ownerReferences?.length ?? 0) > 0) continue;
        foreign.push(id);
      }
    }
    if (foreign.length) {
      report({ type: 'down.kept', object: `Namespace/${namespace}`, reason: `it also holds ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}` });
      return;
    }
    try {
      await kube.core.deleteNamespace({ name: namespace });
      report({ type: 'down.deleted', object: `Namespace/${namespace}` });
    } catch (err) {
      if (!isNotFound(err)) throw kubeCallFailed(`delete namespace ${namespace}`, err);
    }
  }

  async follow(ctx: TargetContext, listener: FollowListener): Promise<Follower> {
    // The loop's modules (pods, logs, exec, sync) are loaded when a loop follows, not by every one-pass command.
    const [{ PodTracker }, { followKubeLog }, { kubeExec }, { connectSync }] = await Promise.all([
      import('../forward/pods.js'),
      import('../forward/logs.js'),
      import('../sync/channel.js'),
      import('../sync/connect.js'),
    ]);
    const loop = { followKubeLog, kubeExec, connectSync };
    const owner = ownerOf(ctx);
    const tracker = new PodTracker(
      this.kube,
      this.namespace,
      ownerSelector(owner.project, owner.developer),
      SERVICE_LABEL,
      (pods) => listener.onChange(this.instances(pods, loop)),
      (m) => listener.onError(m),
    );
    await tracker.start();
    const namespace = new NamespaceWatch(this.kube, this.namespace, listener);
    namespace.start();
    return {
      close: async () => {
        tracker.close();
        await namespace.close();
      },
    };
  }

  private instances(
    byService: Map<string, ServicePods>,
    loop: {
      followKubeLog: typeof import('../forward/logs.js').followKubeLog;
      kubeExec: typeof import('../sync/channel.js').kubeExec;
      connectSync: typeof import('../sync/connect.js').connectSync;
    },
  ): Map<string, ServiceInstances> {
    const { followKubeLog, kubeExec, connectSync } = loop;
    const out = new Map<string, ServiceInstances>();
    for (const [service, pods] of byService) {
      out.set(service, {
        running: pods.running.map((c) => ({
          key: c.key,
          image: c.image,
          ...(c.startedAt ? { startedAt: c.startedAt } : {}),
          where: `${c.pod}/${c.container}`,
          connectSync: (roots: string[]) => connectSync(kubeExec(this.kube, this.namespace, c.pod, c.container), roots),
          followLog: (fromStart: boolean, onLine: (line: string) => void) => followKubeLog(this.kube, this.namespace, c.pod, c.container, fromStart, onLine),
        })),
        ready: pods.readyCount,
        total: pods.total,
        ...(pods.ready ? { readyAt: `pod/${pods.ready}` } : {}),
      });
    }
    return out;
  }

  async forward(_ctx: TargetContext, service: ServiceConfig, report: Reporter): Promise<Forwarder> {
    const { PortForward } = await import('../forward/portforward.js');
    const list: PortForward[] = [];
    for (const p of service.ports) {
      const [local, remote] = p.split(':').map(Number) as [number, number | undefined];
      const fw = new PortForward(this.kube, this.namespace, local, remote ?? local);
      try {
        await fw.listen();
        list.push(fw);
      } catch (err) {
        report({ type: 'forward.failed', service: service.name, local, remote: remote ?? local, message: oneLine(err) });
      }
    }
    return {
      update(instances) {
        const pod = instances.readyAt?.replace(/^pod\//, '');
        for (const fw of list) {
          if (fw.currentPod === pod) continue;
          fw.setPod(pod);
          if (pod) report({ type: 'forward.ready', service: service.name, local: fw.local, remote: fw.remote, where: `pod/${pod}` });
        }
      },
      close: async () => {
        await Promise.all(list.map((f) => f.close()));
      },
    };
  }

  async restart(ctx: TargetContext, service: string): Promise<void> {
    const owner = ownerOf(ctx);
    // Only pods carrying devloop's labels for this project, developer and service.
    try {
      await this.kube.core.deleteCollectionNamespacedPod({ namespace: this.namespace, labelSelector: ownerSelector(owner.project, owner.developer, service) });
    } catch (err) {
      throw kubeCallFailed(`restart the pods of ${service}`, err);
    }
  }
}

/** How long to wait before watching the namespace again after the watch ended (API server restart, timeout). */
const NAMESPACE_REWATCH_MS = 1_000;

/**
 * Notices the developer's namespace being deleted under a running loop, through a watch on that one namespace (no
 * polling: an idle loop costs nothing): says so once while it terminates, and again when it is gone (then the loop
 * deploys everything again, which recreates it). A watch that ends is opened again, after reading the namespace, so
 * a deletion while it was down is noticed too.
 */
class NamespaceWatch {
  private abort: AbortController | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  /** Unknown until first read: what is there when the loop starts following is where it starts, not a loss. */
  private state: 'unknown' | 'present' | 'terminating' | 'gone' = 'unknown';

  constructor(
    private readonly kube: Kube,
    private readonly namespace: string,
    private readonly listener: FollowListener,
  ) {}

  start(): void {
    this.retry = setTimeout(() => this.connect().catch((err: unknown) => this.failed(err)), 0);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let resourceVersion: string | undefined;
    try {
      const ns = await this.kube.core.readNamespace({ name: this.namespace });
      this.saw(ns.metadata?.deletionTimestamp ? 'terminating' : 'present');
      resourceVersion = ns.metadata?.resourceVersion;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.saw('gone');
    }
    const watch = new this.kube.lib.Watch(this.kube.config);
    this.abort = await watch.watch(
      '/api/v1/namespaces',
      { fieldSelector: `metadata.name=${this.namespace}`, ...(resourceVersion ? { resourceVersion } : {}), allowWatchBookmarks: true },
      (phase: string, ns: { metadata?: { deletionTimestamp?: unknown } }) => {
        if (phase === 'DELETED') this.saw('gone');
        else if (phase === 'ADDED' || phase === 'MODIFIED') this.saw(ns.metadata?.deletionTimestamp ? 'terminating' : 'present');
      },
      () => this.again(),
    );
  }

  private failed(err: unknown): void {
    // Unreachable for a moment: the pod follower reports that; try again, with no verdict on the namespace.
    if (!this.closed && !isNotFound(err)) this.again();
  }

  private again(): void {
    if (this.closed) return;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.connect().catch((err: unknown) => this.failed(err)), NAMESPACE_REWATCH_MS);
  }

  private saw(next: 'present' | 'terminating' | 'gone'): void {
    if (this.closed || next === this.state) return;
    const first = this.state === 'unknown';
    // Back to 'present' once the next pass has recreated it, so a second deletion is noticed too.
    this.state = next;
    if (first) return;
    if (next === 'terminating') this.listener.onLost(`namespace ${this.namespace} is being deleted`, false);
    if (next === 'gone') this.listener.onLost(`namespace ${this.namespace} was deleted`, true);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    this.abort?.abort();
  }
}

/** Every object in either list, once. */
function unionRefs(a: ObjectRef[], b: ObjectRef[]): ObjectRef[] {
  const key = (r: ObjectRef) => `${r.apiVersion}/${r.kind}/${r.namespace ?? ''}/${r.name}`;
  const seen = new Set(b.map(key));
  return [...b, ...a.filter((r) => !seen.has(key(r)))];
}
