// The dm-thin pool protocol (Documentation/admin-guide/device-mapper/thin-provisioning.rst), in one
// place: the pool's and a thin device's status lines, the pool table, the low-water mark, the
// messages that change the pool's metadata, and the transaction-id fence around them. Pure, apart
// from the two functions that send messages or read a status through the kernel port; used by the
// engine, gc, doctor and watch on both backends.

import type { DmTarget, KernelPort } from './kernel-port.ts';
import { StateError, InternalError, isKernelError } from '../errors/index.ts';
import { SECTOR_BYTES } from '../model/units.ts';

/** The pool raises an event when fewer than this share of its data blocks is free. */
export const LOW_WATER_FRACTION = 0.05;

export interface PoolStatus {
  transactionId: number;
  metadataUsed: number; // 4 KiB metadata blocks
  metadataTotal: number;
  dataUsed: number; // data blocks of the pool's block size
  dataTotal: number;
  heldMetadataRoot: string | null;
  mode: 'rw' | 'ro' | 'out_of_data_space' | 'fail';
  discardPassdown: boolean;
  errorIfNoSpace: boolean;
  needsCheck: boolean;
}

/** A count the kernel printed in a status or table field; null for anything else (so NaN never escapes). */
function count(field: string | undefined): number | null {
  return field !== undefined && /^\d+$/.test(field) ? Number(field) : null;
}

/**
 * The pool's status line. `Fail` (the pool failed) and `Error` (its metadata could not be read) carry
 * no figures: they read as a failed pool whose transaction id is -1 (unknown), never NaN.
 */
export function parsePoolStatus(params: string): PoolStatus {
  const f = params.trim().split(/\s+/);
  if (count(f[0]) === null) {
    return {
      transactionId: -1,
      metadataUsed: 0,
      metadataTotal: 0,
      dataUsed: 0,
      dataTotal: 0,
      heldMetadataRoot: null,
      mode: 'fail',
      discardPassdown: false,
      errorIfNoSpace: false,
      needsCheck: true,
    };
  }
  const [mu, mt] = (f[1] ?? '0/0').split('/').map((n) => count(n) ?? 0);
  const [du, dt] = (f[2] ?? '0/0').split('/').map((n) => count(n) ?? 0);
  return {
    transactionId: count(f[0])!,
    metadataUsed: mu,
    metadataTotal: mt,
    dataUsed: du,
    dataTotal: dt,
    heldMetadataRoot: f[3] && f[3] !== '-' ? f[3] : null,
    mode: (f[4] as PoolStatus['mode']) ?? 'rw',
    discardPassdown: f[5] !== 'no_discard_passdown',
    errorIfNoSpace: f[6] === 'error_if_no_space',
    needsCheck: f[7] === 'needs_check',
  };
}

export interface ThinStatus {
  mappedSectors: number;
  highestMappedSector: number | null;
  failed: boolean;
}

export function parseThinStatus(params: string): ThinStatus {
  const f = params.trim().split(/\s+/);
  const mapped = count(f[0]);
  if (mapped === null) return { mappedSectors: 0, highestMappedSector: null, failed: true };
  return { mappedSectors: mapped, highestMappedSector: count(f[1]), failed: false };
}

/** The transaction id in a pool's status lines; null when there is no pool line or it carries no id (Fail, Error). */
export function transactionIdOf(lines: DmTarget[]): number | null {
  const line = lines.find((l) => l.type === 'thin-pool');
  if (!line) return null;
  const id = parsePoolStatus(line.params).transactionId;
  return id < 0 ? null : id;
}

/** The pool's transaction id, read from the kernel: the fence a metadata step writes into its intent. */
export async function readTransactionId(kernel: KernelPort, poolDmName: string): Promise<number> {
  const lines = await kernel.status(poolDmName);
  if (!lines.some((l) => l.type === 'thin-pool')) return 0; // no pool: the step's message fails on its own
  const id = transactionIdOf(lines);
  if (id === null)
    throw new StateError(`pool ${poolDmName} reports no transaction id (${lines[0]?.params.trim()}): it has failed; run \`thinlayer doctor\``, 'E_POOL');
  return id;
}

// --- messages ---------------------------------------------------------------------------------

