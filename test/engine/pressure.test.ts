import { describe, it, expect } from 'vitest';
import { pressureBlocker, poolModeBlocker, DEFAULT_MIN_FREE_FRACTION } from '../../src/plan/pressure.ts';
import { poolStatus } from '../doctor/fixtures.ts';

describe('pool pressure', () => {
  it.each([
    // dataUsed/dataTotal, metadataUsed/metadataTotal, minFree, creates, blocked?
    [[100, 1000], [100, 1000], 0.1, 3, false],
    [[900, 1000], [100, 1000], 0.1, 3, false], // exactly 10% free is enough
    [[901, 1000], [100, 1000], 0.1, 3, true],
    [[100, 1000], [950, 1000], 0.1, 1, true],
    [[990, 1000], [990, 1000], 0.1, 0, false], // nothing new is created: deletes and mounts may go on
    [[500, 1000], [100, 1000], 0.6, 1, true],
    [[500, 1000], [100, 1000], 0, 1, false],
    [[0, 0], [0, 0], 0.1, 1, false], // no totals to judge by
  ] as const)('data %j, metadata %j, minFree %d, %d creates: blocked %s', ([du, dt], [mu, mt], minFree, creates, blocked) => {
    const message = pressureBlocker(poolStatus({ dataUsed: du, dataTotal: dt, metadataUsed: mu, metadataTotal: mt }), minFree, creates);
    expect(message !== null).toBe(blocked);
  });

  it('says which space is short, how much is free, the minimum and how to get room', () => {
    const message = pressureBlocker(poolStatus({ dataUsed: 950, dataTotal: 1000, metadataUsed: 990, metadataTotal: 1000 }), DEFAULT_MIN_FREE_FRACTION, 2)!;
    expect(message).toContain('data 5% free (50 of 1000 blocks)');
    expect(message).toContain('metadata 1% free (10 of 1000 blocks)');
    expect(message).toContain('pool.minFree 10%');
    expect(message).toContain('2 new snapshots');
    expect(message).toContain('thinlayer gc --yes');
  });

  it.each([
    [{ mode: 'fail' as const }, 'has failed'],
    [{ needsCheck: true }, 'needs_check'],
    [{ mode: 'ro' as const }, 'read-only'],
    [{ mode: 'rw' as const }, null],
    [{ mode: 'out_of_data_space' as const }, null],
  ])('pool mode %j blocks: %s', (over, text) => {
    const message = poolModeBlocker(poolStatus(over), 'thinlayer-demo-pool');
    if (text === null) expect(message).toBeNull();
    else expect(message).toMatch(new RegExp(`^pool thinlayer-demo-pool .*${text}.*thinlayer doctor`));
  });
});
