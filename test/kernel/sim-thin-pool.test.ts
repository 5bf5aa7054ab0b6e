// The pool metadata model (pure): mappings, sharing between snapshots, reference counts and
// what the status reports.

import { describe, expect, it } from 'vitest';
import type { SimErrno } from '../../src/kernel/sim/sim-errno.ts';
import { PoolMetadata, type PoolOp } from '../../src/kernel/sim/sim-pool-metadata.ts';

function write(pool: PoolMetadata, id: number, vblocks: number[]): number {
  const plan = pool.planWrite(id, vblocks);
  if (plan.pairs.length > 0) pool.apply({ t: 'map', pool: pool.poolId, id, pairs: plan.pairs });
  return plan.newBlocks;
}
function message(pool: PoolMetadata, op: PoolOp): void {
  pool.apply(op);
}
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe('pool metadata model', () => {
  it('a snapshot shares every block of its origin until either side writes', () => {
    const pool = new PoolMetadata('p', 128, 1000, 4096);
    message(pool, { t: 'create_thin', pool: 'p', id: 1 });
    expect(write(pool, 1, range(0, 10))).toBe(10);
    expect(write(pool, 1, range(0, 10))).toBe(0); // exclusive blocks are written in place
    message(pool, { t: 'create_snap', pool: 'p', id: 2, origin: 1 });
    expect(pool.usedDataBlocks).toBe(10);
    expect(pool.mappedBlocks(2)).toBe(10);
    expect(write(pool, 2, [0, 1, 2])).toBe(3); // copy-on-write breaks sharing
    expect(pool.usedDataBlocks).toBe(13);
    expect(pool.mappingOf(1, 0)).not.toBe(pool.mappingOf(2, 0));
    expect(pool.mappingOf(1, 5)).toBe(pool.mappingOf(2, 5));
    expect(write(pool, 1, [5])).toBe(1); // the origin's shared blocks are copied too
    expect(write(pool, 2, [5])).toBe(0); // after which the snapshot owns its block alone
  });

  it('deleting a device frees only the blocks no other device maps', () => {
    const pool = new PoolMetadata('p', 128, 1000, 4096);
    message(pool, { t: 'create_thin', pool: 'p', id: 1 });
    write(pool, 1, range(0, 20));
    message(pool, { t: 'create_snap', pool: 'p', id: 2, origin: 1 });
    write(pool, 2, range(0, 5));
    expect(pool.usedDataBlocks).toBe(25);
    message(pool, { t: 'delete', pool: 'p', id: 1 });
    expect(pool.usedDataBlocks).toBe(20);
    message(pool, { t: 'delete', pool: 'p', id: 2 });
    expect(pool.usedDataBlocks).toBe(0);
  });

  it('unmapping frees a block when its last mapping goes', () => {
    const pool = new PoolMetadata('p', 128, 1000, 4096);
    message(pool, { t: 'create_thin', pool: 'p', id: 1 });
    write(pool, 1, range(0, 4));
    message(pool, { t: 'create_snap', pool: 'p', id: 2, origin: 1 });
    pool.apply({ t: 'unmap', pool: 'p', id: 1, vblocks: [0, 1, 9] });
    expect(pool.usedDataBlocks).toBe(4); // still mapped by the snapshot
    pool.apply({ t: 'unmap', pool: 'p', id: 2, vblocks: [0] });
    expect(pool.usedDataBlocks).toBe(3);
    expect(pool.highestMappedBlock(1)).toBe(3);
    pool.apply({ t: 'unmap', pool: 'p', id: 1, vblocks: [2, 3] });
    expect(pool.highestMappedBlock(1)).toBeNull();
  });

  it('a write needing more blocks than are free fails with ENOSPC and changes nothing', () => {
    const pool = new PoolMetadata('p', 128, 8, 4096);
    message(pool, { t: 'create_thin', pool: 'p', id: 1 });
    write(pool, 1, range(0, 6));
    let errno = '';
    try {
      pool.planWrite(1, range(6, 3));
    } catch (e) {
      errno = (e as SimErrno).errnoName;
    }
    expect(errno).toBe('ENOSPC');
    expect(pool.usedDataBlocks).toBe(6);
    expect(write(pool, 1, range(6, 2))).toBe(2);
    expect(pool.freeDataBlocks).toBe(0);
  });

  it('decides messages with the kernel errnos', () => {
    const pool = new PoolMetadata('p', 128, 8, 4096);
    const errnoOf = (fn: () => unknown) => {
      try {
        fn();
        return 'ok';
      } catch (e) {
        return (e as SimErrno).errnoName;
      }
    };
    const notOpen = () => false;
    message(pool, { t: 'create_thin', pool: 'p', id: 1 });
    expect(errnoOf(() => pool.decideMessage({ kind: 'create_thin', id: 1 }, notOpen))).toBe('EEXIST');
    expect(errnoOf(() => pool.decideMessage({ kind: 'create_snap', id: 1, origin: 9 }, notOpen))).toBe('EEXIST');
    expect(errnoOf(() => pool.decideMessage({ kind: 'create_snap', id: 2, origin: 9 }, notOpen))).toBe('ENODATA');
    expect(errnoOf(() => pool.decideMessage({ kind: 'delete', id: 9 }, notOpen))).toBe('ENODATA');
    expect(errnoOf(() => pool.decideMessage({ kind: 'delete', id: 1 }, () => true))).toBe('EBUSY');
    expect(errnoOf(() => pool.decideMessage({ kind: 'set_transaction_id', current: 1n, next: 2n }, notOpen))).toBe('EINVAL');
    expect(errnoOf(() => pool.decideMessage({ kind: 'release_metadata_snap' }, notOpen))).toBe('EINVAL');
    pool.apply(pool.decideMessage({ kind: 'reserve_metadata_snap' }, notOpen)!);
    expect(pool.heldRoot).toBeGreaterThan(0);
    expect(errnoOf(() => pool.decideMessage({ kind: 'reserve_metadata_snap' }, notOpen))).toBe('EBUSY');
  });

  it('reports used metadata as the reserve plus a base, one block per device and one per 126 mappings', () => {
    const pool = new PoolMetadata('p', 128, 16384, 16384);
    // reserve 1638 (10%) + base 8 + two bitmap blocks each for data and metadata (16320 entries a block)
    expect(pool.usedMetadataBlocks()).toBe(1638 + 8 + 2 + 2);
    message(pool, { t: 'create_thin', pool: 'p', id: 1 });
    write(pool, 1, range(0, 127));
    expect(pool.usedMetadataBlocks()).toBe(1650 + 1 + 2);
    message(pool, { t: 'create_snap', pool: 'p', id: 2, origin: 1 });
    expect(pool.usedMetadataBlocks()).toBe(1650 + 2 + 2); // a snapshot shares its origin's tree
  });

  it('survives a round trip through JSON with sharing intact', () => {
    const pool = new PoolMetadata('p', 128, 100, 4096);
    message(pool, { t: 'create_thin', pool: 'p', id: 1 });
    write(pool, 1, range(0, 10));
    message(pool, { t: 'create_snap', pool: 'p', id: 2, origin: 1 });
    message(pool, { t: 'create_snap', pool: 'p', id: 3, origin: 1 });
    write(pool, 3, [0]);
    message(pool, { t: 'set_txid', pool: 'p', txid: '42' });
    const copy = PoolMetadata.fromJSON(JSON.parse(JSON.stringify(pool.toJSON())));
    expect(copy.toJSON()).toEqual(pool.toJSON());
    expect(copy.transactionId).toBe(42n);
    expect(copy.usedDataBlocks).toBe(11);
    expect(copy.usedMetadataBlocks()).toBe(pool.usedMetadataBlocks());
    expect(write(copy, 2, [1])).toBe(1); // still shared with 1 after the reload
    expect(copy.toJSON().tables.length).toBe(3);
  });
});
