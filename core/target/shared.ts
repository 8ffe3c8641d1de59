import { oneLine, UserError } from '../errors.js';
import type { Kube } from '../deploy/kube.js';
import { isNotFound, kubeCallFailed } from '../deploy/kube.js';
import { inventoryName, readDeployedRecords, type DeployedRecord, type Owner } from '../deploy/apply.js';
import type { K8sObject } from '../deploy/render.js';
import { BASELINE_DEVELOPER } from '../deploy/labels.js';
import { forkObjects, forkName } from '../route/fork.js';
import { deleteLease, listLeases, renewLease } from '../route/lease.js';
import { MeshRoutes, type HostRoute } from '../route/mesh.js';
import { callersByHost, type Caller } from '../route/propagation.js';
import type { TargetKind } from '../engine/events.js';
import { KubernetesTarget, type ImageDelivery, type Placed, type Rendered } from './kubernetes.js';
import type { ServiceConfig } from '../config/types.js';
import type { Deployable, Deployed, DeployOptions, Follower, FollowListener, Forwarder, PlannedDeploy, Reporter, TargetContext } from './target.js';
import type { SwapContext } from '../swap/session.js';

/** On a fork's Service: the baseline Service (the host) it stands in for. */
const FORK_OF_ANNOTATION = 'devloop.dev/fork-of';

/** How often a running `up` renews the developer's lease and routes: a quarter of the lease, at most every 5 minutes. */
const renewEveryMs = (leaseSeconds: number) => Math.min(leaseSeconds * 250, 300_000);

/**
 * A developer's environment in a shared cluster. A baseline namespace runs every service at main (deployed by
 * `devloop up --baseline` into a plain KubernetesTarget). Here a developer deploys only the services whose version
 * differs from the one the baseline runs, as forks next to it (`<name>-<developer>`, core/route/fork.ts), and after a
 * fork is ready adds a route to it to the host's VirtualService: requests carrying the developer's key go to the
 * fork, everything else to the baseline. Everything the developer has there lives under a lease that a running
 * `up` renews; any run removes what expired leases left. The baseline's and other developers' objects are never
 * changed (devloop's owner labels are checked before each delete), except routes and forks whose lease ended.
 */
export class SharedClusterTarget extends KubernetesTarget {
  /** Callers of each baseline host, from the last full prepare. */
  private callers = new Map<string, Caller[]>();
  /** Routes this process added, per service: renewed (and added again if they went missing) while the loop runs. */
  private readonly added = new Map<string, HostRoute[]>();

  constructor(
    kind: TargetKind,
    kube: Kube,
    readonly baseline: string,
    delivery: ImageDelivery,
    private readonly leaseSeconds: number,
  ) {
    super(kind, kube, baseline, delivery, `${baseline} (shared)`);
  }

  private routesFor(ctx: TargetContext): MeshRoutes {
    return new MeshRoutes(this.kube, this.baseline, ctx.project.name);
  }

  override async prepare(
    ctx: TargetContext,
    req: { services: ReadonlyArray<PlannedDeploy>; images: Record<string, string> },
    report: Reporter,
  ): Promise<Deployable[]> {
    const deployables = await super.prepare(ctx, req, report);
    // Who calls each host (from the manifests), to warn when a fork is reached through a caller that drops the key.
    // Inside a loop pass only some services are prepared: the callers seen in the first pass stay known.
    const seen = callersByHost(new Map(deployables.map((d) => [d.service.name, { objects: (d.detail as Rendered).objects ?? [], hosts: hostRoutes(d).map((r) => r.host) }])));
    if (req.services.length === ctx.project.services.length) this.callers = seen;
    return deployables;
  }

  protected override place(objects: K8sObject[], ctx: TargetContext): Placed {
    refuseBaselineName(ctx.developer);
    const fork = forkObjects(objects, ctx.developer);
    // The fork's Services remember which baseline host they stand in for: the routes are made from that.
    for (const o of fork.objects) {
      const of = fork.services.find((f) => o.kind === 'Service' && f.fork === o.metadata.name);
      if (of) o.metadata.annotations = { ...o.metadata.annotations, [FORK_OF_ANNOTATION]: of.service };
    }
    return { objects: fork.objects, warnings: fork.warnings };
  }

  protected override recordName(service: string, ctx: TargetContext): string {
    return forkName(inventoryName(service), ctx.developer, 253);
  }

  private baselineRecords(ctx: TargetContext): Promise<Map<string, DeployedRecord>> {
    return readDeployedRecords(this.kube, this.baseline, { project: ctx.project.name, developer: BASELINE_DEVELOPER });
  }

