/**
 * Benchmark of `devloop plan --json` on a generated monorepo: 300 services, 30,000 files, Go and Node services
 * with library dependencies (go.mod replace, workspace packages) and service-to-service dependsOn.
 *
 *   npm run build && node bench/plan/bench.ts [--runs 9] [--dir /tmp/devloop-bench-plan] [--keep] [--reuse] [--root-context]
 *
 * --keep leaves the generated repository in place; --reuse runs against one left by --keep. --root-context builds
 * every service with the repository root as context (`path: .`), its Dockerfile copying its own directory and the
 * libraries it uses: the layout of Go monorepos that share libraries.
 *
 * Prints the median wall time of the built CLI with no change and with one changed file, the wall time during
 * which git commands ran (from DEVLOOP_TIMINGS), and the ratio to `git status` on the same tree (run alternately
 * with plan, so both see the same load).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchArgs, cli } from '../lib.ts';

const SERVICES = 300;
const TOTAL_FILES = 30_000;
const GO_LIBS = 10;
const JS_LIBS = 10;
const FILES_PER_LIB = 300;

const { opt, flag } = benchArgs(import.meta.filename);
const runs = Number(opt('--runs', '9'));
const rootContext = flag('--root-context');
const dir = path.resolve(opt('--dir', '/tmp/devloop-bench-plan'));

function git(...a: string[]): string {
  return execFileSync('git', a, { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 28 });
}

function write(rel: string, text: string): void {
  const abs = path.join(dir, rel);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, text);
}

function generate(): number {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let files = 0;
  const add = (rel: string, text: string) => {
    write(rel, text);
    files++;
  };

  add('package.json', JSON.stringify({ name: 'bench', private: true, workspaces: ['libs/*', 'services/*'] }, null, 2));
  add('.gitignore', 'node_modules/\n*.log\n');
  for (let l = 0; l < GO_LIBS; l++) {
    add(`libs/go-${l}/go.mod`, `module bench/libs/go-${l}\n\ngo 1.22\n`);
    for (let f = 1; f < FILES_PER_LIB; f++) add(`libs/go-${l}/pkg${f % 10}/file${f}.go`, `package pkg${f % 10}\n\n// ${l}/${f}\nconst V${f} = ${f}\n`);
  }
  for (let l = 0; l < JS_LIBS; l++) {
    add(`libs/js-${l}/package.json`, JSON.stringify({ name: `@bench/js-${l}`, version: '1.0.0' }, null, 2));
    for (let f = 1; f < FILES_PER_LIB; f++) add(`libs/js-${l}/src/m${f % 10}/file${f}.js`, `export const v${f} = ${f}; // ${l}\n`);
  }

  // devloop.yaml is the last file; the rest is spread over the services so the total is exactly TOTAL_FILES.
  const remaining = TOTAL_FILES - files - 1;
  const perServiceBase = Math.floor(remaining / SERVICES);
  const extra = remaining - perServiceBase * SERVICES;
  const yaml: string[] = ['version: 1', 'name: bench', 'services:'];
  for (let s = 0; s < SERVICES; s++) {
    const name = `svc-${String(s).padStart(3, '0')}`;
    const base = `services/${name}`;
    const go = s % 2 === 0;
    let n = 0;
    const addS = (rel: string, text: string) => {
      add(`${base}/${rel}`, text);
      n++;
    };
    const libs = go ? [`libs/go-${s % GO_LIBS}`, `libs/go-${(s * 7 + 3) % GO_LIBS}`] : [`libs/js-${s % JS_LIBS}`];
    if (rootContext) {
      const copies = [...libs.map((l) => `COPY ${l} ${l}\n`), `COPY ${base} ${base}\n`].join('');
      addS('Dockerfile', go ? `FROM golang:1.22 AS build\n${copies}RUN go build ./...\n` : `FROM node:22\n${copies}RUN npm ci\n`);
      addS('Dockerfile.dockerignore', '**/*.md\n**/tmp/\n!**/tmp/keep.txt\n');
    } else {
      addS('Dockerfile', go ? 'FROM golang:1.22 AS build\nCOPY . /src\nRUN go build ./...\n' : 'FROM node:22\nCOPY . /app\nRUN npm ci\n');
      addS('.dockerignore', '*.md\ntmp/\n!tmp/keep.txt\n');
    }
    addS('k8s/deployment.yaml', `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\n`);
    addS('README.md', `# ${name}\n`);
    if (go) {
      addS('go.mod', `module bench/${name}\n\ngo 1.22\n\nreplace (\n${libs.map((l) => `\tbench/${l} => ../../${l}\n`).join('')})\n`);
    } else {
      addS('package.json', JSON.stringify({ name: `@bench/${name}`, version: '1.0.0', dependencies: { [`@bench/${libs[0]!.slice(5)}`]: '1.0.0', express: '^4' } }, null, 2));
    }
    const perService = perServiceBase + (s < extra ? 1 : 0);
    while (n < perService) {
      // Names differ between services, as in a real repository (no help from caches keyed by relative path).
      addS(go ? `internal/p${n % 8}/${name}_f${n}.go` : `src/r${n % 8}/${name}-f${n}.js`, `// ${name} ${n}\n`);
    }
    if (rootContext) yaml.push(`  - name: ${name}`, '    path: .', `    dockerfile: ${base}/Dockerfile`, `    manifests: ${base}/k8s`);
    else yaml.push(`  - name: ${name}`, `    path: ${base}`, `    manifests: ${base}/k8s`);
    // Every tenth service builds on the previous one (a chain of service dependencies).
    if (s % 10 === 9) yaml.push(`    dependsOn: [svc-${String(s - 1).padStart(3, '0')}]`);
    yaml.push(`    buildArgs: { SERVICE: ${name} }`);
  }
  add('devloop.yaml', `${yaml.join('\n')}\n`);

  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 'bench@devloop.invalid');
  git('config', 'user.name', 'bench');
  git('add', '-A');
  git('commit', '-q', '-m', 'monorepo');
  git('checkout', '-q', '-b', 'feature');
  // Files written in the same second as the index are "racily clean" and re-hashed by every git status until the
  // index is rewritten; a user's repository has had some git command refresh it. Do the same once.
  execFileSync('sleep', ['1']);
  git('status', '--porcelain');
  return files;
}

