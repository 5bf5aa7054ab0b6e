import { describe, it, expect } from 'vitest';
import { poolHealthFindings, poolHealthOf, SPACE_LEVELS } from '../../src/doctor/pool-health.ts';
import { parsePoolStatus } from '../../src/kernel/thin-pool.ts';
import { poolStatus } from './fixtures.ts';

const input = (line: string | null, over: Partial<Parameters<typeof poolHealthFindings>[0]> = {}) => ({
  status: line === null ? null : parsePoolStatus(line),
  poolDmName: 'thinlayer-demo-pool',
  metadataPath: '/state/metadata.img',
  expectedActive: true,
  ...over,
});
const codes = (line: string | null, over = {}) => poolHealthFindings(input(line, over)).map((f) => `${f.severity}:${f.code}`);

describe('pool health from the status line', () => {
  it.each([
    ['a healthy pool', '0 1650/16384 78/16384 - rw discard_passdown queue_if_no_space - 1024', []],
    ['read-only', '3 1650/16384 78/16384 - ro discard_passdown queue_if_no_space - 1024', ['error:pool.read-only']],
    [
      'out of data space',
      '3 1650/16384 16384/16384 - out_of_data_space discard_passdown queue_if_no_space - 1024',
      ['error:pool.out-of-data-space', 'warning:pool.data-space'],
    ],
    ['needs_check', '3 1650/16384 78/16384 - rw discard_passdown queue_if_no_space needs_check 1024', ['error:pool.needs-check']],
    [
      'read-only and needs_check',
      '3 1650/16384 78/16384 - ro discard_passdown queue_if_no_space needs_check 1024',
      ['error:pool.read-only', 'error:pool.needs-check'],
    ],
    ['failed (nothing else is said of a failed pool)', 'Fail', ['error:pool.failed']],
    ['data 80% used', '0 10/100 80/100 - rw discard_passdown queue_if_no_space - 1024', ['warning:pool.data-space']],
    ['data 79.9% used', '0 10/1000 799/1000 - rw discard_passdown queue_if_no_space - 1024', []],
    ['metadata 95% used', '0 95/100 1/100 - rw discard_passdown queue_if_no_space - 1024', ['warning:pool.metadata-space']],
    ['both over 90%', '0 91/100 92/100 - rw discard_passdown queue_if_no_space - 1024', ['warning:pool.data-space', 'warning:pool.metadata-space']],
  ])('%s', (_name, line, expected) => {
    expect(codes(line)).toEqual(expected);
  });

  it('names the highest level crossed in the message', () => {
    for (const [used, level] of [
      [80, 80],
      [89, 80],
      [90, 90],
      [94, 90],
      [95, 95],
      [100, 95],
    ]) {
      const [f] = poolHealthFindings(input(`0 1/100 ${used}/100 - rw discard_passdown queue_if_no_space - 1024`));
      expect(f.message, `${used}%`).toContain(`over ${level}%`);
    }
    expect(SPACE_LEVELS).toEqual([95, 90, 80]);
  });

  it('spells the metadata path into the repair of a pool that needs checking', () => {
    const [f] = poolHealthFindings(input('3 1/100 1/100 - rw discard_passdown queue_if_no_space needs_check 1024'));
    expect(f.repair).toBe('thinlayer down && thin_check --clear-needs-check-flag /state/metadata.img && thinlayer up');
  });

  it('an inactive pool is a warning when it should be up, a note after thinlayer down, nothing when nothing is recorded', () => {
    expect(codes(null)).toEqual(['warning:pool.inactive']);
    expect(codes(null, { downOnPurpose: true })).toEqual(['info:pool.inactive']);
    expect(codes(null, { expectedActive: false })).toEqual([]);
  });

  it('summarises use in percent and hides the numbers of a failed pool', () => {
    const h = poolHealthOf(poolStatus({ dataUsed: 1, dataTotal: 3, metadataUsed: 0, metadataTotal: 10 }), 'p');
    expect(h).toMatchObject({ active: true, mode: 'rw', transactionId: 5, data: { used: 1, total: 3, percent: 33.3 }, metadata: { percent: 0 } });
    expect(poolHealthOf(parsePoolStatus('Fail'), 'p')).toMatchObject({ active: true, mode: 'fail', transactionId: null, data: null, metadata: null });
    expect(poolHealthOf(null, 'p')).toMatchObject({ active: false, mode: null });
  });
});

describe('the repair of a failed pool', () => {
  it('repairs file metadata beside the file, and device metadata through a file written back', () => {
    const [file] = poolHealthFindings(input('Fail'));
    expect(file.repair).toBe(
      'thinlayer down && truncate -s $(stat -c %s /state/metadata.img) /state/metadata.img.repaired && thin_repair -i /state/metadata.img -o /state/metadata.img.repaired && thin_check /state/metadata.img.repaired && mv /state/metadata.img.repaired /state/metadata.img && thinlayer up',
    );
    const [device] = poolHealthFindings(input('Fail', { metadataPath: '/dev/sdb1' }));
    expect(device.repair).toContain('thin_repair -i /dev/sdb1 -o /var/tmp/thinlayer-metadata.repaired');
    expect(device.repair).toContain('dd if=/var/tmp/thinlayer-metadata.repaired of=/dev/sdb1');
  });
});
