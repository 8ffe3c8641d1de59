import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerClient } from '../../core/build/docker.js';
import { execIn, kindLoad, kindPrune } from '../../core/build/kind.js';
import { docker, removeImage } from '../support/docker.js';
import { kindKubeconfig, uniqueName } from '../support/env.js';

const NODE = 'devloop-control-plane';

// Older images devloop loaded into the kind node go after a deploy: only content-version tags of the service's
// repository that are not kept; another tag of that repository, and other repositories, stay.
describe('kindPrune on the real kind node', () => {
  const repo = `devloop-e2e/${uniqueName('prune')}`;
  const versions = ['1', '2', '3', '4'].map((d) => d.repeat(16));
  const refs = versions.map((v) => `${repo}:${v}`);
  const other = `${repo}:latest`;
  const listed = async () =>
    (await execIn(await dockerClient(), NODE, ['ctr', '--namespace=k8s.io', 'images', 'ls', '-q'])).stdout.split('\n').filter((n) => n.includes(repo)).sort();

  beforeAll(async () => {
    kindKubeconfig(); // fails naming what is missing when the kind cluster is not up
    const engine = await dockerClient();
    const base = (await docker().listImages({ filters: { reference: ['debian:bookworm-slim'] } }))[0];
    if (!base) throw new Error('debian:bookworm-slim is missing from the Docker engine (npm run infra:up builds it)');
    for (const ref of [...refs, other]) {
      const [r, tag] = ref.split(':') as [string, string];
      await docker().getImage('debian:bookworm-slim').tag({ repo: r, tag });
      await kindLoad(engine, 'devloop', ref, () => {});
    }
  });

  afterAll(async () => {
    const engine = await dockerClient();
    const left = await listed();
    if (left.length) await execIn(engine, NODE, ['ctr', '--namespace=k8s.io', 'images', 'rm', ...left]);
    for (const ref of [...refs, other]) await removeImage(ref);
  });

  it('removes the content-version tags that are not kept, and nothing else', async () => {
    expect(await listed()).toEqual([...refs, other].map((r) => `docker.io/${r}`).sort());
    const removed = await kindPrune(await dockerClient(), 'devloop', repo, [refs[2]!, refs[3]!]);
    expect(removed.sort()).toEqual([refs[0], refs[1]].map((r) => `docker.io/${r}`));
    expect(await listed()).toEqual([refs[2], refs[3], other].map((r) => `docker.io/${r!}`).sort());
    // Keeping nothing (down --images) removes every content version, still not the other tag.
    await kindPrune(await dockerClient(), 'devloop', repo, []);
    expect(await listed()).toEqual([`docker.io/${other}`]);
  });
});
