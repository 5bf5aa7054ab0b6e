// Filesystems on simulated thin devices. A device's files are a real directory (persistent-store
// contentDir); mounting puts a symbolic link to it at the mountpoint. Block usage follows a small
// model: the filesystem allocates 4 KiB blocks first-fit in the device's virtual space; a pool
// block (64 KiB or more) is written when any 4 KiB block in it is written. mkfs lays out metadata
// like mke2fs / mkfs.xfs do in outline (see docs/simulated-kernel.md, "Filesystems").
//
// Pure: layouts and the accounting plan. The I/O helpers at the end scan a directory, read and
// write the per-device fs.json, and swap mountpoints.

import fs from 'node:fs';
import path from 'node:path';
import type { Filesystem } from '../../model/manifest.ts';
import { fail } from './sim-errno.ts';

export const FS_BLOCK_BYTES = 4096;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
export const EXT4_GROUP_BYTES = 128 * MiB;
export const XFS_MIN_BYTES = 300 * MiB;

/** A run of filesystem blocks: [first block, count]. */
export type Extent = [number, number];

export interface FileEntry {
  size: number;
  /** Whole milliseconds: copies (snapshots) keep timestamps to the millisecond. */
  mtimeMs: number;
  extents: Extent[];
}

export interface FsState {
  type: Filesystem;
  label: string;
  sizeBytes: number;
  fsBlocks: number;
  /** Free filesystem blocks, sorted, merged. */
  free: Extent[];
  /** Relative path (with '/') -> the regular file's blocks. */
  files: Record<string, FileEntry>;
}

/** mke2fs's default journal size for a filesystem of this size (ext2fs_default_journal_size). */
export function ext4JournalBytes(sizeBytes: number): number {
  const table: [number, number][] = [
    [8 * MiB, 0],
    [128 * MiB, 4 * MiB],
    [1 * GiB, 16 * MiB],
    [2 * GiB, 32 * MiB],
    [16 * GiB, 64 * MiB],
    [32 * GiB, 128 * MiB],
    [64 * GiB, 256 * MiB],
    [128 * GiB, 512 * MiB],
  ];
  for (const [below, journal] of table) if (sizeBytes < below) return journal;
  return 1 * GiB;
}

/** The model's xfs log: size/256, at least 10 MiB, at most 2 GiB. */
export function xfsLogBytes(sizeBytes: number): number {
  return Math.min(2 * GiB, Math.max(10 * MiB, Math.floor(sizeBytes / 256)));
}

/** The metadata mkfs writes, as extents of filesystem blocks. */
export function mkfsMetadataExtents(type: Filesystem, sizeBytes: number): Extent[] {
  const n = Math.floor(sizeBytes / FS_BLOCK_BYTES);
  const extents: Extent[] = [];
  if (type === 'ext4') {
    // Superblock, group descriptors, bitmaps, the first inode table blocks, the root directory
    // and lost+found in the first MiB; the journal right after; one block of group metadata per
    // 128 MiB block group; and the device's last block, which mke2fs zeroes.
    const head = Math.ceil((1 * MiB + ext4JournalBytes(sizeBytes)) / FS_BLOCK_BYTES);
    if (head + 1 >= n) fail('EINVAL', `mkfs.ext4: device of ${sizeBytes} bytes is too small`);
    extents.push([0, head]);
    for (let g = EXT4_GROUP_BYTES / FS_BLOCK_BYTES; g < n - 1; g += EXT4_GROUP_BYTES / FS_BLOCK_BYTES) if (g >= head) extents.push([g, 1]);
  } else {
    // Four allocation groups with a header block each, the log at the start of the third.
    if (sizeBytes < XFS_MIN_BYTES) fail('EINVAL', `mkfs.xfs: a filesystem must be at least 300 MiB, not ${sizeBytes} bytes`);
    const log = Math.ceil(xfsLogBytes(sizeBytes) / FS_BLOCK_BYTES);
    for (let ag = 0; ag < 4; ag++) {
      const start = Math.floor((ag * n) / 4);
      extents.push([start, ag === 2 ? 1 + log : 1]);
    }
  }
  extents.push([n - 1, 1]);
  return extents;
}

function sortMerge(extents: Extent[]): Extent[] {
  const sorted = extents.filter(([, len]) => len > 0).sort((a, b) => a[0] - b[0]);
  const out: Extent[] = [];
  for (const [s, len] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[0] + last[1]) last[1] = Math.max(last[1], s + len - last[0]);
    else out.push([s, len]);
  }
  return out;
}

