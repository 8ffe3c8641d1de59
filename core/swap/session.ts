import { createHash, randomBytes } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { isNotFound, kubeCallFailed, statusCode, type Kube } from '../deploy/kube.js';
import { ownerLabels, type Owner } from '../deploy/labels.js';
import { UserError } from '../errors.js';
import type { ImageDelivery } from '../target/kubernetes.js';
import type { Reporter } from '../target/target.js';
import { DEFAULT_AGENT_BASE, ensureAgentImage, AGENT_REPOSITORY } from './image.js';
import { coordination, holderIdentity, onlySwapWroteSince, type ManagedFieldsEntry, isExpired, LEASE_SECONDS, leaseObject, listSwaps, microTime, readSwap, recordOf, RENEW_EVERY_MS, swapName, type SwapMode, type SwapRecord, type SwapRoute } from './lease.js';
import { agentService, removeSwapRoute, type PersonalRouting } from './personal.js';
import { swapKey } from '../route/routes.js';
import { planSwap, SWAP_AGENT_LABEL, type PortRequest, type SwapPlan } from './resolve.js';
import { TunnelClient } from './tunnel.js';

/** The port the agent takes tunnels on, on its loopback interface only. */
export const CONTROL_PORT = 7_070;
/** Two agents, each with its own tunnel: when one pod goes, the Service's traffic keeps flowing through the other. */
export const AGENT_REPLICAS = 2;
const FIELD_MANAGER = 'devloop-swap';

/** Where swaps happen: a namespace of a cluster, for one owner, with the target's way of delivering images. */
export interface SwapContext {
  kube: Kube;
  namespace: string;
  owner: Owner;
  delivery: Pick<ImageDelivery, 'imageRef' | 'imageAtTarget' | 'deliver'>;
  report: Reporter;
  /** Where the target routes by the developer's key (a shared cluster): personal swaps, and the default mode. */
  personal?: PersonalRouting;
}

export interface SwapRequest {
  /** A Service, a devloop service, or a workload with a Service in front of it. */
  name: string;
  ports: PortRequest[];
  /** Replace this developer's own swap of the same Service that is still within its lease (its devloop is gone). */
  takeOver?: boolean;
  /** The image the agent is built FROM (needs node). */
  agentBase?: string;
  /** Global: all of the Service's traffic; personal: only the developer's keyed requests. Default: personal where the target routes by key, else global. */
  mode?: SwapMode;
  signal?: AbortSignal;
}

/** How a swap ended when nobody asked it to stop. */
export interface SwapEnd {
  reason: string;
  by: 'devloop' | 'cluster';
}

const agentSelectorOf = (name: string) => ({ [SWAP_AGENT_LABEL]: name });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function jsonPatchOptions(kube: Kube) {
  return kube.lib.setHeaderOptions('Content-Type', kube.lib.PatchStrategy.JsonPatch);
}

/**
 * Points the Service back at its own pods: the selector is replaced with the one recorded before the swap, and
 * only while it still is the agent's (a JSON Patch `test`), so a Service someone changed since is left alone.
 * Returns whether it changed it.
 */
export async function restoreService(
  kube: Kube,
  namespace: string,
  service: string,
  agentSelector: Record<string, string>,
  selector: Record<string, string>,
  managedFields?: ManagedFieldsEntry[],
): Promise<boolean> {
  try {
    await kube.core.patchNamespacedService(
      {
        name: service,
        namespace,
        fieldManager: FIELD_MANAGER,
        body: [
          { op: 'test', path: '/spec/selector', value: agentSelector },
          { op: 'replace', path: '/spec/selector', value: selector },
        ],
      },
      jsonPatchOptions(kube),
    );
  } catch (err) {
    // 422: the selector is no longer the agent's (restored already, or changed by someone): nothing to put back.
    if (isNotFound(err) || statusCode(err) === 422) return false;
    throw kubeCallFailed(`restoring the selector of Service ${service}`, err);
  }
  if (managedFields) await restoreManagedFields(kube, namespace, service, selector, managedFields);
  return true;
}

/**
 * Puts the Service's managedFields back as they were before the swap, so that its selector belongs to whoever
 * applied it (not to the swap), as long as nobody else wrote the Service meanwhile. A separate write: the API
 * server takes managedFields from a request only when the request changes nothing else.
 */
