import net from 'node:net';
import { Duplex, PassThrough, Writable } from 'node:stream';
import type { Kube } from '../deploy/kube.js';
import { UserError } from '../errors.js';

/** Opens one byte stream to the upstream (e.g. a pod's port through the API server). */
export type Dial = () => Promise<Duplex>;

/**
 * What the loop needs of a local port that follows a service's current pod: `PortForward` (bytes as they are) and
 * `KeyedPortForward` (core/route: HTTP with the developer's routing key added) both have this shape.
 */
export interface PodForward {
  readonly local: number;
  readonly remote: number;
  /** Starts listening on 127.0.0.1:<local>; a port already in use is a `UserError` naming it. */
  listen(): Promise<void>;
  /** Points new connections at `pod` (undefined: none is ready); connections to another pod are closed. */
  setPod(pod: string | undefined): void;
  readonly currentPod: string | undefined;
  close(): Promise<void>;
}

/** The part of the API server's WebSocket that a pod stream uses. */
interface PodSocket {
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  close(): void;
  pause?(): void;
  resume?(): void;
  readonly bufferedAmount: number;
}

/** Bytes queued on the WebSocket above which a writer waits: the WebSocket has no backpressure of its own. */
const SEND_BUFFER_LIMIT = 1024 * 1024;

/**
 * One byte stream to `port` of `pod`, through the API server (a WebSocket port-forward). It ends when the pod side
 * closes; it fails with the API server's message when the pod refuses the connection (nothing listens on the port).
 * Reading is paced by the reader (the WebSocket is paused while the stream's buffer is full), writing by how fast
 * the WebSocket sends.
 */
export async function dialPod(kube: Kube, namespace: string, pod: string, port: number): Promise<Duplex> {
  const forward = new kube.lib.PortForward(kube.config);
  const toPod = new PassThrough();
  let socket: PodSocket | undefined;
  let errorText = '';
  let closed = false;
  const stream = new Duplex({
    // The WebSocket is the whole connection: when the pod's side has ended, nothing written reaches it any more, so
    // the stream ends both ways (as a TCP socket does), and a keep-alive pool drops it instead of reusing it.
    allowHalfOpen: false,
    read() {
      socket?.resume?.();
    },
    write(chunk: Buffer, _encoding, done) {
      if (closed) {
        done(new Error(`port-forward to pod/${pod}:${port} is closed`));
        return;
      }
      toPod.write(chunk);
      const drained = () => (!socket || socket.bufferedAmount < SEND_BUFFER_LIMIT || stream.destroyed ? done() : setTimeout(drained, 2));
      setImmediate(drained);
    },
    final(done) {
      toPod.end();
      done();
    },
    destroy(err, done) {
      socket?.close();
      toPod.destroy();
      done(err);
    },
  });
  const fromPod = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (!stream.push(chunk)) socket?.pause?.();
      done();
    },
  });
  const errors = new Writable({
    write(chunk: Buffer, _encoding, done) {
      errorText += chunk.toString();
      done();
    },
  });
  let opened: PodSocket | (() => PodSocket | null);
  try {
    opened = (await forward.portForward(namespace, pod, [port], fromPod, errors, toPod)) as unknown as PodSocket | (() => PodSocket | null);
  } catch (err) {
    toPod.destroy();
    throw new Error(`port-forward to pod/${pod}:${port} failed: ${(err as Error).message ?? String(err)}`, { cause: err });
  }
  socket = (typeof opened === 'function' ? opened() : opened) ?? undefined;
  if (!socket) {
    stream.destroy(new Error(`port-forward to pod/${pod}:${port} opened no stream`));
    return stream;
  }
  socket.on('error', (err) => stream.destroy(err));
  socket.on('close', () => {
    closed = true;
    // The API server reports a refused connection on the error channel, then closes.
    if (errorText.trim()) stream.destroy(new Error(`port-forward to pod/${pod}:${port}: ${errorText.trim()}`));
    else stream.push(null);
  });
  return stream;
}

/**
 * A local port on 127.0.0.1 forwarded to a port of whichever pod is current. The listener stays up for the whole
 * session; each connection opens its own stream through the API server to the pod current at that moment, so
 * when a rollout or a crash replaces the pod, the next connection reaches the new one.
 */
export class PortForward implements PodForward {
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
    const server = net.createServer((socket) => {
      const pod = this.pod;
      if (!pod) {
        socket.destroy();
        return;
      }
      this.sockets.set(socket, pod);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      dialPod(this.kube, this.namespace, pod, this.remote).then(
        (upstream) => {
          upstream.on('error', () => socket.destroy());
          // Ended by the pod: the pipe ends the socket after what is still queued; cut off: so is the socket.
          upstream.on('close', () => {
            if (!upstream.readableEnded) socket.destroy();
          });
          socket.on('close', () => upstream.destroy());
          if (socket.destroyed) upstream.destroy();
          else socket.pipe(upstream).pipe(socket);
        },
        () => socket.destroy(),
      );
    });
    await listenLocal(server, this.local);
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

/** Listens on 127.0.0.1:`port`; a port in use (or not a port) is a user error naming it. */
export async function listenLocal(server: net.Server, port: number, hint = 'stop what listens there, or change the service’s `ports` in devloop.yaml'): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new UserError(`port 127.0.0.1:${port} is already in use`, { hint })
          : err.code === 'EACCES'
            ? new UserError(`port 127.0.0.1:${port} may not be opened by this user`, { hint: 'choose a port above 1023' })
            : err,
      ),
    );
    server.listen(port, '127.0.0.1', () => resolve());
  });
}