interface Sample {
  wallMs: number;
  gitMs: number;
  /** CPU time of node and the git processes it ran (user + system), when GNU time is available. */
  cpuMs: number | null;
  rebuild: number;
}

// GNU time reports the CPU of the process and of the children it waited for (the git commands): a figure that,
// unlike wall time, does not depend on what else the machine is doing.
const gnuTime = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

function runPlan(): Sample {
  const cmd = gnuTime ?? process.execPath;
  const argv = gnuTime ? ['-f', 'CPU %U %S', process.execPath, cli, 'plan', '--json'] : [cli, 'plan', '--json'];
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { cwd: dir, encoding: 'utf8', env: { ...process.env, DEVLOOP_TIMINGS: '1' }, maxBuffer: 1 << 26 });
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`devloop plan failed (exit ${r.status}): ${r.stderr}`);
  const doc = JSON.parse(r.stdout) as { services: { rebuild: boolean }[] };
  const lines = r.stderr.trim().split('\n');
  const timing = JSON.parse(lines.find((l) => l.startsWith('{"totalMs"'))!) as { gitMs: number };
  const cpu = /^CPU ([\d.]+) ([\d.]+)$/m.exec(r.stderr);
  return {
    wallMs,
    gitMs: timing.gitMs,
    cpuMs: cpu ? (Number(cpu[1]) + Number(cpu[2])) * 1000 : null,
    rebuild: doc.services.filter((s) => s.rebuild).length,
  };
}

/** The floor: `git status` on the same tree, run the same way (wall time of the process). */
function runGitStatus(): number {
  const start = process.hrtime.bigint();
  const r = spawnSync('git', ['status'], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`git status failed (exit ${r.status}): ${r.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function measure(label: string): void {
  runPlan(); // warm the page cache and git's index stat data
  runGitStatus();
  // Interleaved, so that both see the same load on the machine and their ratio means something.
  const samples: Sample[] = [];
  const statusMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    samples.push(runPlan());
    statusMs.push(runGitStatus());
  }
  const floor = median(statusMs);
  const wall = median(samples.map((s) => s.wallMs));
  const gitMs = median(samples.map((s) => s.gitMs));
  const rebuild = samples[0]!.rebuild;
  const cpu = samples[0]!.cpuMs === null ? null : median(samples.map((s) => s.cpuMs!));
  console.log(
    `${label.padEnd(18)} median ${wall.toFixed(0).padStart(4)} ms wall, of which git ${gitMs.toFixed(0)} ms (${((gitMs / wall) * 100).toFixed(0)}%)` +
      `  [min ${Math.min(...samples.map((s) => s.wallMs)).toFixed(0)}, max ${Math.max(...samples.map((s) => s.wallMs)).toFixed(0)}]` +
      (cpu === null ? '' : `  CPU ${cpu.toFixed(0)} ms`) +
      `  rebuild ${rebuild}/${SERVICES}`,
  );
  console.log(`${''.padEnd(18)} git status median ${floor.toFixed(0)} ms: plan is ${(wall / floor).toFixed(1)}x git status`);
}

if (!existsSync(cli) || !existsSync(path.resolve(import.meta.dirname, '../../dist/cli/main.js'))) {
  console.error('build first: npm run build');
  process.exit(2);
}
const t0 = Date.now();
const files = flag('--reuse') && existsSync(path.join(dir, '.git')) ? (git('checkout', '-q', '--', '.'), TOTAL_FILES) : generate();
console.log(`generated ${SERVICES} services${rootContext ? ' (root context)' : ''}, ${files} files in ${dir} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
console.log(`node ${process.version}, ${runs} runs each, median wall time of \`node bin/devloop.js plan --json\`; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
measure('no change');
appendFileSync(path.join(dir, 'services/svc-150/internal/p5/svc-150_f13.go'), '// edited\n');
measure('one changed file');
if (!flag('--keep')) rmSync(dir, { recursive: true, force: true });
