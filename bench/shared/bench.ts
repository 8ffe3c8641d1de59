/**
 * Benchmark of the shared cluster on the e2e cluster with istiod (remote target: registry, apply, rollout, routes).
 *
 *   npm run bench:shared [-- --services 30 --runs 3 --dir /tmp/devloop-bench-shared --project benchshared --builder classic --keep]
 *
 * A baseline of 30 gRPC services (proxyless xDS clients of istiod) deployed with `up --baseline`; then a developer
 * changes one service and runs `up --once`. Prints
 *  1. the objects that developer's `up` created in the cluster (target: only that service's fork + one route);
 *  2. the developer's `up --once` wall time beside today's full-namespace `up --once` of the same 30 services into a
 *     fresh namespace, images already built (target: >= 5x faster);
 *  3. route propagation: from `up` finishing to the first request with the developer's key answered by the fork,
 *     calling through istiod from this host every 50 ms (target <= 2 s after the fork is ready).
 * Needs the e2e infrastructure (`npm run infra:up`) with istiod.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchArgs, cli, commitAll, fmt, infraEnv, median, repoRoot, timed as timedIn, writeUnder } from '../lib.ts';

const { opt, flag } = benchArgs(import.meta.filename);
const SERVICES = Number(opt('--services', '30'));
const runs = Number(opt('--runs', '3'));
const dir = path.resolve(opt('--dir', '/tmp/devloop-bench-shared'));
const keep = flag('--keep');
const infra = infraEnv();
const istiod = infra.DEVLOOP_ISTIOD;
if (!istiod) throw new Error('DEVLOOP_ISTIOD is not set by `infra.sh env`: istiod is not up (run npm run infra:up)');
// The project's name names its namespaces and images (`--project` keeps concurrent runs on one cluster apart).
const project = opt('--project', 'benchshared');
const baseline = `${project}-main`;
const full = `${project}-full`;
const developer = 'alice';
// devloop's own builder (BuildKit where the engine serves it) unless `--builder classic` asks for the classic one, for
// both the baseline and the developer (their images then share the binary's layer).
const builder = opt('--builder', 'default');
if (builder !== 'default' && builder !== 'classic') throw new Error(`--builder must be "default" or "classic", not "${builder}"`);
const env: NodeJS.ProcessEnv = { ...process.env, ...infra, NO_COLOR: '1' };
if (builder === 'classic') env.DOCKER_BUILDKIT = '0';
else delete env.DOCKER_BUILDKIT;

const name = (i: number) => `svc-${String(i).padStart(2, '0')}`;

const write = (rel: string, text: string) => writeUnder(dir, rel, text);

/** The whoami test service (answers gRPC calls with its pod name), built for this host once. */
function whoami(): string {
  const out = path.join(os.tmpdir(), 'devloop-bench-whoami', 'whoami');
  if (!existsSync(out)) {
    mkdirSync(path.dirname(out), { recursive: true });
    execFileSync('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', out, '.'], {
      cwd: path.join(repoRoot, 'e2e/support/mesh/whoami'),
      env: { ...env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod -buildvcs=false' },
      stdio: 'inherit',
    });
  }
  return out;
}

