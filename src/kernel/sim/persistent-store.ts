// What survives a reboot: every pool's metadata (thin ids, mappings, transaction id, held root)
// and every thin device's contents. In the kernel these live on the metadata and data devices;
// here they live under <sim dir>/persistent, keyed by the pool id written into the metadata
// file's header (see metadata-header.ts), so zeroing that header makes a blank pool.
//
// Layout:
//   persistent/pools.snapshot.json, persistent/pools.<g>.journal   the PoolOps (journal.ts)
//   persistent/pools/<pool id>/thins/<thin id>/root/              the device's files
//   persistent/pools/<pool id>/thins/<thin id>/fs.json            its filesystem (sim-fs.ts)

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Journal, type JournalCodec } from './journal.ts';
import { copyTreeExact } from './copy-tree.ts';
import { PoolMetadata, type PoolMetadataJSON, type PoolOp } from './sim-pool-metadata.ts';

export type PoolsState = Map<string, PoolMetadata>;

const codec: JournalCodec<PoolsState, PoolOp> = {
  empty: () => new Map(),
  apply(state, op) {
    if (op.t === 'format') {
      state.set(op.pool, new PoolMetadata(op.pool, op.blockSectors, op.dataBlocks, op.metadataBlocks));
      return;
    }
    const pool = state.get(op.pool);
    if (pool) pool.apply(op);
  },
  toJSON: (state) => [...state.values()].map((p) => p.toJSON()),
  fromJSON: (json) => new Map((json as PoolMetadataJSON[]).map((j) => [j.poolId, PoolMetadata.fromJSON(j)])),
};

export class PersistentStore {
  readonly journal: Journal<PoolsState, PoolOp>;

  constructor(
    private readonly root: string,
    fsync: boolean,
  ) {
    this.journal = new Journal(root, 'pools', codec, { fsync });
  }

  pool(poolId: string): PoolMetadata | undefined {
    return this.journal.state.get(poolId);
  }

  thinDir(poolId: string, thinId: number): string {
    return path.join(this.root, 'pools', poolId, 'thins', String(thinId));
  }
  contentDir(poolId: string, thinId: number): string {
    return path.join(this.thinDir(poolId, thinId), 'root');
  }
  fsStateFile(poolId: string, thinId: number): string {
    return path.join(this.thinDir(poolId, thinId), 'fs.json');
  }

  /**
   * Commit pool ops, keeping device contents in step: a new device starts empty, a snapshot
   * starts as a copy of its origin's files, a deleted device's files go. Contents are prepared
   * before the op is journalled and removed after, so a crash in between leaves at worst an
   * unused directory, which the next create of that id wipes.
   */
  commit(ops: PoolOp[]): void {
    for (const op of ops) {
      if (op.t === 'create_thin') this.replaceThinDir(op.pool, op.id, null);
      if (op.t === 'create_snap') this.replaceThinDir(op.pool, op.id, op.origin);
    }
    const doomed: string[] = [];
    for (const op of ops) {
      if (op.t !== 'delete') continue;
      const dir = this.thinDir(op.pool, op.id);
      if (!fs.existsSync(dir)) continue;
      const trash = path.join(this.root, 'pools', op.pool, 'trash', `${op.id}-${crypto.randomUUID()}`);
      fs.mkdirSync(path.dirname(trash), { recursive: true });
      fs.renameSync(dir, trash);
      doomed.push(trash);
    }
    this.journal.append(ops);
    for (const trash of doomed) fs.rmSync(trash, { recursive: true, force: true });
  }

  private replaceThinDir(poolId: string, thinId: number, originId: number | null): void {
    // A new device has no directory until mkfs gives it a filesystem.
    const dir = this.thinDir(poolId, thinId);
    fs.rmSync(dir, { recursive: true, force: true });
    if (originId === null) return;
    const origin = this.thinDir(poolId, originId);
    if (!fs.existsSync(origin)) return;
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    // As exact as a block-level snapshot (owners, modes, links, xattrs); mtimes are kept, so the
    // copy's files count as unchanged at its first writeback.
    copyTreeExact(origin, dir);
  }
}