async function restoreManagedFields(kube: Kube, namespace: string, service: string, selector: Record<string, string>, before: ManagedFieldsEntry[]): Promise<void> {
  try {
    const now = await kube.core.readNamespacedService({ name: service, namespace });
    if (!onlySwapWroteSince(before, (now.metadata?.managedFields ?? []) as ManagedFieldsEntry[], FIELD_MANAGER)) return;
    await kube.core.patchNamespacedService(
      {
        name: service,
        namespace,
        body: [
          { op: 'test', path: '/spec/selector', value: selector },
          { op: 'test', path: '/metadata/resourceVersion', value: now.metadata!.resourceVersion },
          { op: 'replace', path: '/metadata/managedFields', value: before },
        ],
      },
      jsonPatchOptions(kube),
    );
  } catch (err) {
    // Changed meanwhile (422/409) or gone: the selector is back, which is what matters; the bookkeeping stays.
    if (isNotFound(err) || statusCode(err) === 422 || statusCode(err) === 409) return;
    throw kubeCallFailed(`restoring the field ownership of Service ${service}`, err);
  }
}

/**
 * Undoes a swap from its record: the Service's selector back, then the Lease deleted in the foreground, which
 * takes the agent, its ServiceAccount, Role and RoleBinding with it (they are owned by the Lease); waits until
 * the Lease is gone so that nothing of the swap is left when this returns.
 */
export async function undoSwap(
  kube: Kube,
  record: Pick<SwapRecord, 'name' | 'namespace' | 'service' | 'selector' | 'agentSelector' | 'managedFields' | 'route'>,
  uid?: string,
): Promise<void> {
  // The route before the agent's Service goes: a route to a Service that does not exist stalls the mesh's clients.
  if (record.route) await removeSwapRoute(kube, record.namespace, record.route);
  if (Object.keys(record.selector).length > 0) await restoreService(kube, record.namespace, record.service, record.agentSelector, record.selector, record.managedFields);
  const api = coordination(kube);
  try {
    await api.deleteNamespacedLease({
      name: record.name,
      namespace: record.namespace,
      body: { propagationPolicy: 'Foreground', gracePeriodSeconds: 0, ...(uid ? { preconditions: { uid } } : {}) },
    });
  } catch (err) {
    if (isNotFound(err) || statusCode(err) === 409) return;
    throw kubeCallFailed(`deleting Lease ${record.name}`, err);
  }
  // The agent's pod stops within its 2 s grace period; the foreground deletion ends when its dependents are gone,
  // and the pods (the Deployment's dependents' dependents) follow.
  const deadline = Date.now() + 30_000;
  const labelSelector = `${SWAP_AGENT_LABEL}=${record.name}`;
  while (Date.now() < deadline) {
    try {
      const [lease, pods] = await Promise.all([
        api.readNamespacedLease({ name: record.name, namespace: record.namespace }).then(
          () => true,
          (err: unknown) => !isNotFound(err),
        ),
        kube.core.listNamespacedPod({ namespace: record.namespace, labelSelector }),
      ]);
      if (!lease && pods.items.length === 0) return;
    } catch {
      // The API briefly unreachable: try again until the deadline.
    }
    await sleep(250);
  }
}

/** Restores this developer's swaps in the namespace whose Lease ran out (their devloop died); returns them. */
export async function restoreExpiredSwaps(kube: Kube, namespace: string, owner: Owner, report: Reporter): Promise<SwapRecord[]> {
  const mine = (await listSwaps(kube, namespace)).filter((r) => r.developer === ownerLabels(owner)['devloop.dev/developer'] && isExpired(r));
  for (const r of mine) {
    await undoSwap(kube, r, r.uid);
    report({ type: 'swap.restored', service: r.service, namespace, by: 'devloop', reason: `its lease ran out at ${r.expiresAt ?? 'an unknown time'} (devloop stopped without restoring it)` });
  }
  return mine;
}

/** "alice@laptop until 12:01:02 (renewed 3 s ago)". */
export function describeHolder(r: SwapRecord, now = Date.now()): string {
  const until = r.expiresAt ? new Date(r.expiresAt).toISOString().slice(11, 19) : '?';
  const ago = r.renewedAt ? `, renewed ${Math.max(0, Math.round((now - new Date(r.renewedAt).getTime()) / 1000))} s ago` : '';
  return `${r.holder || r.developer} until ${until} UTC${ago}`;
}

