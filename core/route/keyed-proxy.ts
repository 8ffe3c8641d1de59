import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Kube } from '../deploy/kube.js';
import { dialPod, listenLocal, type Dial, type PodForward } from '../forward/portforward.js';
import { BAGGAGE_MEMBER, ROUTE_HEADER } from './routes.js';

/**
 * A local HTTP proxy that adds a developer's routing key to every request — the W3C baggage member
 * `devloop-route=<developer>` and the header `x-devloop-route: <developer>` — and sends it upstream over a stream it
 * dials (a port-forward to a pod). A port-forward bypasses the mesh, so the first hop is the one devloop chose; the
 * key makes every later hop follow the developer's routes.
 *
 * Each client connection is served on its own upstream connection(s), so the proxy speaks whatever the client
 * speaks:
 * - HTTP/1.1: requests are parsed and sent upstream one at a time on a kept-alive upstream connection; bodies and
 *   chunked transfers are streamed, trailers kept;
 * - HTTP/2 with prior knowledge (gRPC): recognised by its connection preface; every stream is sent on an HTTP/2
 *   connection upstream with the key added, trailers (grpc-status) and resets kept;
 * - HTTP/1.1 Upgrade (WebSocket and others): the upgrade request gets the key, then bytes flow both ways untouched.
 *   An `h2c` upgrade is declined (the request is served as HTTP/1.1), as a proxy may.
 * When the upstream cannot be reached the client gets a 502 with a one-line reason, and `onEvent` hears of it.
 */

/** What the proxy reports: for the dashboard and the `open` command. */
export type KeyedProxyEvent = { type: 'upstream.failed'; message: string };

export interface KeyedProxyOptions {
  developer: string;
  dial: Dial;
  onEvent?: (event: KeyedProxyEvent) => void;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Headers that belong to one connection and are not forwarded (RFC 9110 §7.6.1), lowercase. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'transfer-encoding', 'upgrade', 'http2-settings']);

/**
 * Pure: `baggage` with `devloop-route=<developer>` in it. An existing devloop-route member is replaced (wherever it
 * is, with its properties), other members keep their order and text; the key goes first so that a list that is
 * truncated downstream still carries it.
 */
export function withRouteBaggage(baggage: string | readonly string[] | undefined, developer: string): string {
  const joined = Array.isArray(baggage) ? baggage.join(',') : (baggage as string | undefined) ?? '';
  const others = joined
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m !== '' && m.split(/[=;]/, 1)[0]!.trim() !== BAGGAGE_MEMBER);
  return [`${BAGGAGE_MEMBER}=${developer}`, ...others].join(',');
}

/**
 * Pure: raw header pairs (as `rawHeaders`, names in their case) with the routing key set: `baggage` merged into
 * one header, `x-devloop-route` replaced; `drop` names (lowercase) are left out.
 */
export function withRouteKey(rawHeaders: readonly string[], developer: string, drop: ReadonlySet<string> = new Set()): [string, string][] {
  const out: [string, string][] = [];
  const baggage: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower === 'baggage') baggage.push(rawHeaders[i + 1]!);
    else if (lower !== ROUTE_HEADER && !drop.has(lower)) out.push([name, rawHeaders[i + 1]!]);
  }
  out.push(['baggage', withRouteBaggage(baggage, developer)], [ROUTE_HEADER, developer]);
  return out;
}

/** Hop-by-hop headers of a message, plus those its Connection header names. */
function hopByHop(headers: http.IncomingHttpHeaders, keep: readonly string[] = []): Set<string> {
  const drop = new Set(HOP_BY_HOP);
  for (const name of String(headers.connection ?? '').split(',')) if (name.trim()) drop.add(name.trim().toLowerCase());
  for (const k of keep) drop.delete(k);
  return drop;
}

/** An HTTP/1.1 upstream over dialled streams: the Agent keeps one connection alive and dials again when it closed. */
class DialAgent extends http.Agent {
  constructor(private readonly dial: Dial) {
    super({ keepAlive: true, maxSockets: 1 });
  }

