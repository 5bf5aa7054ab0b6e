// The snapshotter's floor (src/snapshotter/pool-floor.ts) on pool status lines as the kernel prints
// them: what is short is named with its percentages (ResourceExhausted), a pool that forbids
// changes is Unavailable, and a pool with room lets the call through.

import { describe, it, expect } from 'vitest';
import type { KernelPort } from '../../src/kernel/kernel-port.ts';
import { refuseBelowFloor } from '../../src/snapshotter/pool-floor.ts';
import { SnapshotError } from '../../src/snapshotter/errors.ts';

/** A kernel whose only answer is the pool's status line `params`. */
function poolAt(params: string): KernelPort {
  return { status: async () => [{ start: 0, length: 1, type: 'thin-pool', params }] } as unknown as KernelPort;
}

const floor = { poolDmName: 'thinlayer-p-pool', minFreeFraction: 0.1 };

async function refusal(params: string): Promise<SnapshotError | null> {
  return refuseBelowFloor(poolAt(params), floor).then(
    () => null,
    (e) => e,
  );
}

describe('the snapshotter pool floor', () => {
  it('lets a call through with room above minFree', async () => {
    expect(await refusal('1 100/1000 800/1000 - rw discard_passdown queue_if_no_space - 1024')).toBeNull();
  });

  it('names data short of the floor, with the percentages, as ResourceExhausted', async () => {
    const e = await refusal('1 100/1000 950/1000 - rw discard_passdown queue_if_no_space - 1024');
    expect(e).toBeInstanceOf(SnapshotError);
    expect(e!.kind).toBe('resource-exhausted');
    expect(e!.message).toMatch(/^the pool has data 5% free \(50 of 1000 blocks\), below pool\.minFree 10%/);
  });

  it('names metadata short of the floor, and both when both are', async () => {
    expect((await refusal('1 960/1000 100/1000 - rw discard_passdown queue_if_no_space - 1024'))!.message).toMatch(
      /^the pool has metadata 4% free \(40 of 1000 blocks\), below/,
    );
    expect((await refusal('1 960/1000 1000/1000 - out_of_data_space discard_passdown queue_if_no_space - 1024'))!.message).toMatch(
      /^the pool has data 0% free \(0 of 1000 blocks\) and metadata 4% free/,
    );
  });

  it('answers Unavailable for a pool that forbids changes', async () => {
    for (const params of [
      'Fail',
      '1 100/1000 100/1000 - ro discard_passdown queue_if_no_space -',
      '1 100/1000 100/1000 - rw discard_passdown queue_if_no_space needs_check',
    ]) {
      const e = await refusal(params);
      expect(e?.kind, params).toBe('unavailable');
      expect(e!.message).toMatch(/thinlayer-p-pool .*`thinlayer doctor`/);
    }
  });
});
