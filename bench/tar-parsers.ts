// Three tar parsers behind one small interface, so that the tar suite can feed them the same bytes:
// thinlayer's own reader (src/layers/tar-reader.ts), tar-stream's extract and node-tar's Parser
// (strict). Each reads every entry's content and reports what it made of the header; a refusal is
// a rejected promise. The corpus beside them is what each is judged on: the checks thinlayer's
// extraction relies on today, and values a layer must keep exactly.

import { once } from 'node:events';
import { Readable } from 'node:stream';
import { Parser } from 'tar';
import tarStream from 'tar-stream';
import { readTar } from '../src/layers/tar-reader.ts';
import { MAX_PENDING_META_BYTES } from '../src/layers/tar-reader.ts';
import { buildTar, entryBytes, type Entry } from '../test/layers/tar-builder.ts';

export interface ParsedEntry {
  name: string;
  type: string;
  size: number;
  uid: number;
  mtime: number;
  /** Extended attributes from PAX SCHILY.xattr records; null where the parser does not hand them on. */
  xattrs: Map<string, Buffer> | null;
  /** Bytes of content actually read. */
  read: number;
}

export interface TarParser {
  name: string;
  parse(source: AsyncIterable<Buffer>, onEntry: (e: ParsedEntry) => void): Promise<void>;
}

export const thinlayerReader: TarParser = {
  name: 'thinlayer (readTar)',
  async parse(source, onEntry) {
    for await (const entry of readTar(source)) {
      let read = 0;
      for await (const chunk of entry.content()) read += chunk.length;
      const h = entry.header;
      onEntry({ name: h.name, type: h.type, size: h.size, uid: h.uid, mtime: h.mtime, xattrs: h.xattrs, read });
    }
  },
};

export const tarStreamReader: TarParser = {
  name: 'tar-stream 3.2 (extract)',
  async parse(source, onEntry) {
    const extract = tarStream.extract();
    const input = Readable.from(source, { objectMode: false });
    input.on('error', (e) => extract.destroy(e));
    input.pipe(extract);
    for await (const entry of extract) {
      let read = 0;
      for await (const chunk of entry) read += (chunk as Buffer).length;
      const h = entry.header;
      const pax = (h as { pax?: Record<string, string> }).pax ?? {};
      // tar-stream decodes PAX values as UTF-8 text: the bytes are what that text encodes to.
      const xattrs = new Map(
        Object.entries(pax)
          .filter(([k]) => k.startsWith('SCHILY.xattr.'))
          .map(([k, v]) => [k.slice('SCHILY.xattr.'.length), Buffer.from(v, 'utf8')]),
      );
      onEntry({ name: h.name, type: String(h.type), size: h.size ?? 0, uid: h.uid ?? 0, mtime: (h.mtime?.getTime() ?? 0) / 1000, xattrs, read });
    }
  },
};

export const nodeTarReader: TarParser = {
  name: 'node-tar 7.5 (Parser, strict)',
  async parse(source, onEntry) {
    const parser = new Parser({ strict: true });
    let failure: unknown = null;
    const done = new Promise<void>((resolve, reject) => {
      parser.on('error', (e: unknown) => {
        failure = e;
        reject(e);
      });
      parser.on('end', () => resolve());
    });
    done.catch(() => undefined);
    parser.on('entry', (entry) => {
      let read = 0;
      entry.on('data', (chunk: Buffer) => (read += chunk.length));
      entry.on('end', () =>
        onEntry({
          name: entry.path,
          type: entry.type,
          size: entry.size ?? 0,
          uid: entry.uid ?? 0,
          mtime: (entry.mtime?.getTime() ?? 0) / 1000,
          xattrs: null,
          read,
        }),
      );
    });
    for await (const chunk of source) {
      if (failure) break;
      if (!parser.write(chunk)) await Promise.race([once(parser, 'drain'), done]);
    }
    if (!failure) parser.end();
    await done;
  },
};

export const PARSERS: readonly TarParser[] = [thinlayerReader, tarStreamReader, nodeTarReader];

/** What a parser should make of a corpus archive: refuse it, or read it with these values. */
export interface CorpusCase {
  name: string;
  bytes: () => Buffer;
  /** 'refuse', or a check of what was read that returns what is wrong (null: right). */
  expect: 'refuse' | ((entries: ParsedEntry[]) => string | null);
  /** Whether a caller could add the check on top of a library that lacks it (it is handed what it needs). */
  addable: 'yes' | 'no' | 'with tar-stream';
}

const file = (name: string, content = 'x'): Entry => ({ name, content });
const noEnd = (entries: Entry[]) => buildTar(entries, { end: false });
/** An archive's bytes with the header at `index` (512-byte blocks) changed by `edit`, checksum kept right. */
function withHeader(archive: Buffer, index: number, edit: (block: Buffer) => void): Buffer {
  const out = Buffer.from(archive);
  const block = out.subarray(index * 512, index * 512 + 512);
  edit(block);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return out;
}
/** A file capability (security.capability, VFS_CAP_REVISION_2): binary, with NULs, newlines and bytes above 0x7f. */
const CAPABILITY = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x0a, 0xff, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);