  override async inspect(ctx: TargetContext, deployables: ReadonlyArray<Deployable>): Promise<Map<string, Deployed>> {
    const [mine, baseline, routed] = await Promise.all([super.inspect(ctx, deployables), this.baselineRecords(ctx), this.routedHosts(ctx)]);
    const out = new Map<string, Deployed>();
    for (const d of deployables) {
      const name = d.service.name;
      const base = baseline.get(name)?.version;
      const fork = mine.get(name);
      if (fork) {
        const hosts = hostRoutes(d).map((r) => r.host);
        const routesInPlace = hosts.every((h) => routed.has(h));
        out.set(name, {
          ...fork,
          // Current only while the fork is still needed (the baseline does not run this version) and routed.
          current: fork.current && base !== d.version && routesInPlace,
          where: `fork in ${this.baseline}`,
          note: base === d.version
            ? `the baseline runs this version now: the fork goes`
            : `forked: ${base ? `baseline ${base.slice(0, 12)}, yours ${fork.version.slice(0, 12)}` : 'not in the baseline'}${hosts.length ? `; ${hosts.map((h) => `${h} → ${forkName(h, ctx.developer)}`).join(', ')}${routesInPlace ? '' : ' (route missing)'}` : ''}`,
        });
      } else if (base !== undefined && base === d.version) {
        out.set(name, { service: name, version: base, current: true, where: `baseline ${this.baseline}`, ready: 0, desired: 0, note: `served by the baseline (${this.baseline})` });
      }
    }
    return out;
  }

  /** Hosts on which this developer has a route now. */
  private async routedHosts(ctx: TargetContext): Promise<Set<string>> {
    try {
      return new Set((await this.routesFor(ctx).routes()).filter((r) => r.developers.has(ctx.developer)).map((r) => r.host));
    } catch (err) {
      // No Istio or no namespace yet: no routes. `up` says why when it gets to routing.
      if (err instanceof UserError || isNotFound(err)) return new Set();
      throw err;
    }
  }

