import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { devloopEnv, repoRoot } from '../support/env.js';
import { kube } from '../support/kube.js';

export const FIXTURE = path.join(repoRoot, 'e2e/fixtures/shop');

/**
 * Compiles the CLI once per file so the tests run the real `bin/devloop.js`. tsc still writes JavaScript when some
 * unrelated file has a type error; only a missing entry point stops the tests.
 */
export function buildCli(): void {
  try {
    execFileSync(process.execPath, [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', path.join(repoRoot, 'tsconfig.build.json')], {
      cwd: repoRoot,
      stdio: 'pipe',
    });
  } catch (err) {
    if (!existsSync(path.join(repoRoot, 'dist/cli/main.js'))) {
      throw new Error(`building the CLI (npm run build) failed:\n${String((err as { stdout?: unknown }).stdout ?? err)}`);
    }
  }
}

/** A copy of the fixture monorepo in a temp dir, as a real git repository with one commit. */
export async function fixtureRepo(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-shop-'));
  await cp(FIXTURE, dir, { recursive: true });
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', 'commit', '-qm', 'shop');
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The JSON events when run with --json. */
  events: { type: string; service?: string; [k: string]: unknown }[];
}

/**
 * Runs the devloop CLI in `dir` with the infrastructure's environment and `DEVLOOP_DEVELOPER=developer`; `env`
 * adds to it (e.g. KUBECONFIG for the kind cluster).
 */
export function devloop(dir: string, developer: string, args: string[], timeoutMs = 290_000, env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(repoRoot, 'bin/devloop.js'), ...args],
      {
        cwd: dir,
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
        env: devloopEnv(developer, { NO_COLOR: '1', ...env }),
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
        const events = args.includes('--json')
          ? stdout
              .split('\n')
              .filter((l) => l.startsWith('{'))
              .map((l) => JSON.parse(l) as CliRun['events'][number])
          : [];
        resolve({ code, stdout, stderr, events });
      },
    );
  });
}

export const servicesWith = (run: CliRun, type: string): string[] =>
  [...new Set(run.events.filter((e) => e.type === type).map((e) => e.service ?? ''))].sort();

/** Edits a file of the fixture copy in place; returns a function restoring it. */
export async function edit(dir: string, file: string, change: (text: string) => string): Promise<() => Promise<void>> {
  const abs = path.join(dir, file);
  const before = await readFile(abs, 'utf8');
  const after = change(before);
  if (after === before) throw new Error(`edit of ${file} changed nothing`);
  await writeFile(abs, after);
  return () => writeFile(abs, before);
}

/** GETs a path from every Ready pod of `app` (by pod IP on the cluster network) and returns the distinct answers. */
export async function askPods(namespace: string, app: string, urlPath = '/'): Promise<string[]> {
  const pods = await kube().core.listNamespacedPod({ namespace, labelSelector: `app=${app}` });
  const ready = pods.items.filter(
    (p) => !p.metadata?.deletionTimestamp && p.status?.podIP && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
  const answers = await Promise.all(
    ready.map(async (p) => {
      const res = await fetch(`http://${p.status!.podIP}:8080${urlPath}`, { signal: AbortSignal.timeout(15_000) });
      return (await res.text()).trim();
    }),
  );
  return [...new Set(answers)].sort();
}

/** Prints a failed run's output into the assertion message. */
export function explain(run: CliRun): string {
  return `exit ${run.code}\n--- stdout\n${run.stdout.slice(-6000)}\n--- stderr\n${run.stderr.slice(-3000)}`;
}