export const createThinMessage = (thinId: number): string => `create_thin ${thinId}`;
export const createSnapMessage = (thinId: number, originThinId: number): string => `create_snap ${thinId} ${originThinId}`;
export const deleteMessage = (thinId: number): string => `delete ${thinId}`;
export const setTransactionIdMessage = (from: number, to: number): string => `set_transaction_id ${from} ${to}`;

type Errno = Parameters<typeof isKernelError>[1];

/**
 * Changes the pool metadata under the transaction-id fence: the message (an answer in `tolerated`,
 * such as EEXIST for a create that landed before a crash, counts as done), then the id moves on by
 * one. Answers the new transaction id. Recovery compares the pool's id with the intent's to know
 * whether the step reached the pool.
 */
export async function sendFenced(kernel: KernelPort, poolDmName: string, txid: number | undefined, message: string, ...tolerated: Errno[]): Promise<number> {
  if (txid === undefined) throw new InternalError(`metadata step "${message}" has no transaction id`);
  try {
    await kernel.message(poolDmName, message);
  } catch (e) {
    if (!tolerated.some((n) => isKernelError(e, n))) throw e;
  }
  await kernel.message(poolDmName, setTransactionIdMessage(txid, txid + 1));
  return txid + 1;
}

// --- the pool table ---------------------------------------------------------------------------

/** A thin-pool table line: `metadata_dev data_dev data_block_size low_water_mark #features features...`. */
export interface PoolTable {
  /** Sectors. */
  length: number;
  metadataDev: string;
  dataDev: string;
  blockSectors: number;
  lowWater: number;
  features: string[];
}

/** The features thinlayer loads a pool with: new blocks are not zeroed (a thin device reads zeros where nothing was written). */
export const POOL_FEATURES = ['skip_block_zeroing'];

export function poolTarget(t: PoolTable): DmTarget {
  return {
    start: 0,
    length: t.length,
    type: 'thin-pool',
    params: `${t.metadataDev} ${t.dataDev} ${t.blockSectors} ${t.lowWater} ${t.features.length}${t.features.map((f) => ` ${f}`).join('')}`,
  };
}

/** Reads a live thin-pool table line back (the kernel prints a trailing space after the feature count). */
export function parsePoolTable(target: DmTarget): PoolTable {
  const f = target.params.trim().split(/\s+/);
  const blockSectors = count(f[2]);
  const lowWater = count(f[3]);
  const featureCount = count(f[4] ?? '0');
  if (target.type !== 'thin-pool' || f.length < 4 || blockSectors === null || lowWater === null || featureCount === null)
    throw new StateError(`not a thin-pool table: ${target.type} ${target.params}`, 'E_POOL');
  return { length: target.length, metadataDev: f[0], dataDev: f[1], blockSectors, lowWater, features: f.slice(5, 5 + featureCount) };
}

/** The pool table for a data device of `dataBytes`: whole blocks only, the low-water mark at its share. */
export function newPoolTable(metadataDev: string, dataDev: string, blockSizeBytes: number, dataBytes: number): PoolTable & { dataBlocks: number } {
  const blockSectors = blockSizeBytes / SECTOR_BYTES;
  const dataBlocks = Math.floor(dataBytes / blockSizeBytes);
  return { length: dataBlocks * blockSectors, metadataDev, dataDev, blockSectors, lowWater: lowWaterMark(dataBlocks), features: POOL_FEATURES, dataBlocks };
}

/** The low-water mark of a pool of `dataBlocks`: at least one block. */
export function lowWaterMark(dataBlocks: number): number {
  return Math.max(1, Math.floor(dataBlocks * LOW_WATER_FRACTION));
}

/**
 * The live table grown to a data device of `dataBytes`: never shorter than it was (a data device
 * that looks smaller is not shrunk under the pool), and the low-water mark keeps its share of the
 * pool, so the kernel's warning comes as early as before.
 */
export function grownPoolTable(live: PoolTable, dataBytes: number): PoolTable {
  const blocks = Math.floor(dataBytes / (live.blockSectors * SECTOR_BYTES));
  const length = Math.max(live.length, blocks * live.blockSectors);
  const lowWater = length === live.length ? live.lowWater : Math.max(1, Math.round((live.lowWater * length) / live.length));
  return { ...live, length, lowWater };
}
