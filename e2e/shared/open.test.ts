import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownerLabels } from '../../core/deploy/labels.js';
import type { K8sObject } from '../../core/deploy/render.js';
import { forkObjects } from '../../core/route/fork.js';
import { buildImage, pushImage } from '../support/docker.js';
import { devloopEnv, infraEnv, repoRoot, uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, E2E_LABEL, kube, waitForDeployment, waitForReadyPod } from '../support/kube.js';
import { buildCli, devloop, explain } from '../up/harness.js';

// `devloop open` against the real cluster: a baseline Deployment + Service of a tiny HTTP server that answers with
// its pod name and the headers it received, and a developer's fork of it labelled as forks are. A plain client
// without headers goes through the local port to the fork, which sees the routing key; without a fork, to the
// baseline.

// HTTP/1.1 and WebSocket on port 8080, and HTTP/2 with prior knowledge on the same port (told apart by the
// preface, as gRPC servers are reached): every answer names the pod and the headers it received.
const SERVER_JS = `
const http = require('node:http');
const http2 = require('node:http2');
const net = require('node:net');
const os = require('node:os');
const crypto = require('node:crypto');
const pod = os.hostname();
function collect(stream, done) {
  const hash = crypto.createHash('sha256');
  let size = 0;
  stream.on('data', (c) => { hash.update(c); size += c.length; });
  stream.on('end', () => done(size, hash.digest('hex')));
}
const h1 = http.createServer((req, res) => collect(req, (size, sha256) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ pod, method: req.method, url: req.url, headers: req.headers, size, sha256 }));
}));
// WebSocket: each (small, masked) text message is answered with the pod, the routing header of the upgrade
// request and the message.
h1.on('upgrade', (req, socket) => {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n');
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 6) {
      const opcode = buf[0] & 0x0f, len = buf[1] & 0x7f;
      if (buf.length < 6 + len) return;
      const mask = buf.subarray(2, 6);
      const payload = Buffer.from(buf.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]));
      buf = buf.subarray(6 + len);
      if (opcode === 8) { socket.end(Buffer.from([0x88, 0])); return; }
      const text = Buffer.from(JSON.stringify({ pod, route: req.headers['x-devloop-route'], baggage: req.headers.baggage, echo: payload.toString() }));
      socket.write(Buffer.concat([Buffer.from([0x81, 126, text.length >> 8, text.length & 255]), text]));
    }
  });
  socket.on('end', () => socket.end());
  socket.on('error', () => socket.destroy());
});
function h2(socket) {
  const session = http2.performServerHandshake(socket);
  session.on('error', () => {});
  session.on('stream', (stream, headers) => collect(stream, (size, sha256) => {
    stream.respond({ ':status': 200, 'content-type': 'application/json' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-pod': pod }));
    stream.end(JSON.stringify({ pod, method: headers[':method'], url: headers[':path'], headers, size, sha256 }));
  }));
}
net.createServer((socket) => {
  socket.on('error', () => socket.destroy());
  socket.once('data', (chunk) => {
    socket.pause();
    socket.unshift(chunk);
    if (chunk.subarray(0, 3).toString() === 'PRI') h2(socket);
    else {
      h1.emit('connection', socket);
      socket.resume();
    }
  });
}).listen(8080);
process.on('SIGTERM', () => process.exit(0));
`;

const DOCKERFILE = `FROM node:24-slim
COPY server.js /app/server.js
USER node
CMD ["node", "/app/server.js"]
`;

interface Answer {
  pod: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  size: number;
  sha256: string;
}

function baselineObjects(namespace: string, image: string): K8sObject[] {
  const labels = { app: 'web' };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'web', image, ports: [{ containerPort: 8080 }], readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace, labels },
      spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    },
  ] as K8sObject[];
}

/** alice's fork of the baseline, as devloop makes it: forkObjects, plus devloop's owner labels on the pods. */
function aliceFork(baseline: K8sObject[]): K8sObject[] {
  const { objects } = forkObjects(baseline, 'alice');
  for (const o of objects) {
    if (o.kind !== 'Deployment') continue;
    const template = (o.spec as { template: { metadata: { labels: Record<string, string> } } }).template;
    template.metadata.labels = { ...template.metadata.labels, ...ownerLabels({ project: 'shop', developer: 'alice' }, 'web') };
  }
  return objects;
}

async function create(objects: K8sObject[]): Promise<void> {
  for (const o of objects) await kube().objects.create(o as k8s.KubernetesObject);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A running `devloop open`: its output so far, and a way to wait for a line. */
class OpenProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(dir: string, args: string[]) {
    this.child = spawn(process.execPath, [path.join(repoRoot, 'bin/devloop.js'), 'open', ...args], { cwd: dir, env: devloopEnv('alice', { NO_COLOR: '1' }) });
    this.child.stdout!.on('data', (c: Buffer) => (this.stdout += c.toString()));
    this.child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  async line(pattern: RegExp, what: string, timeoutMs = 60_000): Promise<string> {
    return waitFor(`devloop open to print ${what}`, async () => this.stdout.split('\n').find((l) => pattern.test(l)), {
      timeoutMs,
      describe: async () => `stdout: ${JSON.stringify(this.stdout)}\nstderr: ${JSON.stringify(this.stderr)}`,
    });
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGINT');
    return this.exited;
  }
}

async function get(port: number, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${port}/hello?x=1`, { ...init, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text}`);
  return JSON.parse(text) as Answer;
}

