import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { preloadKubeClient } from './kube.js';

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