/**
 * One swap of a Service: the agent stands in for its pods and carries every connection through an authenticated
 * tunnel to local ports, while devloop renews the Lease that keeps it alive. `stop()` restores the Service; if
 * devloop dies instead, the agent does it when the Lease runs out.
 */
export class SwapSession {
  /** One tunnel per running agent pod (there are AGENT_REPLICAS, so that one can go without a gap). */
  private readonly tunnels = new Map<string, TunnelClient>();
  /** Why a pod's tunnel closed, until the supervisor handles it. */
  private readonly tunnelLost = new Map<string, string>();
  private stopping = false;
  /** The swap ending on its own (see finish): awaited by stop(), settles `ended`. */
  private finishing: Promise<void> | undefined;
  private readonly stopSignal = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private endResolve!: (end: SwapEnd) => void;
  /** Settles when the swap ended without stop() (its lease was lost, its agent could not be brought back). */
  readonly ended: Promise<SwapEnd> = new Promise((resolve) => (this.endResolve = resolve));
  private lastRefusedReport = 0;
  private reportedConnections = 0;
  private connectionsBefore = 0;
  private requestsBefore = 0;
  private reportedRequests = 0;

  private constructor(
    private readonly ctx: SwapContext,
    readonly plan: SwapPlan,
    readonly name: string,
    private readonly secret: Buffer,
    private leaseUid: string,
    readonly mode: SwapMode,
    /** A personal swap's route. */
    private readonly route: SwapRoute | undefined,
  ) {}

  get service(): string {
    return this.plan.serviceName;
  }

  /** Connections carried through the tunnel since the swap began. */
  get connections(): number {
    let n = this.connectionsBefore;
    for (const t of this.tunnels.values()) n += t.connections;
    return n;
  }

  /** Requests carried through the tunnel since the swap began (HTTP/1.x requests, HTTP/2 streams; one per connection of any other protocol). */
  get requests(): number {
    let n = this.requestsBefore;
    for (const t of this.tunnels.values()) n += t.requests;
    return n;
  }

