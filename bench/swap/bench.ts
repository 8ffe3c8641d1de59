/**
 * Benchmark of `devloop swap` on the e2e cluster (global mode, the registry-fed host cluster).
 *
 *   npm run build && node bench/swap/bench.ts [--requests 1000] [--seconds 5] [--connections 50] [--starts 3] [--kills 1] [--keep]
 *
 * Prints
 *  1. time from starting `devloop swap web` to the first request from a pod in the cluster served by the local
 *     process (a client pod calls the Service every 20 ms), with the agent image present: each of `--starts` runs
 *     and the median (target <= 3 s);
 *  2. latency of one request over a kept-alive connection, `--requests` sequential requests, p50 / p99: from a pod
 *     in the cluster through the swap (Service → agent → tunnel → devloop → local server), against a local client
 *     through a direct port-forward to a pod (the same API-server stream the tunnel rides on); the difference is
 *     what the swap adds (target p50 <= 2 ms). Also: requests/s with `--connections` concurrent kept-alive
 *     connections for `--seconds`, both ways;
 *  3. restore time after kill -9 of devloop: from the kill to the Service answering from its own pods again (the
 *     lease is 15 s), `--kills` times.
 * Needs the e2e infrastructure (`npm run infra:up`) and the local image node:24-slim.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { benchArgs, cli, commitAll, infraEnv } from '../lib.ts';

const { opt, flag } = benchArgs(import.meta.filename);
const requests = Number(opt('--requests', '1000'));
const seconds = Number(opt('--seconds', '5'));
const connections = Number(opt('--connections', '50'));
const starts = Number(opt('--starts', '3'));
const kills = Number(opt('--kills', '1'));
const keep = flag('--keep');

const dir = '/tmp/dl-swap-bench';
const developer = 'dl-swap-bench';
const namespace = 'dl-swap-bench';
const localPort = 18680;

const infra = infraEnv();
const env = { ...process.env, ...infra, DEVLOOP_DEVELOPER: developer, NO_COLOR: '1' };
const kubectl = (...a: string[]) => execFileSync('kubectl', a, { env, encoding: 'utf8', maxBuffer: 16 << 20 });
const kc = new k8s.KubeConfig();
kc.loadFromFile(infra.KUBECONFIG!);
const core = kc.makeApiClient(k8s.CoreV1Api);

// The workload: web (answers "cluster"), and a client pod to call it from inside the cluster.
const image = `${infra.DEVLOOP_REGISTRY}/dl-swap/node:24-slim`;
execFileSync('docker', ['tag', 'node:24-slim', image], { env });
execFileSync('docker', ['push', '-q', image], { env, stdio: 'pipe' });
const labels = (svc: string) => ({ 'app.kubernetes.io/managed-by': 'devloop', 'devloop.dev/project': 'dlswap', 'devloop.dev/developer': developer, 'devloop.dev/service': svc });
const deployment = (name: string, script: string, extraLabels: Record<string, string>) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace, labels: extraLabels },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name, ...extraLabels } },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name, image, command: ['node', '-e', script], ports: [{ containerPort: 8080 }] }] },
    },
  },
});
const manifests = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
  deployment('web', `require('http').createServer((q, s) => s.end('cluster')).listen(8080)`, labels('web')),
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace, labels: labels('web') }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } },
  deployment('client', 'setInterval(() => {}, 1 << 30)', {}),
];
execFileSync('kubectl', ['apply', '--server-side', '--force-conflicts', '--field-manager=bench', '-f', '-'], { env, input: manifests.map((m) => JSON.stringify(m)).join('\n') });
kubectl('-n', namespace, 'rollout', 'status', 'deployment/web', 'deployment/client', '--timeout=180s');
const podOf = (app: string) => kubectl('-n', namespace, 'get', 'pod', '-l', `app=${app}`, '--field-selector=status.phase=Running', '-o', 'jsonpath={.items[0].metadata.name}').trim();
const clientPod = podOf('client');
// Asynchronous: the local server the swap reaches lives in this process and must keep answering meanwhile.
const execNode = async (script: string) =>
  (await promisify(execFile)('kubectl', ['-n', namespace, 'exec', clientPod, '--', 'node', '-e', script], { env, maxBuffer: 16 << 20 })).stdout.trim();

rmSync(dir, { recursive: true, force: true });
mkdirSync(path.join(dir, 'services/web'), { recursive: true });
writeFileSync(path.join(dir, 'services/web/Dockerfile'), 'FROM scratch\n');
writeFileSync(path.join(dir, 'devloop.yaml'), 'version: 1\nname: dlswap\nservices:\n  - name: web\n    path: services/web\n');
commitAll(dir);

// The local process.
let firstLocalAt = 0;
const local = http.createServer((_q, s) => {
  firstLocalAt ||= Date.now();
  s.end('local');
});
local.keepAliveTimeout = 60_000;
await new Promise<void>((r) => local.listen(localPort, '127.0.0.1', r));

// A devloop left running by a failed run would hold the swap: each one is asked to restore when this exits.
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGINT');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

function swap(): { proc: ChildProcess; started: Promise<void> } {
  const proc = spawn(process.execPath, [cli, 'swap', 'web', '--port', `${localPort}:80`, '--json', '--namespace', namespace], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const started = new Promise<void>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('"type":"swap.started"')) resolve();
    });
    proc.on('exit', (code) => reject(new Error(`devloop swap exited with ${code}: ${err}`)));
  });
  started.catch(() => undefined);
  return { proc, started };
}
const stopSwap = async (proc: ChildProcess) => {
  const exited = new Promise((r) => proc.on('exit', r));
  proc.kill('SIGINT');
  await exited;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const ms = (x: number) => `${x.toFixed(2)} ms`;

// A caller in the cluster that calls the Service every 20 ms, for the time to the first local answer.
// A new connection per call: connections opened before the swap stay with the pods that accepted them.
const callerScript = `const http = require('http'); setInterval(() => http.get('http://web/', { agent: false, timeout: 2000 }, (r) => r.resume()).on('error', () => {}), 20);`;
const caller = spawn('kubectl', ['-n', namespace, 'exec', clientPod, '--', 'node', '-e', callerScript], { env, stdio: 'ignore' });
children.add(caller);

// Warm-up: the agent image is built and pushed once.
{
  const w = swap();
  await w.started;
  await stopSwap(w.proc);
}
const startTimes: number[] = [];
for (let i = 0; i < starts; i++) {
  firstLocalAt = 0;
  const t0 = Date.now();
  const s = swap();
  await s.started;
  while (!firstLocalAt) await new Promise((r) => setTimeout(r, 5));
  startTimes.push(firstLocalAt - t0);
  await stopSwap(s.proc);
}
caller.kill('SIGKILL');
console.log(`1. swap → first request served locally: ${startTimes.map((t) => `${(t / 1000).toFixed(2)} s`).join(', ')}; median ${(pct(startTimes, 50) / 1000).toFixed(2)} s (target <= 3 s)`);

// 2. Latency and throughput. In the pod: sequential requests over one kept-alive connection, then N workers.
const loadScript = (url: string) => `
const http = require('http');
const agent = new http.Agent({ keepAlive: true, maxSockets: ${connections} });
const get = () => new Promise((res, rej) => http.get(${JSON.stringify(url)}, { agent }, (r) => { r.resume(); r.on('end', res); }).on('error', rej));
(async () => {
  for (let i = 0; i < 20; i++) await get();
  const lat = [];
  for (let i = 0; i < ${requests}; i++) { const t = process.hrtime.bigint(); await get(); lat.push(Number(process.hrtime.bigint() - t) / 1e6); }
  let done = 0; const end = Date.now() + ${seconds * 1000};
  await Promise.all(Array.from({ length: ${connections} }, async () => { while (Date.now() < end) { await get(); done++; } }));
  console.log(JSON.stringify({ lat, rps: done / ${seconds} }));
})();`;
const measureLocal = async (port: number) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const get = () => new Promise<void>((res, rej) => http.get(`http://127.0.0.1:${port}/`, { agent }, (r) => { r.resume(); r.on('end', res); }).on('error', rej));
  for (let i = 0; i < 20; i++) await get();
  const lat: number[] = [];
  for (let i = 0; i < requests; i++) {
    const t = process.hrtime.bigint();
    await get();
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  let done = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(Array.from({ length: connections }, async () => { while (Date.now() < end) { await get(); done++; } }));
  agent.destroy();
  return { lat, rps: done / seconds };
};

// Baseline: kubectl port-forward to the web pod (one API-server connection carrying every forwarded connection).
const webPod = podOf('web');
const pf = spawn('kubectl', ['-n', namespace, 'port-forward', `pod/${webPod}`, ':8080'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
children.add(pf);
const pfPort = await new Promise<number>((resolve, reject) => {
  let out = '';
  pf.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  pf.on('exit', (code) => reject(new Error(`kubectl port-forward exited with ${code}`)));
});
const direct = await measureLocal(pfPort);
pf.kill('SIGTERM');

const s = swap();
await s.started;
const swapped = JSON.parse(await execNode(loadScript('http://web/'))) as { lat: number[]; rps: number };
await stopSwap(s.proc);
console.log(`2. one request, ${requests} sequential, kept-alive:`);
console.log(`   direct port-forward to the pod: p50 ${ms(pct(direct.lat, 50))}, p99 ${ms(pct(direct.lat, 99))}`);
console.log(`   cluster → swap → local:         p50 ${ms(pct(swapped.lat, 50))}, p99 ${ms(pct(swapped.lat, 99))}`);
console.log(`   added by the swap: p50 ${ms(pct(swapped.lat, 50) - pct(direct.lat, 50))}, p99 ${ms(pct(swapped.lat, 99) - pct(direct.lat, 99))} (target p50 <= 2 ms)`);
console.log(`   ${connections} concurrent connections for ${seconds} s: direct port-forward ${direct.rps.toFixed(0)} req/s, through the swap ${swapped.rps.toFixed(0)} req/s`);

// 3. Restore after kill -9.
const restoreTimes: number[] = [];
for (let i = 0; i < kills; i++) {
  const k = swap();
  await k.started;
  k.proc.kill('SIGKILL');
  const killedAt = Date.now();
  for (;;) {
    const answer = await execNode(`fetch('http://web/', { signal: AbortSignal.timeout(1000) }).then((r) => r.text()).then(console.log, () => console.log('error'))`);
    if (answer === 'cluster') break;
  }
  restoreTimes.push(Date.now() - killedAt);
  // Let the agent finish removing itself before the next round.
  for (let j = 0; j < 60 && kubectl('-n', namespace, 'get', 'lease,deploy,pod', '-l', 'devloop.dev/swap-agent', '-o', 'name').trim(); j++) await new Promise((r) => setTimeout(r, 1000));
}
console.log(`3. kill -9 → the Service answered by its own pods: ${restoreTimes.map((t) => `${(t / 1000).toFixed(1)} s`).join(', ')} (lease 15 s; target <= 30 s)`);

local.close();
if (!keep) {
  await core.deleteNamespace({ name: namespace });
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
