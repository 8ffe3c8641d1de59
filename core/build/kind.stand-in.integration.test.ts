import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from './build.js';
import { dockerClient } from './docker.js';
import { execIn, kindLoad, KIND_CLUSTER_LABEL } from './kind.js';

const docker = await dockerClient();
const cluster = `devloop-test-${process.pid}`;
const nodeName = `${cluster}-control-plane`;
const image = `devloop-test/kind-load:${process.pid}`;
const NODE_BASE = 'debian:bookworm-slim';
let dir: string;

/**
 * A stand-in for a kind node container (real kind nodes need privileges these machines do not grant): the real
 * containerd and ctr binaries of this host, run with CAP_SYS_ADMIN only in a container with kind's cluster label, using the
 * native snapshotter. `kindLoad` talks to it exactly as it talks to a kind node.
 */
async function startStandInNode(): Promise<void> {
  for (const bin of ['/usr/bin/containerd', '/usr/bin/ctr']) {
    if (!existsSync(bin)) throw new Error(`this test needs ${bin} on the host (apt-get install containerd)`);
  }
  try {
    await docker.getImage(NODE_BASE).inspect();
  } catch {
    throw new Error(`this test needs the ${NODE_BASE} image (npm run infra:up creates it)`);
  }
  const config = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "native"\n';
  const container = await docker.createContainer({
    name: nodeName,
    Image: NODE_BASE,
    Labels: { [KIND_CLUSTER_LABEL]: cluster },
    Cmd: ['sh', '-c', `mkdir -p /etc/containerd && printf '%s' '${config}' > /etc/containerd/config.toml && exec containerd`],
    // Unpacking layers mounts them: the one privilege the stand-in needs (kind nodes run fully privileged).
    HostConfig: {
      Binds: ['/usr/bin/containerd:/usr/bin/containerd:ro', '/usr/bin/ctr:/usr/bin/ctr:ro'],
      CapAdd: ['SYS_ADMIN'],
      SecurityOpt: ['apparmor=unconfined', 'seccomp=unconfined'],
    },
  });
  await container.start();
  for (let i = 0; i < 50; i++) {
    const r = await execIn(docker, container.id, ['ctr', 'version']);
    if (r.exitCode === 0) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error('the stand-in node container did not start containerd');
}

beforeAll(async () => {
  await startStandInNode();
  dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-kind-'));
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\n');
  await writeFile(path.join(dir, 'a.txt'), image);
  await buildImage(docker, { service: 't', contextDir: dir, dockerfile: 'Dockerfile', image, buildArgs: {}, labels: {} }, () => {});
}, 60_000);

afterAll(async () => {
  await docker.getContainer(nodeName).remove({ force: true }).catch(() => {});
  await docker.getImage(image).remove({ force: true }).catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
});

// The same code against the real kind node: e2e/kind/load.test.ts.
describe('kindLoad against a stand-in node container (not kind)', () => {
  it('imports the image into every node of the cluster with the node snapshotter, and skips nodes that have it', async () => {
    const progress: string[] = [];
    const first = await kindLoad(docker, cluster, image, (m) => progress.push(m));
    expect(first).toEqual({ loaded: [nodeName], skipped: [] });
    expect(progress).toEqual([`importing into ${nodeName}`]);

    const listed = await execIn(docker, nodeName, ['ctr', '--namespace=k8s.io', 'images', 'ls', '-q']);
    expect(listed.stdout.split('\n')).toContain(`docker.io/${image}`);
    const snapshots = await execIn(docker, nodeName, ['ctr', '--namespace=k8s.io', 'snapshots', '--snapshotter=native', 'ls']);
    expect(snapshots.stdout.trim().split('\n').length).toBeGreaterThan(1);

    const second = await kindLoad(docker, cluster, image, () => {});
    expect(second).toEqual({ loaded: [], skipped: [nodeName] });
  });

  it('says so when the cluster has no node containers', async () => {
    await expect(kindLoad(docker, 'no-such-cluster', image, () => {})).rejects.toThrow('no running node containers for kind cluster "no-such-cluster"');
  });
});