  static async start(ctx: SwapContext, req: SwapRequest): Promise<SwapSession> {
    const { kube, namespace, owner, report } = ctx;
    const mode: SwapMode = req.mode ?? (ctx.personal ? 'personal' : 'global');
    if (mode === 'personal' && !ctx.personal) {
      throw new UserError(`a personal swap needs a shared cluster, and ${namespace} is your own namespace`, {
        hint: 'personal swaps route by your routing key (shared: in devloop.yaml); here, drop --personal to swap all of the Service’s traffic',
      });
    }
    const developer = ownerLabels(owner)['devloop.dev/developer'];
    // A personal swap is one per developer and Service; a global one is one per Service.
    const personalFor = mode === 'personal' ? developer : undefined;
    const recorded = async (service: string) => (await readSwap(kube, namespace, service))?.selector;
    // Both read first; a swap of this developer that ran out is restored before the Service is planned again below.
    const [expired, firstPlan] = await Promise.allSettled([restoreExpiredSwaps(kube, namespace, owner, report), planSwap(kube, namespace, owner.project, req.name, req.ports, recorded)]);
    if (expired.status === 'rejected') throw expired.reason;
    if (expired.value.length === 0 && firstPlan.status === 'rejected') throw firstPlan.reason;
    let plan = expired.value.length === 0 && firstPlan.status === 'fulfilled' ? firstPlan.value : await planSwap(kube, namespace, owner.project, req.name, req.ports, recorded);
    const existing = await readSwap(kube, namespace, plan.serviceName, personalFor);
    if (existing) {
      const mine = existing.developer === developer;
      if (!mine) {
        throw new UserError(`${plan.serviceName} is swapped by ${describeHolder(existing)}`, {
          hint: isExpired(existing) ? 'its lease ran out: the cluster is restoring it; try again in a few seconds' : 'ask them to stop it (devloop swap --stop), or wait until their lease runs out',
        });
      }
      if (!isExpired(existing) && !req.takeOver) {
        throw new UserError(`you already swap ${plan.serviceName} from ${describeHolder(existing)}`, {
          hint: 'stop that devloop, or pass --take-over if it is gone (crashed, another terminal closed)',
        });
      }
      await undoSwap(kube, existing, existing.uid);
      report({ type: 'swap.restored', service: plan.serviceName, namespace, by: 'devloop', reason: isExpired(existing) ? 'its lease ran out' : 'taken over' });
      plan = await planSwap(kube, namespace, owner.project, req.name, req.ports, recorded);
    }
    if (mode === 'global' && plan.selector[SWAP_AGENT_LABEL]) {
      throw new UserError(`Service ${plan.serviceName} still points at a swap agent, and no swap of it is recorded`, {
        hint: `put its selector back with devloop up (or kubectl apply of its manifest), then swap again`,
      });
    }

    // The agent's image: built on first use, delivered as the target delivers services.
    const base = req.agentBase ?? process.env.DEVLOOP_SWAP_AGENT_BASE ?? DEFAULT_AGENT_BASE;
    const image = await ensureAgentImage(base, (tag) => ctx.delivery.imageRef(AGENT_REPOSITORY, tag), report, plan.serviceName);
    if (!(await ctx.delivery.imageAtTarget(image.ref))) await ctx.delivery.deliver(plan.serviceName, image.ref, report);
    req.signal?.throwIfAborted();

    const name = swapName(plan.serviceName, personalFor);
    const agentSelector = agentSelectorOf(name);
    // Personal: where the developer's route goes (checked before anything changes: Istio, permission, a foreign
    // VirtualService). The agent's Service has a name of its own per swap, so that a later swap's route is never
    // taken for this one's.
    const route: SwapRoute | undefined = ctx.personal && mode === 'personal'
      ? {
          virtualService: await ctx.personal.holder(plan.serviceName),
          key: swapKey(ctx.personal.key),
          host: plan.serviceName,
          destination: `${name.slice(0, 54).replace(/-+$/, '')}-${randomBytes(4).toString('hex')}`,
        }
      : undefined;
    // Only this process holds the secret; the agent is given its digest.
    const secret = randomBytes(32);
    let lease: k8s.V1Lease;
    try {
      lease = await coordination(kube).createNamespacedLease({
        namespace,
        body: leaseObject({
          owner,
          namespace,
          name,
          service: plan.serviceName,
          mode,
          // A personal swap leaves the Service alone: nothing of it to record.
          selector: mode === 'global' ? plan.selector : {},
          agentSelector,
          ports: plan.ports,
          ...(mode === 'global' ? { managedFields: plan.service.metadata?.managedFields } : {}),
          ...(route ? { route } : {}),
        }),
      });
    } catch (err) {
      if (statusCode(err) === 409) {
        const holder = await readSwap(kube, namespace, plan.serviceName, personalFor);
        throw new UserError(`${plan.serviceName} was swapped a moment ago by ${holder ? describeHolder(holder) : 'someone else'}`, { hint: 'wait until it is stopped' });
      }
      throw kubeCallFailed(`creating Lease ${name}`, err);
    }
    const session = new SwapSession(ctx, plan, name, secret, lease.metadata!.uid!, mode, route);
    try {
      session.loops.push(session.renewLoop());
      await session.createAgent(lease, image.ref, secret, agentSelector);
      const pod = await session.waitForAgentPod(60_000, req.signal);
      await session.connect(pod);
      if (route) {
        // Personal: the developer's keyed requests go to the agent's Service once it has ready endpoints (a route
        // to a Service without them stalls the callers); everybody else's traffic is not touched.
        await session.waitForEndpoints(route.destination, 10_000);
        await ctx.personal!.route(route.virtualService, route.host, route.destination);
        session.loops.push(session.renewRouteLoop(route), session.superviseAgent());
      } else {
        // The switch: from now on the Service's traffic goes to the agent; the user's pods keep running untouched.
        await session.switchSelector(plan.selector, agentSelector);
        session.loops.push(session.superviseAgent());
        await session.waitForEndpoints(plan.serviceName, 10_000, (pod) => pod.startsWith(`${name}-`));
      }
      report({
        type: 'swap.started',
        service: plan.serviceName,
        namespace,
        mode,
        ports: plan.ports.map((p) => ({ port: p.port, targetPort: p.targetPort, local: p.local, ...(p.name ? { name: p.name } : {}) })),
        agent: pod,
        leaseSeconds: LEASE_SECONDS,
        ...(route ? { routeKey: ctx.personal!.key } : {}),
      });
      return session;
    } catch (err) {
      await session.teardown().catch(() => undefined); // The original error is the one to report.
      throw err;
    }
  }

