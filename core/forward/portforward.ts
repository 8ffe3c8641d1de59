import net from 'node:net';
import { PassThrough } from 'node:stream';
import type { Kube } from '../deploy/kube.js';
import { UserError } from '../errors.js';

/**
 * A local port on 127.0.0.1 forwarded to a port of whichever pod is current. The listener stays up for the whole
 * session; each connection opens its own stream through the API server to the pod current at that moment, so
 * when a rollout or a crash replaces the pod, the next connection reaches the new one.
 */
export class PortForward {
  private server: net.Server | undefined;
  private pod: string | undefined;
  /** Open connections and the pod each one reaches. */
  private readonly sockets = new Map<net.Socket, string>();

  constructor(
    private readonly kube: Kube,
    private readonly namespace: string,
    readonly local: number,
    readonly remote: number,
  ) {}

  /** Starts listening; a port already in use is a user error naming it. */
  async listen(): Promise<void> {
    const forward = new this.kube.lib.PortForward(this.kube.config);
    const server = net.createServer((socket) => {
      const pod = this.pod;
      if (!pod) {
        socket.destroy();
        return;
      }
      this.sockets.set(socket, pod);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      const input = new PassThrough();
      socket.pipe(input);
      forward.portForward(this.namespace, pod, [this.remote], socket, null, input).then(
        (ws) => {
          const getSocket = typeof ws === 'function' ? ws : () => ws;
          const wsNow = getSocket();
          wsNow?.on('close', () => socket.destroy());
          socket.on('close', () => getSocket()?.close());
        },
        () => socket.destroy(),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'EADDRINUSE'
            ? new UserError(`port 127.0.0.1:${this.local} is already in use`, { hint: 'stop what listens there, or change the service’s `ports` in devloop.yaml' })
            : err,
        ),
      );
      server.listen(this.local, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Points new connections at `pod` (undefined: refuse connections until a pod is ready). */
  setPod(pod: string | undefined): void {
    this.pod = pod;
    // Connections to a pod that is no longer current are closed, so clients (keep-alive pools) reconnect to the
    // current one instead of talking into a stream that leads nowhere.
    for (const [socket, to] of this.sockets) if (to !== pod) socket.destroy();
  }

  get currentPod(): string | undefined {
    return this.pod;
  }

  async close(): Promise<void> {
    for (const s of this.sockets.keys()) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
