import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyedProxy, withRouteBaggage, withRouteKey, type KeyedProxyEvent } from './keyed-proxy.js';

describe('withRouteBaggage', () => {
  it('adds the member to no baggage, and in front of other members', () => {
    expect(withRouteBaggage(undefined, 'alice')).toBe('devloop-route=alice');
    expect(withRouteBaggage('', 'alice')).toBe('devloop-route=alice');
    expect(withRouteBaggage('userId=42, tenant=x;prop=1', 'alice')).toBe('devloop-route=alice,userId=42,tenant=x;prop=1');
  });

  it('replaces an existing devloop-route member (with its properties) instead of adding a second one', () => {
    expect(withRouteBaggage('a=1,devloop-route=bob;ttl=3, b=2', 'alice')).toBe('devloop-route=alice,a=1,b=2');
    expect(withRouteBaggage(['devloop-route=bob', 'c=3', ' devloop-route = carol '], 'alice')).toBe('devloop-route=alice,c=3');
  });

  it('leaves members whose name only starts like the key alone', () => {
    expect(withRouteBaggage('devloop-route2=x,devloop-routes=y', 'alice')).toBe('devloop-route=alice,devloop-route2=x,devloop-routes=y');
  });
});

describe('withRouteKey', () => {
  it('merges every baggage header into one, replaces x-devloop-route and keeps the rest in order and case', () => {
    const raw = ['Host', 'h', 'Baggage', 'a=1', 'X-Devloop-Route', 'bob', 'X-Other', 'o', 'baggage', 'devloop-route=bob', 'Connection', 'keep-alive'];
    expect(withRouteKey(raw, 'alice', new Set(['connection']))).toEqual([
      ['Host', 'h'],
      ['X-Other', 'o'],
      ['baggage', 'devloop-route=alice,a=1'],
      ['x-devloop-route', 'alice'],
    ]);
  });
});

