/**
 * Benchmark of the inner loop's file sync on the e2e cluster (`devloop up` on the sync fixture, remote target).
 *
 *   npm run build && node bench/sync/bench.ts [--samples 100] [--batches 20] [--idle 60] [--files 50000] [--keep]
 *
 * Prints
 *  1. single-file latency: from a local file write (writeFile resolved) to the new content being served by the
 *     pod (HTTP GET on the pod IP, polled every ~2 ms), over `--samples` writes: p50 / p95 / p99
 *     (targets: p50 <= 100 ms, p95 <= 250 ms);
 *  2. the same for a batch of 200 files written at once (until the last of them is served), over `--batches`;
 *  3. devloop's CPU (user + system, from /proc) and RSS while idle for `--idle` seconds, in a tree with `--files`
 *     extra committed files (targets: < 1 % of one core, < 150 MB), twice: with the files outside the service
 *     (devloop watches only what can lead to a decision, so they are not watched), then in a second session with
 *     them declared as a dependency of the service (all of them watched).
 * Needs the e2e infrastructure (`npm run infra:up`).
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { benchArgs, cli, infraEnv, repoRoot } from '../lib.ts';

const { opt, flag } = benchArgs(import.meta.filename);
const samples = Number(opt('--samples', '100'));
const batches = Number(opt('--batches', '20'));
const idleSeconds = Number(opt('--idle', '60'));
const extraFiles = Number(opt('--files', '50000'));
const keep = flag('--keep');
const BATCH = 200;

const dir = '/tmp/devloop-bench-sync';
const developer = 'bench';
const namespace = `syncdemo-${developer}`;

const infra = infraEnv();
const env = { ...process.env, ...infra, DEVLOOP_DEVELOPER: developer, NO_COLOR: '1' };
const git = (...a: string[]) => execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@devloop.invalid', ...a], { cwd: dir, stdio: 'pipe' });
const kubectl = (...a: string[]) => execFileSync('kubectl', a, { env, encoding: 'utf8' });

// The fixture, plus a large committed tree outside every service (watched, never synced).
rmSync(dir, { recursive: true, force: true });
cpSync(path.join(repoRoot, 'e2e/sync/fixture'), dir, { recursive: true });
const port = 18190 + Math.floor(Math.random() * 500);
writeFileSync(path.join(dir, 'devloop.yaml'), readFileSync(path.join(dir, 'devloop.yaml'), 'utf8').replace('18190:8080', `${port}:8080`));
for (let i = 0; i < extraFiles; i++) {
  const d = path.join(dir, 'corpus', `d${Math.floor(i / 500)}`, `e${Math.floor(i / 50) % 10}`);
  if (i % 50 === 0) mkdirSync(d, { recursive: true });
  writeFileSync(path.join(d, `f${i}.txt`), `corpus file ${i}\n`);
}
git('init', '-q', '-b', 'main');
git('add', '-A');
git('commit', '-qm', 'bench fixture');
console.log(`fixture: ${dir} (${extraFiles} extra files)`);

interface Ev {
  type: string;
  [k: string]: unknown;
}
const events: Ev[] = [];
/** `devloop up --json` in the fixture; its events are collected into `events`. */
function startUp() {
  const proc = spawn(process.execPath, [cli, 'up', '--json'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'inherit'] });
  let partial = '';
  proc.stdout.on('data', (c: Buffer) => {
    partial += c.toString('utf8');
    let i: number;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line) as Ev);
    }
  });
  return proc;
}
let child = startUp();
const stopUp = async () => {
  if (child.exitCode !== null) return;
  child.kill('SIGINT');
  await new Promise((r) => child.once('exit', r));
};

/** Settles, then measures CPU ticks and RSS of the devloop process over the idle period. */
async function idle(): Promise<{ cpuPct: number; rssMax: number; rssEnd: number }> {
  await sleep(5000);
  const ticks = () => {
    const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]);
  };
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
  const clk = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
  const t0 = ticks();
  const w0 = Date.now();
  let rssMax = rss();
  for (let s = 0; s < idleSeconds; s++) {
    await sleep(1000);
    rssMax = Math.max(rssMax, rss());
  }
  return { cpuPct: ((ticks() - t0) / clk / ((Date.now() - w0) / 1000)) * 100, rssMax, rssEnd: rss() };
}

