import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
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
          // One cluster, one Docker engine: e2e files run one at a time.
          fileParallelism: false,
          globalSetup: ['e2e/setup/global-setup.ts'],
        },
      },
    ],
  },
});
