import { describe, it, expect } from 'vitest';
import {
  parsePoolStatus,
  parseThinStatus,
  transactionIdOf,
  readTransactionId,
  sendFenced,
  poolTarget,
  parsePoolTable,
  newPoolTable,
  grownPoolTable,
  lowWaterMark,
} from '../../src/kernel/thin-pool.ts';
import type { DmTarget, KernelPort } from '../../src/kernel/kernel-port.ts';
import { KernelError, StateError, InternalError } from '../../src/errors/index.ts';

const line = (params: string, type = 'thin-pool'): DmTarget => ({ start: 0, length: 2048, type, params });

/** A kernel that answers status from a list and records messages, failing the ones named. */
function messenger(status: DmTarget[], failing: Record<string, string> = {}) {
  const sent: string[] = [];
  const kernel = {
    status: async () => status,
    message: async (_name: string, message: string) => {
      sent.push(message);
      const errno = failing[message.split(' ')[0]];
      if (errno) throw new KernelError('dm.message', 'pool', errno === 'EEXIST' ? 17 : 61, errno);
      return '';
    },
  } as unknown as KernelPort;
  return { kernel, sent };
}

describe('the dm-thin pool protocol', () => {
  it('reads a status line, and a Fail or Error line as a failed pool without NaN', () => {
    expect(parsePoolStatus('7 100/16384 10/327680 - rw discard_passdown queue_if_no_space - 1024')).toMatchObject({
      transactionId: 7,
      metadataUsed: 100,
      dataTotal: 327680,
      mode: 'rw',
      needsCheck: false,
    });
    for (const text of ['Fail', 'Error', '']) {
      const s = parsePoolStatus(text);
      expect(s.mode).toBe('fail');
      expect(Object.values(s).some((v) => typeof v === 'number' && Number.isNaN(v))).toBe(false);
    }
    expect(parseThinStatus('Fail')).toEqual({ mappedSectors: 0, highestMappedSector: null, failed: true });
    expect(parseThinStatus('2048 4095')).toEqual({ mappedSectors: 2048, highestMappedSector: 4095, failed: false });
    expect(parseThinStatus('0 -')).toEqual({ mappedSectors: 0, highestMappedSector: null, failed: false });
  });

  it('finds the transaction id in status lines: none without a pool line or from a failed pool', async () => {
    expect(transactionIdOf([line('5 1/2 3/4 - rw discard_passdown queue_if_no_space - 1024')])).toBe(5);
    expect(transactionIdOf([line('Fail')])).toBeNull();
    expect(transactionIdOf([line('Error')])).toBeNull();
    expect(transactionIdOf([line('0 -', 'thin')])).toBeNull();
    await expect(readTransactionId(messenger([line('Fail')]).kernel, 'pool')).rejects.toThrow(StateError);
    expect(await readTransactionId(messenger([line('9 1/2 3/4 - rw')]).kernel, 'pool')).toBe(9);
  });

  it('sends a metadata message under the fence, tolerating only the answers it is told to', async () => {
    const ok = messenger([]);
    expect(await sendFenced(ok.kernel, 'pool', 4, 'create_thin 1', 'EEXIST')).toBe(5);
    expect(ok.sent).toEqual(['create_thin 1', 'set_transaction_id 4 5']);
    const again = messenger([], { create_thin: 'EEXIST' });
    expect(await sendFenced(again.kernel, 'pool', 4, 'create_thin 1', 'EEXIST')).toBe(5);
    const gone = messenger([], { delete: 'ENODATA' });
    await expect(sendFenced(gone.kernel, 'pool', 4, 'delete 1', 'EEXIST')).rejects.toThrow(KernelError);
    expect(gone.sent).toEqual(['delete 1']); // the fence does not move past a failed change
    await expect(sendFenced(ok.kernel, 'pool', undefined, 'delete 1')).rejects.toThrow(InternalError);
  });

  it("builds a pool table and reads it back, the kernel's trailing space included", () => {
    const t = newPoolTable('7:1', '7:0', 65536, 20 * 65536 + 100);
    expect(t).toMatchObject({ dataBlocks: 20, length: 20 * 128, lowWater: 1 });
    const target = poolTarget(t);
    expect(target.params).toBe('7:1 7:0 128 1 1 skip_block_zeroing');
    expect(parsePoolTable(target)).toEqual({
      length: 2560,
      metadataDev: '7:1',
      dataDev: '7:0',
      blockSectors: 128,
      lowWater: 1,
      features: ['skip_block_zeroing'],
    });
    expect(parsePoolTable({ ...target, params: '7:1 7:0 128 0 0 ' }).features).toEqual([]);
    expect(() => parsePoolTable({ ...target, type: 'thin' })).toThrow(StateError);
    expect(lowWaterMark(1000)).toBe(50);
    expect(lowWaterMark(10)).toBe(1);
  });

  it("grows a pool table without shrinking it, keeping the low-water mark's share", () => {
    const live = parsePoolTable({ start: 0, length: 1000 * 128, type: 'thin-pool', params: '7:1 7:0 128 50 1 skip_block_zeroing' });
    const grown = grownPoolTable(live, 2000 * 65536);
    expect(grown).toMatchObject({ length: 2000 * 128, lowWater: 100, features: ['skip_block_zeroing'] });
    expect(grownPoolTable(live, 500 * 65536)).toEqual(live);
  });
});
