// The simulated kernel's stores stay O(1) per mutation as devices pile up: each mutation appends
// one bounded line, and the journals fold into snapshots instead of growing without end.
// (Structure, not timing: docs/simulated-kernel.md records measured times.)

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SimRig } from './sim-rig.ts';

function journalOf(dir: string): { file: string; bytes: number } {
  const name = fs.readdirSync(dir).find((n) => n.endsWith('.journal'));
  if (!name) return { file: '', bytes: 0 };
  return { file: name, bytes: fs.statSync(path.join(dir, name)).size };
}

describe('simulated kernel: scale', () => {
  it('1,200 thin ids and devices: bounded bytes per mutation, compacted journals, a fresh instance sees them all', async () => {
    const rig = new SimRig();
    const k = rig.kernel;
    const pool = await rig.pool({ dataMiB: 1024 });
    const volatileDir = path.join(rig.simDir, 'volatile');
    const persistentDir = path.join(rig.simDir, 'persistent');
    const N = 1200;
    let largestStep = 0;
    for (let i = 1; i <= N; i++) {
      const before = journalOf(volatileDir);
      await k.message(pool.name, `create_thin ${i}`);
      await k.create(`dev${i}`, `uuid-${i}`, [{ start: 0, length: 204800, type: 'thin', params: `253:${pool.info.minor} ${i}` }]);
      const after = journalOf(volatileDir);
      if (after.file === before.file) largestStep = Math.max(largestStep, after.bytes - before.bytes);
    }
    expect(largestStep).toBeGreaterThan(0);
    expect(largestStep).toBeLessThan(1024); // one device record a line, however many devices exist
    const snapshot = fs.statSync(path.join(volatileDir, 'devices.snapshot.json')).size;
    expect(journalOf(volatileDir).file).not.toBe('devices.0.journal'); // compacted at least once
    expect(journalOf(volatileDir).bytes).toBeLessThanOrEqual(Math.max(256 * 1024, snapshot) + largestStep);
    expect(journalOf(persistentDir).bytes).toBeLessThanOrEqual(256 * 1024 + 1024);
    const fresh = rig.instance();
    expect((await fresh.listDevices()).length).toBe(N + 1);
    expect((await fresh.info(`dev${N}`))?.minor).toBe(N);
    expect((await fresh.info(pool.name))?.openCount).toBe(N);
  });
});
