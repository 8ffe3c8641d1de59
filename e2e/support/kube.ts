import net from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { infraEnv, kindKubeconfig, uniqueName, waitFor } from './env.js';

/** Clients for the e2e cluster, from the infrastructure's kubeconfig. */
export interface KubeClients {
  config: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  batch: k8s.BatchV1Api;
  authorization: k8s.AuthorizationV1Api;
  objects: k8s.KubernetesObjectApi;
}

let clients: KubeClients | undefined;
let kindClients: KubeClients | undefined;

/** Clients for the host cluster (KUBECONFIG): the "remote, through the registry" target. */
export function kube(): KubeClients {
  clients ??= kubeClients(infraEnv().kubeconfig);
  return clients;
}

/** Clients for the kind cluster `devloop` (DEVLOOP_KIND_KUBECONFIG, context kind-devloop). */
export function kindKube(): KubeClients {
  kindClients ??= kubeClients(kindKubeconfig());
  return kindClients;
}

function kubeClients(file: string): KubeClients {
  const config = new k8s.KubeConfig();
  config.loadFromFile(file);
  return {
    config,
    core: config.makeApiClient(k8s.CoreV1Api),
    apps: config.makeApiClient(k8s.AppsV1Api),
    batch: config.makeApiClient(k8s.BatchV1Api),
    authorization: config.makeApiClient(k8s.AuthorizationV1Api),
    objects: k8s.KubernetesObjectApi.makeApiClient(config),
  };
}

/** Label on every namespace the e2e suite creates, so leftovers of a killed run are easy to find and delete. */
export const E2E_LABEL = 'devloop.dev/e2e';

export interface TestNamespace {
  name: string;
  /** Deletes the namespace and waits until it is gone. */
  cleanup(): Promise<void>;
}

/** A fresh namespace per test file; call `cleanup()` in afterAll. */
export async function createTestNamespace(prefix: string, k: KubeClients = kube()): Promise<TestNamespace> {
  const name = uniqueName(`e2e-${prefix}`);
  await k.core.createNamespace({ body: { metadata: { name, labels: { [E2E_LABEL]: 'true' } } } });
  // Pods cannot be created before the namespace's default ServiceAccount exists.
  await waitFor(`ServiceAccount default in ${name}`, async () =>
    (await k.core.readNamespacedServiceAccount({ name: 'default', namespace: name })) ? true : undefined,
  );
  return { name, cleanup: () => deleteNamespace(name, undefined, k) };
}

export async function deleteNamespace(name: string, timeoutMs = 120_000, k: KubeClients = kube()): Promise<void> {
  try {
    await k.core.deleteNamespace({ name });
  } catch (err) {
    if (statusCode(err) === 404) return;
    throw err;
  }
  await waitFor(
    `namespace ${name} to be deleted`,
    async () => {
      try {
        await k.core.readNamespace({ name });
        return undefined;
      } catch (err) {
        if (statusCode(err) === 404) return true;
        throw err;
      }
    },
    { timeoutMs },
  );
}

export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  return typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
}

