import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { isNotFound, kubeCallFailed, type Kube } from '../deploy/kube.js';
import { PortForward } from '../forward/portforward.js';
import { UserError } from '../errors.js';
import type { SwapPlan } from './resolve.js';

/** The environment a local process gets to stand in for the swapped workload, and what it holds open. */
export interface LocalEnvironment {
  env: Record<string, string>;
  /** Values that came from Secrets: never to be written to a log. */
  secretValues: Set<string>;
  /** The temp directory holding the container's mounted ConfigMaps and Secrets (DEVLOOP_MOUNTS), if it mounts any. */
  mountsDir?: string;
  /** Closes the port-forwards behind `<SVC>_SERVICE_HOST/_PORT` and removes the mounts directory. */
  close(): Promise<void>;
}

const envName = (service: string) => service.toUpperCase().replace(/[^A-Z0-9]/g, '_');

/** Any free port on 127.0.0.1, to give a forward. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

class Sources {
  private readonly configMaps = new Map<string, k8s.V1ConfigMap | undefined>();
  private readonly secrets = new Map<string, k8s.V1Secret | undefined>();
  readonly secretValues = new Set<string>();

  constructor(
    private readonly kube: Kube,
    private readonly namespace: string,
  ) {}

  async configMap(name: string): Promise<Record<string, string> | undefined> {
    if (!this.configMaps.has(name)) {
      try {
        this.configMaps.set(name, await this.kube.core.readNamespacedConfigMap({ name, namespace: this.namespace }));
      } catch (err) {
        if (!isNotFound(err)) throw kubeCallFailed(`reading ConfigMap ${name}`, err);
        this.configMaps.set(name, undefined);
      }
    }
    return this.configMaps.get(name)?.data;
  }

  async secret(name: string): Promise<Record<string, string> | undefined> {
    if (!this.secrets.has(name)) {
      try {
        this.secrets.set(name, await this.kube.core.readNamespacedSecret({ name, namespace: this.namespace }));
      } catch (err) {
        if (!isNotFound(err)) throw kubeCallFailed(`reading Secret ${name}`, err);
        this.secrets.set(name, undefined);
      }
    }
    const data = this.secrets.get(name)?.data;
    if (!data) return undefined;
    const decoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    for (const v of Object.values(decoded)) if (v) this.secretValues.add(v);
    return decoded;
  }
}

/** Kubernetes' `$(VAR)` expansion of env values (`$$` escapes), against what is defined so far. */
export function expandReferences(value: string, defined: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => (m === '$$' ? '$' : name !== undefined && name in defined ? defined[name]! : m));
}

function fieldValue(fieldPath: string, namespace: string, plan: SwapPlan): string | undefined {
  const meta = plan.workload?.template.metadata;
  const label = /^metadata\.labels\['(.+)'\]$/.exec(fieldPath);
  if (label) return meta?.labels?.[label[1]!];
  const annotation = /^metadata\.annotations\['(.+)'\]$/.exec(fieldPath);
  if (annotation) return meta?.annotations?.[annotation[1]!];
  switch (fieldPath) {
    case 'metadata.namespace':
      return namespace;
    case 'metadata.name':
      return `${plan.workload?.name ?? plan.serviceName}-local`;
    case 'status.podIP':
    case 'status.hostIP':
      return '127.0.0.1';
    case 'status.podIPs':
    case 'status.hostIPs':
      return '127.0.0.1';
    case 'spec.nodeName':
      return os.hostname();
    case 'spec.serviceAccountName':
      return plan.workload?.template.spec?.serviceAccountName ?? 'default';
    default:
      return undefined;
  }
}

/**
 * The environment of the swapped workload's (first) container, for a local process: literal values, ConfigMap and
 * Secret references resolved, the downward API values that make sense on this machine, `<SVC>_SERVICE_HOST/_PORT`
 * of every other Service of the namespace pointing at a local port-forward to it, and the container's mounted
 * ConfigMaps and Secrets written into a temp directory named by DEVLOOP_MOUNTS.
 */
