// The pool metadata model: what dm-thin keeps on its metadata device. Thin ids, each device's
// mappings (virtual block -> data block), data block reference counts, the transaction id, the
// held metadata root, and the space accounting the status line reports.
//
// Pure: decisions (decideMessage, planWrite, planUnmap) validate and return PoolOps; `apply`
// folds an op into the model. The persistent store journals the ops, so replay rebuilds the model.
//
// Snapshots share mapping tables the way dm-thin shares btree roots: create_snap is O(1); the
// first write to either side copies the table (the "break sharing" step), and a data block is
// shared while more than one table maps it.

import { parseThinId } from './dm-table.ts';
import { fail } from './sim-errno.ts';

export const METADATA_BLOCK_BYTES = 4096;
/** THIN_METADATA_MAX_SECTORS: one index block of 255 entries, each covering 16384 metadata blocks. */
export const MAX_METADATA_BLOCKS = 255 * (1 << 14);
/** Model constants for used metadata blocks (see docs/simulated-kernel.md, "Space accounting"). */
export const METADATA_BASE_BLOCKS = 8;
export const MAPPINGS_PER_LEAF = 126;
export const BITMAP_ENTRIES_PER_BLOCK = 16320;
/** dm-thin-metadata keeps min(4096 blocks, 10%) of the metadata device back and reports it as used. */
export const METADATA_RESERVE_MAX_BLOCKS = 4096;
const MAX_TRANSACTION_ID = 2n ** 64n - 1n;

export type PoolOp =
  | { t: 'format'; pool: string; blockSectors: number; dataBlocks: number; metadataBlocks: number }
  | { t: 'create_thin'; pool: string; id: number }
  | { t: 'create_snap'; pool: string; id: number; origin: number }
  | { t: 'delete'; pool: string; id: number }
  | { t: 'set_txid'; pool: string; txid: string }
  | { t: 'reserve_snap'; pool: string; root: number }
  | { t: 'release_snap'; pool: string }
  | { t: 'resize'; pool: string; dataBlocks: number; metadataBlocks: number }
  /** Map each virtual block to a data block: flat [v0, d0, v1, d1, ...]. */
  | { t: 'map'; pool: string; id: number; pairs: number[] }
  | { t: 'unmap'; pool: string; id: number; vblocks: number[] };

export type PoolMessage =
  | { kind: 'create_thin'; id: number }
  | { kind: 'create_snap'; id: number; origin: number }
  | { kind: 'delete'; id: number }
  | { kind: 'set_transaction_id'; current: bigint; next: bigint }
  | { kind: 'reserve_metadata_snap' }
  | { kind: 'release_metadata_snap' };

function checkArgCount(argv: string[], required: number): void {
  if (argv.length !== required) fail('EINVAL', `Message received with ${argv.length} arguments instead of ${required}`);
}

function parseTransactionId(text: string): bigint {
  if (!/^\+?\d+$/.test(text)) fail('EINVAL', `set_transaction_id message: Unrecognised id ${text}`);
  const value = BigInt(text);
  if (value > MAX_TRANSACTION_ID) fail('EINVAL', `set_transaction_id message: id ${text} out of range`);
  return value;
}

/** pool_message: the words are split on white space; the command is matched without case. */
export function parsePoolMessage(text: string): PoolMessage {
  const argv = text.trim() === '' ? [] : text.trim().split(/\s+/);
  if (argv.length === 0) fail('EINVAL', 'Empty message received');
  switch (argv[0].toLowerCase()) {
    case 'create_thin':
      checkArgCount(argv, 2);
      return { kind: 'create_thin', id: parseThinId(argv[1]) };
    case 'create_snap':
      checkArgCount(argv, 3);
      return { kind: 'create_snap', id: parseThinId(argv[1]), origin: parseThinId(argv[2]) };
    case 'delete':
      checkArgCount(argv, 2);
      return { kind: 'delete', id: parseThinId(argv[1]) };
    case 'set_transaction_id':
      checkArgCount(argv, 3);
      return { kind: 'set_transaction_id', current: parseTransactionId(argv[1]), next: parseTransactionId(argv[2]) };
    case 'reserve_metadata_snap':
      checkArgCount(argv, 1);
      return { kind: 'reserve_metadata_snap' };
    case 'release_metadata_snap':
      checkArgCount(argv, 1);
      return { kind: 'release_metadata_snap' };
    default:
      fail('EINVAL', `Unrecognised thin pool target message received: ${argv[0]}`);
  }
}

