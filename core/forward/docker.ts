import type Dockerode from 'dockerode';
import { DEVELOPER_LABEL, MANAGED_BY, MANAGED_BY_VALUE, PROJECT_LABEL, SERVICE_LABEL, toLabelValue } from '../deploy/labels.js';

export interface RunningServiceContainer {
  /** Changes with every new container or restart: `<name>@<id>#<startedAt>`. */
  key: string;
  container: string;
  image: string;
  startedAt: string;
  ports: { host: number; container: number }[];
}

/**
 * The local Docker target's counterpart of PodTracker: follows devloop's containers of one project and developer
 * through the engine's event stream and reports the running container per service after every start, stop or
 * removal.
 */
export class DockerFollower {
  private events: (NodeJS.ReadableStream & { destroy(): void }) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly docker: Dockerode,
    private readonly owner: { project: string; developer: string },
    private readonly onChange: (byService: Map<string, RunningServiceContainer>) => void,
    private readonly onError: (message: string) => void,
  ) {}

  private get labels(): string[] {
    return [`${MANAGED_BY}=${MANAGED_BY_VALUE}`, `${PROJECT_LABEL}=${toLabelValue(this.owner.project)}`, `${DEVELOPER_LABEL}=${toLabelValue(this.owner.developer)}`];
  }

  async start(): Promise<void> {
    const stream = (await this.docker.getEvents({ filters: { type: ['container'], label: this.labels } })) as unknown as NodeJS.ReadableStream & {
      destroy(): void;
    };
    this.events = stream;
    stream.on('data', () => this.refreshSoon());
    stream.on('error', (err: Error) => {
      if (!this.closed) this.onError(`following Docker events failed: ${err.message}`);
    });
    await this.refresh();
  }

  private refreshSoon(): void {
    clearTimeout(this.timer);
    // refresh() reports its own failures through onError; close() clears the timer.
    this.timer = setTimeout(() => void this.refresh(), 50);
  }

  private async refresh(): Promise<void> {
    if (this.closed) return;
    try {
      const list = await this.docker.listContainers({ filters: { label: this.labels, status: ['running'] } });
      const out = new Map<string, RunningServiceContainer>();
      for (const c of list) {
        const service = c.Labels[SERVICE_LABEL];
        if (!service) continue;
        const name = c.Names[0]?.replace(/^\//, '') ?? c.Id;
        const info = await this.docker.getContainer(c.Id).inspect();
        out.set(service, {
          key: `${name}@${c.Id.slice(0, 12)}#${info.State.StartedAt}`,
          container: name,
          image: c.Image,
          startedAt: info.State.StartedAt,
          ports: c.Ports.filter((p) => p.PublicPort).map((p) => ({ host: p.PublicPort, container: p.PrivatePort })),
        });
      }
      if (!this.closed) this.onChange(out);
    } catch (err) {
      this.onError(`listing devloop containers failed: ${(err as Error).message}`);
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.events?.destroy();
  }
}
