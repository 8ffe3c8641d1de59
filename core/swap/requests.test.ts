import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_HEAD, RequestCounter, type RequestProtocol } from './requests.js';

// What real clients send is recorded by a TCP relay in front of a real server, then fed to the counter cut in
// every way: whole, a byte at a time, at every single position, and at seeded random positions.

interface Counted {
  requests: number;
  protocol: RequestProtocol;
  stopped: boolean;
}

function count(chunks: Buffer[], end = true): Counted {
  const counter = new RequestCounter();
  let requests = 0;
  for (const chunk of chunks) requests += counter.push(chunk);
  if (end) requests += counter.end();
  expect(counter.requests).toBe(requests);
  return { requests, protocol: counter.protocol, stopped: counter.stopped };
}

/** A small deterministic generator (mulberry32), so a failing split can be reproduced. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function* splits(bytes: Buffer): Generator<[string, Buffer[]]> {
  yield ['whole', [bytes]];
  yield ['1-byte chunks', Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1))];
  // Every single cut for small captures; for large ones, every cut near the ends (the heads) and a sample between.
  const cuts = bytes.length <= 8192 ? [...Array(bytes.length + 1).keys()] : [...Array(4096).keys(), ...Array.from({ length: 4096 }, (_, i) => bytes.length - i)];
  const sample = random(7);
  if (bytes.length > 8192) for (let i = 0; i < 200; i++) cuts.push(Math.floor(sample() * bytes.length));
  for (const cut of cuts) yield [`cut at ${cut}`, [bytes.subarray(0, cut), bytes.subarray(cut)]];
  for (let seed = 1; seed <= 30; seed++) {
    const next = random(seed);
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; ) {
      const size = next() < 0.8 ? 1 + Math.floor(next() * 24) : 1 + Math.floor(next() * 4096);
      chunks.push(bytes.subarray(at, at + size));
      at += size;
    }
    yield [`random split, seed ${seed}`, chunks];
  }
}

/** Just the upgrade request's head: counting must stop there, before any byte of the protocol that follows. */
function expectStopAfterHead(bytes: Buffer): void {
  const head = bytes.subarray(0, bytes.indexOf('\r\n\r\n') + 4);
  expect(count([head], false)).toEqual({ requests: 1, protocol: 'http1', stopped: true });
}

/** The same result however the bytes are cut. */
function expectEverySplit(bytes: Buffer, expected: Counted): void {
  for (const [how, chunks] of splits(bytes)) expect(count(chunks), how).toEqual(expected);
}

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // An http.Server would wait for its kept-alive connections.
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** A TCP relay to a real server on `port` that records, per connection, every byte the client sends. */
async function recordingRelay(port: number): Promise<{ port: number; captured: () => Promise<Buffer[]> }> {
  const connections: { chunks: Buffer[]; closed: Promise<unknown> }[] = [];
  const sockets = new Set<net.Socket>();
  const relay = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    connections.push({ chunks, closed: once(client, 'close') });
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  const relayPort = await listen(relay);
  closers.push(() => {
    for (const socket of sockets) socket.destroy();
  });
  return {
    port: relayPort,
    captured: async () => {
      await Promise.all(connections.map((c) => c.closed));
      return connections.map((c) => Buffer.concat(c.chunks));
    },
  };
}

function request(options: http.RequestOptions, send?: (req: http.ClientRequest) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    if (send) send(req);
    else req.end();
  });
}