/** One device's mappings; shared by a snapshot and its origin until either writes. */
class MappingTable {
  owners = 1;
  readonly map = new Map<number, number>();
  leaves = 0;
  private highestCache: number | null | undefined = null;

  highest(): number | null {
    if (this.highestCache === undefined) {
      let max = -1;
      for (const v of this.map.keys()) if (v > max) max = v;
      this.highestCache = max < 0 ? null : max;
    }
    return this.highestCache;
  }
  set(v: number, d: number): void {
    this.map.set(v, d);
    if (this.highestCache !== undefined && (this.highestCache === null || v > this.highestCache)) this.highestCache = v;
  }
  delete(v: number): void {
    this.map.delete(v);
    if (this.highestCache === v) this.highestCache = undefined;
  }
}

export interface PoolMetadataJSON {
  poolId: string;
  blockSectors: number;
  dataBlocks: number;
  metadataBlocks: number;
  transactionId: string;
  heldRoot: number | null;
  /** Each distinct mapping table as flat [v0, d0, v1, d1, ...]. */
  tables: number[][];
  /** [thin id, index into tables]. */
  thins: [number, number][];
}

export class PoolMetadata {
  transactionId = 0n;
  heldRoot: number | null = null;
  private readonly thins = new Map<number, MappingTable>();
  /** Data block -> number of mapping tables that map it. Absent means free. */
  private readonly blockRefs = new Map<number, number>();
  private leafTotal = 0;
  private cursor = 0;

  constructor(
    readonly poolId: string,
    readonly blockSectors: number,
    public dataBlocks: number,
    public metadataBlocks: number,
  ) {}

  // --- queries -------------------------------------------------------------------------------

  hasThin(id: number): boolean {
    return this.thins.has(id);
  }
  thinIds(): number[] {
    return [...this.thins.keys()].sort((a, b) => a - b);
  }
  get usedDataBlocks(): number {
    return this.blockRefs.size;
  }
  get freeDataBlocks(): number {
    return Math.max(0, this.dataBlocks - this.blockRefs.size);
  }
  /** The blocks the metadata really takes in this model. */
  actualMetadataBlocks(): number {
    return (
      METADATA_BASE_BLOCKS +
      Math.ceil(this.dataBlocks / BITMAP_ENTRIES_PER_BLOCK) +
      Math.ceil(this.metadataBlocks / BITMAP_ENTRIES_PER_BLOCK) +
      this.thins.size +
      this.leafTotal +
      (this.heldRoot === null ? 0 : 1)
    );
  }
  metadataReserve(): number {
    return Math.min(METADATA_RESERVE_MAX_BLOCKS, Math.floor(this.metadataBlocks / 10));
  }
  /** What the status line reports: the blocks in use plus the reserve, at most the total. */
  usedMetadataBlocks(): number {
    return Math.min(this.metadataBlocks, this.actualMetadataBlocks() + this.metadataReserve());
  }
  mappedBlocks(id: number): number {
    return this.table(id).map.size;
  }
  highestMappedBlock(id: number): number | null {
    return this.table(id).highest();
  }
  mappingOf(id: number, vblock: number): number | undefined {
    return this.table(id).map.get(vblock);
  }
  /** Whether a write to this virtual block must allocate (unmapped) or copy (shared). */
  needsNewBlock(id: number, vblock: number): boolean {
    const table = this.table(id);
    const d = table.map.get(vblock);
    if (d === undefined) return true;
    return table.owners > 1 || (this.blockRefs.get(d) ?? 0) > 1;
  }
  refCount(dataBlock: number): number {
    return this.blockRefs.get(dataBlock) ?? 0;
  }

  private table(id: number): MappingTable {
    const table = this.thins.get(id);
    if (!table) fail('ENODATA', `thin device ${id} does not exist`);
    return table;
  }

  // --- decisions -----------------------------------------------------------------------------

