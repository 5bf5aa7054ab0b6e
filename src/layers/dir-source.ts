// A directory as a layer: walked in a fixed order (names sorted by their bytes) and written as a tar,
// so that a directory has a diff id like any archive and is applied by the same careful extractor.
// Symlinks are copied, never followed; files linked more than once become hardlink entries; sockets
// are left out (a tar cannot hold them); the host's SELinux label is left to the target's policy.
// File-system calls are synchronous for speed (see apply.ts), with a turn of the event loop every
// YIELD_EVERY_ENTRIES entries.

import { splitDevT } from '../kernel/dev-t.ts';
import { createHash } from 'node:crypto';
import { closeSync, constants, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { join } from 'node:path';
import { LayerContentError } from './errors.ts';
import { lgetxattr, llistxattr } from './fs-calls.ts';
import { END_OF_ARCHIVE, contentPadding, entryHeader, type WritableEntry } from './tar-writer.ts';

const READ_CHUNK = 256 * 1024;
const YIELD_EVERY_ENTRIES = 256;
const SKIPPED_XATTRS = new Set(['security.selinux']);

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function xattrsOf(path: string): [string, Buffer][] {
  let names: string[];
  try {
    names = llistxattr(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTSUP') return [];
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

function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  const { major, minor } = splitDevT(rdev);
  return { devmajor: major, devminor: minor };
}

/** Exactly `size` bytes of a file, read without following a symlink that replaced it. */
function* fileContent(dir: string, path: string, relName: string, size: number, onContent?: (bytes: number) => void): Generator<Buffer> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
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

/** A directory's diff id (the digest of its tar) and the bytes of file content it holds. */
export async function measureDirectory(dir: string): Promise<{ diffId: string; sizeBytes: number }> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of directoryTar(dir, (n) => (sizeBytes += n))) hash.update(chunk);
  return { diffId: `sha256:${hash.digest('hex')}`, sizeBytes };
}
