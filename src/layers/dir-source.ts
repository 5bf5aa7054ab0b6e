// A directory as a layer: walked in a fixed order (names sorted by their bytes) and written as a tar,
// so that a directory has a diff id like any archive and is applied by the same careful extractor.
// Symlinks are copied, never followed; files linked more than once become hardlink entries; sockets
// are left out (a tar cannot hold them); the host's SELinux label is left to the target's policy.
// File-system calls are synchronous for speed (see apply.ts), with a turn of the event loop every
// YIELD_EVERY_ENTRIES entries.

import { splitDevT } from '../kernel/dev-t.ts';
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { join } from 'node:path';
import { isKernelError } from '../errors/index.ts';
import { LayerContentError } from './errors.ts';
import { lgetxattr, llistxattr } from '../host/libc.ts';
import { END_OF_ARCHIVE, contentPadding, entryHeader, type WritableEntry } from './tar-writer.ts';
import { checkTarStream, type ContentRules } from './content-check.ts';

const READ_CHUNK = 256 * 1024;
const YIELD_EVERY_ENTRIES = 256;
const SKIPPED_XATTRS = new Set(['security.selinux']);

export function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A file's extended attributes, sorted by name (the host's SELinux label left out). */
export function xattrsOf(path: string): [string, Buffer][] {
  let names: string[];
  try {
    names = llistxattr(path);
  } catch (e) {
    if (isKernelError(e, 'EOPNOTSUPP')) return [];
    throw e;
  }
  return names
    .filter((n) => !SKIPPED_XATTRS.has(n))
    .sort(byBytes)
    .map((n) => [n, lgetxattr(path, n)] as [string, Buffer]);
}

/** The directory as a tar stream; `onContent` sees the bytes of file content as they are read. */
export async function* directoryTar(dir: string, onContent?: (bytes: number) => void): AsyncGenerator<Buffer> {
  const linked = new Map<string, string>(); // dev:ino of files with several links -> first name
  let entries = 0;
  async function* walk(abs: string, rel: string): AsyncGenerator<Buffer> {
    const names = readdirSync(abs).sort(byBytes);
    for (const name of names) {
      if (++entries % YIELD_EVERY_ENTRIES === 0) await nextTurn();
      const path = join(abs, name);
      const relName = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(path);
      const base: WritableEntry = {
        name: relName,
        type: 'file',
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: 0,
        mtime: Math.floor(st.mtimeMs / 1000),
        linkname: '',
        devmajor: 0,
        devminor: 0,
        xattrs: xattrsOf(path),
      };
      if (st.isDirectory()) {
        yield entryHeader({ ...base, name: `${relName}/`, type: 'dir' });
        yield* walk(path, relName);
      } else if (st.isSymbolicLink()) {
        yield entryHeader({ ...base, type: 'symlink', linkname: readlinkSync(path) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? linked.get(key) : undefined;
        if (first !== undefined) {
          yield entryHeader({ ...base, type: 'hardlink', linkname: first, xattrs: [] });
          continue;
        }
        if (st.nlink > 1) linked.set(key, relName);
        yield entryHeader({ ...base, size: st.size });
        yield* fileContent(dir, path, relName, st.size, onContent);
        if (st.size % 512 !== 0) yield contentPadding(st.size);
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        yield entryHeader({ ...base, type: st.isCharacterDevice() ? 'char' : 'block', ...devNumbers(st.rdev) });
      } else if (st.isFIFO()) {
        yield entryHeader({ ...base, type: 'fifo' });
      }
    }
  }
  yield* walk(dir, '');
  yield END_OF_ARCHIVE;
}

export function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  const { major, minor } = splitDevT(rdev);
  return { devmajor: major, devminor: minor };
}

/**
 * Exactly `size` bytes of a file, read without following a symlink that replaced it; a fifo or
 * device that replaced it is refused without blocking (O_NONBLOCK, then fstat of what was opened).
 */
export function* fileContent(dir: string, path: string, relName: string, size: number, onContent?: (bytes: number) => void): Generator<Buffer> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw new LayerContentError('it is no longer a regular file: the directory changed under thinlayer', dir, relName);
    let left = size;
    while (left > 0) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
      const bytesRead = readSync(fd, buffer, 0, buffer.length, size - left);
      if (bytesRead === 0) throw new LayerContentError('the file shrank while it was being read: the directory changed under thinlayer', dir, relName);
      left -= bytesRead;
      onContent?.(bytesRead);
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * A directory's diff id (the digest of its tar) and the bytes of file content it holds, checked as
 * it is read by the very rules an archive is checked by (content-check.ts): a fifo or device node
 * without allowDevices, a symlink whose target leaves the layer, more than the device holds, are
 * refused here, before any step, not in the middle of apply.
 */
export async function measureDirectory(
  dir: string,
  rules: ContentRules = {},
): Promise<{ diffId: string; sizeBytes: number; expandedBytes: number; deviceNodes: boolean }> {
  let sizeBytes = 0;
  const checked = await checkTarStream(
    directoryTar(dir, (n) => (sizeBytes += n)),
    dir,
    rules,
  );
  return { diffId: checked.diffId, sizeBytes, expandedBytes: checked.expandedBytes, deviceNodes: checked.deviceNodes };
}