describe('HTTP/1.1 from Node http.request', () => {
  it('counts every request of a kept-alive connection: GET, POST with a body, chunked with trailers, a large PUT', async () => {
    let served = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        served++;
        res.end('ok');
      });
    });
    const relay = await recordingRelay(await listen(server));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const base = { host: '127.0.0.1', port: relay.port, agent };
    // A body that looks like requests: it must be skipped, not read.
    const decoy = Buffer.from('GET /decoy HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(3000));

    await request({ ...base, path: '/a' });
    await request({ ...base, path: '/b', method: 'POST', headers: { 'content-type': 'text/plain' } }, (req) => req.end('hello'));
    await request({ ...base, path: '/c', method: 'POST' }, (req) => {
      req.write('GET /x HTTP/1.1\r\n\r\n');
      req.write(randomBytes(5000));
      req.addTrailers({ 'x-checksum': 'abc' });
      req.end();
    });
    await request({ ...base, path: '/d', method: 'PUT', headers: { 'content-length': decoy.length } }, (req) => req.end(decoy));
    await request({ ...base, path: '/e?q=1', method: 'DELETE' });
    agent.destroy();

    const [bytes, ...others] = await relay.captured();
    expect(others).toHaveLength(0);
    const text = bytes!.toString('latin1');
    expect(text).toContain('Transfer-Encoding: chunked');
    expect(text).toContain('x-checksum: abc');
    expect(text).toMatch(new RegExp(`content-length: ${decoy.length}\r\n`, 'i'));
    expect(served).toBe(5);
    expectEverySplit(bytes!, { requests: 5, protocol: 'http1', stopped: true });
    // Before the caller ends, the counter is still reading: a later request would count.
    expect(count([bytes!], false)).toEqual({ requests: 5, protocol: 'http1', stopped: false });
  });

  it('counts a WebSocket upgrade (Node WebSocket client) as one request and reads nothing after it', async () => {
    const server = http.createServer();
    const received: Buffer[] = [];
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
      const accept = createHash('sha1')
        .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
        .digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        socket.end();
      });
    });
    const relay = await recordingRelay(await listen(server));
    const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/live`);
    await once(ws, 'open');
    ws.send('GET /inside HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(10));
    await once(ws, 'close');

    const [bytes] = await relay.captured();
    expect(received.length).toBeGreaterThan(0);
    expect(bytes!.toString('latin1')).toMatch(/^GET \/live HTTP\/1\.1\r\n[\s\S]*upgrade: websocket/i);
    expectEverySplit(bytes!, { requests: 1, protocol: 'http1', stopped: true });
    expectStopAfterHead(bytes!);
  });

  it('counts an upgrade to h2c as one request, not the HTTP/2 requests that follow it', async () => {
    let served = 0;
    const h2 = http2.createServer();
    h2.on('stream', (stream: http2.ServerHttp2Stream) => {
      served++;
      stream.respond({ ':status': 200 });
      stream.end();
    });
    const server = http.createServer();
    server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
      if (head.length) socket.unshift(head);
      h2.emit('connection', socket);
    });
    const relay = await recordingRelay(await listen(server));

    const upgraded = new Promise<net.Socket>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port: relay.port,
        path: '/',
        headers: { Connection: 'Upgrade, HTTP2-Settings', Upgrade: 'h2c', 'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA' },
      });
      req.on('upgrade', (_res, socket: net.Socket, head: Buffer) => {
        // The server's first HTTP/2 frames may have arrived with the 101.
        if (head.length) socket.unshift(head);
        resolve(socket);
      });
      req.on('error', reject);
      req.end();
    });
    const socket = await upgraded;
    const client = http2.connect(`http://127.0.0.1:${relay.port}`, { createConnection: () => socket });
    for (const path of ['/one', '/two']) {
      const stream = client.request({ ':path': path });
      stream.resume();
      await once(stream, 'close');
    }
    client.close();

    const [bytes] = await relay.captured();
    expect(served).toBe(2);
    expect(bytes!.includes('PRI * HTTP/2.0')).toBe(true);
    expectEverySplit(bytes!, { requests: 1, protocol: 'http1', stopped: true });
    expectStopAfterHead(bytes!);
  });
});

/** The frame types after the preface, to show what a capture holds. */
function frameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  for (let at = 24; at + 9 <= bytes.length; at += 9 + bytes.readUIntBE(at, 3)) types.push(bytes[at + 3]!);
  return types;
}

describe('HTTP/2 with prior knowledge from Node http2.connect', () => {
  it('counts each stream once: concurrent GETs, a POST, trailers, a header block in CONTINUATION frames', async () => {
    let served = 0;
    const server = http2.createServer({ settings: { maxHeaderListSize: 256 * 1024 } });
    server.on('stream', (stream: http2.ServerHttp2Stream) => {
      stream.resume();
      stream.on('end', () => {
        served++;
        stream.respond({ ':status': 200 });
        stream.end('ok');
      });
    });
    const relay = await recordingRelay(await listen(server));
    const client = http2.connect(`http://127.0.0.1:${relay.port}`, { settings: { maxHeaderListSize: 256 * 1024 } });
    const finished = (stream: http2.ClientHttp2Stream) => {
      stream.resume();
      return once(stream, 'close');
    };

    await Promise.all(['/a', '/b', '/c'].map((path) => finished(client.request({ ':path': path }))));
    const post = client.request({ ':method': 'POST', ':path': '/post' });
    post.end(randomBytes(40_000));
    await finished(post);
    const withTrailers = client.request({ ':method': 'POST', ':path': '/grpc' }, { waitForTrailers: true });
    withTrailers.on('wantTrailers', () => withTrailers.sendTrailers({ 'x-checksum': 'abc' }));
    withTrailers.end('body');
    await finished(withTrailers);
    await finished(client.request({ ':path': '/big', 'x-large': randomBytes(30_000).toString('base64') }));
    client.close();
    await once(client, 'close');

    const [bytes, ...others] = await relay.captured();
    expect(others).toHaveLength(0);
    expect(served).toBe(6);
    const types = frameTypes(bytes!);
    expect(types.filter((t) => t === 0x1).length).toBe(7); // six requests and one trailer block
    expect(types).toContain(0x9); // CONTINUATION
    expectEverySplit(bytes!, { requests: 6, protocol: 'h2', stopped: true });
  });
});