/** The free extents of [from, to) once `used` is taken out. */
function complement(used: Extent[], from: number, to: number): Extent[] {
  const free: Extent[] = [];
  let at = from;
  for (const [s, len] of sortMerge(used)) {
    if (s + len <= at) continue;
    if (s >= to) break;
    if (s > at) free.push([at, s - at]);
    at = Math.max(at, s + len);
  }
  if (at < to) free.push([at, to - at]);
  return free;
}

/** The longest label each mkfs takes (mkfs.xfs: "maximum 12 characters"; an ext4 label is 16 bytes). */
export const MAX_LABEL_BYTES: Record<Filesystem, number> = { ext4: 16, xfs: 12 };

export function mkfsLayout(type: Filesystem, sizeBytes: number, label: string): { state: FsState; written: Extent[] } {
  if (Buffer.byteLength(label) > MAX_LABEL_BYTES[type])
    fail('EINVAL', `mkfs.${type}: the label ${JSON.stringify(label)} is longer than ${MAX_LABEL_BYTES[type]} bytes`);
  const fsBlocks = Math.floor(sizeBytes / FS_BLOCK_BYTES);
  const written = mkfsMetadataExtents(type, sizeBytes);
  return { state: { type, label, sizeBytes, fsBlocks, free: complement(written, 0, fsBlocks), files: {} }, written };
}

/** Growing to a larger device: new group metadata is written, the rest of the new space is free. */
export function growLayout(state: FsState, sizeBytes: number): { state: FsState; written: Extent[] } {
  const fsBlocks = Math.floor(sizeBytes / FS_BLOCK_BYTES);
  if (fsBlocks < state.fsBlocks) fail('EINVAL', `cannot shrink the filesystem from ${state.sizeBytes} to ${sizeBytes} bytes`);
  if (fsBlocks === state.fsBlocks) return { state, written: [] };
  const written: Extent[] = [];
  const group = EXT4_GROUP_BYTES / FS_BLOCK_BYTES;
  for (let g = Math.ceil(state.fsBlocks / group) * group; g < fsBlocks - 1; g += group) written.push([g, 1]);
  written.push([fsBlocks - 1, 1]);
  const added = complement(written, state.fsBlocks, fsBlocks);
  return { state: { ...state, sizeBytes, fsBlocks, free: sortMerge([...state.free, ...added]) }, written };
}

function takeBlocks(free: Extent[], count: number): { taken: Extent[]; free: Extent[] } {
  const taken: Extent[] = [];
  const rest: Extent[] = [];
  let need = count;
  for (const [s, len] of free) {
    if (need === 0) {
      rest.push([s, len]);
      continue;
    }
    const use = Math.min(len, need);
    taken.push([s, use]);
    need -= use;
    if (use < len) rest.push([s + use, len - use]);
  }
  if (need > 0) fail('ENOSPC', 'no space left on the filesystem');
  return { taken, free: rest };
}

/** The first `count` blocks of a file's extents, and the rest. */
function splitExtents(extents: Extent[], count: number): { keep: Extent[]; drop: Extent[] } {
  const keep: Extent[] = [];
  const drop: Extent[] = [];
  let left = count;
  for (const [s, len] of extents) {
    if (left >= len) {
      keep.push([s, len]);
      left -= len;
    } else if (left > 0) {
      keep.push([s, left]);
      drop.push([s + left, len - left]);
      left = 0;
    } else drop.push([s, len]);
  }
  return { keep, drop };
}

export interface ScannedFile {
  size: number;
  mtimeMs: number;
}

export interface AccountingPlan {
  next: FsState;
  /** Filesystem blocks written (new files, changed files). */
  written: Extent[];
  /** Filesystem blocks freed (deleted files, shrunk files). */
  freed: Extent[];
}

/**
 * What the filesystem writes to make its blocks match the files now present: a new file gets
 * blocks; a file whose size or mtime changed is rewritten (grown or cut to its new size); a
 * file that is gone frees its blocks. ENOSPC when the filesystem is full.
 */