// Upstream servers of this host; the proxy reaches them through a dialled stream that is not a TCP socket (as a
// port-forward through the API server is not), by a `dial` that wraps a loopback connection.

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listening(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

/** A loopback connection as a plain Duplex: none of a socket's methods, as a port-forward stream. */
function dialLoopback(port: number, counter?: { dials: number; streams?: Duplex[] }): () => Promise<Duplex> {
  return async () => {
    if (counter) counter.dials++;
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const stream = new Duplex({
      allowHalfOpen: false,
      read() {
        socket.resume();
      },
      write(chunk: Buffer, _e, done) {
        socket.write(chunk, done);
      },
      final(done) {
        socket.end();
        done();
      },
      destroy(err, done) {
        socket.destroy();
        done(err);
      },
    });
    socket.on('data', (chunk: Buffer) => {
      if (!stream.push(chunk)) socket.pause();
    });
    socket.on('end', () => stream.push(null));
    socket.on('error', (err) => stream.destroy(err));
    counter?.streams?.push(stream);
    return stream;
  };
}

async function startProxy(dial: () => Promise<Duplex>, events: KeyedProxyEvent[] = []): Promise<{ proxy: KeyedProxy; port: number }> {
  const proxy = new KeyedProxy({ developer: 'alice', dial, onEvent: (e) => events.push(e) });
  const port = await proxy.listen(0);
  cleanups.push(() => proxy.close());
  return { proxy, port };
}

function request(port: number, opts: http.RequestOptions & { body?: Buffer | string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; trailers: NodeJS.Dict<string> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, ...opts }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), trailers: res.trailers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('KeyedProxy, HTTP/1.1', () => {
  it('adds the key to a request without headers, and merges it into existing baggage', async () => {
    const seen: Seen[] = [];
    const upstream = http.createServer((req, res) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      res.end('ok');
    });
    const { port } = await startProxy(dialLoopback(await listening(upstream)));

    const plain = await request(port, { path: '/a?b=1' });
    expect(plain).toMatchObject({ status: 200, body: 'ok' });
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/a?b=1' });
    expect(seen[0]!.headers.baggage).toBe('devloop-route=alice');
    expect(seen[0]!.headers['x-devloop-route']).toBe('alice');

    await request(port, { path: '/', headers: { baggage: 'userId=7,devloop-route=bob;p=1', 'x-devloop-route': 'bob' } });
    expect(seen[1]!.headers.baggage).toBe('devloop-route=alice,userId=7');
    expect(seen[1]!.headers['x-devloop-route']).toBe('alice');
  });

  it('keeps a client connection on one upstream connection across keep-alive requests', async () => {
    const seen: Seen[] = [];
    const upstreamSockets = new Set<net.Socket>();
    const upstream = http.createServer((req, res) => {
      upstreamSockets.add(req.socket);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      res.end(req.url);
    });
    const counter = { dials: 0 };
    const { port } = await startProxy(dialLoopback(await listening(upstream), counter));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());

    const answers = [];
    for (let i = 0; i < 5; i++) answers.push((await request(port, { path: `/${i}`, agent })).body);
    expect(answers).toEqual(['/0', '/1', '/2', '/3', '/4']);
    expect(seen.map((s) => s.headers['x-devloop-route'])).toEqual(Array(5).fill('alice'));
    expect(counter.dials).toBe(1);
    expect(upstreamSockets.size).toBe(1);
  });

  it('dials again when the upstream closed its kept-alive connection between two requests of a client', async () => {
    const upstream = http.createServer((req, res) => {
      // As a server whose keep-alive timeout ran out: the connection is closed after the answer.
      res.end(`ok ${req.url}`, () => req.socket.end());
    });
    const counter = { dials: 0, streams: [] as Duplex[] };
    const { port } = await startProxy(dialLoopback(await listening(upstream), counter));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    expect((await request(port, { path: '/1', agent })).body).toBe('ok /1');
    if (!counter.streams[0]!.destroyed) await once(counter.streams[0]!, 'close');
    expect((await request(port, { path: '/2', agent })).body).toBe('ok /2');
    expect(counter.dials).toBe(2);
  });

  it('streams a large chunked upload and download without holding them: each chunk is echoed before the next is sent', async () => {
    const upstream = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.flushHeaders();
      req.pipe(res);
    });
    const { port } = await startProxy(dialLoopback(await listening(upstream)));

    const chunk = Buffer.alloc(256 * 1024);
    const rounds = 64; // 16 MiB each way
    const sent = createHash('sha256');
    const received = createHash('sha256');
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/echo', headers: { 'transfer-encoding': 'chunked' } });
    req.flushHeaders();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    expect(res.headers['transfer-encoding']).toBe('chunked');
    let echoed = 0;
    res.on('data', (c: Buffer) => {
      received.update(c);
      echoed += c.length;
      res.emit('echoed');
    });
    for (let i = 0; i < rounds; i++) {
      chunk.fill(i);
      sent.update(chunk);
      req.write(chunk);
      // A proxy that held the body until its end would never echo this chunk: the test would time out.
      while (echoed < (i + 1) * chunk.length) await once(res, 'echoed');
    }
    req.end();
    await once(res, 'end');
    expect(echoed).toBe(rounds * chunk.length);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
  });

  it('passes a sized body and its length, and the answer’s trailers', async () => {
    let body = '';
    let length: string | undefined;
    const upstream = http.createServer((req, res) => {
      length = req.headers['content-length'];
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.writeHead(200, { trailer: 'x-checksum' });
        res.write('first,');
        res.write('second');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end();
      });
    });
    const { port } = await startProxy(dialLoopback(await listening(upstream)));
    const answer = await request(port, { method: 'PUT', path: '/', body: 'x'.repeat(100_000) });
    expect(length).toBe('100000');
    expect(body).toBe('x'.repeat(100_000));
    expect(answer.body).toBe('first,second');
    expect(answer.trailers).toEqual({ 'x-checksum': 'abc123' });
  });

  it('answers 502 with a one-line reason, and reports it, when the upstream cannot be reached', async () => {
    const events: KeyedProxyEvent[] = [];
    const { port } = await startProxy(() => Promise.reject(new Error('cannot reach web (pod/web-1:8080): pods "web-1" not found')), events);
    const answer = await request(port, { path: '/' });
    expect(answer.status).toBe(502);
    expect(answer.body).toBe('devloop: cannot reach web (pod/web-1:8080): pods "web-1" not found\n');
    expect(events).toEqual([{ type: 'upstream.failed', message: 'cannot reach web (pod/web-1:8080): pods "web-1" not found' }]);
  });

  it('answers 502 when the upstream stream fails before answering (nothing listens on the pod’s port)', async () => {
    const events: KeyedProxyEvent[] = [];
    const dial = async () => {
      const stream = new Duplex({ read() {}, write(_c, _e, done) { done(); } });
      setImmediate(() => stream.destroy(new Error('error forwarding port 8080: connection refused')));
      return stream;
    };
    const { port } = await startProxy(dial, events);
    const answer = await request(port, { path: '/' });
    expect(answer.status).toBe(502);
    expect(answer.body).toContain('connection refused');
    expect(events.map((e) => e.type)).toEqual(['upstream.failed']);
  });

  it('ends the upstream request when the client leaves before the answer, and reports no failure', async () => {
    let arrived!: () => void;
    let upstreamClosed!: () => void;
    const got = new Promise<void>((resolve) => (arrived = resolve));
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
    // An answer that never comes; the client leaves instead.
    const upstream = http.createServer((req) => {
      req.socket.on('close', () => upstreamClosed());
      arrived();
    });
    const events: KeyedProxyEvent[] = [];
    const { port } = await startProxy(dialLoopback(await listening(upstream)), events);
    const req = http.get({ host: '127.0.0.1', port, path: '/slow' });
    req.on('error', () => {}); // the client's own abort
    await got;
    req.destroy();
    await closed;
    expect(events).toEqual([]);
  });

  it('closes client connections on dropConnections, and the next request dials again', async () => {
    const upstream = http.createServer((_req, res) => res.end('ok'));
    const counter = { dials: 0 };
    const { proxy, port } = await startProxy(dialLoopback(await listening(upstream), counter));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    await request(port, { agent });
    expect(proxy.connectionCount).toBe(1);
    const [clientSocket] = Object.values(agent.freeSockets).flat() as net.Socket[];
    const closed = once(clientSocket!, 'close');
    proxy.dropConnections();
    expect(proxy.connectionCount).toBe(0);
    await closed;
    expect((await request(port, { agent })).body).toBe('ok');
    expect(counter.dials).toBe(2);
  });

  it('declines an h2c upgrade: the request is answered as HTTP/1.1, with the key', async () => {
    const seen: Seen[] = [];
    const upstream = http.createServer((req, res) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      res.end('plain');
    });
    const { port } = await startProxy(dialLoopback(await listening(upstream)));
    const answer = await request(port, { path: '/', headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' } });
    expect(answer).toMatchObject({ status: 200, body: 'plain' });
    expect(seen[0]!.headers.upgrade).toBeUndefined();
    expect(seen[0]!.headers['x-devloop-route']).toBe('alice');
  });
});

