import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The build's bundle of the Kubernetes client (core/deploy/kube.ts) is plain JavaScript for Node: transforming
    // its 6 MB on every run would cost seconds.
    server: { deps: { external: [/\/dist\/vendor\//] } },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['core/**/*.test.ts', 'core/**/*.test.tsx', 'cli/**/*.test.ts', 'cli/**/*.test.tsx'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          // The cluster, the Docker engine and two cores are shared by every suite: a test that fails is run once
          // more before it counts, and the retry shows in the report (a real failure fails twice).
          retry: 1,
          // One cluster, one Docker engine: e2e files run one at a time.
          fileParallelism: false,
          globalSetup: ['e2e/setup/global-setup.ts'],
        },
      },
    ],
  },
});
