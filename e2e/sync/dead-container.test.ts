import { afterEach, describe, expect, it } from 'vitest';
import { dockerExec } from '../../core/sync/channel.js';
import { StreamTransport } from '../../core/sync/transport.js';
import { docker } from '../support/docker.js';
import { uniqueName } from '../support/env.js';

// A container that dies while a batch is being written into it: the write must fail, not wait forever (a batch
// that never settles holds every later batch and initial sync of the service).
describe('the sync stream into a container that dies mid-batch', () => {
  let name = '';
  afterEach(async () => {
    await docker().getContainer(name).remove({ force: true }).catch(() => undefined);
  });

  it('fails the pending batch once the container is gone', async () => {
    name = uniqueName('e2e-deadsync');
    await (await docker().createContainer({ name, Image: 'debian:bookworm-slim', Cmd: ['sleep', 'infinity'] })).start();
    const transport = await StreamTransport.open(dockerExec(docker(), name), ['/tmp/sync']);
    // The receiver stops reading, so a large batch fills the connection and its write waits.
    // (The image has no pkill: the receiver is the perl process among /proc's.)
    const stopReceiver = 'for p in /proc/[0-9]*; do [ "$(readlink $p/exe)" = /usr/bin/perl ] && kill -STOP ${p#/proc/}; done';
    const stop = await docker().getContainer(name).exec({ Cmd: ['sh', '-c', stopReceiver] });
    await stop.start({});
    await new Promise((r) => setTimeout(r, 500));
    expect((await stop.inspect()).ExitCode).toBe(0);
    const pending = transport.apply([{ kind: 'write', root: 0, rel: 'big.bin', mode: 0o644, data: Buffer.alloc(32 * 1024 * 1024, 7) }]);
    let settled = false;
    void pending.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setTimeout(r, 1000));
    expect(settled, 'the batch finished although the receiver was stopped').toBe(false);

    await docker().getContainer(name).kill();
    const outcome = await Promise.race([
      pending.then(
        () => 'applied',
        (err: Error) => `failed: ${err.message}`,
      ),
      new Promise<string>((r) => setTimeout(() => r('still pending 30 s after the container was killed'), 30_000)),
    ]);
    expect(outcome).toMatch(/^failed: .*ended/);
    await transport.close();
  });
});