describe('KeyedProxy, HTTP/2 with prior knowledge (gRPC)', () => {
  /** An h2c server answering like a gRPC server: data, then grpc-status in trailers; `/fail` answers trailers-only. */
  async function grpcLikeServer(seen: http2.IncomingHttpHeaders[]): Promise<number> {
    const server = http2.createServer();
    server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      seen.push(headers);
      if (headers[':path'] === '/pkg.Svc/Fail') {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'not found' }, { endStream: true });
        return;
      }
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK' }));
        stream.end(Buffer.concat(parts));
      });
    });
    cleanups.push(() => {
      for (const s of sessions) s.destroy();
    });
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (s) => sessions.add(s));
    return listening(server as unknown as net.Server);
  }

  /** A gRPC-framed message: flag 0, 4-byte length, payload. */
  const frame = (payload: string) => {
    const body = Buffer.from(payload);
    const out = Buffer.alloc(5 + body.length);
    out.writeUInt32BE(body.length, 1);
    body.copy(out, 5);
    return out;
  };

  function call(client: http2.ClientHttp2Session, path: string, payload: string, headers: http2.OutgoingHttpHeaders = {}): Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer; trailers?: http2.IncomingHttpHeaders }> {
    return new Promise((resolve, reject) => {
      const stream = client.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
      let responseHeaders: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      const parts: Buffer[] = [];
      stream.on('response', (h) => (responseHeaders = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => resolve({ headers: responseHeaders, body: Buffer.concat(parts), ...(trailers ? { trailers } : {}) }));
      stream.on('error', reject);
      stream.end(frame(payload));
    });
  }

  it('adds the key to every stream and keeps bodies and trailers (grpc-status)', async () => {
    const seen: http2.IncomingHttpHeaders[] = [];
    const counter = { dials: 0 };
    const { port } = await startProxy(dialLoopback(await grpcLikeServer(seen), counter));
    const client = http2.connect(`http://127.0.0.1:${port}`);
    cleanups.push(() => { client.close(); });

    const answers = await Promise.all(['one', 'two', 'three'].map((p) => call(client, '/pkg.Svc/Echo', p, { baggage: 'devloop-route=bob,k=v' })));
    for (const [i, p] of ['one', 'two', 'three'].entries()) {
      expect(answers[i]!.headers[':status']).toBe(200);
      expect(answers[i]!.body.equals(frame(p))).toBe(true);
      expect(answers[i]!.trailers).toMatchObject({ 'grpc-status': '0', 'grpc-message': 'OK' });
    }
    expect(seen).toHaveLength(3);
    for (const h of seen) {
      expect(h.baggage).toBe('devloop-route=alice,k=v');
      expect(h['x-devloop-route']).toBe('alice');
      expect(h.te).toBe('trailers');
      expect(h[':path']).toBe('/pkg.Svc/Echo');
    }
    // One client connection, one upstream connection for all its streams.
    expect(counter.dials).toBe(1);
  });

  it('keeps a trailers-only answer (an error status in the headers) as it is', async () => {
    const seen: http2.IncomingHttpHeaders[] = [];
    const { port } = await startProxy(dialLoopback(await grpcLikeServer(seen)));
    const client = http2.connect(`http://127.0.0.1:${port}`);
    cleanups.push(() => { client.close(); });
    const answer = await call(client, '/pkg.Svc/Fail', 'x');
    expect(answer.headers).toMatchObject({ ':status': 200, 'grpc-status': '5', 'grpc-message': 'not found' });
    expect(answer.trailers).toBeUndefined();
    expect(answer.body.length).toBe(0);
    expect(seen[0]!['x-devloop-route']).toBe('alice');
  });

  it('answers an HTTP/2 request without trailers upstream as it came', async () => {
    const server = http2.createServer((req, res) => {
      res.setHeader('x-route-seen', String(req.headers['x-devloop-route']));
      res.end('plain h2');
    });
    const { port } = await startProxy(dialLoopback(await listening(server as unknown as net.Server)));
    const client = http2.connect(`http://127.0.0.1:${port}`);
    cleanups.push(() => { client.close(); });
    const stream = client.request({ ':path': '/' });
    const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    let body = '';
    for await (const c of stream) body += String(c);
    expect(headers[':status']).toBe(200);
    expect(headers['x-route-seen']).toBe('alice');
    expect(body).toBe('plain h2');
  });

  it('answers 502 on the stream when the upstream cannot be reached', async () => {
    const events: KeyedProxyEvent[] = [];
    const { port } = await startProxy(() => Promise.reject(new Error('cannot reach orders: no ready pod')), events);
    const client = http2.connect(`http://127.0.0.1:${port}`);
    cleanups.push(() => { client.close(); });
    const answer = await call(client, '/pkg.Svc/Echo', 'x');
    expect(answer.headers[':status']).toBe(502);
    expect(answer.body.toString()).toBe('devloop: cannot reach orders: no ready pod\n');
    expect(events).toEqual([{ type: 'upstream.failed', message: 'cannot reach orders: no ready pod' }]);
  });
});