describe('devloop open on the real cluster', () => {
  let namespace: string;
  let dir: string;
  let baseline: K8sObject[];
  const running: OpenProcess[] = [];

  beforeAll(async () => {
    infraEnv();
    buildCli();
    const image = `${infraEnv().registry}/devloop-e2e/open-echo:${createHash('sha256').update(DOCKERFILE + SERVER_JS).digest('hex').slice(0, 12)}`;
    await buildImage({ Dockerfile: DOCKERFILE, 'server.js': SERVER_JS }, image);
    await pushImage(image);

    namespace = uniqueName('dl-open');
    await kube().core.createNamespace({ body: { metadata: { name: namespace, labels: { [E2E_LABEL]: 'true' } } } });
    await waitFor(`ServiceAccount default in ${namespace}`, async () => ((await kube().core.readNamespacedServiceAccount({ name: 'default', namespace })) ? true : undefined));
    baseline = baselineObjects(namespace, image);
    await create(baseline);
    await create(aliceFork(baseline));
    await Promise.all([waitForDeployment(namespace, 'web'), waitForDeployment(namespace, 'web-alice')]);

    // The project: web (deployed above), orders (no Service anywhere) and nolisten (a Service created below).
    dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-open-'));
    await writeFile(
      path.join(dir, 'devloop.yaml'),
      `version: 1\nname: shop\nnamespace: ${namespace}\nservices:\n  - name: web\n    path: services/web\n    ports: ["18082:8080"]\n  - name: orders\n    path: services/orders\n  - name: nolisten\n    path: services/nolisten\n`,
    );
    for (const s of ['web', 'orders', 'nolisten']) {
      await mkdir(path.join(dir, 'services', s), { recursive: true });
      await writeFile(path.join(dir, 'services', s, 'Dockerfile'), 'FROM scratch\n');
    }
    const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' });
    git('init', '-q', '-b', 'main');
    git('add', '-A');
    git('-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', 'commit', '-qm', 'shop');
  });

  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop()));
    if (dir) await rm(dir, { recursive: true, force: true });
    if (namespace) await deleteNamespace(namespace);
  });

  it('sends a plain client’s requests, with alice’s key, to alice’s fork; then to the baseline once the fork is gone', async () => {
    const forkPod = (await waitForReadyPod(namespace, 'devloop.dev/route=alice')).metadata!.name!;
    const port = await freePort();
    const open = new OpenProcess(dir, ['web', '--port', String(port)]);
    running.push(open);
    const line = await open.line(/^open web → /, 'where it leads');
    expect(line).toBe(`open web → http://127.0.0.1:${port} (requests carry devloop-route=alice; to web-alice)`);

    const answer = await get(port);
    expect(answer.pod).toBe(forkPod);
    expect(answer.url).toBe('/hello?x=1');
    expect(answer.headers.baggage).toBe('devloop-route=alice');
    expect(answer.headers['x-devloop-route']).toBe('alice');

    // A client's own baggage keeps its members; a large body goes through the port-forward intact.
    const body = Buffer.alloc(4 * 1024 * 1024, 7);
    const posted = await get(port, { method: 'POST', body, headers: { baggage: 'tenant=acme,devloop-route=bob' } });
    expect(posted.pod).toBe(forkPod);
    expect(posted.headers.baggage).toBe('devloop-route=alice,tenant=acme');
    expect(posted.size).toBe(body.length);
    expect(posted.sha256).toBe(createHash('sha256').update(body).digest('hex'));

    // HTTP/2 with prior knowledge, as a gRPC client speaks it: the key on the stream, the trailers back.
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const stream = client.request({ ':method': 'POST', ':path': '/pkg.Echo/Call', 'content-type': 'application/grpc', te: 'trailers' });
      stream.end('hello over h2');
      let trailers: http2.IncomingHttpHeaders | undefined;
      stream.on('trailers', (t) => (trailers = t));
      let text = '';
      for await (const c of stream) text += String(c);
      const h2answer = JSON.parse(text) as Answer;
      expect(h2answer.pod).toBe(forkPod);
      expect(h2answer.url).toBe('/pkg.Echo/Call');
      expect(h2answer.headers.baggage).toBe('devloop-route=alice');
      expect(h2answer.headers['x-devloop-route']).toBe('alice');
      expect(h2answer.sha256).toBe(createHash('sha256').update('hello over h2').digest('hex'));
      expect(trailers).toMatchObject({ 'grpc-status': '0', 'x-pod': forkPod });
    } finally {
      client.close();
    }

    // WebSocket: the upgrade request carries the key, messages flow both ways.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    try {
      await once(ws, 'open');
      ws.send('ping');
      const [message] = (await once(ws, 'message')) as [MessageEvent];
      expect(JSON.parse(String(message.data))).toEqual({ pod: forkPod, route: 'alice', baggage: 'devloop-route=alice', echo: 'ping' });
    } finally {
      ws.close();
    }

    // The fork goes away: the same local port now leads to the baseline.
    await kube().apps.deleteNamespacedDeployment({ name: 'web-alice', namespace });
    await open.line(/^web: now to web \(baseline\)/, 'the switch to the baseline');
    const baselinePod = (await waitForReadyPod(namespace, 'app=web')).metadata!.name!;
    const after = await get(port);
    expect(after.pod).toBe(baselinePod);
    expect(after.headers['x-devloop-route']).toBe('alice');

    expect(await open.stop()).toBe(0);
  });

  it('leads to the baseline when alice has no fork', async () => {
    await kube().apps.deleteNamespacedDeployment({ name: 'web-alice', namespace }).catch((err: unknown) => {
      if ((err as { code?: number }).code !== 404) throw err;
    });
    await waitFor('no pod of alice’s fork left running', async () => {
      const pods = await kube().core.listNamespacedPod({ namespace, labelSelector: 'devloop.dev/route=alice' });
      return pods.items.every((p) => p.metadata?.deletionTimestamp) ? true : undefined;
    });
    const baselinePod = (await waitForReadyPod(namespace, 'app=web')).metadata!.name!;
    const port = await freePort();
    const open = new OpenProcess(dir, ['web', '--port', String(port), '--namespace', namespace]);
    running.push(open);
    expect(await open.line(/^open web → /, 'where it leads')).toBe(`open web → http://127.0.0.1:${port} (requests carry devloop-route=alice; to web (baseline))`);
    const answer = await get(port);
    expect(answer.pod).toBe(baselinePod);
    expect(answer.headers.baggage).toBe('devloop-route=alice');
    expect(await open.stop()).toBe(0);
  });

  it('answers 502 with the reason, and says so, when nothing listens on the pod’s port', async () => {
    // A Service whose target port no container listens on.
    await kube().core.createNamespacedService({
      namespace,
      body: { metadata: { name: 'nolisten' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 9999 as unknown as k8s.IntOrString }] } },
    });
    const port = await freePort();
    const open = new OpenProcess(dir, ['nolisten', '--port', String(port)]);
    running.push(open);
    await open.line(/^open nolisten → /, 'where it leads');
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    expect(res.status).toBe(502);
    expect(text).toMatch(/^devloop: port-forward to pod\/web-[a-z0-9-]+:9999: .*9999/);
    expect(text.trimEnd().split('\n')).toHaveLength(1);
    await waitFor('the failure on stderr', async () => (/^nolisten: port-forward to pod\/web-.*:9999: /m.test(open.stderr) ? true : undefined), {
      describe: async () => `stderr: ${open.stderr}`,
    });
    expect(await open.stop()).toBe(0);
  });

  it('refuses bad input with one line and a hint, exit 2', async () => {
    const unknown = await devloop(dir, 'alice', ['open', 'webb']);
    expect(unknown.code, explain(unknown)).toBe(2);
    expect(unknown.stderr).toBe('unknown service "webb"\nhint: devloop.yaml lists: web, orders, nolisten\n');

    const noService = await devloop(dir, 'alice', ['open', 'orders']);
    expect(noService.code, explain(noService)).toBe(2);
    expect(noService.stderr).toMatch(new RegExp(`^there is no Service "orders" in namespace "${namespace}"\nhint: `));

    const noNamespace = await devloop(dir, 'alice', ['open', 'web', '--namespace', `${namespace}-missing`]);
    expect(noNamespace.code, explain(noNamespace)).toBe(2);
    expect(noNamespace.stderr).toMatch(/^namespace "dl-open-.*-missing" does not exist\nhint: /);

    const badPort = await devloop(dir, 'alice', ['open', 'web', '--port', '70000']);
    expect(badPort.code, explain(badPort)).toBe(2);
    expect(badPort.stderr).toBe('--port must be a port number from 1 to 65535, not "70000"\nhint: e.g. --port 8080\n');

    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const busyPort = (busy.address() as net.AddressInfo).port;
    try {
      const inUse = await devloop(dir, 'alice', ['open', 'web', '--port', String(busyPort)]);
      expect(inUse.code, explain(inUse)).toBe(2);
      expect(inUse.stderr).toBe(`port 127.0.0.1:${busyPort} is already in use\nhint: stop what listens there, or choose another port with --port\n`);
    } finally {
      busy.close();
    }
  });
});
