// A deterministic tar writer: the same entries always give the same bytes, because a directory
// source's diff id is the digest of the tar written from it. PAX records carry what ustar cannot
// (long or non-ASCII names, large numbers, xattrs); headers carry no user or group names and
// mtimes are whole seconds, as Docker writes layers.

import { BLOCK, encodeHeader, encodePaxRecords, fitsOctal, paddedSize, type EntryType } from './tar-format.ts';

export interface WritableEntry {
  name: string; // directories end with '/'
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number; // whole seconds
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Sorted by name by the caller. */
  xattrs: [string, Buffer][];
}

export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

const PORTABLE = /^[\x20-\x7e]*$/;

function fitsField(text: string): boolean {
  return PORTABLE.test(text) && Buffer.byteLength(text) <= 100;
}

/** The header blocks of one entry: a PAX header when needed, then the ustar header. Content follows separately. */
export function entryHeader(e: WritableEntry): Buffer {
  const records: [string, Buffer | string][] = [];
  if (!fitsField(e.name)) records.push(['path', e.name]);
  if (!fitsField(e.linkname)) records.push(['linkpath', e.linkname]);
  if (!fitsOctal(e.size, 12)) records.push(['size', String(e.size)]);
  if (!fitsOctal(e.uid, 8)) records.push(['uid', String(e.uid)]);
  if (!fitsOctal(e.gid, 8)) records.push(['gid', String(e.gid)]);
  for (const [name, value] of e.xattrs) records.push([`SCHILY.xattr.${name}`, value]);
  const header = encodeHeader({
    kind: e.type,
    name: fitsField(e.name) ? e.name : e.name.slice(0, 99).replace(/[^\x20-\x7e]/g, '_'),
    linkname: fitsField(e.linkname) ? e.linkname : '',
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    mtime: e.mtime,
    devmajor: e.devmajor,
    devminor: e.devminor,
  });
  if (records.length === 0) return header;
  const pax = encodePaxRecords(records);
  const paxHeader = encodeHeader({
    kind: 'pax',
    name: 'PaxHeader',
    linkname: '',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: pax.length,
    mtime: 0,
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([paxHeader, pax, Buffer.alloc(paddedSize(pax.length) - pax.length), header]);
}

/** Zero bytes that pad content of `size` bytes to a whole block. */
export function contentPadding(size: number): Buffer {
  return Buffer.alloc(paddedSize(size) - size);
}