export const CORPUS: readonly CorpusCase[] = [
  {
    name: 'a binary xattr (a file capability) in a PAX record',
    bytes: () => buildTar([{ name: 'ping', content: 'x', pax: { 'SCHILY.xattr.security.capability': CAPABILITY } }]),
    expect: (es) => {
      const got = es[0]?.xattrs;
      if (got === null) return 'xattrs not handed on';
      return got?.get('security.capability')?.equals(CAPABILITY) ? null : `read as ${got?.get('security.capability')?.toString('hex') ?? 'nothing'}`;
    },
    addable: 'no',
  },
  {
    name: 'PAX uid and mtime (numbers ustar cannot hold)',
    bytes: () => buildTar([{ name: 'f', content: 'x', pax: { uid: '100000000', mtime: '1700000000.5' } }]),
    expect: (es) => (es[0]?.uid === 100000000 && es[0]?.mtime === 1700000000.5 ? null : `uid ${es[0]?.uid}, mtime ${es[0]?.mtime}`),
    addable: 'with tar-stream',
  },
  {
    name: 'base-256 numbers (GNU)',
    bytes: () => buildTar([{ name: 'f', content: 'abc', uid: 3_000_000, base256: true }]),
    expect: (es) => (es[0]?.uid === 3_000_000 && es[0]?.read === 3 ? null : `uid ${es[0]?.uid}`),
    addable: 'no',
  },
  {
    name: "truncated inside an entry's content",
    bytes: () => buildTar([file('a', 'x'.repeat(3000))]).subarray(0, 512 + 1000),
    expect: 'refuse',
    addable: 'no',
  },
  { name: 'truncated inside a header', bytes: () => buildTar([file('a'), file('b')]).subarray(0, 1024 + 300), expect: 'refuse', addable: 'no' },
  { name: 'no end-of-archive blocks (cut at an entry boundary)', bytes: () => noEnd([file('a'), file('b')]), expect: 'refuse', addable: 'no' },
  { name: 'one zero block, then the end', bytes: () => Buffer.concat([noEnd([file('a')]), Buffer.alloc(512)]), expect: 'refuse', addable: 'no' },
  { name: 'a bad header checksum', bytes: () => buildTar([file('a'), { ...file('b'), badChecksum: true }]), expect: 'refuse', addable: 'no' },
  { name: 'an unknown entry type', bytes: () => buildTar([{ name: 'odd', typeflag: 'Q' }]), expect: 'refuse', addable: 'yes' },
  { name: 'a GNU sparse file (type S)', bytes: () => buildTar([{ name: 'sparse', typeflag: 'S' }]), expect: 'refuse', addable: 'yes' },
  {
    name: 'a PAX GNU.sparse record',
    bytes: () => buildTar([{ name: 'p', content: 'x', pax: { 'GNU.sparse.major': '1' } }]),
    expect: 'refuse',
    addable: 'with tar-stream',
  },
  {
    name: 'an extended header with no entry after it',
    bytes: () => Buffer.concat([buildTar([{ name: 'p', pax: { path: 'q' } }]).subarray(0, 1024), Buffer.alloc(1024)]),
    expect: 'refuse',
    addable: 'no',
  },
  {
    name: 'a PAX size that is not a number',
    bytes: () => buildTar([{ name: 'e', content: 'x', pax: { size: '1x' } }]),
    expect: 'refuse',
    addable: 'with tar-stream',
  },
  {
    name: 'a PAX record whose length is wrong',
    bytes: () => Buffer.from(buildTar([{ name: 'e', content: 'x', pax: { path: 'abc' } }])).fill('9', 512, 513),
    expect: 'refuse',
    addable: 'no',
  },
  { name: 'a name that is not UTF-8', bytes: () => withHeader(buildTar([file('name')]), 0, (b) => (b[1] = 0xff)), expect: 'refuse', addable: 'no' },
  {
    name: 'a number field that is not octal',
    bytes: () => withHeader(buildTar([file('a')]), 0, (b) => b.write('00064x4\0', 100, 'latin1')),
    expect: 'refuse',
    addable: 'no',
  },
  {
    name: `64 PAX headers of 256 KiB for one entry (16 MiB pending; cap ${MAX_PENDING_META_BYTES / 1024} KiB)`,
    bytes: () =>
      Buffer.concat([
        ...Array.from({ length: 64 }, (_, i) =>
          entryBytes({ name: 'PaxHeader', typeflag: 'x', pax: { [`SCHILY.xattr.user.k${i}`]: Buffer.alloc(256 * 1024, 1) } }).subarray(0, -512),
        ),
        buildTar([file('victim')]),
      ]),
    expect: 'refuse',
    addable: 'no',
  },
  {
    name: 'one PAX header of 8 MiB',
    bytes: () => buildTar([{ name: 'f', content: 'x', pax: { 'SCHILY.xattr.user.big': Buffer.alloc(8 << 20, 1) } }]),
    expect: 'refuse',
    addable: 'no',
  },
];

export type Verdict = 'refused' | 'read right' | 'accepted' | string;

/** What `parser` does with one corpus case: refused, read right, accepted (where it should refuse), or what it read wrong. */
export async function judge(parser: TarParser, c: CorpusCase): Promise<{ verdict: Verdict; right: boolean; why?: string }> {
  const entries: ParsedEntry[] = [];
  const bytes = c.bytes();
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let i = 0; i < bytes.length; i += 65536) yield bytes.subarray(i, i + 65536);
  }
  try {
    await parser.parse(chunks(), (e) => entries.push(e));
  } catch (e) {
    const why = (e as Error)?.message ?? String(e);
    return { verdict: 'refused', right: c.expect === 'refuse', why };
  }
  if (c.expect === 'refuse') return { verdict: 'accepted', right: false };
  const wrong = c.expect(entries);
  return wrong === null ? { verdict: 'read right', right: true } : { verdict: `wrong: ${wrong}`, right: false };
}
