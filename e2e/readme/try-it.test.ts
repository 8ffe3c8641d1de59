import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devloopEnv, repoRoot, uniqueName } from '../support/env.js';
import { buildCli } from '../up/harness.js';

/**
 * The README's "Try it in one minute", run as written: every command of the sh blocks between the try-it markers,
 * in order, in one shell session of a new directory. A `devloop up` line runs as the user's first terminal does
 * (until the next `devloop` command, which comes after Ctrl-C); a `# → text` comment is what the command must print,
 * waited for (sync and start-up take a moment), so the README cannot drift from what works.
 */
interface Step {
  command: string;
  expect?: string;
}

function tryItSteps(readme: string): Step[] {
  const section = /<!-- try-it[^>]*-->([\s\S]*?)<!-- \/try-it -->/.exec(readme)?.[1];
  if (!section) throw new Error('README.md has no <!-- try-it --> section');
  const steps: Step[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1]!.split('\n')) {
      if (!line.trim()) continue;
      const [command, comment = ''] = line.split(/\s+#\s?/, 2) as [string, string?];
      // "→ {...}  (a remark)": what it prints ends at two spaces.
      const expected = /^→ (.+?)(?:\s{2,}|$)/.exec(comment)?.[1];
      steps.push({ command: command.trim(), ...(expected ? { expect: expected } : {}) });
    }
  }
  return steps;
}

/** Still running: neither exited nor ended by a signal. */
const running = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;

/** A signal to the whole job (its process group), as a terminal sends Ctrl-C; a group already gone is fine. */
function signalGroup(p: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-p.pid!, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

describe("the README's Try it in one minute", () => {
  const developer = uniqueName('e2e-readme');
  let work: string;
  let bin: string;
  let cwd: string;
  let up: ChildProcess | undefined;
  let upOutput = '';

  const env = () => ({
    ...devloopEnv(developer, { NO_COLOR: '1' }),
    // The kind cluster stands for the reader's: its own kubeconfig, so `devloop up` loads images into kind.
    KUBECONFIG: process.env.DEVLOOP_KIND_KUBECONFIG ?? '',
    PATH: `${bin}:${process.env.PATH}`,
  });

  beforeAll(() => {
    buildCli();
    if (!process.env.DEVLOOP_KIND_KUBECONFIG) throw new Error('DEVLOOP_KIND_KUBECONFIG is not set: the kind cluster of `npm run infra:up` is needed (eval "$(npm run --silent infra:env)")');
    work = mkdtempSync(path.join(os.tmpdir(), 'devloop-readme-'));
    bin = path.join(work, 'bin');
    cwd = work;
    spawnSync('mkdir', ['-p', bin]);
    writeFileSync(path.join(bin, 'devloop'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(repoRoot, 'bin/devloop.js'))} "$@"\n`);
    chmodSync(path.join(bin, 'devloop'), 0o755);
  });

  afterAll(async () => {
    if (up && running(up)) {
      // Ctrl-C, as the reader would; then make sure.
      const exited = new Promise((r) => up!.once('exit', r));
      signalGroup(up, 'SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (running(up)) signalGroup(up, 'SIGKILL');
    }
    // Whatever the steps left running: the cluster deployment and the local container.
    for (const args of [['down'], ['down', '--target', 'docker']]) spawnSync('devloop', args, { cwd, env: env(), stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  });

  it('works as written', async () => {
    const steps = tryItSteps(readFileSync(path.join(repoRoot, 'README.md'), 'utf8'));
    expect(steps.length).toBeGreaterThan(5);
    for (const step of steps) {
      console.log(`README step: ${step.command}${step.expect ? `  (expecting ${step.expect})` : ''}`);
      if (/^devloop up\b/.test(step.command)) {
        upOutput = '';
        // A process group of its own, as a terminal's foreground job: Ctrl-C reaches every process in it.
        up = spawn('sh', ['-c', step.command], { cwd, env: env(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        up.stdout!.on('data', (c: Buffer) => (upOutput += c.toString()));
        up.stderr!.on('data', (c: Buffer) => (upOutput += c.toString()));
        continue;
      }
      if (up && running(up) && /^devloop\b/.test(step.command)) {
        // The README says: Ctrl-C in the first terminal, then the next command.
        const exited = new Promise((r) => up!.once('exit', r));
        signalGroup(up, 'SIGINT');
        await exited;
      }
      const deadline = Date.now() + (step.expect ? 240_000 : 120_000);
      for (;;) {
        const r = spawnSync('bash', ['-c', `${step.command}\necho "__cwd=$PWD"`], { cwd, env: env(), encoding: 'utf8', timeout: 120_000 });
        const out = r.stdout.replace(/__cwd=.*\n?$/, '');
        const ok = r.status === 0 && (!step.expect || out.includes(step.expect));
        if (ok) {
          cwd = /__cwd=(.*)/.exec(r.stdout)?.[1] ?? cwd;
          break;
        }
        if (!step.expect || Date.now() > deadline) {
          throw new Error(`README step failed: ${step.command}\nexit ${r.status}\n${out}\n${r.stderr}\n--- devloop up:\n${upOutput.slice(-3000)}`);
        }
        await new Promise((res) => setTimeout(res, 500));
      }
    }
  });
});