  /** Points the Service at the agents, only while its selector is still the one planned (a JSON Patch `test`). */
  private async switchSelector(selector: Record<string, string>, agentSelector: Record<string, string>): Promise<void> {
    const { kube, namespace } = this.ctx;
    try {
      await kube.core.patchNamespacedService(
        {
          name: this.plan.serviceName,
          namespace,
          fieldManager: FIELD_MANAGER,
          body: [
            { op: 'test', path: '/spec/selector', value: selector },
            { op: 'replace', path: '/spec/selector', value: agentSelector },
          ],
        },
        jsonPatchOptions(kube),
      );
    } catch (err) {
      if (statusCode(err) === 422) throw new UserError(`Service ${this.plan.serviceName} changed while the swap was being set up`, { hint: 'run the swap again' });
      throw kubeCallFailed(`pointing Service ${this.plan.serviceName} at the swap agent`, err);
    }
  }

  private async createAgent(lease: k8s.V1Lease, image: string, secret: Buffer, agentSelector: Record<string, string>): Promise<void> {
    const { kube, namespace, owner } = this.ctx;
    // Owned by the Lease: whoever deletes it (devloop, or the agent when it runs out) deletes the agent and its rights.
    const ownerReferences: k8s.V1OwnerReference[] = [
      { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name: lease.metadata!.name!, uid: lease.metadata!.uid!, blockOwnerDeletion: true },
    ];
    const labels = { ...ownerLabels(owner), ...agentSelector };
    const meta = { name: this.name, namespace, labels, ownerReferences };
    const service = this.plan.serviceName;
    const rbac = kube.config.makeApiClient(kube.lib.RbacAuthorizationV1Api);
    const step = async (what: string, call: () => Promise<unknown>) => {
      try {
        await call();
      } catch (err) {
        throw kubeCallFailed(`creating ${what}`, err);
      }
    };
    // The three at once; the Deployment after them, since its pods need the ServiceAccount to exist.
    await Promise.all([
      step(`ServiceAccount ${this.name}`, () => kube.core.createNamespacedServiceAccount({ namespace, body: { metadata: meta } })),
      // Exactly what the agent restores, and nothing else: the Service's selector (global) or the route in its
      // VirtualService (personal), and the swap's Lease.
      step(`Role ${this.name}`, () =>
        rbac.createNamespacedRole({
          namespace,
          body: {
            metadata: meta,
            rules: [
              this.route
                ? { apiGroups: ['networking.istio.io'], resources: ['virtualservices'], resourceNames: [this.route.virtualService], verbs: ['get', 'update', 'delete'] }
                : { apiGroups: [''], resources: ['services'], resourceNames: [service], verbs: ['get', 'patch'] },
              { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [this.name], verbs: ['get', 'delete'] },
            ],
          },
        }),
      ),
      ...(this.route ? [step(`Service ${this.route.destination}`, () => kube.core.createNamespacedService({ namespace, body: agentService(this.route!.destination, meta, this.plan, agentSelector) }))] : []),
      step(`RoleBinding ${this.name}`, () =>
        rbac.createNamespacedRoleBinding({
          namespace,
          body: {
            metadata: meta,
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: this.name },
            subjects: [{ kind: 'ServiceAccount', name: this.name, namespace }],
          },
        }),
      ),
    ]);
    const ports = this.plan.ports;
    const privileged = ports.some((p) => p.targetPort < 1024);
    const portNames = new Map(
      (this.plan.workload?.template.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).filter((p) => p.name).map((p) => [p.containerPort, p.name!] as const)),
    );
    const env: Record<string, string> = {
      DEVLOOP_SWAP_NAMESPACE: namespace,
      DEVLOOP_SWAP_SERVICE: service,
      DEVLOOP_SWAP_LEASE: this.name,
      DEVLOOP_SWAP_CONTROL_PORT: String(CONTROL_PORT),
      DEVLOOP_SWAP_PORTS: [...new Set(ports.map((p) => p.targetPort))].join(','),
      DEVLOOP_SWAP_SECRET_SHA256: createHash('sha256').update(secret).digest('hex'),
      DEVLOOP_SWAP_ORIGINAL_SELECTOR: JSON.stringify(this.plan.selector),
      DEVLOOP_SWAP_AGENT_SELECTOR: JSON.stringify(agentSelector),
      ...(this.route ? { DEVLOOP_SWAP_ROUTE: JSON.stringify(this.route) } : {}),
    };
    await step(`Deployment ${this.name}`, () =>
      kube.apps.createNamespacedDeployment({
        namespace,
        body: {
          metadata: meta,
          spec: {
            replicas: AGENT_REPLICAS,
            selector: { matchLabels: agentSelector },
            template: {
              metadata: { labels },
              spec: {
                serviceAccountName: this.name,
                automountServiceAccountToken: true,
                enableServiceLinks: false,
                terminationGracePeriodSeconds: 2,
                ...(privileged ? { securityContext: { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] } } : {}),
                containers: [
                  {
                    name: 'agent',
                    image,
                    imagePullPolicy: 'IfNotPresent',
                    env: Object.entries(env).map(([name, value]) => ({ name, value })),
                    ports: [...new Set(ports.map((p) => p.targetPort))].map((containerPort) => ({
                      containerPort,
                      ...(portNames.get(containerPort) ? { name: portNames.get(containerPort) } : {}),
                    })),
                    securityContext: { runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
                  },
                ],
              },
            },
          },
        },
      }),
    );
  }

  /** The agent's running pod (not being deleted); waits for one up to `timeoutMs`. */
  private async waitForAgentPod(timeoutMs: number, signal?: AbortSignal): Promise<string> {
    const { kube, namespace } = this.ctx;
    const deadline = Date.now() + timeoutMs;
    let last = 'no pod yet';
    while (Date.now() < deadline) {
      signal?.throwIfAborted();
      if (this.stopSignal.signal.aborted) throw new Error('the swap is stopping');
      const pods = (await kube.core.listNamespacedPod({ namespace, labelSelector: `${SWAP_AGENT_LABEL}=${this.name}` })).items;
      const running = pods.find((p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running' && p.status.containerStatuses?.every((c) => c.ready));
      if (running) return running.metadata!.name!;
      const waiting = pods.flatMap((p) => p.status?.containerStatuses ?? []).find((c) => c.state?.waiting?.reason)?.state?.waiting;
      if (waiting) {
        last = `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`;
        if (/ErrImagePull|ImagePullBackOff|InvalidImageName/.test(waiting.reason ?? '')) break;
      } else if (pods.length) last = pods[0]!.status?.phase ?? 'pending';
      await sleep(100);
    }
    throw new UserError(`the swap agent for ${this.plan.serviceName} did not start (${last})`, {
      hint: 'see kubectl describe pod -l devloop.dev/swap-agent in the namespace; the agent image must reach the cluster as the services’ images do',
    });
  }

  private async connect(pod: string): Promise<void> {
    const local = new Map(this.plan.ports.map((p) => [p.targetPort, p.local]));
    const newTunnel = (): TunnelClient => {
      const tunnel: TunnelClient = new TunnelClient(this.ctx.kube, this.ctx.namespace, pod, CONTROL_PORT, local, {
        onConnection: () => undefined,
        onRefused: (_port, localPort, message) => {
          if (Date.now() - this.lastRefusedReport < 5_000) return;
          this.lastRefusedReport = Date.now();
          this.ctx.report({ type: 'swap.refused', service: this.plan.serviceName, local: localPort, message: `${message}: the caller got a connection reset; start your process (the swap stays up)` });
        },
        onClosed: (reason) => {
          if (this.tunnels.get(pod) === tunnel) this.tunnelLost.set(pod, reason);
        },
      });
      return tunnel;
    };
    // The agent opens its control port a moment after it starts: a refused forward is retried briefly, each time
    // with a new tunnel (a closed one is not reopened).
    const deadline = Date.now() + 15_000;
    let tunnel: TunnelClient;
    for (;;) {
      tunnel = newTunnel();
      try {
        await tunnel.open(this.secret);
        break;
      } catch (err) {
        if (/refused the tunnel/.test((err as Error).message) || Date.now() > deadline) throw err;
        await sleep(100);
      }
    }
    this.dropTunnel(pod);
    this.tunnels.set(pod, tunnel);
  }

  private dropTunnel(pod: string): void {
    const tunnel = this.tunnels.get(pod);
    if (!tunnel) return;
    tunnel.close();
    this.connectionsBefore += tunnel.connections;
    this.requestsBefore += tunnel.requests;
    this.tunnels.delete(pod);
    this.tunnelLost.delete(pod);
  }

  /**
   * Waits until a Service has ready endpoints, all of them pods that `accept` (global: the agents' pods only — the
   * switch has reached the endpoint controller, which kube-proxy follows), so that "started" means traffic goes to
   * the agents.
   */
  private async waitForEndpoints(service: string, timeoutMs: number, accept: (pod: string) => boolean = () => true): Promise<void> {
    const { kube, namespace } = this.ctx;
    const discovery = kube.config.makeApiClient(kube.lib.DiscoveryV1Api);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !this.stopSignal.signal.aborted) {
      try {
        const slices = (await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` })).items;
        const ready = slices.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready !== false);
        if (ready.length > 0 && ready.every((e) => accept(e.targetRef?.name ?? ''))) return;
      } catch {
        // Not readable (no permission on EndpointSlices): the switch itself is done; traffic follows shortly.
        return;
      }
      await sleep(100);
    }
  }

  /** The agent's pods that run and are not being deleted. */
  private async runningAgentPods(): Promise<string[]> {
    const pods = (await this.ctx.kube.core.listNamespacedPod({ namespace: this.ctx.namespace, labelSelector: `${SWAP_AGENT_LABEL}=${this.name}` })).items;
    return pods.filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running' && p.status.containerStatuses?.every((c) => c.ready)).map((p) => p.metadata!.name!);
  }

  /** Renews the Lease; a Lease that is gone means the cluster ended the swap. */
  private async renewLoop(): Promise<void> {
    const api = coordination(this.ctx.kube);
    let lastRenewed = Date.now();
    let failureReported = false;
    while (!this.stopSignal.signal.aborted) {
      await abortableSleep(RENEW_EVERY_MS, this.stopSignal.signal);
      if (this.stopSignal.signal.aborted) return;
      try {
        await api.patchNamespacedLease(
          { name: this.name, namespace: this.ctx.namespace, body: [{ op: 'test', path: '/metadata/uid', value: this.leaseUid }, { op: 'replace', path: '/spec/renewTime', value: microTime() }] },
          jsonPatchOptions(this.ctx.kube),
        );
        lastRenewed = Date.now();
        failureReported = false;
      } catch (err) {
        if (isNotFound(err) || statusCode(err) === 422) {
          this.finish({ by: 'cluster', reason: 'its lease is gone: the swap was stopped elsewhere or ran out while devloop could not renew it' });
          return;
        }
        if (Date.now() - lastRenewed > LEASE_SECONDS * 1000 && !failureReported) {
          failureReported = true;
          this.ctx.report({ type: 'swap.failed', service: this.plan.serviceName, message: `could not renew the swap's lease for ${LEASE_SECONDS} s: the cluster restores the Service (${kubeCallFailed('renewing the lease', err).message})` });
        }
      }
    }
  }

  /**
   * Renews a personal swap's route with the developer's lease (and puts it back if something dropped it). A failure
   * is reported; the swap goes on, since the route's lease is long and the next renewal tries again.
   */
  private async renewRouteLoop(route: SwapRoute): Promise<void> {
    const personal = this.ctx.personal!;
    while (!this.stopSignal.signal.aborted) {
      await abortableSleep(personal.renewEveryMs, this.stopSignal.signal);
      if (this.stopSignal.signal.aborted) return;
      try {
        await personal.route(route.virtualService, route.host, route.destination);
      } catch (err) {
        this.ctx.report({ type: 'swap.failed', service: this.plan.serviceName, message: `renewing your route to the swap failed: ${(err as Error).message}` });
      }
    }
  }

  /**
   * Follows the agent's pods: a tunnel whose pod is deleted (or whose stream closed) is dropped — the other agent
   * keeps serving — and every running pod without a tunnel gets one, so the pod the Deployment puts in place of a
   * deleted one is connected within a second. With no tunnel at all for 30 s, the Service is restored.
   */
  private async superviseAgent(): Promise<void> {
    const { report } = this.ctx;
    let lostSince: number | undefined;
    let noneSince: number | undefined;
    let lastError = '';
    while (!this.stopSignal.signal.aborted) {
      await abortableSleep(500, this.stopSignal.signal);
      if (this.stopSignal.signal.aborted) return;
      this.reportTraffic();
      let running: string[];
      try {
        running = await this.runningAgentPods();
      } catch (err) {
        // The API briefly unreachable: the tunnels' own liveness checks still hold.
        lastError = (err as Error).message;
        running = [...this.tunnels.keys()].filter((p) => !this.tunnelLost.has(p));
      }
      for (const pod of [...this.tunnels.keys()]) {
        const reason = this.tunnelLost.get(pod) ?? (running.includes(pod) ? undefined : `the agent's pod ${pod} is gone or being deleted`);
        if (!reason) continue;
        this.dropTunnel(pod);
        lostSince ??= Date.now();
        report({ type: 'swap.reconnecting', service: this.plan.serviceName, reason: `${reason} (${this.tunnels.size} other agent${this.tunnels.size === 1 ? '' : 's'} serving)` });
      }
      for (const pod of running.filter((p) => !this.tunnels.has(p))) {
        try {
          await this.connect(pod);
          if (lostSince !== undefined) report({ type: 'swap.reconnected', service: this.plan.serviceName, agent: pod, afterMs: Date.now() - lostSince });
          lostSince = undefined;
        } catch (err) {
          if (this.stopSignal.signal.aborted) return;
          lastError = (err as Error).message;
        }
      }
      if (this.tunnels.size > 0) {
        noneSince = undefined;
        continue;
      }
      noneSince ??= Date.now();
      if (Date.now() - noneSince > 30_000) {
        this.finish({ by: 'devloop', reason: `no agent could be reached for 30 s${lastError ? ` (${lastError})` : ''}`, restore: true });
        return;
      }
    }
  }

  private reportTraffic(): void {
    const n = this.connections;
    const requests = this.requests;
    if (n !== this.reportedConnections || requests !== this.reportedRequests) {
      this.reportedConnections = n;
      this.reportedRequests = requests;
      this.ctx.report({ type: 'swap.traffic', service: this.plan.serviceName, connections: n, requests });
    }
  }

  /** Ends the swap on its own (not through stop()). */
  private finish(end: SwapEnd & { restore?: boolean }): void {
    if (this.stopping) return;
    this.stopping = true;
    this.stopSignal.abort();
    // stop() awaits it; a teardown failure is reported as swap.failed, and `ended` settles when it is done.
    this.finishing = (async () => {
      if (end.restore) await this.teardown().catch((err: unknown) => this.ctx.report({ type: 'swap.failed', service: this.plan.serviceName, message: (err as Error).message }));
      else for (const pod of [...this.tunnels.keys()]) this.dropTunnel(pod);
      this.ctx.report({ type: 'swap.restored', service: this.plan.serviceName, namespace: this.ctx.namespace, by: end.by, reason: end.reason });
      this.endResolve({ by: end.by, reason: end.reason });
    })();
  }

  /** Restores the Service and removes everything of the swap; waits until it is gone. */
  async stop(reason = 'stopped'): Promise<void> {
    if (this.stopping) {
      await this.finishing;
      await this.ended;
      return;
    }
    this.stopping = true;
    this.stopSignal.abort();
    await this.teardown();
    this.ctx.report({ type: 'swap.restored', service: this.plan.serviceName, namespace: this.ctx.namespace, by: 'devloop', reason });
    this.endResolve({ by: 'devloop', reason });
  }

  private async teardown(): Promise<void> {
    this.stopSignal.abort();
    await Promise.allSettled(this.loops);
    this.reportTraffic();
    await undoSwap(
      this.ctx.kube,
      {
        name: this.name,
        namespace: this.ctx.namespace,
        service: this.plan.serviceName,
        selector: this.mode === 'global' ? this.plan.selector : {},
        agentSelector: agentSelectorOf(this.name),
        ...(this.mode === 'global' && this.plan.service.metadata?.managedFields ? { managedFields: this.plan.service.metadata.managedFields as ManagedFieldsEntry[] } : {}),
        ...(this.route ? { route: this.route } : {}),
      },
      this.leaseUid,
    );
    for (const pod of [...this.tunnels.keys()]) this.dropTunnel(pod);
  }

  /** The holder identity this devloop writes into the Lease. */
  static holder(developer: string): string {
    return holderIdentity(developer);
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

export { recordOf };
