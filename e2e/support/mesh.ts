import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { buildImage, pushImage } from './docker.js';
import { infraEnv, infraTool, istiodAddress, repoRoot, waitFor } from './env.js';
import { execInPod, kube } from './kube.js';

/**
 * The mesh test kit: a tiny gRPC "whoami" service and client (e2e/support/mesh/whoami, Go, proxyless xDS when a
 * bootstrap is given), xDS bootstraps for pods and for this host, "with key K, a call to host H is answered by pod
 * P", and `istioctl analyze` as an assertion. See e2e/support/README.md.
 */

const WHOAMI_SRC = path.join(repoRoot, 'e2e/support/mesh/whoami');
/** The routing key's W3C baggage member, as the go-grpc template and devloop's routes use it. */
export const ROUTE_BAGGAGE_KEY = 'devloop-route';
/** The header that carries the routing key on its own. */
export const ROUTE_HEADER = 'x-devloop-route';

function run(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export const WHOAMI_DOCKERFILE = 'FROM gcr.io/distroless/static-debian12:nonroot\nCOPY whoami /whoami\nENTRYPOINT ["/whoami"]\nCMD ["serve"]\n';

/** Names the binary and the image: the sources and the image recipe. */
async function sourceHash(): Promise<string> {
  const hash = createHash('sha256').update(WHOAMI_DOCKERFILE).update('whoami 0755\n');
  for (const file of ['main.go', 'go.mod', 'go.sum']) hash.update(await readFile(path.join(WHOAMI_SRC, file)));
  return hash.digest('hex').slice(0, 12);
}

let binary: Promise<string> | undefined;

/**
 * The whoami program for this host (static, CGO off), built once per source version into the temp dir. Its modules
 * come through the Go module proxy into the host's module cache; the image build below copies the binary, so no
 * image build needs the network.
 */
export function whoamiBinary(): Promise<string> {
  binary ??= (async () => {
    const dir = path.join(os.tmpdir(), `devloop-whoami-${await sourceHash()}`);
    const out = path.join(dir, 'whoami');
    if (existsSync(out)) return out;
    await mkdir(dir, { recursive: true });
    const tmp = `${out}.${process.pid}`;
    const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod -buildvcs=false' };
    const res = await run('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', tmp, '.'], { cwd: WHOAMI_SRC, env, timeoutMs: 600_000 });
    if (res.code !== 0) throw new Error(`go build of the whoami test service failed (exit ${res.code}):\n${res.stderr}`);
    await rename(tmp, out);
    return out;
  })();
  return binary;
}

let image: Promise<string> | undefined;

