/**
 * The swap agent: runs in the cluster in place of a swapped Service's pods (global: the Service's selector points at
 * it; personal: the developer's route sends their keyed requests to the agent's own Service), accepts the
 * connections the cluster sends to the Service's target ports and carries them, multiplexed, through one tunnel to
 * the devloop that holds the swap. It watches the swap's Lease: when devloop stops renewing it (killed, asleep,
 * offline), the agent itself puts the Service's selector back (or removes the route) and deletes the Lease; the
 * garbage collector then removes the agent and its permissions (they are owned by the Lease). Bundled alone:
 * Node's built-ins only, plus the pure route functions of core/route/routes.ts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import { encodeFrame, dataFrames, FrameDecoder, FrameType, PING_INTERVAL_MS, SILENCE_LIMIT_MS, type Frame } from './protocol.js';
import { serviceHost, withoutRouteTo, type VirtualService } from '../../route/routes.js';
import type { SwapRoute } from '../lease.js';

interface AgentConfig {
  namespace: string;
  service: string;
  lease: string;
  controlPort: number;
  ports: number[];
  secretSha256: Buffer;
  originalSelector: Record<string, string>;
  agentSelector: Record<string, string>;
  /** A personal swap's route (the Service itself is left alone then). */
  route?: SwapRoute;
  leaseCheckMs: number;
}

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

function configFromEnv(): AgentConfig {
  return {
    namespace: env('DEVLOOP_SWAP_NAMESPACE'),
    service: env('DEVLOOP_SWAP_SERVICE'),
    lease: env('DEVLOOP_SWAP_LEASE'),
    controlPort: Number(env('DEVLOOP_SWAP_CONTROL_PORT')),
    ports: env('DEVLOOP_SWAP_PORTS').split(',').map(Number),
    secretSha256: Buffer.from(env('DEVLOOP_SWAP_SECRET_SHA256'), 'hex'),
    originalSelector: JSON.parse(env('DEVLOOP_SWAP_ORIGINAL_SELECTOR')) as Record<string, string>,
    agentSelector: JSON.parse(env('DEVLOOP_SWAP_AGENT_SELECTOR')) as Record<string, string>,
    ...(process.env.DEVLOOP_SWAP_ROUTE ? { route: JSON.parse(process.env.DEVLOOP_SWAP_ROUTE) as SwapRoute } : {}),
    leaseCheckMs: Number(process.env.DEVLOOP_SWAP_LEASE_CHECK_MS ?? 1000),
  };
}

/** How long a connection waits for a tunnel before it is reset. */
const HOLD_WITHOUT_TUNNEL_MS = 3_000;

const log = (message: string) => process.stdout.write(`${new Date().toISOString()} ${message}\n`);

/** The one authenticated tunnel to devloop, and the inbound connections it carries. */
class Tunnel {
  private readonly streams = new Map<number, net.Socket>();
  private nextStream = 1;
  private lastHeard = Date.now();
  private readonly pinger: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly socket: net.Socket,
    decoder: FrameDecoder,
    private readonly onClose: (t: Tunnel) => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        log(`tunnel: ${(err as Error).message}`);
        this.close();
        return;
      }
      this.lastHeard = Date.now();
      for (const f of frames) this.onFrame(f);
    });
    socket.on('drain', () => {
      for (const s of this.streams.values()) s.resume();
    });
    socket.on('close', () => this.close());
    socket.on('error', () => this.close());
    this.pinger = setInterval(() => {
      if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
        log('tunnel: silent too long, closing it');
        this.close();
        return;
      }
      this.send(encodeFrame(FrameType.PING, 0));
    }, PING_INTERVAL_MS);
  }

  private send(frame: Buffer): boolean {
    return this.closed ? false : this.socket.write(frame);
  }

  /** Carries an inbound connection to devloop. */
  carry(inbound: net.Socket, port: number): void {
    const id = this.nextStream++;
    this.streams.set(id, inbound);
    const port16 = Buffer.allocUnsafe(2);
    port16.writeUInt16BE(port, 0);
    this.send(encodeFrame(FrameType.OPEN, id, port16));
    inbound.on('data', (chunk: Buffer) => {
      let ok = true;
      for (const f of dataFrames(id, chunk)) ok = this.send(f) && ok;
      // The tunnel is shared: a full tunnel pauses the connections feeding it until it drains.
      if (!ok) inbound.pause();
    });
    inbound.on('end', () => this.send(encodeFrame(FrameType.END, id)));
    inbound.on('error', () => undefined);
    inbound.on('close', (hadError) => {
      if (this.streams.get(id) === inbound) {
        this.streams.delete(id);
        if (hadError) this.send(encodeFrame(FrameType.RESET, id));
      }
    });
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.PING:
        this.send(encodeFrame(FrameType.PONG, 0));
        return;
      case FrameType.PONG:
        return;
      case FrameType.DATA:
        this.streams.get(f.stream)?.write(f.payload);
        return;
      case FrameType.END:
        this.streams.get(f.stream)?.end();
        return;
      case FrameType.RESET: {
        const s = this.streams.get(f.stream);
        this.streams.delete(f.stream);
        if (f.payload.length) log(`connection ${f.stream}: ${f.payload.toString()}`);
        s?.resetAndDestroy();
        return;
      }
      default:
        log(`tunnel: unexpected frame ${f.type}`);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pinger);
    for (const s of this.streams.values()) s.resetAndDestroy();
    this.streams.clear();
    this.socket.destroy();
    this.onClose(this);
  }
}

