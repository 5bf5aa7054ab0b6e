// A streaming tar reader over chunks of bytes: ustar, PAX (path, linkpath, size, uid, gid, mtime,
// atime, SCHILY.xattr.*) and GNU long names. Entries are yielded one at a time with their content as
// a stream; content left unread is skipped when the next entry is asked for. The archive must end
// with its two zero blocks, as every tar writer ends it: an archive cut short is refused, not
// half-applied.

import { TarFormatError } from './errors.ts';
import {
  BLOCK,
  decodeHeader,
  hasContent,
  isZeroBlock,
  paddedSize,
  parsePaxInteger,
  parsePaxRecords,
  parsePaxTime,
  type RawHeader,
  type TarHeader,
} from './tar-format.ts';

/**
 * The most bytes of PAX extended headers and GNU long names that may describe one entry, all of
 * them together: the reader holds them until the entry's own header comes, so without a bound on
 * the total a chain of extended headers (each small once compressed) fills memory. 1 MiB is far
 * above what any real entry needs (a path is at most 4 KiB, an xattr value at most 64 KiB).
 */
export const MAX_PENDING_META_BYTES = 1024 * 1024;

export interface TarEntry {
  header: TarHeader;
  /** Offset of the entry's header in the uncompressed stream. */
  offset: number;
  /** The entry's content (empty for all but regular files); read it before asking for the next entry, or it is skipped. */
  content(): AsyncIterable<Buffer>;
}

/** Pulls exact byte counts out of a stream of chunks of any size. */
export class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  /** Bytes handed out (or skipped) so far. */
  position = 0;
  private readonly iterator: AsyncIterator<Buffer>;

  /** `limit`: reading past this many bytes throws a TarFormatError with the message given. */
  constructor(
    source: AsyncIterable<Buffer>,
    private readonly limit?: { bytes: number; message: string },
  ) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Buffers at least n bytes, or fewer at the end of the stream; returns how many are buffered. */
  private async fill(n: number): Promise<number> {
    while (this.buffered < n && !this.ended) {
      const next = await this.iterator.next();
      if (next.done) this.ended = true;
      else if (next.value.length > 0) {
        this.chunks.push(next.value);
        this.buffered += next.value.length;
      }
    }
    return this.buffered;
  }

  /** Up to n bytes of the first buffered chunk; at least one byte must be buffered. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    const take = Math.min(n, first.length);
    if (this.limit && this.position + take > this.limit.bytes) throw new TarFormatError(this.limit.message);
    const out = first.subarray(0, take);
    if (take === first.length) this.chunks.shift();
    else this.chunks[0] = first.subarray(take);
    this.buffered -= take;
    this.position += take;
    return out;
  }

  /** n bytes when the first buffered chunk holds them all (no await, no copy), else null. */
  takeBuffered(n: number): Buffer | null {
    return this.chunks.length > 0 && this.chunks[0].length >= n ? this.take(n) : null;
  }

  /** Skips n bytes when they are all buffered (no await) and says so; else skips nothing. */
  skipBuffered(n: number): boolean {
    if (this.buffered < n) return false;
    for (let left = n; left > 0; ) left -= this.take(left).length;
    return true;
  }

  /** Up to n bytes when some are buffered (no await), else null. */
  someBuffered(n: number): Buffer | null {
    return this.buffered > 0 ? this.take(n) : null;
  }

  /** Up to n bytes from what is buffered (at least one, unless the stream has ended). */
  async some(n: number): Promise<Buffer> {
    if (this.buffered === 0 && (await this.fill(1)) === 0) return Buffer.alloc(0);
    return this.take(n);
  }

  /** Exactly n bytes, or null when the stream ended before the first of them; a short read in between throws. */
  async exactly(n: number, what: string): Promise<Buffer | null> {
    const have = this.buffered >= n ? this.buffered : await this.fill(n);
    if (have === 0 && n > 0) return null;
    if (have < n) throw new TarFormatError(`the archive is truncated: it ends inside ${what} (${have} of ${n} bytes)`);
    // Whole in the first chunk (the common case): no copy.
    if (this.chunks[0].length >= n) return this.take(n);
    const parts: Buffer[] = [];
    for (let wanted = n; wanted > 0; ) {
      const part = this.take(wanted);
      parts.push(part);
      wanted -= part.length;
    }
    return Buffer.concat(parts, n);
  }

  async skip(n: number, what: string): Promise<void> {
    for (let left = n; left > 0; ) {
      if (this.buffered === 0 && (await this.fill(1)) === 0)
        throw new TarFormatError(`the archive is truncated: it ends inside ${what} (${n - left} of ${n} bytes)`);
      left -= this.take(left).length;
    }
  }

  /** Stops the source early (closing files and processes behind it); harmless after its end. */
  async close(): Promise<void> {
    this.ended = true;
    this.chunks = [];
    this.buffered = 0;
    await this.iterator.return?.();
  }

  /** Reads and discards the rest of the stream (trailing padding counts towards the stream's digest). */
  async drain(): Promise<void> {
    while ((await this.some(BLOCK * 128)).length > 0);
  }
}

interface Pending {
  pax: Map<string, Buffer>;
  longName: string | null;
  longLink: string | null;
  /** Bytes of the extended headers read for the next entry so far. */
  bytes: number;
}

const nothingPending = (): Pending => ({ pax: new Map(), longName: null, longLink: null, bytes: 0 });

