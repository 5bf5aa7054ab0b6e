// watch converges to an edit by apply's own road (src/app/converge.ts): the same refusals and the
// same growth of the pool. Mirrors apply's test of the base size (test/e2e/cli.sim.test.ts: "refuses
// to lower pool.baseSize") and of a raised data size (`pool grow`'s path, run first).

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { atomicSave, box, deviceStates, startWatch, watchManifest, SMALL_POOL } from './sim-harness.ts';
import { manifestYaml, withPool } from '../builders/manifest.ts';
import { waitFor } from './helpers.ts';

describe('watch converges to an edit as apply does', () => {
  it('takes a raised pool.baseSize for new devices, and refuses to lower it, keeping the recorded desired state', async () => {
    const b = box(() => ({ d1: { layer: 'l1', state: 'activated' } }));
    const w = startWatch(b);
    await waitFor('d1 activated', async () => (await deviceStates(b)).some(([n, s]) => n === 'd1' && s === 'activated'));

    // Raised: accepted, and the new device gets the larger size.
    const both = watchManifest({ d1: { layer: 'l1', state: 'activated' }, d2: { layer: 'l1', state: 'activated' } });
    atomicSave(b.file, manifestYaml(withPool(both, { baseSize: '32M' })));
    await waitFor('d2 activated', async () => (await deviceStates(b)).some(([n, s]) => n === 'd2' && s === 'activated'));
    const desiredSets = async () => (await b.events()).filter((e) => e.type === 'desired.set');
    expect(((await desiredSets()).at(-1) as any).manifest.pool.baseSizeBytes).toBe(32 * 2 ** 20);
    expect((await b.status()).devices.find((d) => d.name === 'd2')?.sizeBytes).toBe(32 * 2 ** 20);
    const recorded = (await desiredSets()).length;

    // Lowered: the run fails with apply's refusal, and nothing is recorded.
    const failedBefore = w.messages.filter((m) => m.code === 'watch.run-failed').length;
    atomicSave(b.file, manifestYaml(both));
    const failed = await waitFor('the lowered base size refused', () => w.messages.filter((m) => m.code === 'watch.run-failed')[failedBefore]);
    expect(failed.error).toMatch(/pool\.baseSize: cannot be lowered from 32 MiB to 16 MiB/);
    expect(await desiredSets()).toHaveLength(recorded);
    expect(await deviceStates(b)).toEqual([
      ['d1', 'activated'],
      ['d2', 'activated'],
    ]);
    expect(await w.stop()).toBe(0);
  });

  it('grows a file-backed pool whose data.size was raised, through the pool.grow step apply runs first', async () => {
    const b = box(() => ({ d1: { layer: 'l1', state: 'activated' } }));
    const w = startWatch(b);
    await waitFor('d1 activated', async () => (await deviceStates(b)).some(([n, s]) => n === 'd1' && s === 'activated'));
    expect(fs.statSync(path.join(b.stateDir, 'data.img')).size).toBe(64 * 2 ** 20);

    b.write({ d1: { layer: 'l1', state: 'activated' } }, { ...SMALL_POOL, data: { file: 'data.img', size: '96M' } });
    await waitFor('the data file grown', () => fs.statSync(path.join(b.stateDir, 'data.img')).size === 96 * 2 ** 20);
    const grows = (await b.events()).filter((e) => e.type === 'step.done' && (e as any).op === 'pool.grow');
    expect(grows).toHaveLength(1);
    await waitFor('the pool reloaded at the new size', async () => (await b.status()).pool?.data?.totalBytes === 96 * 2 ** 20);
    expect(w.messages.some((m) => m.code === 'pool.grown')).toBe(true);
    expect(await w.stop()).toBe(0);
  });
});