describe('other protocols: one request per connection', () => {
  it('counts a TLS connection (Node tls.connect ClientHello) once, from its first byte', async () => {
    const received: Buffer[] = [];
    const server = net.createServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        const hello = Buffer.concat(received);
        if (hello.length >= 5 && hello.length >= 5 + hello.readUInt16BE(3)) socket.end();
      });
    });
    const port = await listen(server);
    const client = tls.connect({ host: '127.0.0.1', port, servername: 'example.test' });
    const [error] = (await once(client, 'error')) as [Error];
    expect(error.message).toMatch(/disconnected|ECONNRESET|socket hang up/);
    const hello = Buffer.concat(received);
    expect(hello[0]).toBe(0x16); // a TLS handshake record

    expectEverySplit(hello, { requests: 1, protocol: 'opaque', stopped: true });
    const counter = new RequestCounter();
    expect(counter.push(hello.subarray(0, 1))).toBe(1);
    expect([counter.protocol, counter.stopped, counter.buffered]).toEqual(['opaque', true, 0]);
    expect(counter.push(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBe(0);
  });

  it('counts a text protocol once even where it begins like a method (Redis)', () => {
    expectEverySplit(Buffer.from('*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n'), { requests: 1, protocol: 'opaque', stopped: true });
    expectEverySplit(Buffer.from('HELLO world\r\n'), { requests: 1, protocol: 'opaque', stopped: true });
    expectEverySplit(Buffer.from('GET / HTTP/2.0\r\n\r\n'), { requests: 1, protocol: 'opaque', stopped: true });
    // Begins like the HTTP/2 preface, but is an HTTP/1.1 request with the method PRI.
    expectEverySplit(Buffer.from('PRI /x HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n'), { requests: 2, protocol: 'http1', stopped: true });
  });

  it('counts a connection too short to recognise once when it ends, and an empty one not at all', () => {
    expect(count([Buffer.from('GET /pa')])).toEqual({ requests: 1, protocol: 'opaque', stopped: true });
    expect(count([Buffer.from('PRI * HTTP/2.0\r\n')])).toEqual({ requests: 1, protocol: 'opaque', stopped: true });
    expect(count([Buffer.from('GET /pa')], false)).toEqual({ requests: 0, protocol: 'unknown', stopped: false });
    expect(count([])).toEqual({ requests: 0, protocol: 'unknown', stopped: true });
  });
});

