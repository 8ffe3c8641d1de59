/**
 * What the benchmarks share: their command line, where this checkout and its built CLI are, the e2e
 * infrastructure's environment, timed child processes and the figures' format.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '..');
/** The built CLI (`npm run build`). */
export const cli = path.join(repoRoot, 'bin/devloop.js');

export interface BenchArgs {
  /** The value after `name`, or `fallback` when it is not given. */
  opt(name: string, fallback: string): string;
  /** Whether `name` is given. */
  flag(name: string): boolean;
}

/**
 * The benchmark's command line. With `--help` (or `-h`) it prints the benchmark's description, the comment that
 * opens `benchFile`, and exits before anything runs.
 */
export function benchArgs(benchFile: string): BenchArgs {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(description(benchFile));
    process.exit(0);
  }
  return {
    opt(name, fallback) {
      const i = args.indexOf(name);
      return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
    },
    flag: (name) => args.includes(name),
  };
}

/** The `/** … *\/` comment a file opens with, without its comment markers. */
function description(file: string): string {
  const comment = /^\/\*\*\n([\s\S]*?)\n \*\//.exec(readFileSync(file, 'utf8'));
  if (!comment) return `${path.relative(repoRoot, file)}\n`;
  return `${comment[1]!.replace(/^ \*(?: |$)/gm, '')}\n`;
}

/** The e2e infrastructure's environment: what `eval "$(npm run infra:env)"` exports. */
export function infraEnv(): Record<string, string> {
  const infra: Record<string, string> = {};
  for (const line of execFileSync('bash', [path.join(repoRoot, 'e2e/infra/infra.sh'), 'env'], { encoding: 'utf8' }).split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
    // PATH's `$PATH` tail stands for this process's own PATH.
    if (m) infra[m[1]!] = m[2]!.replace(/^(['"])(.*)\1$/, '$2').replace('$PATH', process.env.PATH ?? '');
  }
  return infra;
}

/** Runs a command to its end: its wall time and output; a non-zero exit throws with the output. */
export function timed(cmd: string, argv: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): { ms: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, argv, { cwd: opts.cwd, env: opts.env, encoding: 'utf8', maxBuffer: 1 << 26 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return { ms, stdout: r.stdout };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Milliseconds as seconds with two decimals: "1.23 s". */
export const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Writes `text` to `rel` under `dir`, creating its directories. */
export function writeUnder(dir: string, rel: string, text: string): void {
  const abs = path.join(dir, rel);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, text);
}

/** Makes `dir` a git repository on `main` (if it is not one yet) and commits everything in it. */
export function commitAll(dir: string): void {
  if (!existsSync(path.join(dir, '.git'))) execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: dir });
  execFileSync('git', ['add', '-A'], { cwd: dir });
  execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@devloop.invalid', 'commit', '-qm', 'bench'], { cwd: dir });
}
