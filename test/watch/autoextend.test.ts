import { describe, expect, it } from 'vitest';
import { decideGrowth, useWarnings, warningLevel, DEFAULT_AUTOEXTEND, METADATA_MAX_BYTES } from '../../src/watch/autoextend.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const base = { sizeBytes: 10 * GiB, allocatedBytes: 8 * GiB, hostAvailableBytes: 100 * GiB, unitBytes: 64 * 1024, policy: DEFAULT_AUTOEXTEND };

describe('autoextend decisions', () => {
  it('does nothing below the threshold', () => {
    expect(decideGrowth({ ...base, usePercent: 79.9 })).toEqual({ kind: 'none' });
  });

  it('grows by the percentage at the threshold, in whole pool blocks', () => {
    expect(decideGrowth({ ...base, usePercent: 80 })).toEqual({ kind: 'grow', toBytes: 12 * GiB, byBytes: 2 * GiB, limitedByHost: false });
    const odd = decideGrowth({ ...base, sizeBytes: 1000 * 64 * 1024, usePercent: 85 });
    expect(odd.kind === 'grow' && odd.byBytes % (64 * 1024)).toBe(0);
    expect(odd.kind === 'grow' && odd.byBytes).toBe(200 * 64 * 1024);
  });

  it('is bounded by the host free space, counting what the sparse file may still claim', () => {
    // 3 GiB free, but 2 GiB of the file is not yet allocated: only 1 GiB can be added.
    const d = decideGrowth({ ...base, usePercent: 90, hostAvailableBytes: 3 * GiB });
    expect(d).toEqual({ kind: 'grow', toBytes: 11 * GiB, byBytes: 1 * GiB, limitedByHost: true });
  });

  it('is blocked when the host has no room at all', () => {
    const d = decideGrowth({ ...base, usePercent: 95, hostAvailableBytes: 2 * GiB });
    expect(d.kind).toBe('blocked');
    expect(d.kind === 'blocked' && d.reason).toMatch(/host file system/);
  });

  it('never takes metadata past the kernel limit', () => {
    const d = decideGrowth({
      ...base,
      sizeBytes: METADATA_MAX_BYTES - 4096,
      allocatedBytes: METADATA_MAX_BYTES,
      unitBytes: 4096,
      maxBytes: METADATA_MAX_BYTES,
      usePercent: 99,
    });
    expect(d).toEqual({ kind: 'grow', toBytes: METADATA_MAX_BYTES, byBytes: 4096, limitedByHost: false });
    const at = decideGrowth({
      ...base,
      sizeBytes: METADATA_MAX_BYTES,
      allocatedBytes: METADATA_MAX_BYTES,
      unitBytes: 4096,
      maxBytes: METADATA_MAX_BYTES,
      usePercent: 99,
    });
    expect(at.kind === 'blocked' && at.reason).toMatch(/limit/);
  });

  it('is off at a threshold of 100, as in lvm', () => {
    expect(decideGrowth({ ...base, usePercent: 100, policy: { thresholdPercent: 100, growPercent: 20 } })).toEqual({ kind: 'none' });
  });
});

describe('use warnings', () => {
  it('names the highest level crossed', () => {
    expect([0, 79.9, 80, 89, 90, 94.9, 95, 100].map(warningLevel)).toEqual([0, 0, 80, 80, 90, 90, 95, 95]);
  });

  it('warns once per level crossed upwards, and again after falling back', () => {
    let warned = { data: 0, metadata: 0 };
    const look = (data: number, metadata: number) => {
      const r = useWarnings(warned, { data, metadata });
      warned = r.warned;
      return r.warnings.map((w) => `${w.role}@${w.level}`);
    };
    expect(look(50, 10)).toEqual([]);
    expect(look(82, 10)).toEqual(['data@80']);
    expect(look(85, 10)).toEqual([]);
    expect(look(96, 91)).toEqual(['data@95', 'metadata@90']);
    expect(look(60, 91)).toEqual([]); // grown: data fell back
    expect(look(81, 91)).toEqual(['data@80']);
  });
});
