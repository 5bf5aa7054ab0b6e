// The tar format, pure: 512-byte header blocks (ustar, GNU and v7), their numbers and checksum, and
// PAX extended-header records. Decoding is strict, because a layer that does not parse exactly is
// refused rather than guessed at. The reader (tar-reader.ts) and the writer (tar-writer.ts) use it.

import { TarFormatError } from './errors.ts';

export const BLOCK = 512;

export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** Header blocks that describe the next entry rather than being one. */
export type MetaType = 'pax' | 'pax-global' | 'gnu-longname' | 'gnu-longlink';

/** One entry as the reader hands it on, with every extension (PAX, GNU long names) folded in. */
export interface TarHeader {
  name: string;
  type: EntryType;
  mode: number; // permission bits with setuid, setgid and sticky (07777)
  uid: number;
  gid: number;
  /** Bytes of content that follow (0 for every type but 'file'). */
  size: number;
  mtime: number; // seconds since the epoch, possibly fractional (PAX)
  atime: number | null;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** From PAX `SCHILY.xattr.NAME` records; values are raw bytes. */
  xattrs: Map<string, Buffer>;
}

/** A header block as stored, before extensions are folded in. */
export interface RawHeader {
  kind: EntryType | MetaType;
  name: string;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  devmajor: number;
  devminor: number;
}

const TYPEFLAGS: Record<string, EntryType | MetaType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file', // contiguous file: a regular file everywhere that matters
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
  x: 'pax',
  g: 'pax-global',
  L: 'gnu-longname',
  K: 'gnu-longlink',
};

/** Types whose header is never followed by content, whatever their size field says (as Go's archive/tar reads them). */
export function hasContent(kind: EntryType | MetaType): boolean {
  return kind === 'file' || kind === 'pax' || kind === 'pax-global' || kind === 'gnu-longname' || kind === 'gnu-longlink';
}

export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A path or link name: bytes up to the first NUL, which must be UTF-8 (node paths are strings). */
export function decodeName(bytes: Buffer, what: string): string {
  const end = bytes.indexOf(0);
  const raw = end === -1 ? bytes : bytes.subarray(0, end);
  if (isAscii(raw)) return raw.toString('latin1'); // most names: no decoder needed
  try {
    return utf8.decode(raw);
  } catch {
    throw new TarFormatError(`the ${what} is not valid UTF-8 (${raw.toString('latin1')})`);
  }
}

function isAscii(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] > 0x7f) return false;
  return true;
}

/** A numeric field: octal text, or GNU base-256 when the high bit of the first byte is set. */
export function decodeNumber(field: Buffer, what: string): number {
  if (field[0] & 0x80) {
    const negative = field[0] === 0xff;
    if (negative) throw new TarFormatError(`the ${what} is negative`);
    let value = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) {
      value = value * 256 + field[i];
      if (value > Number.MAX_SAFE_INTEGER) throw new TarFormatError(`the ${what} is too large`);
    }
    return value;
  }
  // Octal digits, with leading spaces and trailing NULs or spaces; read byte by byte (every header has eight of these).
  let start = 0;
  let end = field.length;
  while (end > 0 && (field[end - 1] === 0 || field[end - 1] === 0x20)) end--;
  while (start < end && field[start] === 0x20) start++;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = field[i] - 0x30;
    if (digit < 0 || digit > 7) throw new TarFormatError(`the ${what} field is not an octal number (${JSON.stringify(field.toString('latin1', start, end))})`);
    value = value * 8 + digit;
  }
  return value;
}

/** The header checksum: the byte sum with the checksum field counted as spaces. */
function unsignedChecksum(block: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += block[i];
  for (let i = 156; i < BLOCK; i++) sum += block[i];
  return sum;
}

/** The signed sum some old tars wrote (bytes above 127 counted as negative). */
function signedChecksum(block: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += block[i] > 127 ? block[i] - 256 : block[i];
  return sum;
}

function checksumMatches(block: Buffer, stored: number): boolean {
  return stored === unsignedChecksum(block) || stored === signedChecksum(block);
}

