import net from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import type { Kube } from '../deploy/kube.js';
import { ExternalError } from '../errors.js';
import { dataFrames, encodeFrame, FrameDecoder, FrameType, PING_INTERVAL_MS, SILENCE_LIMIT_MS, type Frame } from './agent/protocol.js';
import { RequestCounter } from './requests.js';

export interface TunnelEvents {
  /** A connection from the cluster reached the local port. */
  onConnection(port: number, local: number): void;
  /** A connection from the cluster found nothing listening locally (the caller got a reset). */
  onRefused(port: number, local: number, message: string): void;
  /** The tunnel is gone (the agent restarted, the API connection broke, silence); not called after close(). */
  onClosed(reason: string): void;
}

/** The agent refused the tunnel (a wrong secret), or never answered. */
export class TunnelRefused extends ExternalError {}

/**
 * devloop's end of the swap tunnel: one port-forward stream to the agent's loopback control port, carrying every
 * connection the cluster makes to the Service as a stream of frames (agent/protocol.ts), each one connected to the
 * developer's local port for the Service port it arrived on.
 */
export class TunnelClient {
  private readonly input = new PassThrough();
  private readonly decoder = new FrameDecoder();
  private readonly streams = new Map<number, net.Socket>();
  /** Per connection: the requests in what the caller sends (HTTP/1.x, HTTP/2 streams; one for any other protocol). */
  private readonly counters = new Map<number, RequestCounter>();
  private lastHeard = Date.now();
  private pinger: NodeJS.Timeout | undefined;
  private closed = false;
  private closeSocket: (() => void) | undefined;
  private welcome: { resolve(pod: string): void; reject(err: Error): void } | undefined;
  /** Connections carried so far. */
  connections = 0;
  /** Requests carried so far. */
  requests = 0;

  constructor(
    private readonly kube: Kube,
    private readonly namespace: string,
    readonly pod: string,
    private readonly controlPort: number,
    /** Service target port → local port. */
    private readonly localPorts: ReadonlyMap<number, number>,
    private readonly events: TunnelEvents,
  ) {}

  /** Opens the port-forward and authenticates with `secret`; resolves with the agent's pod name once it welcomes us. */
  async open(secret: Buffer, timeoutMs = 10_000): Promise<string> {
    const output = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        this.onBytes(chunk);
        done();
      },
    });
    const errors: string[] = [];
    const errorStream = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        errors.push(chunk.toString());
        done();
      },
    });
    const welcomed = new Promise<string>((resolve, reject) => (this.welcome = { resolve, reject }));
    const forward = new this.kube.lib.PortForward(this.kube.config);
    const ws = await forward.portForward(this.namespace, this.pod, [this.controlPort], output, errorStream, this.input);
    const socket = typeof ws === 'function' ? ws() : ws;
    this.closeSocket = () => socket?.close();
    socket?.on('close', () => this.lost(errors.length ? `the port-forward to ${this.pod} closed: ${errors.join(' ').trim()}` : `the port-forward to ${this.pod} closed`));
    socket?.on('error', (err: Error) => this.lost(`the port-forward to ${this.pod} failed: ${err.message}`));
    this.input.write(encodeFrame(FrameType.HELLO, 0, secret));
    const timer = setTimeout(() => this.welcome?.reject(new TunnelRefused(`the agent ${this.pod} did not answer within ${timeoutMs / 1000} s${errors.length ? `: ${errors.join(' ').trim()}` : ''}`)), timeoutMs);
    try {
      const pod = await welcomed;
      this.lastHeard = Date.now();
      this.pinger = setInterval(() => {
        if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) this.lost(`the agent ${this.pod} went silent`);
        else this.input.write(encodeFrame(FrameType.PING, 0));
      }, PING_INTERVAL_MS);
      return pod;
    } catch (err) {
      this.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private onBytes(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.lost((err as Error).message);
      return;
    }
    this.lastHeard = Date.now();
    for (const f of frames) this.onFrame(f);
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.WELCOME: {
        const pod = (JSON.parse(f.payload.toString() || '{}') as { pod?: string }).pod ?? this.pod;
        this.welcome?.resolve(pod);
        return;
      }
      case FrameType.REFUSED:
        this.welcome?.reject(new TunnelRefused(`the agent refused the tunnel: ${f.payload.toString()}`));
        return;
      case FrameType.PING:
        this.input.write(encodeFrame(FrameType.PONG, 0));
        return;
      case FrameType.PONG:
        return;
      case FrameType.OPEN:
        this.openLocal(f.stream, f.payload.readUInt16BE(0));
        return;
      case FrameType.DATA: {
        const counter = this.counters.get(f.stream);
        if (counter && !counter.stopped) this.requests += counter.push(f.payload);
        this.streams.get(f.stream)?.write(f.payload);
        return;
      }
      case FrameType.END:
        this.countEnd(f.stream);
        this.streams.get(f.stream)?.end();
        return;
      case FrameType.RESET: {
        const s = this.streams.get(f.stream);
        this.streams.delete(f.stream);
        this.counters.delete(f.stream);
        s?.destroy();
        return;
      }
      default:
        return;
    }
  }

  private openLocal(id: number, port: number): void {
    const local = this.localPorts.get(port);
    if (local === undefined) {
      this.input.write(encodeFrame(FrameType.RESET, id, Buffer.from(`port ${port} is not swapped`)));
      return;
    }
    const socket = net.connect({ port: local, host: '127.0.0.1', noDelay: true });
    this.streams.set(id, socket);
    this.counters.set(id, new RequestCounter());
    let connected = false;
    socket.on('connect', () => {
      connected = true;
      this.connections++;
      this.events.onConnection(port, local);
    });
    socket.on('data', (chunk: Buffer) => {
      for (const frame of dataFrames(id, chunk)) this.input.write(frame);
    });
    socket.on('end', () => this.input.write(encodeFrame(FrameType.END, id)));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) {
        const message = err.code === 'ECONNREFUSED' ? `nothing listens on 127.0.0.1:${local}` : `127.0.0.1:${local}: ${err.message}`;
        this.events.onRefused(port, local, message);
      }
    });
    socket.on('close', (hadError) => {
      if (this.streams.get(id) !== socket) return;
      this.streams.delete(id);
      this.countEnd(id);
      if (hadError || !connected) this.input.write(encodeFrame(FrameType.RESET, id));
    });
  }

  /** The caller's side of a connection ended: what it sent last may complete a request (or be a connection's only one). */
  private countEnd(id: number): void {
    const counter = this.counters.get(id);
    if (!counter) return;
    this.requests += counter.end();
    this.counters.delete(id);
  }

  private lost(reason: string): void {
    if (this.closed) return;
    this.welcome?.reject(new TunnelRefused(reason));
    const wasOpen = this.pinger !== undefined;
    this.close();
    if (wasOpen) this.events.onClosed(reason);
  }

  /** Ends the tunnel and every connection it carries. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pinger) clearInterval(this.pinger);
    for (const s of this.streams.values()) s.destroy();
    this.streams.clear();
    this.counters.clear();
    this.input.end();
    this.closeSocket?.();
  }
}
