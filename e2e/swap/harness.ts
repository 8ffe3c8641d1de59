import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { createTestNamespace, devloopEnv, execInPod, infraEnv, kube, pushImage, repoRoot, waitFor, waitForDeployment, waitForReadyPod, type KubeClients, type TestNamespace } from '../support/index.js';
import { docker } from '../support/docker.js';

export const PROJECT = 'dlswap';
const NODE_BASE = 'node:24-slim';

/** devloop's ownership labels, written by hand (the tests do not use devloop's code to check devloop). */
export function owned(developer: string, service: string): Record<string, string> {
  return { 'app.kubernetes.io/managed-by': 'devloop', 'devloop.dev/project': PROJECT, 'devloop.dev/developer': developer, 'devloop.dev/service': service };
}

/** node:24-slim in the local registry, for the workloads the tests swap (the cluster pulls only from there). */
export async function nodeImageInRegistry(): Promise<string> {
  const ref = `${infraEnv().registry}/dl-swap/node:24-slim`;
  await docker().getImage(NODE_BASE).tag({ repo: ref.split(':').slice(0, -1).join(':'), tag: '24-slim' });
  await pushImage(ref);
  return ref;
}

/**
 * The cluster side of the workload the tests swap: `web` answers HTTP on 8080 ("cluster <pod>") and gRPC (h2c) on
 * 9090; its Service maps 80 → 8080 (named http) and 9090 → 9090. It has literal, ConfigMap and Secret environment
 * values and mounts the ConfigMap.
 */
const WEB_SERVER = `
const http = require('http'), http2 = require('http2');
http.createServer((q, s) => s.end('cluster ' + process.env.HOSTNAME)).listen(8080);
http2.createServer().on('stream', (st) => {
  const msg = Buffer.from('cluster-grpc');
  const frame = Buffer.alloc(7 + msg.length); frame.writeUInt32BE(msg.length + 2, 1); frame[5] = 0x0a; frame[6] = msg.length; msg.copy(frame, 7);
  st.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' }));
  st.end(frame);
}).listen(9090);
`;
const ORDERS_SERVER = `require('http').createServer((q, s) => s.end('orders here')).listen(8080);`;
const CLIENT = `setInterval(() => {}, 1 << 30);`;

export interface Fixture {
  namespace: string;
  ns: TestNamespace;
  repo: string;
  developer: string;
  cleanup(): Promise<void>;
}

function deployment(name: string, labels: Record<string, string>, image: string, script: string, extra: Partial<k8s.V1Container> = {}, volumes: k8s.V1Volume[] = []): k8s.V1Deployment {
  return {
    metadata: { name, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, ...labels } },
        spec: {
          terminationGracePeriodSeconds: 1,
          volumes,
          containers: [{ name, image, imagePullPolicy: 'IfNotPresent', command: ['node', '-e', script], ...extra }],
        },
      },
    },
  };
}

/** A namespace holding web (swapped), orders (reached from a local process), lonely (no Service) and a client pod. */
export async function createFixture(prefix: string, opts: { k?: KubeClients; image?: () => Promise<string> } = {}): Promise<Fixture> {
  const k = opts.k ?? kube();
  const image = await (opts.image ?? nodeImageInRegistry)();
  const ns = await createTestNamespace(`dl-swap-${prefix}`, k);
  const namespace = ns.name;
  const developer = `dl-swap-${prefix}`;
  await k.core.createNamespacedSecret({ namespace, body: { metadata: { name: 'web-secret', labels: owned(developer, 'web') }, stringData: { token: 's3cr3t-token-value' } } });
  await k.core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'web-config', labels: owned(developer, 'web') }, data: { level: 'debug', 'app.json': '{"feature":true}' } } });
  await k.apps.createNamespacedDeployment({
    namespace,
    body: deployment(
      'web',
      owned(developer, 'web'),
      image,
      WEB_SERVER,
      {
        ports: [{ name: 'http', containerPort: 8080 }, { name: 'grpc', containerPort: 9090 }],
        env: [
          { name: 'GREETING', value: 'hello from web' },
          { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'web-secret', key: 'token' } } },
          { name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'web-config', key: 'level' } } },
          { name: 'MY_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'COMBINED', value: '$(LEVEL)-$(GREETING)' },
        ],
        volumeMounts: [{ name: 'config', mountPath: '/etc/web' }],
      },
      [{ name: 'config', configMap: { name: 'web-config' } }],
    ),
  });
  await k.core.createNamespacedService({
    namespace,
    body: {
      metadata: { name: 'web', labels: owned(developer, 'web') },
      spec: {
        selector: { app: 'web' },
        ports: [
          { name: 'http', port: 80, targetPort: 'http' as unknown as k8s.IntOrString },
          { name: 'grpc', port: 9090, targetPort: 9090 as unknown as k8s.IntOrString, appProtocol: 'grpc' },
        ],
      },
    },
  });
  await k.apps.createNamespacedDeployment({ namespace, body: deployment('orders', owned(developer, 'orders'), image, ORDERS_SERVER, { ports: [{ containerPort: 8080 }] }) });
  await k.core.createNamespacedService({
    namespace,
    body: { metadata: { name: 'orders', labels: owned(developer, 'orders') }, spec: { selector: { app: 'orders' }, ports: [{ port: 8080, targetPort: 8080 as unknown as k8s.IntOrString }] } },
  });
  await k.apps.createNamespacedDeployment({ namespace, body: deployment('lonely', owned(developer, 'lonely'), image, CLIENT) });
  await k.apps.createNamespacedDeployment({ namespace, body: deployment('client', {}, image, CLIENT) });
  await Promise.all(['web', 'orders', 'client'].map((d) => waitForDeployment(namespace, d, 180_000, k)));

  const repo = await mkdtemp(path.join(os.tmpdir(), 'dl-swap-repo-'));
  await mkdir(path.join(repo, 'services/web'), { recursive: true });
  await writeFile(path.join(repo, 'services/web/Dockerfile'), 'FROM scratch\n');
  await writeFile(path.join(repo, 'devloop.yaml'), `version: 1\nname: ${PROJECT}\nservices:\n  - name: web\n    path: services/web\n`);
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, stdio: 'pipe' });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', 'commit', '-qm', 'swap fixture');
  return {
    namespace,
    ns,
    repo,
    developer,
    cleanup: async () => {
      await ns.cleanup();
      await rm(repo, { recursive: true, force: true });
    },
  };
}