/** The entries of a tar stream, in order. The stream is read to its very end (after the zero blocks too). */
export async function* readTar(input: AsyncIterable<Buffer> | ByteReader): AsyncGenerator<TarEntry> {
  const reader = input instanceof ByteReader ? input : new ByteReader(input);
  let pending = nothingPending();
  let pendingMeta = false;
  for (;;) {
    const offset = reader.position;
    const block = reader.takeBuffered(BLOCK) ?? (await reader.exactly(BLOCK, 'a header'));
    if (block === null) throw new TarFormatError('the archive is truncated: it ends without its end-of-archive blocks');
    if (isZeroBlock(block)) {
      const second = await reader.exactly(BLOCK, 'the end-of-archive blocks');
      if (second === null || !isZeroBlock(second)) throw new TarFormatError('the archive is corrupt: a zero block is not followed by a second one');
      if (pendingMeta) throw new TarFormatError('the archive is corrupt: it ends after an extended header, without the entry it describes');
      await reader.drain();
      return;
    }
    let raw: RawHeader;
    try {
      raw = decodeHeader(block);
    } catch (e) {
      if (e instanceof TarFormatError && e.entry === null && pending.longName) throw new TarFormatError(e.message, pending.longName);
      throw e;
    }
    const bodySize = hasContent(raw.kind) ? raw.size : 0;
    if (raw.kind === 'pax' || raw.kind === 'pax-global' || raw.kind === 'gnu-longname' || raw.kind === 'gnu-longlink') {
      const held = raw.kind === 'pax-global' ? bodySize : pending.bytes + bodySize;
      if (held > MAX_PENDING_META_BYTES) {
        const entry = pending.pax.get('path')?.toString('utf8') ?? pending.longName ?? raw.name;
        const what =
          raw.kind === 'pax-global' ? `a global extended header of ${bodySize} bytes is` : `extended headers and long names of ${held} bytes for one entry are`;
        throw new TarFormatError(`${what} more than thinlayer accepts (${MAX_PENDING_META_BYTES} bytes)`, entry);
      }
      if (raw.kind !== 'pax-global') pending.bytes = held;
      const data = (await reader.exactly(paddedSize(bodySize), 'an extended header'))?.subarray(0, bodySize);
      if (!data) throw new TarFormatError('the archive is truncated: it ends inside an extended header', raw.name);
      if (raw.kind === 'pax') {
        for (const [k, v] of parsePaxRecords(data)) pending.pax.set(k, v);
        pendingMeta = true;
      } else if (raw.kind === 'pax-global') {
        parsePaxRecords(data); // checked, then ignored: layer tools never rely on global headers
      } else {
        const nul = data.indexOf(0);
        const text = (nul === -1 ? data : data.subarray(0, nul)).toString('utf8');
        if (raw.kind === 'gnu-longname') pending.longName = text;
        else pending.longLink = text;
        pendingMeta = true;
      }
      continue;
    }
    const header = foldHeader(raw, pending);
    pending = nothingPending();
    pendingMeta = false;
    const size = header.type === 'file' ? header.size : 0;
    const what = () => `the content of ${JSON.stringify(header.name)}`;
    // `left` is kept here rather than in a generator, so that a consumer that stops early cannot lose our place.
    let left = size;
    const advance = (part: Buffer): IteratorResult<Buffer> => {
      if (part.length === 0) throw new TarFormatError(`the archive is truncated: it ends inside ${what()} (${size - left} of ${size} bytes)`, header.name);
      left -= part.length;
      return { done: false, value: part };
    };
    // A plain iterator rather than an async generator: content already buffered (most small files)
    // is handed on without a generator's machinery, which is most of what reading a small entry costs.
    const content = (): AsyncIterable<Buffer> => ({
      [Symbol.asyncIterator]: () => ({
        next: (): Promise<IteratorResult<Buffer>> => {
          if (left === 0) return Promise.resolve({ done: true, value: undefined });
          try {
            const part = reader.someBuffered(left);
            return part ? Promise.resolve(advance(part)) : reader.some(left).then(advance);
          } catch (e) {
            return Promise.reject(e);
          }
        },
      }),
    });
    yield { header, offset, content };
    // Whatever the consumer left unread, then the padding to the next block.
    const rest = left + paddedSize(size) - size;
    try {
      if (!reader.skipBuffered(rest)) await reader.skip(rest, what());
    } catch (e) {
      throw e instanceof TarFormatError ? new TarFormatError(e.message, header.name) : e;
    }
  }
}

/** One entry's header with its PAX records and GNU long names applied. */
function foldHeader(raw: RawHeader, pending: Pending): TarHeader {
  const pax = pending.pax;
  const text = (key: string) => pax.get(key)?.toString('utf8');
  const name = text('path') ?? pending.longName ?? raw.name;
  const where = (e: unknown) => (e instanceof TarFormatError && e.entry === null ? new TarFormatError(e.message, name) : e);
  try {
    for (const key of pax.keys()) {
      if (key.startsWith('GNU.sparse.')) throw new TarFormatError('GNU sparse files are not supported');
    }
    const xattrs = new Map<string, Buffer>();
    for (const [key, value] of pax) if (key.startsWith('SCHILY.xattr.')) xattrs.set(key.slice('SCHILY.xattr.'.length), value);
    const num = (key: string, fallback: number) => (pax.has(key) ? parsePaxInteger(text(key)!, key) : fallback);
    const atime = text('atime');
    return {
      name,
      type: raw.kind as TarHeader['type'],
      mode: raw.mode,
      uid: num('uid', raw.uid),
      gid: num('gid', raw.gid),
      size: raw.kind === 'file' ? num('size', raw.size) : 0,
      mtime: pax.has('mtime') ? parsePaxTime(text('mtime')!, 'mtime') : raw.mtime,
      atime: atime === undefined ? null : parsePaxTime(atime, 'atime'),
      linkname: text('linkpath') ?? pending.longLink ?? raw.linkname,
      devmajor: raw.devmajor,
      devminor: raw.devminor,
      xattrs,
    };
  } catch (e) {
    throw where(e);
  }
}