export function planAccounting(state: FsState, scan: Map<string, ScannedFile>): AccountingPlan {
  let free = state.free;
  const files: Record<string, FileEntry> = {};
  const written: Extent[] = [];
  const freed: Extent[] = [];
  for (const [rel, entry] of Object.entries(state.files)) {
    if (!scan.has(rel)) freed.push(...entry.extents);
  }
  free = sortMerge([...free, ...freed]);
  for (const [rel, seen] of scan) {
    const need = Math.ceil(seen.size / FS_BLOCK_BYTES);
    const old = state.files[rel];
    if (old && old.size === seen.size && old.mtimeMs === seen.mtimeMs) {
      files[rel] = old;
      continue;
    }
    let extents = old?.extents ?? [];
    const have = extents.reduce((n, [, len]) => n + len, 0);
    if (need < have) {
      const { keep, drop } = splitExtents(extents, need);
      extents = keep;
      freed.push(...drop);
      free = sortMerge([...free, ...drop]);
    } else if (need > have) {
      const got = takeBlocks(free, need - have);
      free = got.free;
      extents = [...extents, ...got.taken];
    }
    written.push(...extents);
    files[rel] = { size: seen.size, mtimeMs: seen.mtimeMs, extents };
  }
  return { next: { ...state, free, files }, written: sortMerge(written), freed: sortMerge(freed) };
}

/** Pool blocks that hold any of these filesystem blocks. */
export function poolBlocksTouched(extents: Extent[], blockBytes: number): number[] {
  const per = blockBytes / FS_BLOCK_BYTES;
  const out = new Set<number>();
  for (const [s, len] of extents) {
    for (let b = Math.floor(s / per); b <= Math.floor((s + len - 1) / per); b++) out.add(b);
  }
  return [...out];
}

/** Pool blocks among those touched by `extents` whose every filesystem block is now free. */
export function poolBlocksNowFree(extents: Extent[], free: Extent[], blockBytes: number, fsBlocks: number): number[] {
  const per = blockBytes / FS_BLOCK_BYTES;
  const out: number[] = [];
  for (const b of poolBlocksTouched(extents, blockBytes)) {
    const first = b * per;
    const last = Math.min(fsBlocks, first + per) - 1;
    if (free.some(([s, len]) => s <= first && s + len - 1 >= last)) out.push(b);
  }
  return out;
}

// --- I/O ---------------------------------------------------------------------------------------

/** Regular files under a device's content directory (directories and links cost no blocks). */
export function scanContent(root: string): Map<string, ScannedFile> {
  const out = new Map<string, ScannedFile>();
  const walk = (dir: string, rel: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      const relPath = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(full, relPath);
      else if (e.isFile()) {
        try {
          const st = fs.lstatSync(full);
          out.set(relPath, { size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
        } catch {
          // removed while we looked
        }
      }
    }
  };
  walk(root, '');
  return out;
}

export function readFsState(file: string): FsState | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as FsState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export function writeFsState(file: string, state: FsState | null, fsync: boolean): void {
  if (state === null) {
    fs.rmSync(file, { force: true });
    return;
  }
  const temp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(temp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(state));
    if (fsync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
}

/** Empty a device's content directory (mkfs, whole-device discard). */
export function wipeContent(root: string): void {
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
}

/**
 * Where the simulated kernel keeps a mount: under its own directory, at the mountpoint's path
 * (/run/thinlayer/web1 of a state dir's simulator is <state>/sim/mnt/run/thinlayer/web1), so that it
 * never writes outside the state dir. Its mount table names the mountpoint as asked.
 */
export function simMountPath(simDir: string, mountpoint: string): string {
  return path.join(simDir, 'mnt', path.resolve(mountpoint));
}

/** Make `mountpoint` show `target`: an empty directory (or nothing) becomes a symbolic link. */
export function attachMountpoint(mountpoint: string, target: string): void {
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(mountpoint);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (st) {
    if (st.isSymbolicLink()) fail('EBUSY', `${mountpoint} is a mount of the simulated kernel already`);
    if (!st.isDirectory()) fail('ENOTDIR', `${mountpoint} is not a directory`);
    if (fs.readdirSync(mountpoint).length > 0) fail('EBUSY', `${mountpoint} is not empty (the simulated kernel cannot hide a directory's files)`);
    fs.rmdirSync(mountpoint);
  } else {
    fs.mkdirSync(path.dirname(mountpoint), { recursive: true });
  }
  fs.symlinkSync(target, mountpoint, 'dir');
}

/** Undo attachMountpoint: an empty directory again (whatever state a crash left it in). */
export function detachMountpoint(mountpoint: string): void {
  try {
    const st = fs.lstatSync(mountpoint);
    if (st.isSymbolicLink()) fs.unlinkSync(mountpoint);
    else return; // a directory already: nothing to undo
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  fs.mkdirSync(mountpoint, { recursive: true });
}