describe('HTTP/1.x framing', () => {
  const bytes = (text: string) => Buffer.from(text, 'latin1');

  it('counts pipelined requests in one write, with chunk extensions, trailers and bare-LF lines', () => {
    const body = 'GET /in-body HTTP/1.1\r\n\r\n....';
    const pipelined = bytes(
      'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n' +
        `POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        'POST /3 HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n' +
        '5;name=value;other="quoted; x"\r\n' + 'GET /' + '\r\n' +
        '10 \t;ext\r\n' + 'HTTP/1.1\r\n\r\n\r\n\r\n' + '\r\n' +
        '0;last\r\nx-sum: 1\r\nx-more: 2\r\n\r\n' +
        '\r\nHEAD /4 HTTP/1.0\nHost: a\n\n' +
        'PRI /5 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' +
        'OPTIONS * HTTP/1.1\r\nContent-Length: 0\r\n\r\n',
    );
    expectEverySplit(pipelined, { requests: 6, protocol: 'http1', stopped: true });
  });

  it('reads Content-Length from repeated and folded fields', () => {
    expectEverySplit(bytes('POST / HTTP/1.1\r\nContent-Length: 4\r\ncontent-length: 4\r\n\r\nabcdGET / HTTP/1.1\r\n\r\n'), {
      requests: 2,
      protocol: 'http1',
      stopped: true,
    });
    expectEverySplit(bytes('POST / HTTP/1.1\r\nContent-Length:\r\n 4\r\n\r\nabcdGET / HTTP/1.1\r\n\r\n'), {
      requests: 2,
      protocol: 'http1',
      stopped: true,
    });
  });

  it('stops counting after an upgrade or CONNECT, whatever follows', () => {
    const after = 'GET /after HTTP/1.1\r\n\r\n';
    for (const head of [
      'GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n',
      'GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
      'CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n',
    ]) {
      expectEverySplit(bytes(head + after), { requests: 1, protocol: 'http1', stopped: true });
    }
    // Upgrade offered without `Connection: upgrade` is an ordinary request; so is a method that only starts like CONNECT.
    expectEverySplit(bytes('GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n' + after), { requests: 2, protocol: 'http1', stopped: true });
    expectEverySplit(bytes('CONNECTX / HTTP/1.1\r\n\r\n' + after), { requests: 2, protocol: 'http1', stopped: true });
  });

  it('stops counting at bytes that break HTTP/1, keeping what it counted', () => {
    const first = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    for (const broken of [
      '\x16\x03\x01binary',
      'GET / HTTP/1.1\r\nContent-Length: 4, 5\r\n\r\nabcdGET / HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\nGET / HTTP/1.1\r\n\r\n',
      'POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET / HTTP/1.1\r\n\r\n',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET / HTTP/1.1\r\n\r\n',
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcGET / HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.1\r\nbad header\r\n\r\nGET / HTTP/1.1\r\n\r\n',
    ]) {
      const expected = broken.startsWith('\x16') ? 1 : 2;
      expectEverySplit(bytes(first + broken), { requests: expected, protocol: 'http1', stopped: true });
    }
  });

  it('gives up on a head larger than MAX_HEAD without holding more than it', () => {
    const counter = new RequestCounter();
    expect(counter.push(bytes('GET / HTTP/1.1\r\nX-Big: '))).toBe(1);
    const filler = Buffer.alloc(1024, 'a');
    for (let i = 0; i < 63; i++) counter.push(filler);
    expect(counter.stopped).toBe(false);
    expect(counter.buffered).toBeGreaterThan(63 * 1024);
    counter.push(filler);
    expect([counter.stopped, counter.buffered, counter.protocol, counter.requests]).toEqual([true, 0, 'http1', 1]);

    // A request line that never ends is not HTTP: the connection is opaque.
    const endless = new RequestCounter();
    expect(endless.push(bytes('GET /'))).toBe(0);
    expect(endless.push(Buffer.alloc(MAX_HEAD, 'a'))).toBe(1);
    expect([endless.protocol, endless.stopped]).toEqual(['opaque', true]);
  });

  it('holds nothing while skipping a body', () => {
    const counter = new RequestCounter();
    counter.push(bytes('PUT / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n'));
    for (let i = 0; i < 10; i++) expect(counter.push(Buffer.alloc(100_000, 'x'))).toBe(0);
    expect(counter.buffered).toBe(0);
    expect(counter.push(bytes('GET / HTTP/1.1\r\n\r\n'))).toBe(1);
  });
});

describe('HTTP/2 frames', () => {
  const frame = (type: number, flags: number, stream: number, length = 0) => {
    const header = Buffer.alloc(9 + length);
    header.writeUIntBE(length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(stream, 5);
    return header;
  };
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

  it('counts HEADERS that open a client stream, not trailers, CONTINUATION, stream 0 or even ids', () => {
    const bytes = Buffer.concat([
      preface,
      frame(0x4, 0, 0, 6), // SETTINGS
      frame(0x1, 0x0, 1, 20), // HEADERS without END_HEADERS
      frame(0x9, 0x4, 1, 10), // CONTINUATION
      frame(0x1, 0x4, 3, 5),
      frame(0x0, 0x0, 1, 100), // DATA
      frame(0x1, 0x5, 1, 5), // trailers on stream 1 after stream 3 opened
      frame(0x1, 0x4, 0, 5), // HEADERS on stream 0: a protocol error, not a request
      frame(0x1, 0x4, 4, 5), // even ids are the server's
      frame(0x8, 0, 0, 4), // WINDOW_UPDATE
      frame(0x1, 0x5, 0x80000005, 0), // the reserved bit is not part of the id
      frame(0x1, 0x5, 3, 0), // trailers on stream 3
    ]);
    expectEverySplit(bytes, { requests: 3, protocol: 'h2', stopped: true });
    const counter = new RequestCounter();
    counter.push(bytes.subarray(0, bytes.length - 4));
    expect(counter.buffered).toBe(5); // the cut frame header, nothing else
  });
});
