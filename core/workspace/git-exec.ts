import { execFile } from 'node:child_process';

/** Wall time of each git call, recorded only when DEVLOOP_TIMINGS is set (for the plan benchmark). */
export interface GitTiming {
  args: string[];
  startMs: number;
  endMs: number;
}
export const gitTimings: GitTiming[] = [];
export const recordGitTimings = Boolean(process.env.DEVLOOP_TIMINGS);

/**
 * Git variables from a surrounding git process (hooks set GIT_DIR, GIT_INDEX_FILE...) would point the commands
 * elsewhere, and simple-git refuses variables that can run programs (EDITOR, PAGER...): devloop's read-only
 * commands need neither.
 */
const REFUSED_ENV = new Set(['editor', 'visual', 'pager', 'prefix', 'ssh_askpass']);
export function stripGitEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    const key = k.toLowerCase();
    if (v !== undefined && !key.startsWith('git') && !REFUSED_ENV.has(key)) out[k] = v;
  }
  return out;
}

let readOnlyEnv: Record<string, string> | undefined;

/**
 * Runs a read-only git command straight through node:child_process, with the environment GitRepo uses
 * (`GIT_OPTIONAL_LOCKS=0`: never takes index.lock). For the start-up path of commands that may not need the rest
 * of git.ts (loading simple-git costs tens of milliseconds). Resolves with stdout, or null when git exits non-zero
 * or cannot run: callers fall back to GitRepo, which reports failures properly.
 */
export function readGit(dir: string, args: string[]): Promise<string | null> {
  readOnlyEnv ??= { ...stripGitEnv(process.env), GIT_OPTIONAL_LOCKS: '0' };
  const startMs = performance.now();
  return new Promise((resolve) => {
    execFile('git', args, { cwd: dir, env: readOnlyEnv, encoding: 'utf8', maxBuffer: 1 << 30 }, (err, stdout) => {
      if (recordGitTimings) gitTimings.push({ args, startMs, endMs: performance.now() });
      resolve(err ? null : stdout);
    });
  });
}

/** Splits `-z` output into its NUL-terminated fields. */
export function splitNul(out: string): string[] {
  if (out === '') return [];
  const parts = out.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}