function isPodReady(pod: k8s.V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** One line per pod (phase, conditions, container states) plus the namespace's recent events: for failure messages. */
export async function describeNamespace(namespace: string, k: KubeClients = kube()): Promise<string> {
  const pods = (await k.core.listNamespacedPod({ namespace })).items;
  const lines = pods.map((pod) => {
    const states = (pod.status?.containerStatuses ?? []).map((s) => {
      const state = s.state?.waiting
        ? `waiting ${s.state.waiting.reason ?? ''} ${s.state.waiting.message ?? ''}`
        : s.state?.terminated
          ? `terminated ${s.state.terminated.reason ?? ''} exit ${s.state.terminated.exitCode}`
          : 'running';
      return `${s.name}: ${state.trim()} (restarts ${s.restartCount})`;
    });
    return `pod ${pod.metadata?.name}: ${pod.status?.phase}; ${states.join('; ') || 'no container status'}`;
  });
  const events = (await k.core.listNamespacedEvent({ namespace })).items
    .slice(-15)
    .map((e) => `event ${e.involvedObject.kind}/${e.involvedObject.name}: ${e.reason} ${e.message ?? ''}`.trim());
  return [...lines, ...events].join('\n');
}

/** Waits until the Deployment's current generation is fully rolled out and every replica is ready. */
export async function waitForDeployment(namespace: string, name: string, timeoutMs = 180_000, k: KubeClients = kube()): Promise<k8s.V1Deployment> {
  return waitFor(
    `Deployment ${namespace}/${name} to be ready`,
    async () => {
      const d = await k.apps.readNamespacedDeployment({ name, namespace });
      const want = d.spec?.replicas ?? 1;
      const s = d.status;
      const done =
        (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) &&
        (s?.updatedReplicas ?? 0) === want &&
        (s?.readyReplicas ?? 0) === want &&
        (s?.replicas ?? 0) === want;
      return done ? d : undefined;
    },
    { timeoutMs, describe: () => describeNamespace(namespace, k) },
  );
}

/** Waits for a Ready pod matching the label selector and returns it. */
export async function waitForReadyPod(namespace: string, labelSelector: string, timeoutMs = 180_000, k: KubeClients = kube()): Promise<k8s.V1Pod> {
  return waitFor(
    `a Ready pod for ${labelSelector} in ${namespace}`,
    async () => {
      const pods = (await k.core.listNamespacedPod({ namespace, labelSelector })).items;
      return pods.find((p) => isPodReady(p) && !p.metadata?.deletionTimestamp);
    },
    { timeoutMs, describe: () => describeNamespace(namespace, k) },
  );
}

/** Waits for a Job to succeed; fails at once when it has failed. */
export async function waitForJob(namespace: string, name: string, timeoutMs = 180_000): Promise<k8s.V1Job> {
  return waitFor(
    `Job ${namespace}/${name} to complete`,
    async () => {
      const job = await kube().batch.readNamespacedJob({ name, namespace });
      const conditions = job.status?.conditions ?? [];
      const failed = conditions.find((c) => c.type === 'Failed' && c.status === 'True');
      if (failed) throw new Error(`Job ${name} failed: ${failed.reason} ${failed.message ?? ''}\n${await describeNamespace(namespace)}`);
      return conditions.some((c) => c.type === 'Complete' && c.status === 'True') ? job : undefined;
    },
    { timeoutMs, describe: () => describeNamespace(namespace) },
  );
}

function collect(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs a command in a container (through the API server and kubelet) and collects its output and exit code. */
export async function execInPod(namespace: string, pod: string, container: string, command: string[], k: KubeClients = kube()): Promise<ExecResult> {
  const stdout = collect();
  const stderr = collect();
  return new Promise<ExecResult>((resolve, reject) => {
    let status: k8s.V1Status | undefined;
    new k8s.Exec(k.config)
      .exec(namespace, pod, container, command, stdout.stream, stderr.stream, null, false, (s) => {
        status = s;
      })
      .then((ws) => {
        ws.on('close', () => {
          if (!status) return reject(new Error(`exec ${command.join(' ')} in ${namespace}/${pod}: connection closed without a status`));
          const exitCause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
          const exitCode = status.status === 'Success' ? 0 : exitCause ? Number(exitCause.message) : -1;
          resolve({ stdout: stdout.text(), stderr: stderr.text() + (exitCode === -1 ? (status.message ?? '') : ''), exitCode });
        });
        ws.on('error', reject);
      }, reject);
  });
}

export interface PortForwardHandle {
  /** The local port on 127.0.0.1 that reaches the pod's port. */
  localPort: number;
  close(): Promise<void>;
}

/** Forwards a local port on 127.0.0.1 to a pod port, one API-server stream per connection (as kubectl does). */
export async function portForward(namespace: string, pod: string, podPort: number): Promise<PortForwardHandle> {
  const forward = new k8s.PortForward(kube().config);
  const server = net.createServer((socket) => {
    const input = new PassThrough();
    socket.pipe(input);
    forward.portForward(namespace, pod, [podPort], socket, null, input).then(
      (ws) => {
        const socketOf = typeof ws === 'function' ? ws() : ws;
        socket.on('close', () => socketOf?.close());
      },
      (err: unknown) => socket.destroy(err instanceof Error ? err : new Error(String(err))),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('port-forward listener has no TCP address');
  return {
    localPort: address.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export async function podLogs(namespace: string, pod: string, container?: string): Promise<string> {
  return kube().core.readNamespacedPodLog({ name: pod, namespace, ...(container ? { container } : {}) });
}
