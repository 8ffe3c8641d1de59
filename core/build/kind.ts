import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type Dockerode from 'dockerode';
import { ExternalError, UserError } from '../errors.js';

/** The label kind puts on every node container of a cluster. */
export const KIND_CLUSTER_LABEL = 'io.x-k8s.kind.cluster';

export async function kindNodes(docker: Dockerode, cluster: string): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ filters: { label: [`${KIND_CLUSTER_LABEL}=${cluster}`] } });
}

interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command in a container, optionally feeding `stdin`, and collects its output. */
export async function execIn(
  docker: Dockerode,
  containerId: string,
  cmd: string[],
  stdin?: NodeJS.ReadableStream,
): Promise<ExecResult> {
  const container = docker.getContainer(containerId);
  const exec = await container.exec({ Cmd: cmd, AttachStdin: !!stdin, AttachStdout: true, AttachStderr: true });
  const stream = (await exec.start({ hijack: true, stdin: !!stdin })) as NodeJS.ReadWriteStream;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const { PassThrough } = await import('node:stream');
  const stdout = new PassThrough().on('data', (b: Buffer) => out.push(b));
  const stderr = new PassThrough().on('data', (b: Buffer) => err.push(b));
  docker.modem.demuxStream(stream, stdout, stderr);
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
    stream.on('error', reject);
  });
  if (stdin) {
    // Half-close after the input so the command sees EOF; the hijacked socket keeps reading output.
    stdin.pipe(stream as unknown as NodeJS.WritableStream, { end: true });
  }
  await ended;
  const info = await exec.inspect();
  return { exitCode: info.ExitCode ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** The name containerd records for a Docker reference ("shop/orders:x" → "docker.io/shop/orders:x"). */
export function containerdName(ref: string): string {
  const first = ref.split('/')[0]!;
  const hasRegistry = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry) return ref;
  return ref.includes('/') ? `docker.io/${ref}` : `docker.io/library/${ref}`;
}

// The snapshotter the node's CRI uses, read from its containerd config (as `kind load` does); overlayfs when unset.
const SNAPSHOTTER_SCRIPT =
  'containerd config dump 2>/dev/null | sed -n \'s/^[[:space:]]*snapshotter[[:space:]]*=[[:space:]]*"\\(.*\\)"/\\1/p\' | head -n1';

/**
 * Loads an image into every node of a kind cluster, the way `kind load docker-image` does: `docker save` once,
 * then `ctr images import` into each node's containerd. Nodes that already hold the image ID are skipped.
 */
export async function kindLoad(
  docker: Dockerode,
  cluster: string,
  ref: string,
  onProgress: (message: string) => void,
): Promise<{ loaded: string[]; skipped: string[] }> {
  const nodes = await kindNodes(docker, cluster);
  if (nodes.length === 0) {
    throw new UserError(`no running node containers for kind cluster "${cluster}"`, {
      hint: `start it with \`kind create cluster --name ${cluster}\` or pick another context with --context`,
    });
  }
  const imageId = (await docker.getImage(ref).inspect()).Id;
  const name = containerdName(ref);
  const needing: Dockerode.ContainerInfo[] = [];
  const skipped: string[] = [];
  for (const node of nodes) {
    const nodeName = node.Names[0]?.replace(/^\//, '') ?? node.Id;
    // Present = the name is known and its config blob (Docker's image ID) is in the node's content store.
    const present = await execIn(docker, node.Id, [
      'sh',
      '-c',
      'ctr --namespace=k8s.io images ls -q "name==$1" | grep -qxF "$1" && ctr --namespace=k8s.io content get "$2" >/dev/null',
      'check',
      name,
      imageId,
    ]);
    if (present.exitCode === 0) skipped.push(nodeName);
    else needing.push(node);
  }
  if (needing.length === 0) return { loaded: [], skipped };

  const dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-kind-'));
  const archive = path.join(dir, 'image.tar');
  const loaded: string[] = [];
  try {
    await pipeline(await docker.getImage(ref).get(), createWriteStream(archive));
    for (const node of needing) {
      const nodeName = node.Names[0]?.replace(/^\//, '') ?? node.Id;
      const snap = await execIn(docker, node.Id, ['sh', '-c', SNAPSHOTTER_SCRIPT]);
      const snapshotter = snap.stdout.trim() || 'overlayfs';
      onProgress(`importing into ${nodeName}`);
      const result = await execIn(
        docker,
        node.Id,
        ['ctr', '--namespace=k8s.io', 'images', 'import', '--all-platforms', '--digests', `--snapshotter=${snapshotter}`, '-'],
        createReadStream(archive),
      );
      if (result.exitCode !== 0) {
        const why = (result.stderr.trim() || result.stdout.trim()).split('\n').pop() ?? '';
        throw new ExternalError(`ctr images import on kind node ${nodeName} failed (exit ${result.exitCode}): ${why}`, {
          detail: `${result.stdout}${result.stderr}`.trim(),
        });
      }
      loaded.push(nodeName);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { loaded, skipped };
}

/** A content-version tag (what devloop tags its images with): 16 lowercase hex digits. */
const CONTENT_TAG = /^[0-9a-f]{16}$/;

/**
 * Removes, from every node of a kind cluster, the images of `repository` that devloop loaded (content-version tags)
 * but those in `keep`. Images of other repositories, and other tags, are never touched. Returns the names removed.
 */
export async function kindPrune(docker: Dockerode, cluster: string, repository: string, keep: string[]): Promise<string[]> {
  const prefix = containerdName(`${repository}:`);
  const keepNames = new Set(keep.map(containerdName));
  const removed: string[] = [];
  for (const node of await kindNodes(docker, cluster)) {
    const listed = await execIn(docker, node.Id, ['ctr', '--namespace=k8s.io', 'images', 'ls', '-q']);
    if (listed.exitCode !== 0) throw new ExternalError(`ctr images ls on kind node ${node.Names[0] ?? node.Id} failed: ${listed.stderr.trim()}`);
    const stale = listed.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((n) => n.startsWith(prefix) && CONTENT_TAG.test(n.slice(prefix.length)) && !keepNames.has(n));
    if (stale.length === 0) continue;
    const r = await execIn(docker, node.Id, ['ctr', '--namespace=k8s.io', 'images', 'rm', ...stale]);
    if (r.exitCode !== 0) throw new ExternalError(`ctr images rm on kind node ${node.Names[0] ?? node.Id} failed: ${r.stderr.trim()}`);
    removed.push(...stale);
  }
  return [...new Set(removed)];
}
