import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownerLabels } from '../deploy/labels.js';
import { DockerBuilder } from './builder.js';
import { dockerClient } from './docker.js';

// Pruning on the real engine: only images devloop built for this owner and service, never the newest `keep`, the
// protected one, one a container uses, or an image of the same repository that devloop did not build.
const docker = await dockerClient();
const owner = { project: `prune${process.pid}`, developer: 'ada' };
const repo = `${owner.project}/web`;
const tags = Array.from({ length: 5 }, (_, i) => `${repo}:${String(i).padStart(16, '0')}`);
const foreign = `${repo}:${'f'.repeat(16)}`;
let container: string | undefined;

async function build(tag: string, labels: Record<string, string>, n: number): Promise<void> {
  const { pack } = await import('tar-stream');
  const p = pack();
  p.entry({ name: 'Dockerfile' }, `FROM debian:bookworm-slim\nRUN echo ${n} > /n\n`);
  p.finalize();
  const stream = await docker.buildImage(p as unknown as NodeJS.ReadableStream, { t: tag, labels });
  await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve(undefined))));
}

beforeAll(async () => {
  await docker.getImage('debian:bookworm-slim').inspect().catch((err: unknown) => {
    throw new Error(`this test needs the Docker engine with debian:bookworm-slim (npm run infra:up): ${(err as Error).message}`);
  });
  // Oldest first: Created has one-second resolution, so the builds are spaced.
  for (const [i, tag] of tags.entries()) {
    await build(tag, ownerLabels(owner, 'web'), i);
    await new Promise((r) => setTimeout(r, 1100));
  }
  await build(foreign, {}, 99);
  // The oldest is still used by a container: it must stay.
  const c = await docker.createContainer({ Image: tags[0], Cmd: ['true'] });
  container = c.id;
}, 120_000);

afterAll(async () => {
  if (container) await docker.getContainer(container).remove({ force: true });
  for (const t of [...tags, foreign]) await docker.getImage(t).remove({ force: true }).catch(() => undefined);
});

describe('DockerBuilder.prune', () => {
  it('removes nothing when what it waits for (the deploy) does not succeed', async () => {
    const failed = await new DockerBuilder().prune(owner, 'web', 2, [tags[1]!], Promise.resolve(false));
    const refused = await new DockerBuilder().prune(owner, 'web', 2, [tags[1]!], Promise.reject(new Error('refused')));
    expect([failed, refused]).toEqual([
      { removed: [], kept: [] },
      { removed: [], kept: [] },
    ]);
    expect((await docker.listImages({ filters: { reference: [`${repo}:*`] } })).flatMap((i) => i.RepoTags ?? []).sort()).toEqual([...tags, foreign].sort());
  });

  it('keeps the newest, the protected, the used and the foreign images, and removes the rest', async () => {
    // Listed at once, removed once the deploy it waits for succeeds.
    let succeed: (ok: boolean) => void = () => undefined;
    const pruning = new DockerBuilder().prune(owner, 'web', 2, [tags[1]!], new Promise<boolean>((resolve) => (succeed = resolve)));
    await new Promise((r) => setTimeout(r, 200));
    expect((await docker.listImages({ filters: { reference: [`${repo}:*`] } })).flatMap((i) => i.RepoTags ?? []).sort()).toEqual([...tags, foreign].sort());
    succeed(true);
    const r = await pruning;
    expect(r.removed).toEqual([tags[2]]);
    expect(r.kept.sort()).toEqual([tags[0], tags[1], tags[3], tags[4]].sort());
    const present = (await docker.listImages({ filters: { reference: [`${repo}:*`] } })).flatMap((i) => i.RepoTags ?? []).sort();
    expect(present).toEqual([tags[0], tags[1], tags[3], tags[4], foreign].sort());
    // Keeping none removes every one it may (down --images), still not the used one nor the foreign one.
    const all = await new DockerBuilder().prune(owner, 'web', 0, []);
    expect(all.removed.sort()).toEqual([tags[1], tags[3], tags[4]].sort());
    expect((await docker.listImages({ filters: { reference: [`${repo}:*`] } })).flatMap((i) => i.RepoTags ?? []).sort()).toEqual([tags[0], foreign].sort());
  });
});
