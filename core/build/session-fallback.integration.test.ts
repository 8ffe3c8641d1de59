import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildProgress } from './build.js';

// An engine that opens no sessions (as engines before API 1.39): the real engine behind a proxy that answers
// POST /session with 404 and passes everything else through. The proxy is a test double for that one answer only.
const engineSocket = (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');
const tag = `fs-fallback/ctx:${process.pid}`;
let dir: string;
let socketDir: string;
let proxy: http.Server;

beforeAll(async () => {
  if (!engineSocket.startsWith('/')) throw new Error(`this test needs the Docker engine on a unix socket (DOCKER_HOST=${process.env.DOCKER_HOST})`);
  dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-session-fallback-'));
  proxy = http.createServer((req, res) => {
    if (req.method === 'POST' && /^(\/v[\d.]+)?\/session$/.test(req.url ?? '')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"page not found"}');
      return;
    }
    const upstream = http.request({ socketPath: engineSocket, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (err) => res.destroy(err));
    req.pipe(upstream);
  });
  socketDir = await mkdtemp(path.join(os.tmpdir(), 'devloop-engine-'));
  const socket = path.join(socketDir, 'engine.sock');
  await new Promise<void>((resolve) => proxy.listen(socket, resolve));
  // Read once, when the shared client is made (below, by the builder).
  process.env.DOCKER_HOST = `unix://${socket}`;
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM debian:bookworm-slim\nCOPY hello.txt /hello.txt\n');
  await writeFile(path.join(dir, 'hello.txt'), 'hello from the tar');
});
afterAll(async () => {
  await execa('docker', ['-H', `unix://${engineSocket}`, 'rmi', '-f', tag]).catch(() => undefined);
  await new Promise((resolve) => proxy.close(resolve));
  await rm(dir, { recursive: true, force: true });
  await rm(socketDir, { recursive: true, force: true });
});

describe('DockerBuilder with an engine that opens no session', () => {
  it('says why once and sends the whole context as a tar, build after build', async () => {
    const { DockerBuilder } = await import('./builder.js');
    const builder = new DockerBuilder({});
    const progress: BuildProgress[] = [];
    const request = { service: 'ctx', contextDir: dir, dockerfile: 'Dockerfile', image: tag, buildArgs: {}, labels: {} };
    await builder.build(request, (p) => progress.push(p));
    await builder.build(request, (p) => progress.push(p));
    const notices = progress.flatMap((p) => (p.kind === 'notice' ? [p.message] : []));
    expect(notices).toEqual(['sending the whole build context: the engine opened no session (POST /session answered 404: page not found)']);
    const { stdout } = await execa('docker', ['-H', `unix://${engineSocket}`, 'run', '--rm', tag, 'cat', '/hello.txt']);
    expect(stdout).toBe('hello from the tar');
  });
});