export async function localEnvironment(kube: Kube, plan: SwapPlan): Promise<LocalEnvironment> {
  const namespace = plan.namespace;
  const container = plan.workload?.template.spec?.containers[0];
  const sources = new Sources(kube, namespace);
  const env: Record<string, string> = {};
  const forwards: PortForward[] = [];
  let mountsDir: string | undefined;
  const close = async () => {
    await Promise.allSettled(forwards.map((f) => f.close()));
    if (mountsDir) await rm(mountsDir, { recursive: true, force: true });
  };
  try {
    // Service variables first, as the kubelet puts them: the container's own values may refer to or override them.
    let services: k8s.V1Service[] = [];
    try {
      services = (await kube.core.listNamespacedService({ namespace })).items;
    } catch (err) {
      throw kubeCallFailed(`listing the Services of namespace ${namespace}`, err);
    }
    for (const svc of services) {
      const name = svc.metadata!.name!;
      const selector = svc.spec?.selector;
      if (name === plan.serviceName || !selector || Object.keys(selector).length === 0 || !svc.spec?.ports?.length) continue;
      const pods = (await kube.core.listNamespacedPod({ namespace, labelSelector: Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',') })).items;
      const ready = pods.find((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      const prefix = envName(name);
      env[`${prefix}_SERVICE_HOST`] = '127.0.0.1';
      for (const [i, port] of svc.spec.ports.entries()) {
        const target = typeof port.targetPort === 'number' ? port.targetPort : /^\d+$/.test(String(port.targetPort ?? '')) ? Number(port.targetPort) : undefined;
        const containerPort =
          target ??
          ready?.spec?.containers.flatMap((c) => c.ports ?? []).find((cp) => cp.name === (port.targetPort ?? port.name))?.containerPort ??
          port.port;
        const local = await freePort();
        const forward = new PortForward(kube, namespace, local, containerPort);
        await forward.listen();
        forward.setPod(ready?.metadata?.name);
        forwards.push(forward);
        if (i === 0) {
          env[`${prefix}_SERVICE_PORT`] = String(local);
          env[`${prefix}_PORT`] = `tcp://127.0.0.1:${local}`;
        }
        if (port.name) env[`${prefix}_SERVICE_PORT_${envName(port.name)}`] = String(local);
        const docker = `${prefix}_PORT_${port.port}_TCP`;
        env[docker] = `tcp://127.0.0.1:${local}`;
        env[`${docker}_PROTO`] = 'tcp';
        env[`${docker}_PORT`] = String(local);
        env[`${docker}_ADDR`] = '127.0.0.1';
      }
    }
    if (container) {
      for (const from of container.envFrom ?? []) {
        const data = from.configMapRef ? await sources.configMap(from.configMapRef.name!) : from.secretRef ? await sources.secret(from.secretRef.name!) : undefined;
        const ref = from.configMapRef ?? from.secretRef;
        if (!data && ref && !ref.optional) throw new UserError(`${from.configMapRef ? 'ConfigMap' : 'Secret'} ${ref.name}, which the workload's environment uses, does not exist in ${namespace}`, { hint: 'deploy it (devloop up), or mark the reference optional' });
        for (const [k, v] of Object.entries(data ?? {})) env[`${from.prefix ?? ''}${k}`] = v;
      }
      for (const e of container.env ?? []) {
        if (e.value !== undefined) {
          env[e.name] = expandReferences(e.value, env);
          continue;
        }
        const v = e.valueFrom;
        if (!v) {
          env[e.name] = '';
          continue;
        }
        if (v.configMapKeyRef || v.secretKeyRef) {
          const ref = (v.configMapKeyRef ?? v.secretKeyRef)!;
          const data = v.configMapKeyRef ? await sources.configMap(ref.name!) : await sources.secret(ref.name!);
          const value = data?.[ref.key];
          if (value === undefined) {
            if (ref.optional) continue;
            throw new UserError(`${e.name} comes from ${v.configMapKeyRef ? 'ConfigMap' : 'Secret'} ${ref.name} key ${ref.key}, which does not exist in ${namespace}`, {
              hint: 'deploy it (devloop up), or mark the reference optional',
            });
          }
          env[e.name] = value;
        } else if (v.fieldRef) {
          const value = fieldValue(v.fieldRef.fieldPath, namespace, plan);
          if (value !== undefined) env[e.name] = value;
        }
        // resourceFieldRef (limits, requests) means nothing for a process on this machine: left out.
      }
      const volumes = new Map((plan.workload?.template.spec?.volumes ?? []).map((v) => [v.name, v]));
      for (const mount of container.volumeMounts ?? []) {
        const volume = volumes.get(mount.name);
        const source = volume?.configMap ?? volume?.secret;
        if (!volume || !source) continue;
        const name = volume.configMap?.name ?? volume.secret?.secretName;
        const data = volume.configMap ? await sources.configMap(name!) : await sources.secret(name!);
        if (!data) {
          if (source.optional) continue;
          throw new UserError(`the workload mounts ${volume.configMap ? 'ConfigMap' : 'Secret'} ${name}, which does not exist in ${namespace}`, { hint: 'deploy it (devloop up), or mark it optional' });
        }
        mountsDir ??= await mkdtemp(path.join(os.tmpdir(), 'devloop-mounts-'));
        const dir = path.join(mountsDir, mount.mountPath.replace(/^\/+/, ''));
        const items = source.items?.length ? source.items.map((i) => [i.key, i.path] as const) : Object.keys(data).map((k) => [k, k] as const);
        for (const [key, file] of items) {
          if (data[key] === undefined) continue;
          const target = path.join(dir, mount.subPath ? '' : file);
          if (mount.subPath && mount.subPath !== file) continue;
          await mkdir(path.dirname(target), { recursive: true });
          await writeFile(mount.subPath ? dir : target, data[key]!, { mode: volume.secret ? 0o600 : 0o644 });
        }
      }
    }
    if (mountsDir) env.DEVLOOP_MOUNTS = mountsDir;
    return { env, secretValues: sources.secretValues, ...(mountsDir ? { mountsDir } : {}), close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The environment as a dotenv file: one `NAME="value"` per line, with `\`, `"`, `$` and newlines escaped. */
export function toDotenv(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$').replace(/\n/g, '\\n')}"`)
    .join('\n')
    .concat('\n');
}
