import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../core/build/build.js';
import { dockerClient } from '../../core/build/docker.js';
import { uniqueName, waitFor } from '../support/env.js';
import { deleteNamespace, describeNamespace, execInPod, kube, podLogs, portForward, waitForReadyPod } from '../support/kube.js';
import { buildCli, devloop, explain, fixtureRepo, servicesWith } from '../up/harness.js';
import { decodeFields, encodeStrings, grpcUnary } from './grpc-wire.js';

const SERVING = 1;

/** Fails with `what` when `promise` takes longer than `ms` (exec and port-forward streams can hang silently). */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Scaffold go-grpc and node-http into the fixture monorepo with the CLI, deploy them with `devloop up --once`,
// then talk to them through port-forwards: gRPC health and the example API, HTTP /healthz and /v1/hello.
describe('scaffolded services build, deploy and answer on the real cluster', () => {
  let repo: { dir: string; cleanup(): Promise<void> };
  const developer = uniqueName('scaf');
  const namespace = `shop-${developer}`;
  const forwards: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    buildCli();
    repo = await fixtureRepo();
  });

  afterAll(async () => {
    for (const f of forwards) await f.close().catch(() => undefined);
    await deleteNamespace(namespace).catch(() => undefined);
    await repo?.cleanup();
  });

  const ready = (app: string) =>
    waitForReadyPod(namespace, `app.kubernetes.io/name=${app}`, 120_000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${await describeNamespace(namespace)}`);
    });

  it('scaffolds both services with the CLI and registers them', async () => {
    const grpc = await devloop(repo.dir, developer, ['scaffold', 'go-grpc', 'inventory']);
    expect(grpc.code, explain(grpc)).toBe(0);
    expect(grpc.stdout).toContain('Go module example.com/shop/inventory');
    const node = await devloop(repo.dir, developer, ['scaffold', 'node-http', 'storefront']);
    expect(node.code, explain(node)).toBe(0);
    const config = await readFile(path.join(repo.dir, 'devloop.yaml'), 'utf8');
    expect(config).toContain('  # Built from the repository root so the shared library is in its build context');
    expect(config).toMatch(/- name: inventory\n {4}path: services\/inventory\n {4}manifests: services\/inventory\/deploy\n {4}ports: \["8080:8080"\]\n/);
    expect(config).toMatch(/- name: storefront\n[\s\S]*target: dev\n[\s\S]*sync:\n\s+- from: src\/\*\*\/\*\.ts\n\s+to: \/app\/src\n/);
  });

  it('devloop up --once builds both images offline and rolls them out', async () => {
    const run = await devloop(repo.dir, developer, ['up', '--once', '--json'], 600_000);
    expect(run.code, explain(run)).toBe(0);
    expect(servicesWith(run, 'rollout.ready')).toEqual(expect.arrayContaining(['inventory', 'storefront']));
  }, 620_000);

  it('go-grpc answers the gRPC health check and the example API through a port-forward, carrying the routing key', async () => {
    const pod = await ready('inventory');
    const forward = await portForward(namespace, pod.metadata!.name!, 8080);
    forwards.push(forward);

    const health = await waitFor('a gRPC health answer', async () => {
      const r = await grpcUnary(forward.localPort, '/grpc.health.v1.Health/Check', Buffer.alloc(0));
      return r.status === 0 ? r : undefined;
    }, { timeoutMs: 30_000 });
    expect(decodeFields(health.reply!)).toEqual({ 1: SERVING });

    const hello = await grpcUnary(forward.localPort, '/greeter.v1.GreeterService/SayHello', encodeStrings({ 1: 'e2e' }), {
      baggage: 'tenant=acme,devloop-route=alice',
    });
    expect(hello.status, hello.statusMessage).toBe(0);
    expect(decodeFields(hello.reply!)).toEqual({ 1: 'Hello, e2e!', 2: 'alice' });

    const unknown = await grpcUnary(forward.localPort, '/greeter.v1.GreeterService/Nope', Buffer.alloc(0));
    expect(unknown.status).toBe(12); // UNIMPLEMENTED

    // The image holds the binary the Dockerfile built, and it runs as the distroless nonroot user.
    const version = await execInPod(namespace, pod.metadata!.name!, 'inventory', ['/usr/local/bin/inventory', '--version']);
    expect(version.stdout).toMatch(/^inventory dev \(commit unknown, built unknown, go1\.26/);
    expect(pod.spec?.securityContext?.runAsUser).toBe(65532);
  });

  it('go-grpc serves Prometheus metrics on its own port', async () => {
    const pod = await ready('inventory');
    const forward = await portForward(namespace, pod.metadata!.name!, 9090);
    forwards.push(forward);
    const text = await (await fetch(`http://127.0.0.1:${forward.localPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    expect(text).toMatch(/grpc_server_handled_total\{grpc_code="OK",grpc_method="\/greeter\.v1\.GreeterService\/SayHello"\} 1/);
    expect(text).toContain('go_goroutines');
  });

  it('node-http answers /healthz and /v1/hello through a port-forward, carrying the routing key', async () => {
    const pod = await ready('storefront');
    const forward = await portForward(namespace, pod.metadata!.name!, 8080);
    forwards.push(forward);
    const base = `http://127.0.0.1:${forward.localPort}`;
    const health = await waitFor('an HTTP /healthz answer', async () => {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
      return res.ok ? res : undefined;
    }, { timeoutMs: 30_000 });
    expect(await health.json()).toEqual({ status: 'ok' });
    const hello = await fetch(`${base}/v1/hello?name=e2e`, { headers: { 'x-devloop-route': 'bob' }, signal: AbortSignal.timeout(10_000) });
    expect(await hello.json()).toEqual({ message: 'Hello, e2e!', route: 'bob' });
    // The dev target runs node --watch-path=src, so that synced sources take effect without a rebuild.
    const cmd = await execInPod(namespace, pod.metadata!.name!, 'storefront', ['cat', '/proc/1/cmdline']);
    expect(cmd.stdout.split('\0').filter(Boolean)).toEqual(['node', '--watch-path=src', 'src/main.ts']);
  });

  it('node-http serves a source file replaced the way sync writes it (temp file + rename), without a new pod', async () => {
    const pod = await ready('storefront');
    const name = pod.metadata!.name!;
    const edit = await within(30_000, 'exec sed + mv in the pod', execInPod(namespace, name, 'storefront', [
      'sh',
      '-c',
      "sed 's/Hello, /Howdy, /' /app/src/server.ts > /app/src/.server.ts.sync && mv /app/src/.server.ts.sync /app/src/server.ts",
    ]));
    expect(edit.exitCode, edit.stderr).toBe(0);
    const forward = await portForward(namespace, name, 8080);
    forwards.push(forward);
    const answer = await waitFor('the edited greeting', async () => {
      const res = await fetch(`http://127.0.0.1:${forward.localPort}/v1/hello?name=e2e`, { signal: AbortSignal.timeout(5000) });
      const body = (await res.json()) as { message: string };
      return body.message.startsWith('Howdy') ? body.message : undefined;
    }, { timeoutMs: 60_000, describe: () => podLogs(namespace, name, 'storefront') });
    expect(answer).toBe('Howdy, e2e!');
    const after = await kube().core.readNamespacedPod({ name, namespace });
    expect(after.status?.containerStatuses?.[0]?.restartCount).toBe(0);
  });
});

describe('the go-http template', () => {
  it('builds with BuildKit on the local engine, offline, and runs', async () => {
    const { dir, cleanup } = await fixtureRepo();
    const tag = `devloop-e2e/${uniqueName('gohttp')}:dev`;
    try {
      const run = await devloop(dir, 'nobody', ['scaffold', 'go-http', 'catalog']);
      expect(run.code, explain(run)).toBe(0);
      const exec = promisify(execFile);
      // Through the Engine API: the docker CLI here has no buildx, and the template's cache mount needs BuildKit.
      const docker = await dockerClient();
      await buildImage(
        docker,
        { service: 'catalog', contextDir: path.join(dir, 'services/catalog'), dockerfile: 'Dockerfile', image: tag, buildArgs: { VERSION: '9.9.9' }, labels: {}, network: 'none' },
        () => {},
        'buildkit',
      );
      const { stdout } = await exec('docker', ['run', '--rm', '--network', 'none', tag, '--version']);
      expect(stdout).toMatch(/^catalog 9\.9\.9 \(commit unknown, built unknown, go1\.26/);
    } finally {
      await promisify(execFile)('docker', ['rmi', '-f', tag]).catch(() => undefined);
      await cleanup();
    }
  }, 300_000);
});
