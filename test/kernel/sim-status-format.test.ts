// The simulated kernel's exact texts and parsers (pure): what dm-thin prints and accepts.

import { describe, expect, it } from 'vitest';
import { parseDevice, parseTable } from '../../src/kernel/sim/dm-table.ts';
import { SimErrno } from '../../src/kernel/sim/sim-errno.ts';
import { DEFAULT_POOL_FEATURES, formatPoolFeatures, poolStatusParams, poolTableParams, thinStatusParams } from '../../src/kernel/sim/status-format.ts';
import { parsePoolMessage } from '../../src/kernel/sim/sim-pool-metadata.ts';

function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SimErrno) return e.errnoName;
    throw e;
  }
  return 'no error';
}

describe('status and table texts', () => {
  it('prints a pool status exactly as dm-thin does, trailing space included', () => {
    const text = poolStatusParams({
      transactionId: 0n,
      usedMetadataBlocks: 1650,
      totalMetadataBlocks: 16384,
      usedDataBlocks: 78,
      totalDataBlocks: 16384,
      heldRoot: null,
      mode: 'rw',
      features: DEFAULT_POOL_FEATURES,
      needsCheck: false,
      metadataLowWatermark: 1024,
    });
    expect(text).toBe('0 1650/16384 78/16384 - rw discard_passdown queue_if_no_space - 1024 ');
  });

  it('prints the held root, the mode words and the discard words the kernel chooses', () => {
    const base = {
      transactionId: 18446744073709551615n,
      usedMetadataBlocks: 1,
      totalMetadataBlocks: 2,
      usedDataBlocks: 3,
      totalDataBlocks: 4,
      needsCheck: false,
      metadataLowWatermark: 0,
    };
    expect(
      poolStatusParams({
        ...base,
        heldRoot: 17,
        mode: 'out_of_metadata_space',
        features: { ...DEFAULT_POOL_FEATURES, discardEnabled: false, errorIfNoSpace: true },
      }),
    ).toBe('18446744073709551615 1/2 3/4 17 ro ignore_discard error_if_no_space - 0 ');
    expect(poolStatusParams({ ...base, heldRoot: null, mode: 'out_of_data_space', features: { ...DEFAULT_POOL_FEATURES, discardPassdown: false } })).toContain(
      ' - out_of_data_space no_discard_passdown queue_if_no_space - ',
    );
  });

  it('prints pool features in emit_flags order with their count, whatever order they were given in', () => {
    const features = { zeroNewBlocks: false, discardEnabled: false, discardPassdown: false, readOnly: true, errorIfNoSpace: true };
    expect(formatPoolFeatures(features)).toBe('5 skip_block_zeroing ignore_discard no_discard_passdown read_only error_if_no_space ');
    const [parsed] = parseTable([{ start: 0, length: 1024, type: 'thin-pool', params: '7:1 7:0 128 10 2 error_if_no_space skip_block_zeroing' }]);
    if (parsed.type !== 'thin-pool') throw new Error('not a pool');
    expect(poolTableParams(parsed)).toBe('7:1 7:0 128 10 2 skip_block_zeroing error_if_no_space ');
  });

  it('prints a thin status as mapped sectors and the last sector of the highest mapped block', () => {
    expect(thinStatusParams(78, 1599, 128)).toBe('9984 204799');
    expect(thinStatusParams(0, null, 128)).toBe('0 -');
  });
});

describe('table parsing', () => {
  const pool = (params: string) => [{ start: 0, length: 131072, type: 'thin-pool', params }];

  it('takes devices as major:minor, /dev/loopN or /dev/dm-N; other paths are ENODEV as in a VM without udev', () => {
    expect(parseDevice('253:4')).toEqual({ major: 253, minor: 4 });
    expect(parseDevice('/dev/loop3')).toEqual({ major: 7, minor: 3 });
    expect(parseDevice('/dev/dm-2')).toEqual({ major: 253, minor: 2 });
    expect(errnoOf(() => parseDevice('/dev/mapper/pool'))).toBe('ENODEV');
  });

  it('rejects block sizes that are not multiples of 128 sectors in 128..2097152 with EINVAL', () => {
    for (const size of ['64', '100', '129', '2097280', 'x']) expect(errnoOf(() => parseTable(pool(`7:1 7:0 ${size} 0`)))).toBe('EINVAL');
    for (const size of ['128', '256', '2097152']) expect(errnoOf(() => parseTable(pool(`7:1 7:0 ${size} 0`)))).toBe('no error');
  });

  it('rejects bad pool arguments with EINVAL: same device twice, unknown feature, too many or too few feature args', () => {
    for (const params of ['7:1 7:1 128 0', '7:1 7:0 128 0 1 turbo', '7:1 7:0 128 0 5 a b c d e', '7:1 7:0 128 0 2 read_only', '7:1 7:0 128']) {
      expect(
        errnoOf(() => parseTable(pool(params))),
        params,
      ).toBe('EINVAL');
    }
  });

  it('rejects tables with gaps, zero lengths, unknown targets or a thin-pool beside other targets', () => {
    expect(errnoOf(() => parseTable([{ start: 8, length: 8, type: 'zero', params: '' }]))).toBe('EINVAL');
    expect(errnoOf(() => parseTable([{ start: 0, length: 0, type: 'zero', params: '' }]))).toBe('EINVAL');
    expect(errnoOf(() => parseTable([{ start: 0, length: 8, type: 'frob', params: '' }]))).toBe('EINVAL');
    expect(errnoOf(() => parseTable([...pool('7:1 7:0 128 0'), { start: 131072, length: 8, type: 'zero', params: '' }]))).toBe('EINVAL');
    expect(errnoOf(() => parseTable([]))).toBe('EINVAL');
  });

  it('rejects thin ids over 24 bits', () => {
    expect(errnoOf(() => parseTable([{ start: 0, length: 8, type: 'thin', params: '253:0 16777216' }]))).toBe('EINVAL');
    expect(errnoOf(() => parseTable([{ start: 0, length: 8, type: 'thin', params: '253:0 16777215' }]))).toBe('no error');
  });
});

describe('pool messages', () => {
  it('parses the six messages, matching the command without regard to case', () => {
    expect(parsePoolMessage('CREATE_THIN 5')).toEqual({ kind: 'create_thin', id: 5 });
    expect(parsePoolMessage('create_snap 6 5')).toEqual({ kind: 'create_snap', id: 6, origin: 5 });
    expect(parsePoolMessage('delete 6')).toEqual({ kind: 'delete', id: 6 });
    expect(parsePoolMessage('set_transaction_id 18446744073709551614 18446744073709551615')).toEqual({
      kind: 'set_transaction_id',
      current: 18446744073709551614n,
      next: 18446744073709551615n,
    });
    expect(parsePoolMessage('reserve_metadata_snap')).toEqual({ kind: 'reserve_metadata_snap' });
    expect(parsePoolMessage('  release_metadata_snap ')).toEqual({ kind: 'release_metadata_snap' });
  });

  it('fails with EINVAL on wrong argument counts, bad numbers, ids over 24 bits and unknown commands', () => {
    for (const text of [
      '',
      'create_thin',
      'create_thin 1 2',
      'create_thin -1',
      'create_thin 16777216',
      'create_snap 1',
      'set_transaction_id 0 18446744073709551616',
      'set_transaction_id a 1',
      'reserve_metadata_snap now',
      'grow 1',
    ]) {
      expect(
        errnoOf(() => parsePoolMessage(text)),
        text,
      ).toBe('EINVAL');
    }
  });
});
