// A device's changes as an OCI layer: a tar that, applied onto the device's layer, gives the
// device's tree. Added and changed paths are written whole from the device; a deleted path is a
// whiteout (`.wh.NAME`) beside it, and a directory whose lower content is all gone carries the
// opaque marker (`.wh..wh..opq`) instead of a whiteout per name. The parents of every entry are
// written too, so the layer applies onto any tree that lacks them. Files linked under several
// names keep their links: the first name written carries the content, and every other name of the
// same inode in the device, changed or not, follows as a hardlink to it.
//
// Reproducible: the same trees give the same bytes (the changes' fixed order, whole-second times,
// no user or group names, whiteouts with zero times and owners), through the project's own tar
// writer (tar-writer.ts).

import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { byBytes, devNumbers, fileContent, xattrsOf } from './dir-source.ts';
import { END_OF_ARCHIVE, contentPadding, entryHeader, type WritableEntry } from './tar-writer.ts';
import type { TreeChange } from './tree-diff.ts';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from './whiteouts.ts';

const parentOf = (rel: string) => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
const baseOf = (rel: string) => rel.slice(rel.lastIndexOf('/') + 1);

function marker(name: string): WritableEntry {
  return { name, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: [] };
}

function entryOf(path: string, rel: string, st: BigIntStats): WritableEntry {
  const base: WritableEntry = {
    name: rel,
    type: 'file',
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: 0,
    mtime: Number(st.mtimeNs / 1_000_000_000n),
    linkname: '',
    devmajor: 0,
    devminor: 0,
    xattrs: xattrsOf(path),
  };
  if (st.isDirectory()) return { ...base, name: `${rel}/`, type: 'dir' };
  if (st.isSymbolicLink()) return { ...base, type: 'symlink', linkname: readlinkSync(path) };
  if (st.isFile()) return { ...base, size: Number(st.size) };
  if (st.isCharacterDevice() || st.isBlockDevice()) return { ...base, type: st.isCharacterDevice() ? 'char' : 'block', ...devNumbers(Number(st.rdev)) };
  return { ...base, type: 'fifo' };
}

/** Every name of each of `inodes` in the tree (dev:ino -> relative names, sorted). */
function namesOfInodes(root: string, inodes: Set<string>): Map<string, string[]> {
  const names = new Map<string, string[]>();
  const walk = (abs: string, rel: string) => {
    for (const name of readdirSync(abs).sort(byBytes)) {
      const path = join(abs, name);
      const relName = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(path, { bigint: true });
      if (st.isDirectory()) walk(path, relName);
      else if (st.isFile() && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        if (inodes.has(key)) names.set(key, [...(names.get(key) ?? []), relName]);
      }
    }
  };
  walk(root, '');
  return names;
}

/** The changes of `upper` (the device's tree), as found by diffTrees, as an OCI layer tar stream. */
export function* changeTar(upper: string, changes: readonly TreeChange[]): Generator<Buffer> {
  const written = new Set<string>(['']);
  const opaque = new Set<string>();
  const linked = new Map<string, string>(); // dev:ino -> the name its content was written under
  const multiLinked = new Set<string>();
  for (const c of changes) if (c.stat?.isFile() && c.stat.nlink > 1n) multiLinked.add(`${c.stat.dev}:${c.stat.ino}`);
  const partners = multiLinked.size > 0 ? namesOfInodes(upper, multiLinked) : new Map<string, string[]>();

  function* parents(rel: string): Generator<Buffer> {
    const missing: string[] = [];
    for (let p = parentOf(rel); !written.has(p); p = parentOf(p)) missing.unshift(p);
    for (const p of missing) {
      const path = join(upper, p);
      yield entryHeader(entryOf(path, p, lstatSync(path, { bigint: true })));
      written.add(p);
    }
  }

  const underOpaque = (rel: string) => {
    for (let p = parentOf(rel); p !== ''; p = parentOf(p)) if (opaque.has(p)) return true;
    return false;
  };

  for (const c of changes) {
    if (c.kind === 'D') {
      if (underOpaque(c.path)) continue; // the marker hides it already
      yield* parents(c.path);
      const dir = parentOf(c.path);
      yield entryHeader(marker(`${dir === '' ? '' : `${dir}/`}${WHITEOUT_PREFIX}${baseOf(c.path)}`));
      continue;
    }
    const st = c.stat;
    if (!st) continue;
    if (written.has(c.path)) {
      // Written already as the parent of a link that came first: only its marker may be missing.
      if (c.opaque && !opaque.has(c.path)) {
        opaque.add(c.path);
        yield entryHeader(marker(`${c.path}/${OPAQUE_MARKER}`));
      }
      continue;
    }
    yield* parents(c.path);
    const path = join(upper, c.path);
    const entry = entryOf(path, c.path, st);
    written.add(c.path);
    if (entry.type === 'dir') {
      yield entryHeader(entry);
      if (c.opaque) {
        opaque.add(c.path);
        yield entryHeader(marker(`${c.path}/${OPAQUE_MARKER}`));
      }
      continue;
    }
    if (entry.type !== 'file') {
      yield entryHeader(entry);
      continue;
    }
    const key = `${st.dev}:${st.ino}`;
    const first = linked.get(key);
    if (first !== undefined) {
      yield entryHeader({ ...entry, type: 'hardlink', linkname: first, size: 0, xattrs: [] });
      continue;
    }
    yield entryHeader(entry);
    yield* fileContent(upper, path, c.path, entry.size);
    if (entry.size % 512 !== 0) yield contentPadding(entry.size);
    if (!multiLinked.has(key)) continue;
    linked.set(key, c.path);
    // The other names of this inode, changed or not, become links to the one just written.
    for (const other of partners.get(key) ?? []) {
      if (written.has(other)) continue;
      yield* parents(other);
      yield entryHeader({ ...entry, name: other, type: 'hardlink', linkname: c.path, size: 0, xattrs: [] });
      written.add(other);
    }
  }
  yield END_OF_ARCHIVE;
}
