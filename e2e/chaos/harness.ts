import { spawn, type ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { devloopEnv, repoRoot, waitFor } from '../support/env.js';
import { kube } from '../support/kube.js';
import { lockDir } from '../../core/engine/lock.js';
import { SWEPT_KINDS } from '../../core/target/kubernetes.js';

/** Every object in `namespace` that carries devloop's ownership labels for `developer`, as "Kind/name". */
export async function labelledObjects(namespace: string, developer: string): Promise<string[]> {
  const out: string[] = [];
  for (const [apiVersion, kind] of SWEPT_KINDS) {
    const list = await kube()
      .objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, `app.kubernetes.io/managed-by=devloop,devloop.dev/developer=${developer}`)
      .catch(() => ({ items: [] }));
    for (const o of list.items) out.push(`${kind}/${o.metadata?.name}`);
  }
  return out.sort();
}

/** What devloop's records say it owns in `namespace`: every recorded object, and the records themselves. */
export async function recordedObjects(namespace: string, developer: string): Promise<string[]> {
  const list = await kube()
    .core.listNamespacedConfigMap({ namespace, labelSelector: `app.kubernetes.io/managed-by=devloop,devloop.dev/developer=${developer},devloop.dev/inventory=true` })
    .catch(() => ({ items: [] }));
  const out: string[] = [];
  for (const cm of list.items) {
    out.push(`ConfigMap/${cm.metadata?.name}`);
    for (const r of JSON.parse(cm.data?.objects ?? '[]') as { kind: string; name: string }[]) out.push(`${r.kind}/${r.name}`);
  }
  return [...new Set(out)].sort();
}

/** devloop processes still running whose working directory is `dir` (none may outlive a test). */
export async function devloopProcessesIn(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const { readFile, readlink } = await import('node:fs/promises');
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      if (!cmd.some((a) => a.endsWith('bin/devloop.js'))) continue;
      if ((await readlink(`/proc/${pid}/cwd`)) === dir) out.push(Number(pid));
    } catch {
      // The process ended while it was looked at: it is not left.
    }
  }
  return out;
}

/** What devloop itself leaves in the temp directory while it runs: image archives for kind, and run locks. */
export async function devloopTempEntries(): Promise<string[]> {
  const archives = (await readdir(os.tmpdir())).filter((n) => n.startsWith('devloop-kind-'));
  const locks = await readdir(lockDir()).catch(() => []);
  return [...archives, ...locks.map((l) => `locks/${l}`)].sort();
}

/** `devloop <args>` as a child process with the infrastructure's environment, for signals and kill -9. */
export function spawnDevloop(dir: string, developer: string, args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/devloop.js'), ...args], {
    cwd: dir,
    env: devloopEnv(developer, { NO_COLOR: '1' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  return { child, output: () => text, exited };
}

/** A small seeded generator (mulberry32), so a failing random run can be repeated from its printed seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The name of a Ready pod of the sync fixture's web service in `namespace` (waits for one). */
export function readyWebPod(namespace: string, timeoutMs = 120_000): Promise<string> {
  return waitFor(
    `a Ready web pod in ${namespace}`,
    async () => {
      const pods = (await kube().core.listNamespacedPod({ namespace, labelSelector: 'app=web' }).catch(() => ({ items: [] }))).items;
      return pods.find((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))?.metadata?.name;
    },
    { timeoutMs },
  );
}
