// Ties a pool's persistent model to its metadata device the way dm-thin's superblock does: the
// first 4 KiB of the metadata backing file hold a magic string and the pool id. All zeros means
// a blank device (the kernel formats it on the first load); anything else is not a pool: EINVAL.

import fs from 'node:fs';
import crypto from 'node:crypto';
import { METADATA_BLOCK_BYTES } from './sim-pool-metadata.ts';

const MAGIC = 'thinlayer simulated thin-pool metadata v1\n';

export type MetadataHeader = { kind: 'blank' } | { kind: 'pool'; poolId: string } | { kind: 'foreign' };

export function readMetadataHeader(file: string): MetadataHeader {
  const buf = Buffer.alloc(METADATA_BLOCK_BYTES);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, buf, 0, buf.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (buf.every((b) => b === 0)) return { kind: 'blank' };
  const text = buf.toString('latin1');
  if (!text.startsWith(MAGIC)) return { kind: 'foreign' };
  const poolId = text.slice(MAGIC.length, text.indexOf('\n', MAGIC.length));
  return /^[0-9a-f-]{36}$/.test(poolId) ? { kind: 'pool', poolId } : { kind: 'foreign' };
}

export function newPoolId(): string {
  return crypto.randomUUID();
}

/** Written in place (no truncation): the file keeps its size, as a block device would. */
export function writeMetadataHeader(file: string, poolId: string, fsync: boolean): void {
  const buf = Buffer.alloc(METADATA_BLOCK_BYTES);
  buf.write(`${MAGIC}${poolId}\n`, 'latin1');
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, buf, 0, buf.length, 0);
    if (fsync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
