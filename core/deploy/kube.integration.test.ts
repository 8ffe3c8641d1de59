import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { UserError } from '../errors.js';
import { kubeCallFailed, preloadKubeClient } from './kube.js';

describe('preloadKubeClient', () => {
  it("loads the build's one-module bundle of the client, not the package's 1,000 modules", async () => {
    const bundle = new URL('../../dist/vendor/kube-client.js', import.meta.url);
    expect(existsSync(bundle), `${bundle.pathname} is missing: run \`npm run build\` (npm ci runs it)`).toBe(true);
    const lib = await preloadKubeClient();
    const pkg = await import('@kubernetes/client-node');
    const bundled = (await import(bundle.href)) as typeof pkg;
    expect(lib.KubeConfig).toBe(bundled.KubeConfig);
    expect(lib.KubeConfig).not.toBe(pkg.KubeConfig);
  });
});

describe('kubeCallFailed', () => {
  it('says why a connection failed, which fetch keeps in its causes, as a user error with a hint', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const err = await fetch(`http://127.0.0.1:${port}/api`).then(
      () => undefined,
      (e: unknown) => e,
    );
    const wrapped = kubeCallFailed('read namespace shop-dev', err);
    expect(wrapped).toBeInstanceOf(UserError);
    expect(wrapped.message).toBe(`cannot reach the Kubernetes API for read namespace shop-dev: fetch failed (connect ECONNREFUSED 127.0.0.1:${port})`);
  });
});
