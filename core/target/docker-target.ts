import { createHash } from 'node:crypto';
import type Dockerode from 'dockerode';
import type { ServiceConfig } from '../config/types.js';
import { dockerClient, ensureDockerReachable } from '../build/docker.js';
import { DockerFollower } from '../forward/docker.js';
import { followDockerLog } from '../forward/logs.js';
import { dockerExec } from '../sync/channel.js';
import { connectSync } from '../sync/connect.js';
import { oneLine } from '../errors.js';
import {
  containerName,
  ensureNetwork,
  listServiceContainers,
  parsePorts,
  removeAll,
  runServiceContainer,
  waitForContainer,
  type PortMapping,
} from './docker.js';
import type {
  Deployable,
  Deployed,
  DeployOptions,
  Follower,
  FollowListener,
  Forwarder,
  Instance,
  PlannedDeploy,
  Reporter,
  ServiceInstances,
  Target,
  TargetContext,
} from './target.js';

const ownerOf = (ctx: TargetContext) => ({ project: ctx.project.name, developer: ctx.developer });

/**
 * The local Docker target: each service runs as one container on a per-project network, reachable from the others
 * by its service name, with its declared ports published on 127.0.0.1. Images run from the local engine, so there is
 * nothing to deliver.
 */
export class DockerTarget implements Target {
  readonly kind = 'docker' as const;
  readonly where = 'local Docker';
  readonly describe = {};
  private client: Dockerode | undefined;

  private async docker(): Promise<Dockerode> {
    return (this.client ??= await dockerClient());
  }

  imageRef(image: string, version: string): string {
    return `${image}:${version}`;
  }

  async prepare(ctx: TargetContext, req: { services: ReadonlyArray<PlannedDeploy> }, report: Reporter): Promise<Deployable[]> {
    // There is no mesh on local Docker: every service runs here, as without `shared:`.
    if (ctx.project.shared) report({ type: 'warning', message: `shared: in devloop.yaml is ignored on local Docker (no mesh); every service runs here` });
    return req.services.map((p) => {
      const ports = parsePorts(p.service.name, p.service.ports);
      return { ...p, configHash: hashPorts(ports), detail: ports };
    });
  }

  async inspect(ctx: TargetContext, deployables: ReadonlyArray<Deployable>): Promise<Map<string, Deployed>> {
    const docker = await this.docker();
    await ensureDockerReachable(docker);
    const running = await listServiceContainers(docker, ownerOf(ctx));
    const out = new Map<string, Deployed>();
    for (const d of deployables) {
      const c = running.find((r) => r.service === d.service.name);
      if (!c) continue;
      out.set(d.service.name, {
        service: d.service.name,
        version: c.version,
        current: c.running && c.version === d.version && c.image === d.ref && c.configHash === d.configHash,
        where: c.container,
        image: c.image,
        ready: c.running ? 1 : 0,
        desired: 1,
      });
    }
    return out;
  }

  async ensureEnvironment(ctx: TargetContext): Promise<void> {
    const docker = await this.docker();
    await ensureDockerReachable(docker);
    await ensureNetwork(docker, ownerOf(ctx));
  }

  async imageAtTarget(): Promise<undefined> {
    // The target runs images straight from the local engine: the builder's own check is the one that counts.
    return undefined;
  }

  async deliver(): Promise<void> {
    // Nothing to carry: the local engine that built the image runs it.
  }

  async pruneImages(): Promise<string[]> {
    // The local engine's images are the builder's to prune.
    return [];
  }

  async deploy(ctx: TargetContext, d: Deployable, _previous: Deployed | undefined, opts: DeployOptions, report: Reporter): Promise<boolean> {
    const name = d.service.name;
    const owner = ownerOf(ctx);
    const t0 = Date.now();
    try {
      const docker = await this.docker();
      const req = { service: name, image: d.ref, version: d.version, ports: d.detail as PortMapping[], configHash: d.configHash };
      await runServiceContainer(docker, owner, req);
      report({ type: 'deploy.applied', service: name, objects: [`container/${containerName(owner, name)}`] });
      const r = await waitForContainer(docker, owner, req, opts.timeoutMs);
      if (!r.ok) {
        report({ type: 'rollout.failed', service: name, reason: r.reason, message: r.message });
        return false;
      }
      report({ type: 'rollout.ready', service: name, durationMs: Date.now() - t0 });
      return true;
    } catch (err) {
      report({ type: 'deploy.failed', service: name, message: oneLine(err) });
      return false;
    }
  }

  async remove(ctx: TargetContext, _opts: { keepNamespace: boolean }, report: Reporter): Promise<void> {
    const docker = await this.docker();
    await ensureDockerReachable(docker);
    await removeAll(docker, ownerOf(ctx), (object) => report({ type: 'down.deleted', object }));
  }

  async follow(ctx: TargetContext, listener: FollowListener): Promise<Follower> {
    const docker = await this.docker();
    const follower = new DockerFollower(
      docker,
      ownerOf(ctx),
      (byService) => {
        const out = new Map<string, ServiceInstances>();
        for (const [service, c] of byService) {
          const instance: Instance = {
            key: c.key,
            image: c.image,
            startedAt: c.startedAt,
            where: `container ${c.container}`,
            connectSync: (roots) => connectSync(dockerExec(docker, c.container), roots, { docker, container: c.container }),
            followLog: (fromStart, onLine) => followDockerLog(docker, c.container, fromStart ? 0 : Math.floor(Date.now() / 1000), onLine),
          };
          out.set(service, { running: [instance], ready: 1, total: 1, readyAt: `container/${c.container}` });
        }
        listener.onChange(out);
      },
      (m) => listener.onError(m),
    );
    await follower.start();
    return { close: async () => follower.close() };
  }

  async forward(_ctx: TargetContext, service: ServiceConfig, report: Reporter): Promise<Forwarder> {
    // Docker publishes the ports itself; the forwarder only says where they lead once a container runs.
    const ports = parsePorts(service.name, service.ports);
    let shown: string | undefined;
    return {
      update(instances) {
        if (!instances.readyAt || instances.readyAt === shown) return;
        shown = instances.readyAt;
        for (const p of ports) report({ type: 'forward.ready', service: service.name, local: p.host, remote: p.container, where: instances.readyAt });
      },
      close: async () => {},
    };
  }

  async restart(ctx: TargetContext, service: string): Promise<void> {
    const docker = await this.docker();
    await docker.getContainer(containerName(ownerOf(ctx), service)).restart();
  }
}

function hashPorts(ports: PortMapping[]): string {
  return createHash('sha256')
    .update(JSON.stringify(ports.map((p) => [p.host, p.container])))
    .digest('hex')
    .slice(0, 16);
}
