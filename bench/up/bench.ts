/**
 * Benchmark of `devloop up --once` on the e2e cluster (remote target: build, push to the registry, apply, rollout).
 *
 *   npm run build && node bench/up/bench.ts [--runs 7] [--dir /tmp/devloop-bench-up] [--keep]
 *
 * Prints
 *  1. the median wall time of `devloop up --once` when nothing changed, for 10 deployed services (target < 2 s);
 *  2. the time devloop adds for one changed service: median `devloop up --once` minus the median of doing the same
 *     by hand with the docker CLI and kubectl (docker build + docker push + kubectl apply + kubectl rollout status)
 *     for the same kind of change (target < 1.5 s).
 * Needs the e2e infrastructure (`npm run infra:up`).
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { benchArgs, cli, commitAll, fmt, infraEnv, median, timed as timedIn, writeUnder } from '../lib.ts';

const SERVICES = 10;
const { opt, flag } = benchArgs(import.meta.filename);
const runs = Number(opt('--runs', '7'));
const dir = path.resolve(opt('--dir', '/tmp/devloop-bench-up'));
const keep = flag('--keep');
const infra = infraEnv();
const developer = 'bench';
const project = 'benchup';
const namespace = `${project}-${developer}`;
const registry = infra.DEVLOOP_REGISTRY ?? '127.0.0.1:5000';
// The docker CLI here has no buildx, so it builds with the classic builder; DOCKER_BUILDKIT=0 makes devloop use the
// same builder, so that the by-hand comparison measures devloop's own time (bench/gochange compares the builders).
const env = { ...process.env, ...infra, DEVLOOP_DEVELOPER: developer, NO_COLOR: '1', DOCKER_BUILDKIT: '0' };

const write = (rel: string, text: string) => writeUnder(dir, rel, text);

const name = (i: number) => `svc-${String(i).padStart(2, '0')}`;

function deploymentYaml(svc: string, image: string): string {
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
        - name: app
          image: ${image}
          readinessProbe:
            httpGet: {path: /, port: 8080}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: ${svc}
spec:
  selector: {app: ${svc}}
  ports: [{port: 80, targetPort: 8080}]
`;
}

function generate(): void {
  rmSync(dir, { recursive: true, force: true });
  const services: string[] = [];
  for (let i = 1; i <= SERVICES; i++) {
    const svc = name(i);
    write(`services/${svc}/server.js`, `require('node:http').createServer((q, r) => r.end('${svc}\\n')).listen(8080);\nprocess.on('SIGTERM', () => process.exit(0));\n`);
    write(`services/${svc}/Dockerfile`, 'FROM node:24-slim\nWORKDIR /app\nCOPY server.js ./\nCMD ["node", "server.js"]\n');
    write(`services/${svc}/.dockerignore`, 'k8s\n');
    write(`services/${svc}/k8s/app.yaml`, deploymentYaml(svc, `${project}/${svc}`));
    services.push(`  - name: ${svc}\n    path: services/${svc}\n    manifests: services/${svc}/k8s`);
  }
  write('devloop.yaml', `version: 1\nname: ${project}\nservices:\n${services.join('\n')}\n`);
  commitAll(dir);
}

const timed = (cmd: string, argv: string[]) => timedIn(cmd, argv, { cwd: dir, env });

// A namespace left terminating by an earlier run must be gone before this one starts.
spawnSync('kubectl', ['delete', 'namespace', namespace, '--ignore-not-found', '--wait=true', '--timeout=120s'], { env, stdio: 'ignore' });
generate();
console.log(`generated ${SERVICES} services in ${dir}; first deploy…`);
const first = timed('node', [cli, 'up', '--once']);
console.log(`first up --once (build, push, deploy ${SERVICES} services): ${fmt(first.ms)}`);

const unchanged: number[] = [];
for (let i = 0; i < runs; i++) {
  const r = timed('node', [cli, 'up', '--once', '--json']);
  if (r.stdout.includes('"build.started"') || r.stdout.includes('"deploy.applied"')) throw new Error('an unchanged run built or applied something');
  unchanged.push(r.ms);
}

// One changed service, through devloop and by hand, alternating so both see the same machine load.
const svc = name(1);
// Unique per bench run: an image for this content must not exist yet, or nothing would be built.
const nonce = Date.now().toString(36);
const viaDevloop: number[] = [];
const byHand: number[] = [];
const split = { build: [] as number[], push: [] as number[], rollout: [] as number[] };
for (let i = 0; i < runs; i++) {
  appendFileSync(path.join(dir, `services/${svc}/server.js`), `// devloop change ${nonce}-${i}\n`);
  const r = timed('node', [cli, 'up', '--once', '--json']);
  if (!r.stdout.includes('"build.finished"')) throw new Error('the changed service was not rebuilt');
  viaDevloop.push(r.ms);
  const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; at: number; durationMs?: number });
  const at = (t: string) => events.find((e) => e.type === t)?.at ?? 0;
  split.build.push(events.find((e) => e.type === 'build.finished')?.durationMs ?? 0);
  split.push.push(at('deliver.finished') - at('deliver.started'));
  split.rollout.push(at('rollout.ready') - at('deploy.applied'));

  appendFileSync(path.join(dir, `services/${svc}/server.js`), `// manual change ${nonce}-${i}\n`);
  const image = `${registry}/${project}/manual-${svc}:${i}-${Date.now().toString(36)}`;
  writeFileSync(path.join(dir, 'manual.yaml'), deploymentYaml(`manual-${svc}`, image));
  const t0 = performance.now();
  timed('docker', ['build', '-q', '-t', image, `services/${svc}`]);
  timed('docker', ['push', '-q', image]);
  timed('kubectl', ['apply', '-n', namespace, '-f', 'manual.yaml']);
  timed('kubectl', ['rollout', 'status', '-n', namespace, `deployment/manual-${svc}`, '--timeout=120s']);
  byHand.push(performance.now() - t0);
}

console.log(`\nup --once, nothing changed, ${SERVICES} services: median ${fmt(median(unchanged))} over ${runs} runs (target < 2 s)`);
console.log(`up --once, one changed service: median ${fmt(median(viaDevloop))}; by hand (docker build + push + kubectl apply + rollout status): median ${fmt(median(byHand))}`);
console.log(`  devloop's own split: build ${fmt(median(split.build))}, push ${fmt(median(split.push))}, apply→ready ${fmt(median(split.rollout))}`);
console.log(`devloop overhead for one changed service: ${fmt(median(viaDevloop) - median(byHand))} (target < 1.5 s)`);

if (!keep) {
  spawnSync('kubectl', ['delete', 'namespace', namespace, '--wait=true', '--timeout=120s'], { env, stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