  override createConnection(_options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | undefined {
    this.dial().then(
      (stream) => callback?.(null, socketLike(stream)),
      (err: unknown) => callback?.(err as Error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/**
 * Node's HTTP client pools sockets and calls a few socket methods on them (keep-alive, timeouts, ref counting); a
 * dialled stream is not a TCP socket, and these do not apply to it.
 */
function socketLike(stream: Duplex): Duplex {
  const s = stream as Duplex & Record<string, unknown>;
  for (const method of ['setKeepAlive', 'setNoDelay', 'setTimeout', 'ref', 'unref']) {
    if (typeof s[method] !== 'function') s[method] = () => s;
  }
  return stream;
}

/** One client connection and what it opened upstream. */
class ClientConnection {
  readonly agent: DialAgent;
  private h2: Promise<http2.ClientHttp2Session> | undefined;
  private readonly upgraded = new Set<Duplex>();

  constructor(
    readonly socket: net.Socket,
    private readonly dial: Dial,
  ) {
    this.agent = new DialAgent(dial);
  }

  /** The HTTP/2 session upstream, dialled at the first stream and again after it ended. */
  http2Session(): Promise<http2.ClientHttp2Session> {
    this.h2 ??= this.dial().then((stream) => {
      const session = http2.connect('http://upstream', { createConnection: () => stream });
      // A session that failed or closed is replaced at the next stream; its streams report their own errors.
      session.on('error', () => {});
      session.on('close', () => {
        this.h2 = undefined;
      });
      return session;
    });
    const pending = this.h2;
    pending.catch(() => {
      if (this.h2 === pending) this.h2 = undefined;
    });
    return pending;
  }

  trackUpgrade(stream: Duplex): void {
    this.upgraded.add(stream);
    stream.on('close', () => this.upgraded.delete(stream));
  }

  close(): void {
    this.socket.destroy();
    this.agent.destroy();
    for (const s of this.upgraded) s.destroy();
    // Closed or never opened: nothing to wait for.
    this.h2?.then((s) => s.destroy(), () => {});
  }
}

export class KeyedProxy {
  private server: net.Server | undefined;
  private readonly connections = new Map<net.Socket, ClientConnection>();
  private readonly http1: http.Server;

  constructor(private readonly options: KeyedProxyOptions) {
    // No time limit on a request: uploads, long polls and streams take as long as they take.
    this.http1 = http.createServer({ requestTimeout: 0 });
    this.http1.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(req, res));
    this.http1.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  /** Listens on 127.0.0.1:`port` (0: any free port); resolves to the port. A port in use is a `UserError`. */
  async listen(port: number, hint?: string): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    await listenLocal(server, port, hint);
    this.server = server;
    return (server.address() as net.AddressInfo).port;
  }

  /** Closes every client connection and what it opened upstream (e.g. when the upstream pod changed). */
  dropConnections(): void {
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.dropConnections();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    const connection = new ClientConnection(socket, this.options.dial);
    this.connections.set(socket, connection);
    // A client that resets its connection ends only that connection.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      connection.close();
      this.connections.delete(socket);
    });
    sniffPreface(socket)
      .then((kind) => {
        if (kind === 'http2') this.serveHttp2(connection);
        else if (kind === 'http1') this.http1.emit('connection', socket);
      })
      // A connection that cannot be served (it closed while it was handed over) ends alone.
      .catch(() => socket.destroy());
  }

  private failed(reason: unknown): string {
    const message = oneLine(reason);
    this.options.onEvent?.({ type: 'upstream.failed', message });
    return message;
  }

  // HTTP/1.1

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const connection = this.connections.get(req.socket as net.Socket);
    if (!connection) {
      res.destroy();
      return;
    }
    try {
      this.forwardRequest(connection, req, res);
    } catch (err) {
      // A request Node's client refuses to send (it checks what the server side let through) is the client's 502.
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' }).end(`devloop: ${oneLine(err)}\n`);
    }
  }

  private forwardRequest(connection: ClientConnection, req: http.IncomingMessage, res: http.ServerResponse): void {
    // The client's own framing goes with the body: a chunked body stays chunked, a sized one keeps its length.
    const keep = /^\s*chunked\s*$/i.test(req.headers['transfer-encoding'] ?? '') ? ['transfer-encoding'] : [];
    const drop = hopByHop(req.headers, keep);
    drop.add('expect'); // Node's server already answered `100-continue`.
    const upstream = http.request({
      method: req.method,
      path: req.url,
      headers: withRouteKey(req.rawHeaders, this.options.developer, drop).flat(),
      agent: connection.agent,
      setHost: false,
    });
    upstream.on('response', (answer) => {
      const headers = pairs(answer.rawHeaders).filter(([name]) => !hopByHop(answer.headers).has(name.toLowerCase()));
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers.flat());
      // The status goes to the client now, not with the first piece of the body: streams and long polls need it.
      res.flushHeaders();
      answer.on('data', (chunk: Buffer) => {
        if (!res.write(chunk)) {
          answer.pause();
          res.once('drain', () => answer.resume());
        }
      });
      answer.on('end', () => {
        if (answer.rawTrailers.length > 0) res.addTrailers(pairs(answer.rawTrailers));
        res.end();
      });
      answer.on('error', () => res.destroy());
    });
    let clientGone = false;
    upstream.on('error', (err) => {
      // Cut off because the client left: nothing to answer, nothing to report.
      if (clientGone) return;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const message = this.failed(err);
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(`devloop: ${message}\n`);
    });
    // The client went away before the exchange finished: so does the upstream request.
    res.on('close', () => {
      if (res.writableFinished) return;
      clientGone = true;
      upstream.destroy();
    });
    // Likewise the request: the upstream may answer before the body has come (or without waiting for it).
    upstream.flushHeaders();
    req.pipe(upstream);
  }

