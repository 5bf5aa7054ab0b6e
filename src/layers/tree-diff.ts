// What changed in a device against its layer: the two trees walked side by side, in the order of
// their names' bytes, as `docker diff` reports it. `A` a path the layer lacks, `D` a path the device
// lacks, `C` a path both hold that differs: in type, mode, owner, times, size, link target, device
// numbers, extended attributes or content. Both trees are only read (lstat, readlink, reads through
// O_NOFOLLOW descriptors), never changed.
//
// A regular file whose metadata is the same is compared by content only when its inode or ctime
// differs: in a thin snapshot an untouched file keeps both (the snapshot shares the inode table),
// so on the real kernel only files that were written are read; two separate trees (the simulated
// kernel's copies) are compared byte for byte.
//
// A directory that the device emptied of everything the layer had, and maybe filled again, is
// `opaque`: its change set says "nothing below shows through" once, instead of a whiteout for each
// name (docs/layers.md).

import { closeSync, constants, lstatSync, openSync, readSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { byBytes, xattrsOf } from './dir-source.ts';

export type ChangeKind = 'A' | 'C' | 'D';

export interface TreeChange {
  kind: ChangeKind;
  /** Relative to the tree's root, without a leading slash. */
  path: string;
  /** For A and C: the device's file, as lstat saw it. */
  stat?: BigIntStats;
  /** A directory whose lower content is all gone: written as an opaque directory. */
  opaque?: boolean;
}

const READ_CHUNK = 256 * 1024;
const YIELD_EVERY_ENTRIES = 256;

type Kind = 'dir' | 'file' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

function kindOf(st: BigIntStats): Kind {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

function sameXattrs(a: string, b: string): boolean {
  const x = xattrsOf(a);
  const y = xattrsOf(b);
  return x.length === y.length && x.every(([name, value], i) => y[i][0] === name && y[i][1].equals(value));
}

/** Whether two regular files of the same size hold the same bytes. */
function sameContent(a: string, b: string, size: bigint): boolean {
  const fa = openSync(a, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const fb = openSync(b, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const ba = Buffer.allocUnsafe(READ_CHUNK);
      const bb = Buffer.allocUnsafe(READ_CHUNK);
      let at = 0;
      const total = Number(size);
      while (at < total) {
        const want = Math.min(READ_CHUNK, total - at);
        const na = readSync(fa, ba, 0, want, at);
        const nb = readSync(fb, bb, 0, want, at);
        if (na !== nb || na === 0) return false;
        if (!ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
        at += na;
      }
      return true;
    } finally {
      closeSync(fb);
    }
  } finally {
    closeSync(fa);
  }
}

/** Whether the device's entry differs from the layer's (both of one kind). */
function differs(lowerPath: string, l: BigIntStats, upperPath: string, u: BigIntStats, kind: Kind): boolean {
  // The same inode with the same ctime is the snapshot's untouched copy of it: any write, chmod,
  // chown or xattr change moves ctime, and only the kernel sets it. Nothing more need be read.
  if (l.ino === u.ino && l.ctimeNs === u.ctimeNs) return false;
  if ((l.mode & 0o7777n) !== (u.mode & 0o7777n) || l.uid !== u.uid || l.gid !== u.gid) return true;
  if (kind !== 'symlink' && l.mtimeNs !== u.mtimeNs) return true;
  if (kind === 'symlink' && readlinkSync(lowerPath) !== readlinkSync(upperPath)) return true;
  if ((kind === 'char' || kind === 'block') && l.rdev !== u.rdev) return true;
  if (kind === 'file' && l.size !== u.size) return true;
  if (!sameXattrs(lowerPath, upperPath)) return true;
  if (kind === 'file' && (l.ino !== u.ino || l.ctimeNs !== u.ctimeNs || l.dev !== u.dev)) return !sameContent(lowerPath, upperPath, u.size);
  return false;
}

const lstat = (path: string) => lstatSync(path, { bigint: true });

/** Every change of `upper` (the device's tree) against `lower` (its layer's), parents first. */
export async function diffTrees(lower: string, upper: string): Promise<TreeChange[]> {
  const changes: TreeChange[] = [];
  let entries = 0;

  async function added(abs: string, rel: string, st: BigIntStats): Promise<void> {
    changes.push({ kind: 'A', path: rel, stat: st });
    if (!st.isDirectory()) return;
    for (const name of readdirSync(abs).sort(byBytes)) {
      if (++entries % YIELD_EVERY_ENTRIES === 0) await nextTurn();
      const path = join(abs, name);
      await added(path, `${rel}/${name}`, lstat(path));
    }
  }

  async function walk(lowerDir: string, upperDir: string, rel: string): Promise<void> {
    const lowerNames = readdirSync(lowerDir).sort(byBytes);
    const upperNames = readdirSync(upperDir).sort(byBytes);
    const inUpper = new Set(upperNames);
    const inLower = new Set(lowerNames);
    const names = [...new Set([...lowerNames, ...upperNames])].sort(byBytes);
    for (const name of names) {
      if (++entries % YIELD_EVERY_ENTRIES === 0) await nextTurn();
      const relName = rel === '' ? name : `${rel}/${name}`;
      const lowerPath = join(lowerDir, name);
      const upperPath = join(upperDir, name);
      if (!inUpper.has(name)) {
        changes.push({ kind: 'D', path: relName });
        continue;
      }
      const u = lstat(upperPath);
      if (!inLower.has(name)) {
        await added(upperPath, relName, u);
        continue;
      }
      const l = lstat(lowerPath);
      const kind = kindOf(u);
      if (kindOf(l) !== kind) {
        // Replaced by another kind: the new one is written whole (a directory with all it holds).
        changes.push({ kind: 'C', path: relName, stat: u });
        if (kind === 'dir')
          for (const child of readdirSync(upperPath).sort(byBytes)) await added(join(upperPath, child), `${relName}/${child}`, lstat(join(upperPath, child)));
        continue;
      }
      if (kind !== 'dir') {
        if (differs(lowerPath, l, upperPath, u, kind)) changes.push({ kind: 'C', path: relName, stat: u });
        continue;
      }
      const lowerChildren = readdirSync(lowerPath);
      const opaque = lowerChildren.length > 0 && lowerChildren.every((c) => !existsIn(upperPath, c));
      if (opaque || differs(lowerPath, l, upperPath, u, kind)) changes.push({ kind: 'C', path: relName, stat: u, ...(opaque ? { opaque } : {}) });
      await walk(lowerPath, upperPath, relName);
      // A directory unchanged itself but holding changes stays out of the list (docker diff's way);
      // the tar writer adds the parents it needs.
    }
  }

  await walk(lower, upper, '');
  return changes;
}

function existsIn(dir: string, name: string): boolean {
  try {
    lstatSync(join(dir, name));
    return true;
  } catch {
    return false;
  }
}