export async function clientPod(namespace: string, k: KubeClients = kube()): Promise<string> {
  return (await waitForReadyPod(namespace, 'app=client', 180_000, k)).metadata!.name!;
}

/** GETs `url` from the client pod; the body, or `error: …` when the request failed. */
export async function httpFromCluster(namespace: string, url: string, k: KubeClients = kube()): Promise<string> {
  const pod = await clientPod(namespace, k);
  const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((t) => console.log(t), (e) => console.log('error: ' + (e.cause?.code ?? e.message)))`;
  const r = await execInPod(namespace, pod, 'client', ['node', '-e', script], k);
  return r.stdout.trim();
}

/** A gRPC unary call (h2c, raw framing) from the client pod; the reply's first string field, or `error: …`. */
export async function grpcFromCluster(namespace: string, authority: string): Promise<string> {
  const pod = await clientPod(namespace);
  const script = `
const http2 = require('http2');
const s = http2.connect('http://${authority}');
s.on('error', (e) => { console.log('error: ' + (e.code ?? e.message)); process.exit(0); });
const req = s.request({ ':method': 'POST', ':path': '/devloop.e2e.Echo/Who', 'content-type': 'application/grpc', te: 'trailers' });
const chunks = []; let status;
req.on('data', (c) => chunks.push(c));
req.on('trailers', (t) => (status = t['grpc-status']));
req.on('end', () => { const b = Buffer.concat(chunks); console.log(status === '0' && b.length > 7 ? b.subarray(7, 7 + b[6]).toString() : 'error: status ' + status); process.exit(0); });
req.on('error', (e) => { console.log('error: ' + (e.code ?? e.message)); process.exit(0); });
req.end(Buffer.from([0, 0, 0, 0, 0]));
setTimeout(() => { console.log('error: timeout'); process.exit(0); }, 5000);`;
  const r = await execInPod(namespace, pod, 'client', ['node', '-e', script]);
  return r.stdout.trim();
}

/** A local HTTP server answering `local <tag>`; counts its requests. */
export async function localHttp(port: number, tag = 'http'): Promise<{ requests: () => number; close(): Promise<void> }> {
  let n = 0;
  const server = http.createServer((_q, s) => {
    n++;
    s.end(`local ${tag}`);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    requests: () => n,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A local gRPC server (h2c) answering every unary call with a message whose field 1 is "local-grpc". */
export async function localGrpc(port: number): Promise<{ close(): Promise<void> }> {
  const server = http2.createServer();
  server.on('stream', (stream: http2.ServerHttp2Stream) => {
    const msg = Buffer.from('local-grpc');
    const frame = Buffer.alloc(7 + msg.length);
    frame.writeUInt32BE(msg.length + 2, 1);
    frame[5] = 0x0a;
    frame[6] = msg.length;
    msg.copy(frame, 7);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export interface SwapEvent {
  type: string;
  [k: string]: unknown;
}

/** A running `devloop swap … --json`: its events as they come, and its end. */
export class SwapProcess {
  readonly events: SwapEvent[] = [];
  stdout = '';
  stderr = '';
  readonly exited: Promise<number>;
  private readonly child: ChildProcess;

  constructor(fixture: Pick<Fixture, 'repo' | 'namespace'>, developer: string, args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [path.join(repoRoot, 'bin/devloop.js'), 'swap', '--namespace', fixture.namespace, '--json', ...args], {
      cwd: fixture.repo,
      env: devloopEnv(developer, { NO_COLOR: '1', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let pending = '';
    this.child.stdout!.on('data', (c: Buffer) => {
      this.stdout += c.toString();
      pending += c.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('{')) this.events.push(JSON.parse(l) as SwapEvent);
    });
    this.child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : -1))));
  }

  get pid(): number {
    return this.child.pid!;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async event(type: string, timeoutMs = 120_000, after = 0): Promise<SwapEvent> {
    return waitFor(
      `event ${type} from devloop swap`,
      async () => {
        const e = this.events.slice(after).find((x) => x.type === type);
        if (e) return e;
        const code = await Promise.race([this.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 0))]);
        if (code !== undefined) throw new Error(`devloop swap exited with ${code} before ${type}:\n${this.stderr}\n${this.stdout}`);
        return undefined;
      },
      { timeoutMs, intervalMs: 100, describe: async () => `stderr:\n${this.stderr}\nstdout:\n${this.stdout}` },
    );
  }

  explain(): string {
    return `stderr:\n${this.stderr}\nstdout:\n${this.stdout}`;
  }
}

/** Everything of a swap in the namespace: Leases, and objects labelled as a swap agent's (a personal swap's Service too). */
export async function swapObjects(namespace: string, k: KubeClients = kube()): Promise<string[]> {
  const leases = await k.objects.list('coordination.k8s.io/v1', 'Lease', namespace);
  const labelSelector = 'devloop.dev/swap-agent';
  const [deployments, pods, accounts, services] = await Promise.all([
    k.apps.listNamespacedDeployment({ namespace, labelSelector }),
    k.core.listNamespacedPod({ namespace, labelSelector }),
    k.core.listNamespacedServiceAccount({ namespace, labelSelector }),
    k.core.listNamespacedService({ namespace, labelSelector }),
  ]);
  const rbac = await Promise.all([
    k.objects.list('rbac.authorization.k8s.io/v1', 'Role', namespace, undefined, undefined, undefined, undefined, labelSelector),
    k.objects.list('rbac.authorization.k8s.io/v1', 'RoleBinding', namespace, undefined, undefined, undefined, undefined, labelSelector),
  ]);
  return [
    ...leases.items.map((l) => `Lease/${l.metadata!.name}`),
    ...deployments.items.map((d) => `Deployment/${d.metadata!.name}`),
    ...pods.items.map((p) => `Pod/${p.metadata!.name}`),
    ...accounts.items.map((a) => `ServiceAccount/${a.metadata!.name}`),
    ...services.items.map((s) => `Service/${s.metadata!.name}`),
    ...rbac[0].items.map((r) => `Role/${r.metadata!.name}`),
    ...rbac[1].items.map((r) => `RoleBinding/${r.metadata!.name}`),
  ];
}

/** The user's pods: name → uid and restart count, to compare before and after a swap. */
export async function userPods(namespace: string): Promise<Record<string, string>> {
  const pods = (await kube().core.listNamespacedPod({ namespace, labelSelector: 'app in (web,orders)' })).items;
  return Object.fromEntries(pods.map((p) => [p.metadata!.name!, `${p.metadata!.uid} restarts=${p.status?.containerStatuses?.[0]?.restartCount ?? 0}`]));
}

/** The parts of the Service and Deployment a swap may touch, to compare with their pre-swap state. */
export async function userSpecs(namespace: string): Promise<string> {
  const k = kube();
  const svc = await k.core.readNamespacedService({ name: 'web', namespace });
  const dep = await k.apps.readNamespacedDeployment({ name: 'web', namespace });
  // Who owns which field of the Service (server-side apply's bookkeeping) is part of it: a swap gives it back.
  const owners = (svc.metadata?.managedFields ?? []).map((m) => ({ manager: m.manager, operation: m.operation, fields: m.fieldsV1 }));
  return JSON.stringify({ service: svc.spec, serviceLabels: svc.metadata?.labels, owners, deployment: dep.spec, generation: dep.metadata?.generation });
}

/**
 * The answer to GET `url` from the client pod once it is `expected`: right after a switch the cluster's data plane
 * (kube-proxy) may still send a request or two the old way, for up to `timeoutMs`.
 */
export async function answerSoon(namespace: string, url: string, expected: string | RegExp, k: KubeClients = kube(), timeoutMs = 5_000): Promise<string> {
  let last = '';
  return waitFor(
    `${url} answering ${String(expected)}`,
    async () => {
      last = await httpFromCluster(namespace, url, k);
      return (typeof expected === 'string' ? last === expected : expected.test(last)) ? last : undefined;
    },
    { timeoutMs, intervalMs: 200, describe: async () => `last answer: ${last}` },
  );
}