/** The Kubernetes API, as this pod's service account. */
class Api {
  private readonly host = env('KUBERNETES_SERVICE_HOST');
  private readonly port = Number(env('KUBERNETES_SERVICE_PORT'));
  private readonly dir = '/var/run/secrets/kubernetes.io/serviceaccount';
  private readonly ca = readFileSync(`${this.dir}/ca.crt`);

  request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: string }> {
    // The token is rotated by the kubelet: read it per request.
    const token = readFileSync(`${this.dir}/token`, 'utf8').trim();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: this.host,
          port: this.port,
          method,
          path,
          ca: this.ca,
          timeout: 5_000,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(payload ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}

/**
 * Watches the Lease by its renewals as this pod observes them (its own monotonic clock, so the developer's clock
 * does not matter): unrenewed for its duration, or deleted, the swap is over and the agent restores the Service.
 */
interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  time?: string;
}

/** The Service's managedFields before the swap, as the Lease recorded them (see restoreManagedFields). */
let recordedManagedFields: ManagedFieldsEntry[] | undefined;

async function watchLease(cfg: AgentConfig, api: Api): Promise<'expired' | 'deleted'> {
  const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${cfg.namespace}/leases/${cfg.lease}`;
  let lastRenew: string | undefined;
  let lastChange = performance.now();
  let durationMs = 15_000;
  for (;;) {
    try {
      const res = await api.request('GET', leasePath);
      if (res.status === 404) return 'deleted';
      if (res.status === 200) {
        const lease = JSON.parse(res.body) as { metadata?: { annotations?: Record<string, string> }; spec?: { renewTime?: string; leaseDurationSeconds?: number } };
        const recorded = lease.metadata?.annotations?.['devloop.dev/swap-managed-fields'];
        if (recorded && !recordedManagedFields) recordedManagedFields = JSON.parse(recorded) as ManagedFieldsEntry[];
        durationMs = (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
        if (lease.spec?.renewTime !== lastRenew) {
          lastRenew = lease.spec?.renewTime;
          lastChange = performance.now();
        }
      } else {
        log(`lease: GET answered ${res.status}: ${res.body.slice(0, 200)}`);
      }
    } catch (err) {
      log(`lease: ${(err as Error).message}`);
    }
    if (performance.now() - lastChange > durationMs) return 'expired';
    await new Promise((r) => setTimeout(r, cfg.leaseCheckMs));
  }
}

/**
 * Removes a personal swap's route from its VirtualService (only while it still sends to this agent's Service), with
 * optimistic concurrency: a peer's write in between makes it read again; the VirtualService devloop made only for
 * routes goes with its last route.
 */
async function removeRoute(cfg: AgentConfig, api: Api, route: SwapRoute): Promise<void> {
  const vsPath = `/apis/networking.istio.io/v1/namespaces/${cfg.namespace}/virtualservices/${route.virtualService}`;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await api.request('GET', vsPath);
      if (res.status === 404) return;
      if (res.status !== 200) throw new Error(`GET VirtualService answered ${res.status}: ${res.body.slice(0, 200)}`);
      const vs = JSON.parse(res.body) as VirtualService;
      const next = withoutRouteTo(vs, route.key, serviceHost(route.destination, cfg.namespace));
      if (next === undefined) {
        log(`VirtualService ${route.virtualService} has no route of this swap: left as it is`);
        return;
      }
      const write =
        next === null
          ? await api.request('DELETE', vsPath, { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: vs.metadata.resourceVersion } })
          : await api.request('PUT', vsPath, next);
      if (write.status === 200 || write.status === 202 || write.status === 404) {
        log(`removed the route ${route.key} for ${route.host} from VirtualService ${route.virtualService}`);
        return;
      }
      // 409: someone wrote it meanwhile; read again.
      if (write.status !== 409) throw new Error(`writing VirtualService answered ${write.status}: ${write.body.slice(0, 200)}`);
    } catch (err) {
      log(`removing the route (attempt ${attempt}): ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/**
 * Undoes what the swap changed — the Service's selector (only if it still points at this agent), or a personal
 * swap's route — then deletes the Lease.
 */
async function restore(cfg: AgentConfig, api: Api, deleteLease: boolean): Promise<void> {
  if (cfg.route) await removeRoute(cfg, api, cfg.route);
  else await restoreSelector(cfg, api);
  if (!deleteLease) return;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await api.request('DELETE', `/apis/coordination.k8s.io/v1/namespaces/${cfg.namespace}/leases/${cfg.lease}`, {
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        propagationPolicy: 'Background',
      });
      if (res.status === 200 || res.status === 202 || res.status === 404) {
        log('deleted the lease: the agent and its permissions go with it');
        return;
      }
      throw new Error(`DELETE Lease answered ${res.status}: ${res.body.slice(0, 200)}`);
    } catch (err) {
      log(`delete lease (attempt ${attempt}): ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Puts the Service's selector back, only if it still points at this agent. */
async function restoreSelector(cfg: AgentConfig, api: Api): Promise<void> {
  const servicePath = `/api/v1/namespaces/${cfg.namespace}/services/${cfg.service}`;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await api.request(
        'PATCH',
        `${servicePath}?fieldManager=devloop-swap`,
        [
          { op: 'test', path: '/spec/selector', value: cfg.agentSelector },
          { op: 'replace', path: '/spec/selector', value: cfg.originalSelector },
        ],
        'application/json-patch+json',
      );
      if (res.status === 200) {
        log(`restored the selector of Service ${cfg.service}`);
        await restoreManagedFields(cfg, api, servicePath);
      }
      else if (res.status === 422 || res.status === 404) log(`Service ${cfg.service} no longer points at the agent (${res.status}): left as it is`);
      else throw new Error(`PATCH Service answered ${res.status}: ${res.body.slice(0, 200)}`);
      break;
    } catch (err) {
      log(`restore (attempt ${attempt}): ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/**
 * Gives the Service's fields back to whoever managed them before the swap (a write of managedFields alone), if
 * nobody but the swap wrote the Service meanwhile. Best effort: the selector is what matters.
 */
async function restoreManagedFields(cfg: AgentConfig, api: Api, servicePath: string): Promise<void> {
  const before = recordedManagedFields;
  if (!before) return;
  try {
    const res = await api.request('GET', servicePath);
    if (res.status !== 200) return;
    const svc = JSON.parse(res.body) as { metadata: { resourceVersion: string; managedFields?: ManagedFieldsEntry[] } };
    const key = (e: ManagedFieldsEntry) => `${e.manager}|${e.operation}|${e.subresource ?? ''}|${e.time ? Math.floor(new Date(e.time).getTime() / 1000) : ''}`;
    const others = (list: ManagedFieldsEntry[]) => list.filter((e) => e.manager !== 'devloop-swap').map(key).sort().join('\n');
    if (others(before) !== others(svc.metadata.managedFields ?? [])) return;
    const patched = await api.request(
      'PATCH',
      servicePath,
      [
        { op: 'test', path: '/spec/selector', value: cfg.originalSelector },
        { op: 'test', path: '/metadata/resourceVersion', value: svc.metadata.resourceVersion },
        { op: 'replace', path: '/metadata/managedFields', value: before },
      ],
      'application/json-patch+json',
    );
    log(`field ownership of Service ${cfg.service}: ${patched.status === 200 ? 'restored' : `left as it is (${patched.status})`}`);
  } catch (err) {
    log(`field ownership of Service ${cfg.service} left as it is: ${(err as Error).message}`);
  }
}

function secretMatches(expectedSha256: Buffer, offered: Buffer): boolean {
  const digest = createHash('sha256').update(offered).digest();
  return digest.length === expectedSha256.length && timingSafeEqual(digest, expectedSha256);
}

async function main(): Promise<void> {
  const cfg = configFromEnv();
  const api = new Api();
  let active: Tunnel | undefined;
  // A connection that arrives while there is no tunnel (this agent just started, devloop is connecting to it)
  // waits for one a few seconds; then the caller gets a reset, which tells it at once that nobody serves.
  const waiting = new Set<{ inbound: net.Socket; port: number; timer: NodeJS.Timeout }>();
  const hold = (inbound: net.Socket, port: number) => {
    inbound.pause();
    const w = {
      inbound,
      port,
      timer: setTimeout(() => {
        waiting.delete(w);
        inbound.resetAndDestroy();
      }, HOLD_WITHOUT_TUNNEL_MS),
    };
    waiting.add(w);
    inbound.on('error', () => undefined);
    inbound.on('close', () => {
      clearTimeout(w.timer);
      waiting.delete(w);
    });
  };

  // The control port listens on loopback only: it is reachable through the Kubernetes API's port-forward, not
  // from other pods, and it takes a tunnel only with the secret whose digest the agent was given.
  const control = net.createServer((socket) => {
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    const refuse = (why: string) => {
      log(`tunnel refused: ${why}`);
      socket.end(encodeFrame(FrameType.REFUSED, 0, Buffer.from(why)));
    };
    const timer = setTimeout(() => refuse('no hello within 5 s'), 5_000);
    const onHello = (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        clearTimeout(timer);
        socket.off('data', onHello);
        refuse((err as Error).message);
        return;
      }
      if (frames.length === 0) return;
      clearTimeout(timer);
      socket.off('data', onHello);
      const hello = frames[0]!;
      if (hello.type !== FrameType.HELLO || !secretMatches(cfg.secretSha256, hello.payload)) {
        refuse('the tunnel secret does not match this swap');
        return;
      }
      const previous = active;
      const tunnel = new Tunnel(socket, decoder, (t) => {
        if (active === t) active = undefined;
        log('tunnel closed');
      });
      active = tunnel;
      previous?.close();
      // Connections that arrived before the tunnel go through it now.
      for (const w of [...waiting]) {
        clearTimeout(w.timer);
        waiting.delete(w);
        tunnel.carry(w.inbound, w.port);
        w.inbound.resume();
      }
      socket.write(encodeFrame(FrameType.WELCOME, 0, Buffer.from(JSON.stringify({ pod: os.hostname() }))));
      log('tunnel open');
    };
    socket.on('data', onHello);
    socket.on('error', () => clearTimeout(timer));
  });
  await new Promise<void>((resolve) => control.listen(cfg.controlPort, '127.0.0.1', resolve));

  for (const port of cfg.ports) {
    const server = net.createServer((inbound) => {
      inbound.setNoDelay(true);
      if (active) active.carry(inbound, port);
      else hold(inbound, port);
    });
    await new Promise<void>((resolve) => server.listen(port, resolve));
  }
  log(`agent for Service ${cfg.namespace}/${cfg.service}: ports ${cfg.ports.join(', ')}, control on 127.0.0.1:${cfg.controlPort}`);

  const end = await watchLease(cfg, api);
  log(end === 'expired' ? 'the lease expired: devloop is gone, restoring' : `the lease was deleted: the swap ended, making sure ${cfg.route ? 'its route is gone' : 'the Service is restored'}`);
  active?.close();
  await restore(cfg, api, end === 'expired');
  // Stays until the garbage collector removes it with the Lease (exiting would only make the Deployment restart it).
  for (;;) await new Promise((r) => setTimeout(r, 60_000));
}

// Deleted or evicted: leave at once, so that devloop's tunnel ends and it reconnects to the replacement.
process.on('SIGTERM', () => process.exit(0));

main().catch((err: unknown) => {
  log(`agent failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