/** The whoami image (FROM the local distroless stand-in), pushed to the local registry; returns its reference. */
export function whoamiImage(): Promise<string> {
  image ??= (async () => {
    const bin = await whoamiBinary();
    const tag = `${infraEnv().registry}/devloop-e2e/whoami:${path.basename(path.dirname(bin)).replace('devloop-whoami-', '')}`;
    const [repo, version] = [tag.slice(tag.indexOf('/') + 1, tag.lastIndexOf(':')), tag.slice(tag.lastIndexOf(':') + 1)];
    const inRegistry = await fetch(`http://${infraEnv().registry}/v2/${repo}/manifests/${version}`, {
      method: 'HEAD',
      headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    if (inRegistry.status === 200) return tag;
    await buildImage(
      {
        Dockerfile: WHOAMI_DOCKERFILE,
        whoami: { content: await readFile(bin), mode: 0o755 },
      },
      tag,
    );
    await pushImage(tag);
    return tag;
  })();
  return image;
}

/** The node identity and metadata istiod expects from a proxyless gRPC client. */
export interface XdsNode {
  /** Pod name (or any name for this host). */
  name: string;
  namespace: string;
  ip: string;
}

/** An xDS bootstrap for Istio's proxyless gRPC, pointing at istiod's plaintext xDS port. */
export function xdsBootstrap(node: XdsNode, istiod = istiodAddress()): Record<string, unknown> {
  return {
    xds_servers: [{ server_uri: istiod, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: `sidecar~${node.ip}~${node.name}.${node.namespace}~${node.namespace}.svc.cluster.local`,
      metadata: { GENERATOR: 'grpc', NAMESPACE: node.namespace, CLUSTER_ID: 'Kubernetes', INSTANCE_IPS: node.ip },
      locality: {},
    },
    server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
  };
}

/**
 * Writes a bootstrap for a client on this host that istiod treats as a workload of `namespace` (VirtualServices
 * of that namespace apply to its calls); returns the file to put in GRPC_XDS_BOOTSTRAP.
 */
export async function writeHostBootstrap(namespace: string, name = 'e2e-host'): Promise<string> {
  const ip = istiodAddress().replace(/:\d+$/, '');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-xds-'));
  const file = path.join(dir, 'bootstrap.json');
  await writeFile(file, JSON.stringify(xdsBootstrap({ name, namespace, ip }), null, 2));
  return file;
}

/**
 * Container environment that gives a pod its own bootstrap: POD_NAME, POD_NAMESPACE and POD_IP from the downward
 * API, and GRPC_XDS_BOOTSTRAP_CONFIG (grpc-go's inline form of GRPC_XDS_BOOTSTRAP) built from them by the kubelet's
 * $(VAR) expansion.
 */
export function xdsPodEnv(istiod = istiodAddress()): k8s.V1EnvVar[] {
  const config = JSON.stringify(xdsBootstrap({ name: '$(POD_NAME)', namespace: '$(POD_NAMESPACE)', ip: '$(POD_IP)' }, istiod));
  return [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'GRPC_XDS_BOOTSTRAP_CONFIG', value: config },
  ];
}

/** A whoami Deployment (one replica, label app=<app>) and, unless `service: false`, a gRPC Service of that name. */
export function whoamiWorkload(namespace: string, app: string, imageRef: string, opts: { service?: boolean; labels?: Record<string, string> } = {}): k8s.KubernetesObject[] {
  const labels = { app, ...opts.labels };
  const objects: k8s.KubernetesObject[] = [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: app, namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app } },
        template: {
          metadata: { labels },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: 'whoami',
                image: imageRef,
                ports: [{ name: 'grpc', containerPort: 8080 }],
                env: xdsPodEnv(),
                readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
              },
            ],
          },
        },
      },
    } as k8s.KubernetesObject,
  ];
  if (opts.service !== false) {
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: app, namespace, labels },
      // Istio's proxyless gRPC needs to know the port speaks gRPC: appProtocol (or a grpc- port name).
      spec: { selector: { app }, ports: [{ name: 'grpc', port: 8080, targetPort: 8080, appProtocol: 'grpc' }] },
    } as k8s.KubernetesObject);
  }
  return objects;
}

/** The xds:/// target of a Service's gRPC port. */
export function xdsTarget(service: string, namespace: string, port = 8080): string {
  return `xds:///${service}.${namespace}.svc.cluster.local:${port}`;
}

export interface CallOptions {
  /** The routing key, sent as baggage `devloop-route=<key>` and header `x-devloop-route`. */
  route?: string;
  /** Further hops: each is called by the previous one, forwarding the routing key. */
  next?: string[];
  /** Call from this pod (a whoami container) instead of from this host. */
  fromPod?: { namespace: string; name: string; container?: string };
}

/**
 * Calls `target` with the whoami client and returns the answer ("pod" or "podA > podB" for a chain). From this
 * host the client gets a bootstrap for `namespace`; from a pod it uses the pod's own.
 */
export async function callWhoami(namespace: string, target: string, opts: CallOptions = {}): Promise<string> {
  const args = ['call', '-timeout', '8s', ...(opts.route !== undefined ? ['-route', opts.route] : []), target, ...(opts.next ?? [])];
  if (opts.fromPod) {
    const res = await execInPod(opts.fromPod.namespace, opts.fromPod.name, opts.fromPod.container ?? 'whoami', ['/whoami', ...args]);
    if (res.exitCode !== 0) throw new Error(`whoami ${args.join(' ')} in pod ${opts.fromPod.name} failed (exit ${res.exitCode}): ${res.stderr.trim()}`);
    return res.stdout.trim();
  }
  const bootstrap = await writeHostBootstrap(namespace);
  const res = await run(await whoamiBinary(), args, { env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrap }, timeoutMs: 30_000 });
  if (res.code !== 0) throw new Error(`whoami ${args.join(' ')} failed (exit ${res.code}): ${res.stderr.trim()}`);
  return res.stdout.trim();
}

/** What the go-grpc template's SayHello answered, and who: `servedBy` is its x-served-by header ("podA > podB"). */
export interface GreeterAnswer {
  servedBy: string;
  message?: string;
  route?: string;
}

/** Calls the go-grpc template's greeter.v1.GreeterService/SayHello from this host (bootstrap for `namespace`). */
export async function callGreeter(namespace: string, target: string, opts: { route?: string; name?: string } = {}): Promise<GreeterAnswer> {
  const args = ['greet', '-timeout', '8s', ...(opts.route !== undefined ? ['-route', opts.route] : []), target, opts.name ?? 'e2e'];
  const bootstrap = await writeHostBootstrap(namespace);
  const res = await run(await whoamiBinary(), args, { env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrap }, timeoutMs: 30_000 });
  if (res.code !== 0) throw new Error(`whoami ${args.join(' ')} failed (exit ${res.code}): ${res.stderr.trim()}`);
  return JSON.parse(res.stdout) as GreeterAnswer;
}

