import { defineConfig } from 'vitest/config';

// Tiers are chosen by file suffix: *.test.ts (unit, pure), *.sim.test.ts (simulated kernel, real files),
// *.kernel.test.ts (the real kernel, run inside the VM by `npm run test:kernel`).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.sim.test.ts', 'test/**/*.kernel.test.ts', '**/node_modules/**'],
        },
      },
      {
        test: {
          name: 'sim',
          include: ['test/**/*.sim.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'kernel',
          include: ['test/**/*.kernel.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