describe('KeyedProxy, WebSocket and other upgrades', () => {
  /** An upstream that accepts WebSocket upgrades and echoes each (small, unfragmented) text message back. */
  async function echoWebSocketServer(seen: Seen[]): Promise<number> {
    const server = http.createServer((_req, res) => res.writeHead(426).end());
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      let buffered = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 6) {
          const opcode = buffered[0]! & 0x0f;
          const length = buffered[1]! & 0x7f; // messages of this test are shorter than 126 bytes
          if (buffered.length < 6 + length) return;
          const mask = buffered.subarray(2, 6);
          const payload = Buffer.from(buffered.subarray(6, 6 + length).map((b, i) => b ^ mask[i % 4]!));
          buffered = buffered.subarray(6 + length);
          if (opcode === 0x8) {
            socket.end(Buffer.from([0x88, 0]));
            return;
          }
          socket.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload]));
        }
      });
      // An upgraded socket is half-open: it ends when the client's side has ended.
      socket.on('end', () => socket.end());
      socket.on('error', () => socket.destroy());
    });
    return listening(server);
  }

  it('carries a WebSocket session: the upgrade request has the key, messages flow both ways', async () => {
    const seen: Seen[] = [];
    const { port } = await startProxy(dialLoopback(await echoWebSocketServer(seen)));
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket?x=1`);
    cleanups.push(() => ws.close());
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error('WebSocket did not open'));
    });

    const messages: string[] = [];
    const got = new Promise<void>((resolve) => {
      ws.onmessage = (e) => {
        messages.push(String(e.data));
        if (messages.length === 3) resolve();
      };
    });
    for (const m of ['a', 'bb', 'ccc']) ws.send(m);
    await got;
    expect(messages).toEqual(['a', 'bb', 'ccc']);
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/socket?x=1' });
    expect(seen[0]!.headers.baggage).toBe('devloop-route=alice');
    expect(seen[0]!.headers['x-devloop-route']).toBe('alice');
    expect(seen[0]!.headers.upgrade).toBe('websocket');
  });

  it('relays a raw Upgrade handshake and the bytes after it, both ways', async () => {
    const seen: Seen[] = [];
    const upstream = http.createServer();
    upstream.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: custom\r\nConnection: Upgrade\r\n\r\n');
      if (head.length) socket.write(head);
      socket.pipe(socket);
    });
    const { port } = await startProxy(dialLoopback(await listening(upstream)));
    const client = net.connect(port, '127.0.0.1');
    cleanups.push(() => { client.destroy(); });
    await once(client, 'connect');
    client.write('GET /tunnel HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: custom\r\nBaggage: devloop-route=bob\r\n\r\nearly');
    let text = '';
    client.on('data', (c: Buffer) => (text += c.toString()));
    while (!text.endsWith('early')) await once(client, 'data');
    client.write('-later');
    while (!text.endsWith('early-later')) await once(client, 'data');
    expect(text.startsWith('HTTP/1.1 101 Switching Protocols\r\n')).toBe(true);
    expect(seen[0]!.headers.baggage).toBe('devloop-route=alice');
    expect(seen[0]!.headers['x-devloop-route']).toBe('alice');
    expect(seen[0]!.headers.upgrade).toBe('custom');
  });

  it('answers an upgrade with 502 when the upstream stream fails before answering', async () => {
    const events: KeyedProxyEvent[] = [];
    const dial = async () => {
      const stream = new Duplex({ read() {}, write(_c, _e, done) { done(); } });
      setImmediate(() => stream.destroy(new Error('port-forward to pod/web-1:8080: connection refused')));
      return stream;
    };
    const { port } = await startProxy(dial, events);
    const client = net.connect(port, '127.0.0.1');
    cleanups.push(() => { client.destroy(); });
    client.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    let text = '';
    for await (const c of client) text += String(c);
    expect(text).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/);
    expect(text.endsWith('\r\n\r\ndevloop: port-forward to pod/web-1:8080: connection refused\n')).toBe(true);
    expect(events).toEqual([{ type: 'upstream.failed', message: 'port-forward to pod/web-1:8080: connection refused' }]);
  });

  it('answers an upgrade with 502 when the upstream cannot be reached', async () => {
    const events: KeyedProxyEvent[] = [];
    const { port } = await startProxy(() => Promise.reject(new Error('cannot reach web: no ready pod')), events);
    const client = net.connect(port, '127.0.0.1');
    cleanups.push(() => { client.destroy(); });
    client.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    let text = '';
    for await (const c of client) text += String(c);
    expect(text).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/);
    expect(text.endsWith('\r\n\r\ndevloop: cannot reach web: no ready pod\n')).toBe(true);
    expect(events).toHaveLength(1);
  });
});