  override async ensureEnvironment(ctx: TargetContext, _report: Reporter): Promise<void> {
    refuseBaselineName(ctx.developer);
    // Three independent checks, asked at once; the first problem in this order is the one reported.
    const checks = await Promise.allSettled([
      this.kube.core.readNamespace({ name: this.baseline }).catch((err: unknown) => {
        if (!isNotFound(err)) throw kubeCallFailed(`read namespace ${this.baseline}`, err);
        throw new UserError(`the baseline namespace ${this.baseline} does not exist`, {
          hint: 'deploy the baseline first with `devloop up --baseline` (CI does it from main), or correct shared.baseline in devloop.yaml',
        });
      }),
      this.routesFor(ctx).check(),
      this.checkAllowed(),
    ]);
    const failed = checks.find((c) => c.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /**
   * Swaps here are personal by default: a swap's route sends only the developer's keyed requests to their process,
   * under the same lease as their forks' routes. A global swap (`--global`) takes the baseline Service from everyone.
   */
  override swapContext(ctx: TargetContext, report: Reporter): SwapContext {
    const mesh = this.routesFor(ctx);
    return {
      ...super.swapContext(ctx, report),
      personal: {
        key: ctx.developer,
        holder: async (host) => {
          refuseBaselineName(ctx.developer);
          const [holder] = await Promise.all([mesh.holder(host), this.checkAllowed()]);
          return holder;
        },
        route: async (holder, host, to) => {
          const expires = await renewLease(this.kube, this.baseline, owner(ctx), this.leaseSeconds);
          await mesh.addSwap(ctx.developer, holder, host, to, expires);
        },
        renewEveryMs: renewEveryMs(this.leaseSeconds),
      },
    };
  }

  /** The developer must be allowed to write VirtualServices in the baseline namespace (asked before anything changes). */
  private async checkAllowed(): Promise<void> {
    const { AuthorizationV1Api } = this.kube.lib;
    const api = this.kube.config.makeApiClient(AuthorizationV1Api);
    const verbs = ['create', 'update', 'delete'];
    const reviews = await Promise.all(
      verbs.map((verb) =>
        api.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { namespace: this.baseline, verb, group: 'networking.istio.io', resource: 'virtualservices' } } } }),
      ),
    );
    const denied = verbs.filter((_, i) => !reviews[i]!.status?.allowed);
    if (denied.length) {
      throw new UserError(`you may not ${denied.join('/')} VirtualServices in ${this.baseline}, so devloop cannot route your requests`, {
        hint: 'ask for a Role in the baseline namespace that allows get, list, create, update and delete on virtualservices.networking.istio.io',
      });
    }
  }

  override async deploy(ctx: TargetContext, d: Deployable, previous: Deployed | undefined, opts: DeployOptions, report: Reporter): Promise<boolean> {
    const name = d.service.name;
    const mesh = this.routesFor(ctx);
    // What the baseline runs now, which hosts it has a Service for, and who routes them: read at once (all read-only).
    const [records, hosts, holders] = await Promise.all([this.baselineRecords(ctx), this.existingHosts(hostRoutes(d)), mesh.holders()]);
    const base = records.get(name)?.version;
    if (base === d.version) {
      // The baseline runs this version: the developer's fork (if any) goes, its routes first.
      await this.unfork(ctx, d, report, 'the baseline runs this version');
      report({ type: 'service.baseline', service: name, version: d.version, namespace: this.baseline });
      return true;
    }
    // A route to a host without a Service stalls new clients (istioctl analyze IST0101): no route then.
    for (const r of hosts.missing) report({ type: 'warning', service: name, message: `the baseline has no Service ${r.host}: no route; reach the fork as ${r.fork}` });
    const routes = hosts.existing;
    report({ type: 'service.forked', service: name, version: d.version, baselineVersion: base ?? null, namespace: this.baseline });
    // A VirtualService that is not devloop's routes the host: refused before the fork is applied (nothing half-done).
    for (const r of routes) holders.holderOf(r.host);
    for (const r of routes) {
      for (const c of this.callers.get(r.host) ?? []) {
        if (!c.propagates) {
          report({
            type: 'warning',
            service: name,
            message: `${c.service} calls ${r.host} and is not known to pass the routing key on: keyed requests through it reach the baseline's ${r.host} (see "Propagation" in the README)`,
          });
        }
      }
    }
    // The lease first: a fork that exists is always covered by one, so it expires even if this run dies.
    const renewedAt = Date.now();
    let expires = await renewLease(this.kube, this.baseline, owner(ctx), this.leaseSeconds);
    if (!(await super.deploy(ctx, d, previous, opts, report))) return false;
    // Only a ready fork gets a route (a route to a Service without ready pods stalls the keyed requests).
    try {
      // The route lives as long as the lease: renewed again first when the rollout took a good part of it (as often
      // as a running loop renews it), else the lease just taken still has nearly all of its time.
      if (Date.now() - renewedAt >= renewEveryMs(this.leaseSeconds)) expires = await renewLease(this.kube, this.baseline, owner(ctx), this.leaseSeconds);
      await mesh.add(ctx.developer, routes, expires);
    } catch (err) {
      if (err instanceof UserError) throw err;
      report({ type: 'deploy.failed', service: name, message: `routing to the fork failed: ${oneLine(err)}` });
      return false;
    }
    this.added.set(name, routes);
    for (const r of routes) report({ type: 'route.added', service: name, host: r.host, to: r.fork, developer: ctx.developer });
    return true;
  }

  /** The routes whose baseline Service exists, and those whose Service the baseline lacks (the fork is reached by its own name). */
  private async existingHosts(routes: HostRoute[]): Promise<{ existing: HostRoute[]; missing: HostRoute[] }> {
    const found = await Promise.all(
      routes.map((r) =>
        this.kube.core.readNamespacedService({ name: r.host, namespace: this.baseline }).then(
          () => true,
          (err: unknown) => {
            if (!isNotFound(err)) throw kubeCallFailed(`read Service ${this.baseline}/${r.host}`, err);
            return false;
          },
        ),
      ),
    );
    return { existing: routes.filter((_, i) => found[i]), missing: routes.filter((_, i) => !found[i]) };
  }

  /** Removes the developer's fork of one service: its routes first (a route must never point at a missing Service). */
  private async unfork(ctx: TargetContext, d: Deployable, report: Reporter, reason: string): Promise<void> {
    const service = d.service.name;
    const mesh = this.routesFor(ctx);
    const records = await readDeployedRecords(this.kube, this.baseline, owner(ctx));
    const record = records.get(service);
    const hosts = new Set([...hostRoutes(d).map((r) => r.host), ...(record?.objects ?? []).filter((o) => o.kind === 'Service').map((o) => hostOfFork(o.name, ctx.developer))]);
    for (const host of await mesh.remove(ctx.developer, [...hosts])) report({ type: 'route.removed', host, developer: ctx.developer, reason });
    this.added.delete(service);
    if (record) await this.removeOwned(owner(ctx), (e) => report(e.type === 'down.deleted' ? { type: 'deploy.pruned', service, object: e.object } : e), service);
  }

  /** `down`: the developer's routes, then their forks, then their lease; never the namespace nor anyone else's objects. */
  override async remove(ctx: TargetContext, _opts: { keepNamespace: boolean }, report: Reporter): Promise<void> {
    try {
      for (const host of await this.routesFor(ctx).remove(ctx.developer)) report({ type: 'route.removed', host, developer: ctx.developer, reason: 'down' });
    } catch (err) {
      // Without Istio there are no routes to remove; the forks still go.
      if (!(err instanceof UserError)) throw err;
    }
    this.added.clear();
    await this.restoreSwaps(owner(ctx), report);
    await this.removeOwned(owner(ctx), report);
    if (await deleteLease(this.kube, this.baseline, owner(ctx))) report({ type: 'down.deleted', object: `Lease/${this.baseline}/${owner(ctx).developer}` });
    report({ type: 'down.kept', object: `Namespace/${this.baseline}`, reason: 'the shared baseline' });
  }

  /** Removes what developers whose lease ended left in the namespace: their routes, forks and lease. */
  async tidy(ctx: TargetContext, report: Reporter): Promise<void> {
    const now = new Date();
    const expired = (await listLeases(this.kube, this.baseline, ctx.project.name)).filter((l) => l.expires <= now && l.developer !== ctx.developer);
    const mesh = this.routesFor(ctx);
    let swept: { host: string; developer: string }[] = [];
    try {
      swept = await mesh.sweep(now, new Set(expired.map((l) => l.developer)));
    } catch (err) {
      if (!(err instanceof UserError)) throw err; // No Istio: no routes to sweep.
    }
    for (const s of swept) report({ type: 'route.removed', host: s.host, developer: s.developer, reason: 'lease ended' });
    for (const lease of expired) {
      let removed = 0;
      const peer: Owner = { project: ctx.project.name, developer: lease.developer };
      await this.removeOwned(peer, (e) => {
        if (e.type === 'down.deleted') removed++;
      });
      await deleteLease(this.kube, this.baseline, peer);
      report({ type: 'lease.expired', developer: lease.developer, namespace: this.baseline, removed });
    }
  }

  async overview(ctx: TargetContext): Promise<string[]> {
    const lines: string[] = [];
    const leases = await listLeases(this.kube, this.baseline, ctx.project.name);
    let routes: Awaited<ReturnType<MeshRoutes['routes']>> = [];
    try {
      routes = await this.routesFor(ctx).routes();
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      lines.push(oneLine(err));
    }
    const mine = routes.filter((r) => r.developers.has(ctx.developer)).map((r) => r.host);
    lines.push(`your routes (devloop-route=${ctx.developer}): ${mine.length ? mine.join(', ') : 'none'}`);
    for (const host of mine) {
      for (const c of this.callers.get(host) ?? []) {
        if (!c.propagates) lines.push(`warning: ${c.service} calls ${host} and is not known to pass the routing key on (see "Propagation" in the README)`);
      }
    }
    const byPeer = new Map<string, string[]>();
    for (const r of routes) for (const d of r.developers.keys()) if (d !== ctx.developer) byPeer.set(d, [...(byPeer.get(d) ?? []), r.host]);
    for (const l of leases) if (l.developer !== ctx.developer && !byPeer.has(l.developer)) byPeer.set(l.developer, []);
    for (const [d, hosts] of byPeer) {
      const lease = leases.find((l) => l.developer === d);
      lines.push(`${d}: ${hosts.length ? `routes ${hosts.join(', ')}` : 'no routes'}${lease ? `; lease until ${lease.expires.toISOString()}` : ''}`);
    }
    return lines;
  }

  /**
   * A port-forward bypasses the mesh, so devloop picks the first hop: each port of the service is a local proxy that
   * adds the developer's routing key to every request and sends it to the developer's fork when there is a ready
   * one, else to the baseline's pods; further hops follow the key through Istio. A service the baseline has no
   * Service for is forwarded as on any cluster.
   */
  override async forward(ctx: TargetContext, service: ServiceConfig, report: Reporter): Promise<Forwarder> {
    const [{ readBaselineService, UpstreamFollower }, { KeyedPortForward }] = await Promise.all([import('../route/upstream.js'), import('../route/keyed-proxy.js')]);
    const selector = await readBaselineService(this.kube, this.baseline, service.name).then(
      (svc) => svc.spec?.selector,
      // No baseline Service (a new service, or no baseline yet): the developer's own pods, as on any cluster.
      () => undefined,
    );
    if (!selector || Object.keys(selector).length === 0) return super.forward(ctx, service, report);
    const forwards: InstanceType<typeof KeyedPortForward>[] = [];
    for (const p of service.ports) {
      const [local, remote] = p.split(':').map(Number) as [number, number | undefined];
      const fw = new KeyedPortForward(this.kube, this.baseline, local, remote ?? local, ctx.developer, {
        service: service.name,
        onEvent: (e) => report({ type: 'warning', service: service.name, message: `127.0.0.1:${local}: ${e.message}` }),
      });
      try {
        await fw.listen();
        forwards.push(fw);
      } catch (err) {
        report({ type: 'forward.failed', service: service.name, local, remote: remote ?? local, message: oneLine(err) });
      }
    }
    const follower = new UpstreamFollower(
      this.kube,
      this.baseline,
      service.name,
      ctx.developer,
      selector,
      (upstream) => {
        for (const fw of forwards) {
          if (fw.currentPod === upstream?.pod) continue;
          fw.setPod(upstream?.pod);
          if (upstream) {
            const whose = upstream.kind === 'fork' ? 'your fork' : 'baseline';
            report({ type: 'forward.ready', service: service.name, local: fw.local, remote: fw.remote, where: `pod/${upstream.pod} (${whose}; keyed devloop-route=${ctx.developer})` });
          }
        }
      },
      (message) => report({ type: 'warning', service: service.name, message }),
    );
    try {
      await follower.start();
    } catch (err) {
      await Promise.all(forwards.map((f) => f.close()));
      throw err;
    }
    return {
      // The follower picks the pod (the fork's, else the baseline's), not the developer's instances alone.
      update: () => undefined,
      close: async () => {
        follower.close();
        await Promise.all(forwards.map((f) => f.close()));
      },
    };
  }

  override async follow(ctx: TargetContext, listener: FollowListener): Promise<Follower> {
    const inner = await super.follow(ctx, listener);
    const mesh = this.routesFor(ctx);
    let renewal: Promise<void> = Promise.resolve();
    // The loop keeps the developer's lease and routes alive (and puts back a route a baseline re-apply dropped).
    const timer = setInterval(() => {
      renewal = renewal.then(async () => {
        try {
          const expires = await renewLease(this.kube, this.baseline, owner(ctx), this.leaseSeconds);
          await mesh.add(ctx.developer, [...this.added.values()].flat(), expires);
        } catch (err) {
          listener.onError(`renewing your lease in ${this.baseline} failed: ${oneLine(err)}`);
        }
      });
    }, renewEveryMs(this.leaseSeconds));
    return {
      close: async () => {
        clearInterval(timer);
        await renewal;
        await inner.close();
      },
    };
  }
}