  /**
   * The op a pool message makes, or the kernel's errno. `isOpen(id)` says whether a loaded thin
   * table uses the id (the kernel's td->open_count).
   */
  decideMessage(msg: PoolMessage, isOpen: (id: number) => boolean): PoolOp | null {
    const pool = this.poolId;
    switch (msg.kind) {
      case 'create_thin':
        if (this.thins.has(msg.id)) fail('EEXIST', `thin device ${msg.id} already exists`);
        this.checkMetadataSpace(1);
        return { t: 'create_thin', pool, id: msg.id };
      case 'create_snap':
        if (this.thins.has(msg.id)) fail('EEXIST', `thin device ${msg.id} already exists`);
        if (!this.thins.has(msg.origin)) fail('ENODATA', `origin thin device ${msg.origin} does not exist`);
        this.checkMetadataSpace(1);
        return { t: 'create_snap', pool, id: msg.id, origin: msg.origin };
      case 'delete':
        if (!this.thins.has(msg.id)) fail('ENODATA', `thin device ${msg.id} does not exist`);
        if (isOpen(msg.id)) fail('EBUSY', `thin device ${msg.id} is open`);
        return { t: 'delete', pool, id: msg.id };
      case 'set_transaction_id':
        if (msg.current !== this.transactionId) fail('EINVAL', `mismatched transaction id: current is ${this.transactionId}, not ${msg.current}`);
        return { t: 'set_txid', pool, txid: msg.next.toString() };
      case 'reserve_metadata_snap':
        if (this.heldRoot !== null) fail('EBUSY', 'Pool metadata snapshot already exists: release this before taking another');
        this.checkMetadataSpace(1);
        return { t: 'reserve_snap', pool, root: this.actualMetadataBlocks() };
      case 'release_metadata_snap':
        if (this.heldRoot === null) fail('EINVAL', 'No pool metadata snapshot found: nothing to release');
        return { t: 'release_snap', pool };
    }
  }

  /** ENOSPC when `extra` more metadata blocks would eat into the reserve. */
  checkMetadataSpace(extra: number): void {
    if (this.actualMetadataBlocks() + extra + this.metadataReserve() > this.metadataBlocks) {
      fail('ENOSPC', 'out of metadata space');
    }
  }

  /**
   * The mappings a write to these virtual blocks makes: a fresh data block for every block that
   * is unmapped or shared; nothing for a block the device maps alone (written in place).
   * ENOSPC, without any change, when the pool has too few free data blocks for all of them.
   */
  planWrite(id: number, vblocks: Iterable<number>): { pairs: number[]; newBlocks: number } {
    const table = this.table(id);
    const wanted: number[] = [];
    const seen = new Set<number>();
    for (const v of vblocks) {
      if (seen.has(v)) continue;
      seen.add(v);
      if (this.needsNewBlock(id, v)) wanted.push(v);
    }
    if (wanted.length === 0) return { pairs: [], newBlocks: 0 };
    if (wanted.length > this.freeDataBlocks)
      fail('ENOSPC', `pool ${this.poolId} has ${this.freeDataBlocks} free data blocks, the write needs ${wanted.length}`);
    const extraLeaves = Math.ceil((table.map.size + wanted.length) / MAPPINGS_PER_LEAF) - table.leaves + (table.owners > 1 ? table.leaves : 0);
    this.checkMetadataSpace(Math.max(0, extraLeaves));
    const pairs: number[] = [];
    let candidate = this.cursor;
    for (const v of wanted) {
      while (this.blockRefs.has(candidate % this.dataBlocks)) candidate++;
      pairs.push(v, candidate % this.dataBlocks);
      candidate++;
    }
    return { pairs, newBlocks: wanted.length };
  }

  /** The mapped ones among these virtual blocks (a discard unmaps only what is mapped). */
  planUnmap(id: number, vblocks: Iterable<number>): number[] {
    const table = this.table(id);
    const out: number[] = [];
    const seen = new Set<number>();
    for (const v of vblocks) {
      if (!seen.has(v) && table.map.has(v)) out.push(v);
      seen.add(v);
    }
    return out;
  }

  /** Every mapped virtual block of a device (a whole-device discard). */
  mappedVblocks(id: number): number[] {
    return [...this.table(id).map.keys()];
  }

  // --- evolution -----------------------------------------------------------------------------

