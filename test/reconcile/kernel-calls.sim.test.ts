// How many kernel calls a converge and a destroy make: the steps' own calls, not a look before
// each (a run remembers what it observed and what its steps did), and no per-device discard or
// delete when a destroy deletes the pool's files whole.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { apply, destroy } from '../../src/api/index.ts';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { KernelCallCounter } from '../../src/kernel/counting.ts';
import { simMounted } from '../sim-mounts.ts';
import { simPool, writeManifest, type DeviceDraft, type ManifestDraft } from '../builders/manifest.ts';

const DEVICES = 12;

function manifest(mnt: string, devices: number): ManifestDraft {
  const mounted = Array.from({ length: devices }, (_, i): [string, DeviceDraft] => [`d${i}`, { layer: 'app', state: 'mounted', mountpoint: `${mnt}/d${i}` }]);
  return {
    pool: simPool('calls', { data: { file: 'data.img', size: '4G' }, metadata: { file: 'meta.img', size: '64M' }, baseSize: '64M' }),
    layers: { os: {}, app: { parent: 'os' } },
    devices: Object.fromEntries(mounted),
  };
}

describe('kernel calls per step', () => {
  it('a converge makes no look-ups per device, and a destroy of a file-backed pool deletes no thin id one by one', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-calls-'));
    onTestFinished(() => fs.rmSync(root, { recursive: true, force: true }));
    const stateDir = path.join(root, 'state');
    const mnt = path.join(root, 'mnt');
    const file = path.join(root, 'm.yaml');
    writeManifest(file, manifest(mnt, DEVICES));
    const counter = new KernelCallCounter();
    const kernel = () => counter.wrap(new SimKernel({ dir: path.join(stateDir, 'sim') }));

    const up = await apply(file, { stateDir, kernel: kernel(), yes: true });
    expect(up.outcome).toBe('converged');
    const converge = counter.tally().calls;
    if (process.env.SHOW_CALLS) console.log(counter.tally());
    // Per device: create_snap, set_transaction_id, create (with its table), mount.
    expect(converge.create).toBe(DEVICES + 2); // and the pool, and the base for mkfs
    expect(converge.mount).toBe(DEVICES);
    expect(converge['message create_snap']).toBe(DEVICES + 2);
    // Looks before steps: none per device (what remains is the pool's and the observations').
    expect(converge.info ?? 0).toBeLessThan(DEVICES / 2);
    expect(converge.status ?? 0).toBeLessThan(DEVICES / 2);

    counter.reset();
    const down = await destroy({ stateDir, kernel: kernel(), yes: true });
    expect(down?.outcome).toBe('converged');
    const teardown = counter.tally().calls;
    if (process.env.SHOW_CALLS) console.log(counter.tally());
    expect(teardown.unmount).toBe(DEVICES);
    expect(teardown.remove).toBe(DEVICES + 1); // and the pool
    expect(teardown['message delete'] ?? 0).toBe(0);
    expect(teardown.discard ?? 0).toBe(0);
    expect(teardown.create ?? 0).toBe(0);
    expect(fs.existsSync(path.join(stateDir, 'data.img'))).toBe(false);
    const seen = simMounted(stateDir, mnt);
    expect(fs.readdirSync(seen).every((d) => fs.readdirSync(path.join(seen, d)).length === 0)).toBe(true);
  });
});