/** What the baseline runs: its recorded version per service (read-only; for `plan`). */
export async function baselineVersions(kube: Kube, namespace: string, project: string): Promise<Map<string, string>> {
  const records = await readDeployedRecords(kube, namespace, { project, developer: BASELINE_DEVELOPER });
  return new Map([...records].map(([service, r]) => [service, r.version]));
}

/** `plan`'s line for a service in a shared cluster: forked or served by the baseline, and both versions. */
export function sharedPlanLine(service: string, version: string, namespace: string, baseline: string | undefined): string {
  if (baseline === version) return `${service}: served by the baseline (${namespace} runs ${version.slice(0, 12)})`;
  if (baseline === undefined) return `${service}: forked: the baseline ${namespace} does not run it`;
  return `${service}: forked: version differs from baseline (${namespace}: ${baseline.slice(0, 12)}, yours: ${version.slice(0, 12)})`;
}

const owner = (ctx: TargetContext): Owner => ({ project: ctx.project.name, developer: ctx.developer });

function refuseBaselineName(developer: string): void {
  if (developer === BASELINE_DEVELOPER) {
    throw new UserError(`"${BASELINE_DEVELOPER}" is the name of the baseline's owner, not a developer's`, {
      hint: 'set DEVLOOP_DEVELOPER (or developer: in devloop.yaml) to your own name; `devloop up --baseline` deploys the baseline',
    });
  }
}

/** The baseline hosts a deployable's fork stands in for, from its forked Services. */
function hostRoutes(d: Deployable): HostRoute[] {
  const objects = (d.detail as Rendered).objects ?? [];
  return objects.flatMap((o) => {
    const host = o.kind === 'Service' ? o.metadata.annotations?.[FORK_OF_ANNOTATION] : undefined;
    return host ? [{ host, fork: o.metadata.name }] : [];
  });
}

/** The baseline host of a fork Service's name (`web-alice` → `web`). */
function hostOfFork(fork: string, developer: string): string {
  return fork.endsWith(`-${developer}`) ? fork.slice(0, -developer.length - 1) : fork;
}
