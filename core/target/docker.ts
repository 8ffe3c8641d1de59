import net from 'node:net';
import type Dockerode from 'dockerode';
import { dockerCallFailed, isNotFound } from '../build/docker.js';
import { UserError } from '../errors.js';
import { MANAGED_BY, MANAGED_BY_VALUE, MANIFEST_HASH_ANNOTATION, ownerLabels, SERVICE_LABEL, toLabelValue, VERSION_ANNOTATION } from '../deploy/labels.js';

/**
 * The local Docker target: each service runs as one container on a per-project network, reachable from the others
 * by its service name, with its declared ports published on 127.0.0.1 only.
 */
export interface DockerOwner {
  project: string;
  developer: string;
}

// Per project and developer: two developers on one engine get containers, names and service aliases of their own.
export const networkName = (o: DockerOwner) => `devloop-${toLabelValue(o.project)}-${toLabelValue(o.developer)}`;
export const containerName = (o: DockerOwner, service: string) => `${networkName(o)}-${service}`;

const labels = (o: DockerOwner, service?: string) => ownerLabels(o, service);

const labelFilter = (o: DockerOwner, service?: string) => Object.entries(labels(o, service)).map(([k, v]) => `${k}=${v}`);

export interface PortMapping {
  host: number;
  container: number;
}

/** Parses "8080:80" / "8080" into a mapping; malformed entries are user errors. */
export function parsePorts(service: string, ports: string[]): PortMapping[] {
  return ports.map((p) => {
    const m = /^(\d+)(?::(\d+))?$/.exec(p.trim());
    const host = Number(m?.[1]);
    const container = Number(m?.[2] ?? m?.[1]);
    if (!m || host < 1 || host > 65535 || container < 1 || container > 65535) {
      throw new UserError(`service ${service}: port "${p}" is not "local:remote"`, { hint: 'write ports as "8080:80"' });
    }
    return { host, container };
  });
}

export async function ensureNetwork(docker: Dockerode, o: DockerOwner): Promise<boolean> {
  const name = networkName(o);
  const existing = await docker.listNetworks({ filters: { name: [name] } });
  if (existing.some((n) => n.Name === name)) return false;
  try {
    await docker.createNetwork({ Name: name, Driver: 'bridge', Labels: labels(o), CheckDuplicate: true });
  } catch (err) {
    throw dockerCallFailed(`docker network create ${name}`, err);
  }
  return true;
}

export interface RunningService {
  service: string;
  container: string;
  image: string;
  version: string;
  configHash: string;
  state: string;
  running: boolean;
  ports: PortMapping[];
}

/** devloop's containers for this project and developer. */
export async function listServiceContainers(docker: Dockerode, o: DockerOwner): Promise<RunningService[]> {
  const list = await docker.listContainers({ all: true, filters: { label: labelFilter(o) } });
  return list.map((c) => ({
    service: c.Labels[SERVICE_LABEL] ?? '?',
    container: c.Names[0]?.replace(/^\//, '') ?? c.Id,
    image: c.Image,
    version: c.Labels[VERSION_ANNOTATION] ?? '',
    configHash: c.Labels[MANIFEST_HASH_ANNOTATION] ?? '',
    state: c.State,
    running: c.State === 'running',
    ports: c.Ports.filter((p) => p.PublicPort).map((p) => ({ host: p.PublicPort, container: p.PrivatePort })),
  }));
}

export interface RunRequest {
  service: string;
  image: string;
  version: string;
  ports: PortMapping[];
  /** Fingerprint of the container's settings besides the image (its ports). */
  configHash: string;
}

/** Replaces the service's container with one running `image` (nothing happens when that version already runs). */
export async function runServiceContainer(docker: Dockerode, o: DockerOwner, req: RunRequest): Promise<'started' | 'current'> {
  const name = containerName(o, req.service);
  const existing = docker.getContainer(name);
  try {
    const info = await existing.inspect();
    const l = info.Config.Labels ?? {};
    if (info.State.Running && l[VERSION_ANNOTATION] === req.version && l[MANIFEST_HASH_ANNOTATION] === req.configHash && info.Config.Image === req.image) return 'current';
    if (info.Config.Labels?.[MANAGED_BY] !== MANAGED_BY_VALUE) {
      throw new UserError(`a container named ${name} exists and is not devloop's`, { hint: `remove or rename it: docker rm -f ${name}` });
    }
    await existing.remove({ force: true });
  } catch (err) {
    if (!isNotFound(err)) throw err instanceof UserError ? err : dockerCallFailed(`docker inspect/remove ${name}`, err);
  }
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of req.ports) {
    exposed[`${p.container}/tcp`] = {};
    bindings[`${p.container}/tcp`] = [{ HostIp: '127.0.0.1', HostPort: String(p.host) }];
  }
  try {
    const container = await docker.createContainer({
      name,
      Image: req.image,
      Labels: { ...labels(o, req.service), [VERSION_ANNOTATION]: req.version, [MANIFEST_HASH_ANNOTATION]: req.configHash },
      ExposedPorts: exposed,
      HostConfig: { PortBindings: bindings, NetworkMode: networkName(o) },
      NetworkingConfig: { EndpointsConfig: { [networkName(o)]: { Aliases: [req.service] } } },
    });
    await container.start();
  } catch (err) {
    throw dockerCallFailed(`docker run ${name}`, err);
  }
  return 'started';
}