  private onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const connection = this.connections.get(socket);
    if (!connection) {
      socket.destroy();
      return;
    }
    const h2c = String(req.headers.upgrade ?? '').trim().toLowerCase() === 'h2c';
    // WebSocket and other upgrades keep Connection/Upgrade; an h2c upgrade is declined: the request is served as
    // HTTP/1.1 on an upstream connection of its own, which then closes.
    const drop = h2c ? hopByHop(req.headers) : hopByHop(req.headers, ['connection', 'upgrade']);
    if (!h2c) for (const name of String(req.headers.connection ?? '').split(',')) drop.delete(name.trim().toLowerCase());
    const headers = withRouteKey(req.rawHeaders, this.options.developer, drop);
    if (h2c) headers.push(['connection', 'close']);
    const requestHead = `${req.method} ${req.url} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    this.options.dial().then(
      (upstream) => {
        connection.trackUpgrade(upstream);
        if (socket.destroyed) {
          upstream.destroy();
          return;
        }
        let answered = false;
        upstream.once('data', () => (answered = true));
        upstream.on('error', (err) => {
          // Failed before any answer (nothing listens on the pod's port): the client hears why, as for a request.
          if (!answered && !socket.destroyed) badGateway(socket, this.failed(err));
          else socket.destroy();
        });
        upstream.on('close', () => {
          if (!upstream.readableEnded && answered) socket.destroy();
        });
        socket.on('close', () => upstream.destroy());
        upstream.write(requestHead);
        if (head.length > 0) upstream.write(head);
        socket.pipe(upstream).pipe(socket);
      },
      (err: unknown) => badGateway(socket, this.failed(err)),
    );
  }

  // HTTP/2

  private serveHttp2(connection: ClientConnection): void {
    const session = http2.performServerHandshake(connection.socket);
    // The session's errors end it; its streams and the client see them.
    session.on('error', () => {});
    session.on('stream', (stream, headers, flags) => this.onStream(connection, stream, headers, flags));
  }

  private onStream(connection: ClientConnection, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number): void {
    const out: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (name === 'baggage' || name === ROUTE_HEADER || (HOP_BY_HOP.has(name) && !(name === 'te' && value === 'trailers'))) continue;
      out[name] = value;
    }
    out.baggage = withRouteBaggage(headers.baggage, this.options.developer);
    out[ROUTE_HEADER] = this.options.developer;
    const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;
    const fail = (err: unknown) => {
      if (stream.destroyed || stream.closed) return;
      if (stream.headersSent) {
        stream.close(NGHTTP2_INTERNAL_ERROR);
        return;
      }
      const message = this.failed(err);
      stream.respond({ ':status': 502, 'content-type': 'text/plain; charset=utf-8' });
      stream.end(`devloop: ${message}\n`);
    };
    connection.http2Session().then((session) => {
      if (stream.destroyed || stream.closed) return;
      const upstream = session.request(out, { endStream: (flags & NGHTTP2_FLAG_END_STREAM) !== 0 });
      let trailers: http2.IncomingHttpHeaders | undefined;
      upstream.on('trailers', (t) => {
        trailers = t;
      });
      upstream.on('response', (answer, answerFlags) => {
        const response: http2.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(answer)) if (!HOP_BY_HOP.has(name)) response[name] = value;
        if ((answerFlags & NGHTTP2_FLAG_END_STREAM) !== 0) {
          // Headers only (a gRPC "trailers-only" answer): sent the same way.
          stream.respond(response, { endStream: true });
          return;
        }
        stream.respond(response, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers(withoutPseudo(trailers)));
        upstream.pipe(stream);
      });
      upstream.on('error', fail);
      upstream.on('close', () => {
        // A reset upstream is a reset here.
        if (upstream.rstCode !== undefined && upstream.rstCode !== NGHTTP2_NO_ERROR && !stream.closed) stream.close(upstream.rstCode);
      });
      stream.on('close', () => {
        if (!upstream.closed) upstream.close(stream.rstCode && stream.rstCode !== NGHTTP2_NO_ERROR ? stream.rstCode : NGHTTP2_CANCEL);
      });
      if ((flags & NGHTTP2_FLAG_END_STREAM) === 0) stream.pipe(upstream);
    })
      // The upstream session died between streams, or refused the request's headers: this stream's 502.
      .catch(fail);
    // A stream's own errors (a client reset) end it; the upstream stream follows through 'close'.
    stream.on('error', () => {});
  }
}

/** A 502 written on a raw connection (an upgrade request's), which then closes. */
function badGateway(socket: net.Socket, message: string): void {
  const body = `devloop: ${message}\n`;
  socket.unpipe();
  socket.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** The pairs of a raw header list. */
function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

function withoutPseudo(headers: http2.IncomingHttpHeaders | undefined): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers ?? {})) if (!name.startsWith(':')) out[name] = value;
  return out;
}

function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
}

/**
 * Reads from a fresh connection until it is clear whether it opens with the HTTP/2 connection preface, then puts
 * the bytes back for the server that will read them.
 */
function sniffPreface(socket: net.Socket): Promise<'http1' | 'http2' | 'closed'> {
  return new Promise((resolve) => {
    let seen = Buffer.alloc(0);
    const finish = (kind: 'http1' | 'http2' | 'closed') => {
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      if (seen.length > 0) socket.unshift(seen);
      resolve(kind);
    };
    const onEnd = () => finish(seen.length > 0 ? 'http1' : 'closed');
    const onReadable = () => {
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      if (!seen.subarray(0, n).equals(PREFACE.subarray(0, n))) finish('http1');
      else if (seen.length >= PREFACE.length) finish('http2');
    };
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
  });
}

/**
 * The keyed proxy in the shape of a `PortForward`: 127.0.0.1:<local> to port `remote` of the current pod, every
 * request carrying `developer`'s routing key. Connections to a pod that is no longer current are closed.
 */
export class KeyedPortForward implements PodForward {
  private pod: string | undefined;
  private readonly proxy: KeyedProxy;

  constructor(
    private readonly kube: Kube,
    private readonly namespace: string,
    readonly local: number,
    readonly remote: number,
    developer: string,
    opts: { service?: string; hint?: string; onEvent?: (event: KeyedProxyEvent) => void } = {},
  ) {
    const what = opts.service ?? `port ${remote}`;
    this.hint = opts.hint;
    this.proxy = new KeyedProxy({
      developer,
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      dial: async () => {
        const pod = this.pod;
        if (!pod) throw new Error(`cannot reach ${what}: no ready pod`);
        try {
          return await dialPod(this.kube, this.namespace, pod, this.remote);
        } catch (err) {
          throw new Error(`cannot reach ${what} (pod/${pod}:${this.remote}): ${oneLine(err)}`, { cause: err });
        }
      },
    });
  }

  private readonly hint: string | undefined;

  async listen(): Promise<void> {
    await this.proxy.listen(this.local, this.hint);
  }

  setPod(pod: string | undefined): void {
    if (pod === this.pod) return;
    this.pod = pod;
    // Clients (keep-alive pools, gRPC channels) reconnect, and so reach the current pod.
    this.proxy.dropConnections();
  }

  get currentPod(): string | undefined {
    return this.pod;
  }

  close(): Promise<void> {
    return this.proxy.close();
  }
}