  apply(op: PoolOp): void {
    switch (op.t) {
      case 'format':
        return; // handled by the store, which creates the model
      case 'create_thin': {
        const table = new MappingTable();
        this.thins.set(op.id, table);
        return;
      }
      case 'create_snap': {
        const origin = this.table(op.origin);
        origin.owners++;
        this.thins.set(op.id, origin);
        return;
      }
      case 'delete': {
        const table = this.table(op.id);
        this.thins.delete(op.id);
        this.release(table);
        return;
      }
      case 'set_txid':
        this.transactionId = BigInt(op.txid);
        return;
      case 'reserve_snap':
        this.heldRoot = op.root;
        return;
      case 'release_snap':
        this.heldRoot = null;
        return;
      case 'resize':
        this.dataBlocks = op.dataBlocks;
        this.metadataBlocks = op.metadataBlocks;
        return;
      case 'map': {
        const table = this.exclusiveTable(op.id);
        for (let i = 0; i < op.pairs.length; i += 2) {
          const v = op.pairs[i];
          const d = op.pairs[i + 1];
          const old = table.map.get(v);
          if (old !== undefined) this.decRef(old);
          table.set(v, d);
          this.incRef(d);
          this.cursor = d + 1;
        }
        this.updateLeaves(table);
        return;
      }
      case 'unmap': {
        const table = this.exclusiveTable(op.id);
        for (const v of op.vblocks) {
          const d = table.map.get(v);
          if (d === undefined) continue;
          table.delete(v);
          this.decRef(d);
        }
        this.updateLeaves(table);
        return;
      }
    }
  }

  private incRef(d: number): void {
    this.blockRefs.set(d, (this.blockRefs.get(d) ?? 0) + 1);
  }
  private decRef(d: number): void {
    const n = (this.blockRefs.get(d) ?? 0) - 1;
    if (n > 0) this.blockRefs.set(d, n);
    else this.blockRefs.delete(d);
  }
  private release(table: MappingTable): void {
    table.owners--;
    if (table.owners > 0) return;
    for (const d of table.map.values()) this.decRef(d);
    this.leafTotal -= table.leaves;
  }
  private updateLeaves(table: MappingTable): void {
    const leaves = Math.ceil(table.map.size / MAPPINGS_PER_LEAF);
    this.leafTotal += leaves - table.leaves;
    table.leaves = leaves;
  }
  /** Break sharing of a whole table before the first change to one of its owners. */
  private exclusiveTable(id: number): MappingTable {
    const table = this.table(id);
    if (table.owners === 1) return table;
    table.owners--;
    const copy = new MappingTable();
    for (const [v, d] of table.map) {
      copy.set(v, d);
      this.incRef(d);
    }
    copy.leaves = table.leaves;
    this.leafTotal += copy.leaves;
    this.thins.set(id, copy);
    return copy;
  }

  // --- serialisation -------------------------------------------------------------------------

  toJSON(): PoolMetadataJSON {
    const index = new Map<MappingTable, number>();
    const tables: number[][] = [];
    const thins: [number, number][] = [];
    for (const [id, table] of this.thins) {
      let i = index.get(table);
      if (i === undefined) {
        i = tables.length;
        index.set(table, i);
        const flat: number[] = [];
        for (const [v, d] of table.map) flat.push(v, d);
        tables.push(flat);
      }
      thins.push([id, i]);
    }
    return {
      poolId: this.poolId,
      blockSectors: this.blockSectors,
      dataBlocks: this.dataBlocks,
      metadataBlocks: this.metadataBlocks,
      transactionId: this.transactionId.toString(),
      heldRoot: this.heldRoot,
      tables,
      thins,
    };
  }

  static fromJSON(j: PoolMetadataJSON): PoolMetadata {
    const pool = new PoolMetadata(j.poolId, j.blockSectors, j.dataBlocks, j.metadataBlocks);
    pool.transactionId = BigInt(j.transactionId);
    pool.heldRoot = j.heldRoot;
    const tables = j.tables.map((flat) => {
      const table = new MappingTable();
      table.owners = 0;
      for (let i = 0; i < flat.length; i += 2) {
        table.set(flat[i], flat[i + 1]);
        pool.incRef(flat[i + 1]);
      }
      table.leaves = Math.ceil(table.map.size / MAPPINGS_PER_LEAF);
      pool.leafTotal += table.leaves;
      return table;
    });
    for (const [id, i] of j.thins) {
      tables[i].owners++;
      pool.thins.set(id, tables[i]);
    }
    return pool;
  }
}
