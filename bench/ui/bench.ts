/**
 * Benchmark of the terminal dashboard under a flood of log lines.
 *
 *   npm run build && node bench/ui/bench.ts [--rate 10000] [--seconds 5] [--keys 40] [--services 10]
 *
 * Drives the real dashboard (the built dist/cli/ui/app.js, ink + React) through the real engine bus with a load
 * generator emitting `log.line` events at --rate lines per second, spread over --services services. Ink writes into
 * an in-process terminal sink (a 120×40 stream that says it is a TTY and records each write), so what is measured
 * is devloop's own work: folding events, building the view, React and Ink producing frames.
 *
 * Prints
 *  1. CPU (user + system, % of one core) of the load generator and bus alone, and with the dashboard attached;
 *     the difference is what the dashboard costs. Also the idle dashboard's CPU (no events);
 *  2. redraws per second under load (the store coalesces to at most 20, 10 while only log lines arrive), and the
 *     CPU each costs;
 *  3. key-to-frame latency under load: from writing ↓ into the terminal's input to the first frame showing the
 *     new selection, over --keys presses: p50 / p95 / max (target: < 100 ms).
 */
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import type * as StartModule from '../../cli/ui/start.js';
import type * as StateModule from '../../core/engine/state.js';
import type * as StoreModule from '../../cli/ui/store.js';
import { benchArgs } from '../lib.ts';

const { opt } = benchArgs(import.meta.filename);
const RATE = Number(opt('--rate', '10000'));
const SECONDS = Number(opt('--seconds', '5'));
const KEYS = Number(opt('--keys', '40'));
const SERVICES = Number(opt('--services', '10'));
const COLUMNS = 120;
const ROWS = 40;

const dist = path.resolve(import.meta.dirname, '../../dist');
// Loaded the way `devloop up` loads it (React's production build).
const { loadDashboard } = (await import(path.join(dist, 'cli/ui/start.js'))) as typeof StartModule;
const { mountDashboard } = await loadDashboard();
const { EngineBus } = (await import(path.join(dist, 'core/engine/state.js'))) as typeof StateModule;

const services = Array.from({ length: SERVICES }, (_, i) => `svc-${String(i).padStart(2, '0')}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A terminal stand-in for Ink: claims to be a TTY of a fixed size and keeps what is written, with timestamps. */
class TerminalSink extends Writable {
  isTTY = true;
  columns = COLUMNS;
  rows = ROWS;
  writes = 0;
  waiter: { test: (chunk: string) => boolean; resolve: (at: number) => void } | undefined;
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.writes++;
    if (this.waiter) {
      const text = chunk.toString();
      if (this.waiter.test(text)) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve(performance.now());
      }
    }
    done();
  }
  /** Resolves with the time of the first later write that passes `test`. */
  next(test: (chunk: string) => boolean): Promise<number> {
    return new Promise((resolve) => (this.waiter = { test, resolve }));
  }
}

/** Terminal input for Ink: a stream that accepts raw mode. */
function terminalInput(): NodeJS.ReadStream {
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => input });
  return input as unknown as NodeJS.ReadStream;
}

function newBus() {
  const bus = new EngineBus();
  bus.emit({ type: 'run.started', command: 'up', target: 'remote', where: 'bench/shop-bench' });
  bus.emit({ type: 'plan.computed', services: services.map((name) => ({ name, version: `${name}-0123456789abcdef`, image: `r/${name}`, dependsOn: [] })) });
  for (const service of services) bus.emit({ type: 'rollout.ready', service, durationMs: 1234 });
  bus.emit({ type: 'run.finished', ok: true, durationMs: 2000, failed: [] });
  bus.emit({ type: 'watch.started', root: '/bench', quietMs: 50 });
  return bus;
}

/** Emits RATE log lines per second into `bus`, in 10 ms slices, until stopped; returns how many it emitted. */
function loadGenerator(bus: InstanceType<typeof EngineBus>): { stop(): number } {
  const started = performance.now();
  let emitted = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * RATE);
    for (; emitted < due; emitted++) {
      const service = services[emitted % services.length]!;
      bus.emit({ type: 'log.line', service, where: `${service}-7d9f/app`, line: `GET /api/items/${emitted} 200 1.2ms user-agent=bench request-id=${emitted.toString(16)}` });
    }
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      return emitted;
    },
  };
}

/** CPU used (% of one core) while `run` runs for `ms`. */
async function cpuDuring(ms: number, run?: () => Promise<void>): Promise<number> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (run) await run();
  else await sleep(ms);
  const cpu = process.cpuUsage(cpu0);
  return ((cpu.user + cpu.system) / 1000 / (performance.now() - t0)) * 100;
}

// Ink routes console.* into its own output while mounted: figures go straight to stdout.
const print = (line: string) => process.stdout.write(`${line}\n`);
const pct = (n: number) => `${n.toFixed(1)} %`;
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

// 1. The load without a dashboard: the generator, the bus and the engine's reducer.
{
  const bus = newBus();
  const load = loadGenerator(bus);
  await sleep(500);
  const cpu = await cpuDuring(SECONDS * 1000);
  const n = load.stop();
  print(`load alone            ${RATE} lines/s for ${SECONDS} s (${n} emitted): CPU ${pct(cpu)}`);
  (globalThis as { baseline?: number }).baseline = cpu;
}

// 2. The load with only the dashboard's store subscribed: folding events into its bounded buffers, no drawing.
{
  const { DashboardStore } = (await import(path.join(dist, 'cli/ui/store.js'))) as typeof StoreModule;
  const bus = newBus();
  const store = new DashboardStore(bus);
  const load = loadGenerator(bus);
  await sleep(500);
  const cpu = await cpuDuring(SECONDS * 1000);
  load.stop();
  store.close();
  const baseline = (globalThis as { baseline?: number }).baseline ?? 0;
  print(`load + store only     the same, events folded into the dashboard's buffers, nothing drawn: CPU ${pct(cpu)} (+${pct(cpu - baseline)})`);
}