const until = async (what: string, match: (e: Ev) => boolean, timeoutMs = 300_000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = events.find(match);
    if (e) return e;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${what}; last events:\n${events.slice(-10).map((x) => JSON.stringify(x)).join('\n')}`);
    await sleep(20);
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

try {
  await until('initial sync', (e) => e.type === 'sync.finished' && e.initial === true);
  const podIp = kubectl('-n', namespace, 'get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[?(@.status.podIP)].status.podIP}').trim().split(' ')[0];
  console.log(`loop running; pod IP ${podIp}`);

  // 3. Idle, the extra files outside the service.
  const outside = await idle();

  // 1. Single file: write, then poll the pod until it serves the new content.
  const served = async (file: string, want: string, started: number): Promise<number> => {
    for (;;) {
      try {
        const res = await fetch(`http://${podIp}:8080/${file}`, { signal: AbortSignal.timeout(2000) });
        if ((await res.text()) === want) return performance.now() - started;
      } catch {
        // Not there yet.
      }
      if (performance.now() - started > 10_000) throw new Error(`${file} did not arrive within 10 s`);
      await sleep(2);
    }
  };
  const single: number[] = [];
  const toDecision: number[] = [];
  for (let i = 0; i < samples; i++) {
    const want = `sample ${i} ${Date.now()}\n`;
    const file = path.join(dir, 'web/public/bench.txt');
    const mark = events.length;
    await writeFile(file, want);
    const started = performance.now();
    const wroteAt = Date.now();
    single.push(await served('bench.txt', want, started));
    const decided = events.slice(mark).find((e) => e.type === 'watch.batch');
    if (decided) toDecision.push(Number(decided.at) - wroteAt);
    await sleep(100);
  }

  // 2. Batches of 200 files written at once.
  const batch: number[] = [];
  const batchShape: { batches: number; firstDecision: number; lastDecision: number }[] = [];
  mkdirSync(path.join(dir, 'web/public/batch'), { recursive: true });
  for (let b = 0; b < batches; b++) {
    const tag = `${b}-${Date.now()}`;
    const mark = events.length;
    const writeStart = Date.now();
    const started = performance.now();
    await Promise.all(Array.from({ length: BATCH }, (_, i) => writeFile(path.join(dir, `web/public/batch/f${i}.txt`), `${tag} ${i}\n`)));
    await served(`batch/f0.txt`, `${tag} 0\n`, started);
    batch.push(await served(`batch/f${BATCH - 1}.txt`, `${tag} ${BATCH - 1}\n`, started));
    await sleep(200);
    const seen = events.slice(mark).filter((e) => e.type === 'watch.batch');
    batchShape.push({ batches: seen.length, firstDecision: seen.length ? Number(seen[0]!.at) - writeStart : NaN, lastDecision: seen.length ? Number(seen[seen.length - 1]!.at) - writeStart : NaN });
  }

  const pct = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
  };
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const syncs = events.filter((e) => e.type === 'sync.finished' && e.initial === false).map((e) => Number(e.durationMs));
  console.log('');
  console.log(`single file, ${samples} samples: p50 ${ms(pct(single, 50))}  p95 ${ms(pct(single, 95))}  p99 ${ms(pct(single, 99))}  (targets p50 <= 100 ms, p95 <= 250 ms)`);
  console.log(`  of which write → decision (watch event, ${'quiet'} period, git check-ignore, decide), median: ${ms(pct(toDecision, 50))}`);
  console.log(`${BATCH} files at once, ${batches} samples: p50 ${ms(pct(batch, 50))}  p95 ${ms(pct(batch, 95))}  p99 ${ms(pct(batch, 99))}`);
  const med = (xs: number[]) => pct(xs.filter((x) => !Number.isNaN(x)), 50);
  console.log(`  watch batches per sample, median ${med(batchShape.map((x) => x.batches))}; write start → first decision ${ms(med(batchShape.map((x) => x.firstDecision)))}, → last decision ${ms(med(batchShape.map((x) => x.lastDecision)))}`);
  console.log(`  of which devloop's sync step (read + send + receiver ack), median: ${ms(pct(syncs, 50))}`);
  const idleLine = (what: string, r: { cpuPct: number; rssMax: number; rssEnd: number }) =>
    `idle ${idleSeconds} s, ${what}: CPU ${r.cpuPct.toFixed(2)} % of one core, RSS max ${r.rssMax.toFixed(0)} MB, at the end ${r.rssEnd.toFixed(0)} MB  (targets < 1 %, < 150 MB)`;
  console.log(idleLine(`${extraFiles} extra files outside the service (not watched)`, outside));

  // 3b. The same files as a dependency of the service: a new session watches all of them.
  await stopUp();
  const yaml = path.join(dir, 'devloop.yaml');
  writeFileSync(yaml, readFileSync(yaml, 'utf8').replace(/^(\s*)path: web$/m, '$1path: web\n$1dependsOn: [corpus]'));
  git('commit', '-qam', 'corpus as a dependency');
  const mark = events.length;
  child = startUp();
  await until('initial sync of the second session', (e) => events.indexOf(e) >= mark && e.type === 'sync.finished' && e.initial === true);
  console.log(idleLine(`the ${extraFiles} files a dependency of the service (watched)`, await idle()));
} finally {
  await stopUp();
  if (!keep) {
    try {
      kubectl('delete', 'namespace', namespace, '--wait=false');
    } catch {
      // Already gone.
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
