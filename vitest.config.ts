import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The build's bundle of the Kubernetes client (core/deploy/kube.ts) is plain JavaScript for Node: transforming
    // its 6 MB on every run would cost seconds.
    server: { deps: { external: [/\/dist\/vendor\//] } },
    projects: [
      {
        // Pure logic and the real things that need no service: git repositories, files, inotify, child processes.
        test: {
          name: 'unit',
          include: ['core/**/*.test.ts', 'core/**/*.test.tsx', 'cli/**/*.test.ts', 'cli/**/*.test.tsx'],
          exclude: ['**/*.integration.test.ts', '**/node_modules/**'],
          testTimeout: 30_000,
        },
      },
      {
        // Against the real Docker engine, registry, kubectl/helm and the build in dist/ (npm run infra:up, npm run build).
        test: {
          name: 'integration',
          include: ['core/**/*.integration.test.ts', 'cli/**/*.integration.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.test.ts'],
          exclude: ['e2e/chaos/**', '**/node_modules/**'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          // One cluster, one Docker engine: e2e files run one at a time.
          fileParallelism: false,
          globalSetup: ['e2e/setup/global-setup.ts'],
        },
      },
      {
        // Faults a hostile user or a bad day causes (signals, kill -9, deleted namespaces, outages), on the real stack.
        test: {
          name: 'chaos',
          include: ['e2e/chaos/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          globalSetup: ['e2e/setup/global-setup.ts'],
        },
      },
    ],
  },
});
