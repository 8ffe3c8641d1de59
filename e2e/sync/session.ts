import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, readlink, rm, lstat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { devloopEnv, repoRoot } from '../support/env.js';
import { docker } from '../support/docker.js';

export const SYNC_FIXTURE = path.join(repoRoot, 'e2e/sync/fixture');

export interface LoopEvent {
  type: string;
  service?: string;
  [k: string]: unknown;
}

/** A running `devloop up --json` whose events are collected as they arrive. */
export class LoopProcess {
  readonly events: LoopEvent[] = [];
  private stderr = '';
  private readonly child: ChildProcess;
  readonly exited: Promise<number>;
  private waiters: { match: (e: LoopEvent) => boolean; from: number; resolve: (e: LoopEvent) => void }[] = [];

  /** `env` adds to (or overrides) the infrastructure's environment, e.g. KUBECONFIG for the kind cluster. */
  constructor(dir: string, developer: string, args: string[] = [], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [path.join(repoRoot, 'bin/devloop.js'), 'up', '--json', ...args], {
      cwd: dir,
      env: devloopEnv(developer, { NO_COLOR: '1', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    this.child.stdout!.on('data', (c: Buffer) => {
      partial += c.toString('utf8');
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, i);
        partial = partial.slice(i + 1);
        if (!line.startsWith('{')) continue;
        const e = JSON.parse(line) as LoopEvent;
        this.events.push(e);
        for (const w of [...this.waiters]) {
          if (this.events.length - 1 >= w.from && w.match(e)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(e);
          }
        }
      }
    });
    this.child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString('utf8')));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code ?? -1)));
  }

  /** Index of the next event, to wait for events after a point. */
  mark(): number {
    return this.events.length;
  }

  /** Waits for an event (at or after `from`) matching `match`; fails with the recent events when it does not come. */
  waitFor(what: string, match: (e: LoopEvent) => boolean, from = 0, timeoutMs = 120_000): Promise<LoopEvent> {
    const seen = this.events.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out waiting for ${what}\n${this.explain()}`));
      }, timeoutMs);
      const done = (e: LoopEvent) => {
        clearTimeout(timer);
        resolve(e);
      };
      this.waiters.push({ match, from, resolve: done });
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`devloop exited (${code}) while waiting for ${what}\n${this.explain()}`));
      });
    });
  }

  explain(): string {
    const recent = this.events.slice(-25).map((e) => JSON.stringify(e).slice(0, 300));
    return `--- last events\n${recent.join('\n')}\n--- stderr\n${this.stderr.slice(-3000)}`;
  }

  /** Ctrl-C; resolves with the exit code. */
  async interrupt(): Promise<number> {
    this.child.kill('SIGINT');
    return this.exited;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

/** A copy of the sync fixture as a git repository, with the given local port in devloop.yaml. */
/**
 * The sync fixture in a new git repo, forwarding `port`. `project` renames the project (and so, on the Docker
 * target, its container and network), so that runs sharing one Docker engine do not collide; Kubernetes runs keep
 * the default (the manifests name the image `syncdemo/web`; each run has a namespace of its own).
 */
export async function syncFixtureRepo(port: number, project = 'syncdemo'): Promise<{ dir: string; git(...args: string[]): string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-sync-'));
  await cp(SYNC_FIXTURE, dir, { recursive: true });
  const yaml = path.join(dir, 'devloop.yaml');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(yaml, (await readFile(yaml, 'utf8')).replace('18190:8080', `${port}:8080`).replace(/^name: syncdemo$/m, `name: ${project}`));
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@devloop.invalid', ...args], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-qm', 'fixture');
  return { dir, git, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A TCP port on 127.0.0.1 that is free right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A digest of every file (content, mode, mtime), symlink and directory of the working tree under `dir` (not .git). */
export async function treeDigest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const entries = (await readdir(path.join(dir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      if (rel === '' && e.name === '.git') continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const abs = path.join(dir, r);
      const st = await lstat(abs);
      if (e.isDirectory()) {
        hash.update(`d ${r} ${st.mode}\n`);
        await walk(r);
      } else if (e.isSymbolicLink()) {
        hash.update(`l ${r} ${await readlink(abs)}\n`);
      } else {
        hash.update(`f ${r} ${st.mode} ${st.mtimeMs} `).update(await readFile(abs)).update('\n');
      }
    }
  };
  await walk('');
  return hash.digest('hex');
}

/** Removes what a Docker-target run of the fixture under `project` leaves: its container, network and images. */
export async function removeDockerProject(project: string, developer: string): Promise<void> {
  const engine = docker();
  // Either may be gone already (the test's own `down` removed it).
  await engine.getContainer(`devloop-${project}-${developer}-web`).remove({ force: true }).catch(() => undefined);
  await engine.getNetwork(`devloop-${project}-${developer}`).remove().catch(() => undefined);
  for (const image of await engine.listImages({ filters: JSON.stringify({ reference: [`${project}/*`] }) })) {
    await engine.getImage(image.Id).remove({ force: true }).catch(() => undefined);
  }
}