/** istiod bootstrap for a proxyless gRPC client: a pod's (from the downward API) or this host's, as a workload of `ns`. */
function bootstrap(node: { name: string; namespace: string; ip: string }): string {
  return JSON.stringify({
    xds_servers: [{ server_uri: istiod, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: `sidecar~${node.ip}~${node.name}.${node.namespace}~${node.namespace}.svc.cluster.local`,
      metadata: { GENERATOR: 'grpc', NAMESPACE: node.namespace, CLUSTER_ID: 'Kubernetes', INSTANCE_IPS: node.ip },
      locality: {},
    },
    server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
  });
}

function manifest(svc: string): string {
  const config = bootstrap({ name: '$(POD_NAME)', namespace: '$(POD_NAMESPACE)', ip: '$(POD_IP)' });
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${svc}
spec:
  replicas: 1
  selector:
    matchLabels: {app: ${svc}}
  template:
    metadata:
      labels: {app: ${svc}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: whoami
          image: ${project}/${svc}
          ports: [{name: grpc, containerPort: 8080}]
          env:
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
            - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
            - name: GRPC_XDS_BOOTSTRAP_CONFIG
              value: '${config}'
          readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata:
  name: ${svc}
spec:
  selector: {app: ${svc}}
  ports: [{name: grpc, port: 8080, targetPort: 8080, appProtocol: grpc}]
`;
}

function generate(binary: string): void {
  rmSync(dir, { recursive: true, force: true });
  const services: string[] = [];
  for (let i = 1; i <= SERVICES; i++) {
    const svc = name(i);
    // A change is a line added to CHANGE, a file of its own layer (as application code sits on its dependencies'):
    // the version follows what the Dockerfile reads, and the new layer is small.
    write(`services/${svc}/Dockerfile`, 'FROM gcr.io/distroless/static-debian12:nonroot\nCOPY whoami /\nCOPY CHANGE /\nENTRYPOINT ["/whoami"]\nCMD ["serve"]\n');
    write(`services/${svc}/CHANGE`, 'baseline\n');
    copyFileSync(binary, path.join(dir, `services/${svc}/whoami`));
    write(`services/${svc}/.dockerignore`, 'k8s\n');
    write(`services/${svc}/k8s/app.yaml`, manifest(svc));
    services.push(`  - name: ${svc}\n    path: services/${svc}\n    manifests: services/${svc}/k8s\n    image: ${project}/${svc}`);
  }
  write('devloop.yaml', `version: 1\nname: ${project}\nshared:\n  baseline: ${baseline}\nservices:\n${services.join('\n')}\n`);
  commitAll(dir);
}

/** Runs a command in the generated repository: its wall time, output, and the wall-clock times (ms since the epoch) it started and ended. */
function timed(cmd: string, argv: string[], extra: Record<string, string> = {}): { ms: number; stdout: string; startedAt: number; endedAt: number } {
  const startedAt = Date.now();
  const r = timedIn(cmd, argv, { cwd: dir, env: { ...env, ...extra } });
  return { ...r, startedAt, endedAt: startedAt + r.ms };
}
const kubectl = (...argv: string[]) => spawnSync('kubectl', argv, { env, encoding: 'utf8' });

/** Every object in the namespace carrying devloop's developer label `dev`, plus routes naming `dev`. */
function objectsOf(dev: string): string[] {
  const r = kubectl('get', 'deployments,services,configmaps,secrets,leases', '-n', baseline, '-l', `devloop.dev/developer=${dev}`, '-o', 'name');
  const vs = JSON.parse(kubectl('get', 'virtualservices.networking.istio.io', '-n', baseline, '-o', 'json').stdout) as {
    items: { metadata: { name: string }; spec: { http?: { name?: string }[] } }[];
  };
  const routes = vs.items.filter((v) => v.spec.http?.some((h) => h.name === `devloop-${dev}`)).map((v) => `route in virtualservice/${v.metadata.name}`);
  return [...r.stdout.split('\n').filter(Boolean), ...routes];
}

for (const ns of [baseline, full]) kubectl('delete', 'namespace', ns, '--ignore-not-found', '--wait=true', '--timeout=180s');
const binary = whoami();
generate(binary);
const hostBootstrap = path.join(dir, '..', 'devloop-bench-shared-bootstrap.json');
writeFileSync(hostBootstrap, bootstrap({ name: 'bench-host', namespace: baseline, ip: istiod.replace(/:\d+$/, '') }));
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');
console.log(`generated ${SERVICES} services in ${dir}; builder: ${builder === 'classic' ? 'classic (DOCKER_BUILDKIT=0)' : "devloop's default"}; load average ${load()}; deploying the baseline…`);
const base = timed('node', [cli, 'up', '--baseline', '--once'], { DEVLOOP_DEVELOPER: 'ci' });
console.log(`baseline: up --baseline --once of ${SERVICES} services (builds, pushes, deploys): ${fmt(base.ms)}`);

// Today's per-developer namespace: every service deployed, images already in the registry.
const fulls: number[] = [];
for (let i = 0; i < Math.min(runs, 2); i++) {
  kubectl('delete', 'namespace', full, '--ignore-not-found', '--wait=true', '--timeout=180s');
  fulls.push(timed('node', [cli, 'up', '--baseline', '--once', '-n', full], { DEVLOOP_DEVELOPER: 'ci' }).ms);
}

const svc = name(1);
const nonce = Date.now().toString(36);
const shared: number[] = [];
// The developer's run from its events: start-up (process start → run.started), plan and checks up to the build, the
// build, the push, the deploy's checks and apply (pushed → applied), the rollout, the route, and the end (route → exit).
const split = {
  startup: [] as number[],
  before: [] as number[],
  build: [] as number[],
  push: [] as number[],
  apply: [] as number[],
  rollout: [] as number[],
  route: [] as number[],
  end: [] as number[],
};
const propagation: number[] = [];
let created: string[] = [];
for (let i = 0; i < runs; i++) {
  appendFileSync(path.join(dir, `services/${svc}/CHANGE`), `${nonce}-${i}\n`);
  const r = timed('node', [cli, 'up', '--once', '--json'], { DEVLOOP_DEVELOPER: developer });
  const done = performance.now();
  if (!r.stdout.includes('"route.added"')) throw new Error(`the changed service was not forked and routed:\n${r.stdout}`);
  shared.push(r.ms);
  const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; at: number; durationMs?: number });
  const at = (t: string) => events.find((e) => e.type === t)?.at ?? 0;
  split.startup.push(at('run.started') - r.startedAt);
  split.before.push(at('build.started') - at('run.started'));
  split.build.push(events.find((e) => e.type === 'build.finished')?.durationMs ?? 0);
  split.push.push(at('deliver.finished') - at('deliver.started'));
  split.apply.push(at('deploy.applied') - at('deliver.finished'));
  split.rollout.push(at('rollout.ready') - at('deploy.applied'));
  split.route.push(at('route.added') - at('rollout.ready'));
  split.end.push(r.endedAt - at('route.added'));
  if (i === 0) created = objectsOf(developer);
  // The first keyed call answered by the fork: each call is a new xDS client, so it sees the routes as istiod has them.
  for (;;) {
    const call = spawnSync(binary, ['call', '-timeout', '5s', '-route', developer, `xds:///${svc}.${baseline}.svc.cluster.local:8080`], {
      env: { ...env, GRPC_XDS_BOOTSTRAP: hostBootstrap },
      encoding: 'utf8',
    });
    if (call.status === 0 && call.stdout.trim().startsWith(`${svc}-${developer}-`)) break;
    if (performance.now() - done > 60_000) throw new Error(`the fork did not answer a keyed call within 60 s (last: ${call.stdout.trim()} ${call.stderr.trim()})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  propagation.push(performance.now() - done);
}

console.log(`\nobjects created by the developer's up (one changed service of ${SERVICES}): ${created.length}`);
for (const o of created) console.log(`  ${o}`);
console.log(`up --once, one changed service, shared cluster: median ${fmt(median(shared))} over ${runs} runs`);
console.log(
  `  its split (medians): start-up ${fmt(median(split.startup))}, run start → first build ${fmt(median(split.before))}, build ${fmt(median(split.build))}, push ${fmt(median(split.push))}, pushed → applied ${fmt(median(split.apply))}, apply → ready ${fmt(median(split.rollout))}, ready → route ${fmt(median(split.route))}, route → exit ${fmt(median(split.end))}`,
);
console.log(`up --once, all ${SERVICES} services into a fresh namespace (images built): median ${fmt(median(fulls))} over ${fulls.length} runs`);
console.log(`ratio: ${(median(fulls) / median(shared)).toFixed(1)}x (target >= 5x)`);
console.log(`load average at the end (1, 5, 15 min): ${load()}`);
console.log(`route propagation, up finished → first keyed request served by the fork: median ${fmt(median(propagation))}, max ${fmt(Math.max(...propagation))} (target <= 2 s)`);

if (!keep) {
  spawnSync('node', [cli, 'down'], { cwd: dir, env: { ...env, DEVLOOP_DEVELOPER: developer }, stdio: 'ignore' });
  for (const ns of [baseline, full]) kubectl('delete', 'namespace', ns, '--wait=true', '--timeout=180s');
  rmSync(dir, { recursive: true, force: true });
  rmSync(hostBootstrap, { force: true });
}