/** A block whose checksum is right: how a plain tar is told from other data. */
export function hasValidChecksum(block: Buffer): boolean {
  let stored: number;
  try {
    stored = decodeNumber(block.subarray(148, 156), 'checksum');
  } catch {
    return false;
  }
  return checksumMatches(block, stored);
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Decodes one non-zero header block; throws TarFormatError on a bad checksum, type or number. */
export function decodeHeader(block: Buffer): RawHeader {
  const stored = decodeNumber(block.subarray(148, 156), 'checksum');
  const rawName = block.subarray(0, 100);
  if (!checksumMatches(block, stored)) {
    throw new TarFormatError(
      `bad header checksum (stored ${stored}, computed ${unsignedChecksum(block)}): the archive is corrupt or not a tar`,
      safeName(rawName),
    );
  }
  const name = decodeName(rawName, 'entry name');
  const typeflag = String.fromCharCode(block[156]);
  let kind = TYPEFLAGS[typeflag];
  if (!kind) {
    const known: Record<string, string> = { S: 'a GNU sparse file', M: 'a GNU multi-volume continuation', V: 'a GNU volume label', D: 'a GNU dump directory' };
    throw new TarFormatError(`unsupported entry type ${JSON.stringify(typeflag)}${known[typeflag] ? ` (${known[typeflag]})` : ''}`, name);
  }
  const magic = block.toString('latin1', 257, 263);
  const ustar = magic === 'ustar\0';
  // POSIX ustar splits long names into prefix/name; GNU keeps other fields there, v7 has nothing.
  const prefix = ustar ? decodeName(block.subarray(345, 500), 'entry name prefix') : '';
  const fullName = prefix ? `${prefix}/${name}` : name;
  // v7 archives mark directories only by a trailing slash on a regular-file entry.
  if (kind === 'file' && typeflag !== '7' && fullName.endsWith('/')) kind = 'dir';
  return {
    kind,
    name: fullName,
    linkname: decodeName(block.subarray(157, 257), 'link name'),
    mode: decodeNumber(block.subarray(100, 108), 'mode') & 0o7777,
    uid: decodeNumber(block.subarray(108, 116), 'uid'),
    gid: decodeNumber(block.subarray(116, 124), 'gid'),
    size: decodeNumber(block.subarray(124, 136), 'size'),
    mtime: decodeNumber(block.subarray(136, 148), 'mtime'),
    devmajor: ustar || magic === 'ustar ' ? decodeNumber(block.subarray(329, 337), 'device major') : 0,
    devminor: ustar || magic === 'ustar ' ? decodeNumber(block.subarray(337, 345), 'device minor') : 0,
  };
}

function safeName(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString('latin1');
}

/** PAX records: `LEN KEY=VALUE\n`, LEN counting the whole record. Values are kept as bytes (xattrs are binary). */
export function parsePaxRecords(data: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break; // NUL padding after the last record
    const space = data.indexOf(0x20, at);
    const lengthText = space === -1 ? '' : data.toString('latin1', at, space);
    const length = /^[1-9][0-9]{0,8}$/.test(lengthText) ? Number(lengthText) : NaN;
    if (!Number.isFinite(length) || at + length > data.length || data[at + length - 1] !== 0x0a) {
      throw new TarFormatError('corrupt PAX extended header (bad record length)');
    }
    const record = data.subarray(space + 1, at + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw new TarFormatError('corrupt PAX extended header (a record without a key)');
    const key = decodeName(record.subarray(0, eq), 'PAX key');
    records.set(key, Buffer.from(record.subarray(eq + 1)));
    at += length;
  }
  return records;
}

/** A PAX decimal time (`1700000000.123456789`), in seconds. */
export function parsePaxTime(value: string, what: string): number {
  if (!/^-?[0-9]+(\.[0-9]+)?$/.test(value)) throw new TarFormatError(`the PAX ${what} is not a time (${JSON.stringify(value)})`);
  return Number(value);
}

export function parsePaxInteger(value: string, what: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) > Number.MAX_SAFE_INTEGER)
    throw new TarFormatError(`the PAX ${what} is not a whole number (${JSON.stringify(value)})`);
  return Number(value);
}

// --- encoding (the writer of directory sources) ----------------------------------------------------

const OCTAL_LIMITS = { 8: 0o7777777, 12: 0o77777777777 } as const;

function writeOctal(block: Buffer, offset: number, width: 8 | 12, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'latin1');
}

export function fitsOctal(value: number, width: 8 | 12): boolean {
  return Number.isInteger(value) && value >= 0 && value <= OCTAL_LIMITS[width];
}

/** What thinlayer's own writer can encode: the stored fields, with a name that fits 100 bytes (longer names go in a PAX record first). */
export type EncodableHeader = Omit<RawHeader, 'kind'> & { kind: EntryType | 'pax' };

const KIND_FLAG: Record<EncodableHeader['kind'], string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6', pax: 'x' };

/** A POSIX ustar header block; numbers that do not fit their field are written as 0 (a PAX record carries them). */
export function encodeHeader(h: EncodableHeader): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(h.name, 0, 100, 'utf8');
  writeOctal(block, 100, 8, h.mode & 0o7777);
  writeOctal(block, 108, 8, fitsOctal(h.uid, 8) ? h.uid : 0);
  writeOctal(block, 116, 8, fitsOctal(h.gid, 8) ? h.gid : 0);
  writeOctal(block, 124, 12, fitsOctal(h.size, 12) ? h.size : 0);
  writeOctal(block, 136, 12, fitsOctal(Math.floor(h.mtime), 12) ? Math.floor(h.mtime) : 0);
  block.write(KIND_FLAG[h.kind], 156, 1, 'latin1');
  block.write(h.linkname, 157, 100, 'utf8');
  block.write('ustar\u000000', 257, 8, 'latin1');
  writeOctal(block, 329, 8, h.devmajor);
  writeOctal(block, 337, 8, h.devminor);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i];
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/** PAX records in the order given (callers sort them, so that the output is deterministic). */
export function encodePaxRecords(records: [string, Buffer | string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), Buffer.from('\n')]);
    // The length prefix counts its own digits: grow it until it is stable.
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length = String(length).length + body.length;
    parts.push(Buffer.from(String(length), 'latin1'), body);
  }
  return Buffer.concat(parts);
}