function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function lastLogLines(docker: Dockerode, name: string, n: number): Promise<string[]> {
  try {
    const buf = (await docker.getContainer(name).logs({ stdout: true, stderr: true, tail: n, follow: false })) as unknown as Buffer;
    // Non-TTY logs are multiplexed: 8-byte frame headers before each chunk.
    const lines: string[] = [];
    let i = 0;
    let text = '';
    while (i + 8 <= buf.length) {
      const size = buf.readUInt32BE(i + 4);
      text += buf.subarray(i + 8, i + 8 + size).toString('utf8');
      i += 8 + size;
    }
    for (const l of text.split('\n')) if (l.trim()) lines.push(l.trim());
    return lines.slice(-n);
  } catch {
    // The last lines only decorate the exit message; without them it still says what happened.
    return [];
  }
}

export type ContainerReadiness = { ok: true } | { ok: false; reason: string; message: string };

/**
 * Ready = the container is running and every declared port accepts connections on the container's own address. A container that
 * exits is a definitive failure, reported with its exit code and last log lines.
 */
export async function waitForContainer(docker: Dockerode, o: DockerOwner, req: RunRequest, timeoutMs: number): Promise<ContainerReadiness> {
  const name = containerName(o, req.service);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await docker.getContainer(name).inspect();
    if (!info.State.Running) {
      const lines = await lastLogLines(docker, name, 3);
      return {
        ok: false,
        reason: 'Exited',
        message: `container ${name} exited with code ${info.State.ExitCode}${lines.length ? `; last log: ${lines.join(' | ')}` : ''}`,
      };
    }
    // docker-proxy accepts on the published port before the app listens: probe the container's own address.
    const ip = info.NetworkSettings.Networks?.[networkName(o)]?.IPAddress;
    const open = await Promise.all(req.ports.map((p) => (ip ? canConnect(p.container, ip) : canConnect(p.host))));
    if (open.every(Boolean)) return { ok: true };
    if (Date.now() >= deadline) {
      const closed = req.ports.filter((_p, i) => !open[i]).map((p) => p.container);
      return { ok: false, reason: 'Unready', message: `nothing listens on container port${closed.length === 1 ? '' : 's'} ${closed.join(', ')} (gave up after ${Math.round(timeoutMs / 1000)} s)` };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Removes every devloop container of this project and developer, then the network when nothing else uses it. */
export async function removeAll(docker: Dockerode, o: DockerOwner, onDeleted: (what: string) => void): Promise<void> {
  for (const c of await listServiceContainers(docker, o)) {
    try {
      await docker.getContainer(c.container).remove({ force: true });
      onDeleted(`container/${c.container}`);
    } catch (err) {
      if (!isNotFound(err)) throw dockerCallFailed(`docker rm -f ${c.container}`, err);
    }
  }
  const name = networkName(o);
  const nets = await docker.listNetworks({ filters: { name: [name], label: [`${MANAGED_BY}=${MANAGED_BY_VALUE}`] } });
  for (const n of nets.filter((x) => x.Name === name)) {
    const detail = await docker.getNetwork(n.Id).inspect();
    if (Object.keys(detail.Containers ?? {}).length > 0) continue;
    await docker.getNetwork(n.Id).remove();
    onDeleted(`network/${name}`);
  }
}
