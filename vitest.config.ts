import { defineConfig } from 'vitest/config';

// Tiers are chosen by file suffix: *.test.ts (unit, pure), *.sim.test.ts (simulated kernel, real files),
// *.kernel.test.ts (the real kernel, run inside the VM by `npm run test:kernel`).
// `quick` (npm run test:quick) is for edit-and-check loops: the unit tier and a few end-to-end
// tests on the simulated kernel, about a minute; `npm test` and CI run everything.

/** The sim-tier files `quick` runs: the CLI's commands end to end, drift repair, the snapshotter's readiness. */
const QUICK_SIM = ['test/e2e/cli.sim.test.ts', 'test/e2e/drift.sim.test.ts', 'test/install/notify.sim.test.ts'];

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
          name: 'quick',
          include: ['test/**/!(*.sim|*.kernel).test.ts', ...QUICK_SIM],
          exclude: ['**/node_modules/**'],
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