/**
 * "With key K, a call to host H is answered by pod P": calls until the answer is `pod` (istiod pushes a changed
 * VirtualService within seconds; each call is a fresh client that reads the current routes) and fails with the
 * answers seen and istiod's routes for the caller when it never is. `key: undefined` sends no routing key.
 */
export async function expectAnsweredBy(opts: { namespace: string; host: string; key?: string; pod: string | RegExp } & Omit<CallOptions, 'route'>, timeoutMs = 60_000): Promise<string> {
  const seen: string[] = [];
  const matches = (answer: string) => (typeof opts.pod === 'string' ? answer === opts.pod : opts.pod.test(answer));
  return waitFor(
    `a call to ${opts.host} ${opts.key === undefined ? 'without a routing key' : `with key ${opts.key}`} to be answered by ${String(opts.pod)}`,
    async () => {
      const answer = await callWhoami(opts.namespace, opts.host, { ...opts, route: opts.key });
      if (seen.at(-1) !== answer) seen.push(answer);
      return matches(answer) ? answer : undefined;
    },
    { timeoutMs, intervalMs: 1000, describe: async () => `answers seen: ${seen.join(' | ') || 'none'}` },
  );
}

/** Pod name of the only Ready pod with label app=<app>. */
export async function podOf(namespace: string, app: string): Promise<string> {
  const pods = (await kube().core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items.filter((p) => !p.metadata?.deletionTimestamp);
  if (pods.length !== 1) throw new Error(`expected one pod for app=${app} in ${namespace}, found ${pods.map((p) => p.metadata?.name).join(', ') || 'none'}`);
  return pods[0]!.metadata!.name!;
}

/** A message of `istioctl analyze -o json`. */
export interface AnalyzerMessage {
  code: string;
  level: string;
  origin?: string;
  message?: string;
  documentationUrl?: string;
}

/** Runs `istioctl analyze` on the host cluster for each namespace and returns every message. */
export async function istioAnalyze(namespaces: string[]): Promise<AnalyzerMessage[]> {
  const istioctl = infraTool('istioctl');
  const messages: AnalyzerMessage[] = [];
  for (const namespace of namespaces) {
    const res = await run(istioctl, ['analyze', '--kubeconfig', infraEnv().kubeconfig, '-n', namespace, '-o', 'json'], { timeoutMs: 120_000 });
    const start = res.stdout.indexOf('[');
    if (start < 0) {
      if (/No validation issues found/.test(res.stdout + res.stderr)) continue;
      throw new Error(`istioctl analyze -n ${namespace} printed no JSON (exit ${res.code}):\n${res.stdout}${res.stderr}`);
    }
    messages.push(...(JSON.parse(res.stdout.slice(start)) as AnalyzerMessage[]));
  }
  return messages;
}

/** Fails on any Error-level IST0xxx message of `istioctl analyze` in the namespaces a test touched. */
export async function expectNoIstioErrors(namespaces: string[]): Promise<void> {
  const errors = (await istioAnalyze(namespaces)).filter((m) => m.level === 'Error');
  if (errors.length > 0) {
    throw new Error(`istioctl analyze found errors in ${namespaces.join(', ')}:\n${errors.map((m) => `${m.code} ${m.origin ?? ''}: ${m.message ?? ''}`).join('\n')}`);
  }
}

/** A VirtualService for `host` that sends requests whose baggage carries `devloop-route=<key>` to `routes[key]`. */
export function routingVirtualService(namespace: string, name: string, host: string, routes: Record<string, string>, baseline = host): k8s.KubernetesObject {
  const fqdn = (h: string) => (h.includes('.') ? h : `${h}.${namespace}.svc.cluster.local`);
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace },
    spec: {
      hosts: [fqdn(host)],
      http: [
        ...Object.entries(routes).map(([key, destination]) => ({
          name: `route-${key}`,
          match: [{ headers: { baggage: { regex: baggageRegex(key) } } }],
          route: [{ destination: { host: fqdn(destination) } }],
        })),
        { name: 'baseline', route: [{ destination: { host: fqdn(baseline) } }] },
      ],
    },
  } as k8s.KubernetesObject;
}

/** Matches a baggage header whose member devloop-route is exactly `key` (not a key that merely starts with it). */
export function baggageRegex(key: string): string {
  return `(.*,)?\\s*${ROUTE_BAGGAGE_KEY}=${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*(;[^,]*)?(,.*)?`;
}
