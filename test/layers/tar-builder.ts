// A tiny tar writer for tests, written apart from thinlayer's own so that the reader is checked
// against a second opinion. It makes any entry, hostile ones included: absolute and `..` names,
// escaping links, device nodes, wrong checksums, unknown types, GNU long names and PAX records.

import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';

export type BuilderType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface Entry {
  name: string;
  type?: BuilderType;
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** PAX records written in an 'x' header before the entry. */
  pax?: Record<string, string | Buffer>;
  /** Put the name in a GNU 'L' record instead of the header (and a GNU magic). */
  gnuLongName?: boolean;
  /** A raw typeflag character, overriding `type`. */
  typeflag?: string;
  /** Store a wrong checksum. */
  badChecksum?: boolean;
  /** Write numbers in GNU base-256 instead of octal. */
  base256?: boolean;
}

const FLAGS: Record<BuilderType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(fields: {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
  gnu?: boolean;
  badChecksum?: boolean;
  base256?: boolean;
}): Buffer {
  const b = Buffer.alloc(512);
  b.write(fields.name, 0, 100, 'utf8');
  b.write(octal(fields.mode, 8), 100, 'latin1');
  if (fields.base256) {
    // 0x80 then a big-endian number in the rest of the field.
    const number = (offset: number, width: number, value: number) => {
      b[offset] = 0x80;
      for (let i = width - 1; i > 0; i--) {
        b[offset + i] = value % 256;
        value = Math.floor(value / 256);
      }
    };
    number(108, 8, fields.uid);
    number(116, 8, fields.gid);
    number(124, 12, fields.size);
  } else {
    b.write(octal(fields.uid, 8), 108, 'latin1');
    b.write(octal(fields.gid, 8), 116, 'latin1');
    b.write(octal(fields.size, 12), 124, 'latin1');
  }
  b.write(octal(fields.mtime, 12), 136, 'latin1');
  b.write(fields.typeflag, 156, 1, 'latin1');
  b.write(fields.linkname, 157, 100, 'utf8');
  if (fields.gnu) b.write('ustar  \0', 257, 'latin1');
  else b.write('ustar\u000000', 257, 'latin1');
  b.write(octal(fields.devmajor, 8), 329, 'latin1');
  b.write(octal(fields.devminor, 8), 337, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  if (fields.badChecksum) sum += 1;
  b.write(`${octal(sum, 7)} `, 148, 'latin1');
  return b;
}

function pad(data: Buffer): Buffer {
  const rest = data.length % 512;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(512 - rest)]);
}

function paxRecords(records: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(records)) {
    const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.isBuffer(value) ? value : Buffer.from(value), Buffer.from('\n')]);
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length++;
    parts.push(Buffer.from(String(length)), body);
  }
  return Buffer.concat(parts);
}

/** The bytes of one entry (its extension headers, header and padded content). */
export function entryBytes(e: Entry): Buffer {
  const content = e.content === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content);
  const type = e.type ?? 'file';
  const out: Buffer[] = [];
  const common = { mode: 0o644, uid: 0, gid: 0, mtime: 0, linkname: '', devmajor: 0, devminor: 0 };
  if (e.pax) {
    const data = paxRecords(e.pax);
    out.push(header({ ...common, name: 'PaxHeader', size: data.length, typeflag: 'x' }), pad(data));
  }
  let name = e.name;
  if (e.gnuLongName) {
    const data = Buffer.from(`${e.name}\0`);
    out.push(header({ ...common, name: '././@LongLink', size: data.length, typeflag: 'L', gnu: true }), pad(data));
    name = e.name.slice(0, 99);
  }
  out.push(
    header({
      name,
      mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      size: type === 'file' ? content.length : 0,
      mtime: e.mtime ?? 1_600_000_000,
      typeflag: e.typeflag ?? FLAGS[type],
      linkname: e.linkname ?? '',
      devmajor: e.devmajor ?? 0,
      devminor: e.devminor ?? 0,
      gnu: e.gnuLongName,
      badChecksum: e.badChecksum,
      base256: e.base256,
    }),
  );
  if (type === 'file' && content.length > 0) out.push(pad(content));
  return Buffer.concat(out);
}

/** A whole archive; `end: false` leaves out the two end-of-archive blocks. */
export function buildTar(entries: Entry[], opts: { end?: boolean } = {}): Buffer {
  return Buffer.concat([...entries.map(entryBytes), opts.end === false ? Buffer.alloc(0) : Buffer.alloc(1024)]);
}

export function gzip(data: Buffer): Buffer {
  return gzipSync(data);
}

export function zstd(data: Buffer): Buffer {
  const r = spawnSync('zstd', ['-c', '-q'], { input: data, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr}`);
  return r.stdout;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