// 3. The same load with the dashboard attached; frames and key-to-frame latency.
const bus = newBus();
const sink = new TerminalSink();
const stdin = terminalInput();
let stop!: () => void;
const stopped = new Promise<void>((r) => (stop = r));
const dashboard = mountDashboard({
  bus,
  header: { command: 'up', target: 'remote', context: 'bench', namespace: 'shop-bench', developer: 'bench', registry: '127.0.0.1:5000' },
  commands: { rebuild() {}, rebuildAll() {}, setWatching() {}, swap() {} },
  stop: async () => stop(),
  color: true,
  stdout: sink as unknown as NodeJS.WriteStream,
  stdin,
});
await sleep(300);

const idle = await cpuDuring(3000);
print(`dashboard idle        no events for 3 s: CPU ${pct(idle)}, ${sink.writes} writes so far`);

const load = loadGenerator(bus);
await sleep(500);

// 3a. CPU and frames under load, nobody typing.
const window = SECONDS * 1000;
const writes0 = sink.writes;
const flushes0 = dashboard.store.flushes;
const loaded = await cpuDuring(window);
const frames = dashboard.store.flushes - flushes0;
const baseline = (globalThis as { baseline?: number }).baseline ?? 0;
print(
  `load + dashboard      ${RATE} lines/s for ${SECONDS} s: CPU ${pct(loaded)} (dashboard: +${pct(loaded - baseline)}, ` +
    `${(((loaded - baseline) / 100) * window / Math.max(1, frames)).toFixed(1)} ms CPU per frame)`,
);
print(`frames under load     ${(frames / SECONDS).toFixed(1)} redraws/s (cap 20; 10 while only log lines arrive), ${((sink.writes - writes0) / SECONDS).toFixed(1)} writes/s to the terminal`);

// 3b. Key-to-frame latency under the same load.
const latencies: number[] = [];
let selected = 0;
while (latencies.length < KEYS) {
  selected = (selected + 1) % services.length;
  const marker = `❯ ${services[selected]}`;
  const frame = sink.next((chunk) => chunk.includes(marker));
  const t0 = performance.now();
  stdin.write('\u001b[B');
  latencies.push((await frame) - t0);
  await sleep(100 + Math.random() * 200);
}
const emitted = load.stop();
print(
  `key → frame           ${latencies.length} presses of ↓ under load: p50 ${quantile(latencies, 0.5).toFixed(1)} ms, p95 ${quantile(latencies, 0.95).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms (target < 100 ms)`,
);
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const mem = process.memoryUsage();
print(
  `memory                after ${emitted} lines: heap ${(mem.heapUsed / 2 ** 20).toFixed(0)} MB${gc ? ' after a full GC' : ' (run with --expose-gc for the live heap)'}, rss ${(mem.rss / 2 ** 20).toFixed(0)} MB (the bench process: bus, generator, dashboard)`,
);

stdin.write('q');
await stopped;
await dashboard.close();
process.exit(0);
