import { defineConfig } from 'vitest/config';

// `npm run test:quick`, for edit-and-check loops: the unit tier (*.test.ts) and a few end-to-end
// files on the simulated kernel, about a minute. `npm test` (and CI) runs every unit and sim test;
// vitest.config.ts defines the tiers. A file of its own, so that `vitest run FILE` with the main
// config runs a test once, not once more for this selection.

/** The sim-tier files it runs: the CLI's commands end to end, drift repair, the snapshotter's readiness. */
const QUICK_SIM = ['test/e2e/cli.sim.test.ts', 'test/e2e/drift.sim.test.ts', 'test/install/notify.sim.test.ts'];

export default defineConfig({
  test: {
    name: 'quick',
    include: ['test/**/!(*.sim|*.kernel).test.ts', ...QUICK_SIM],
    exclude: ['**/node_modules/**'],
    // The sim files run the CLI as a child process: the bundle is brought up to date first.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
