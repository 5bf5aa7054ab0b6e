import { describe, expect, it } from 'vitest';
import { TarFormatError } from '../../src/layers/errors.ts';
import { progressMeter } from '../../src/layers/progress.ts';
import { parsePaxRecords, BLOCK } from '../../src/layers/tar-format.ts';
import { MAX_PENDING_META_BYTES, readTar, type TarEntry } from '../../src/layers/tar-reader.ts';
import { END_OF_ARCHIVE, contentPadding, entryHeader, type WritableEntry } from '../../src/layers/tar-writer.ts';
import { buildTar, entryBytes, type Entry } from './tar-builder.ts';

/** Feeds bytes in awkward chunk sizes, so that block boundaries never line up with chunks. */
async function* chunked(data: Buffer, size = 77): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function readAll(data: Buffer, size?: number): Promise<{ header: TarEntry['header']; content: string }[]> {
  const out = [];
  for await (const entry of readTar(chunked(data, size))) {
    const parts: Buffer[] = [];
    for await (const part of entry.content()) parts.push(part);
    out.push({ header: entry.header, content: Buffer.concat(parts).toString('latin1') });
  }
  return out;
}

describe('readTar', () => {
  it('reads ustar entries of every type, in chunks of any size', async () => {
    const entries: Entry[] = [
      { name: 'dir/', type: 'dir', mode: 0o1755, uid: 7, gid: 8, mtime: 1234567 },
      { name: 'dir/file', content: 'x'.repeat(1000), mode: 0o4711 },
      { name: 'dir/empty', content: '' },
      { name: 'dir/sym', type: 'symlink', linkname: '../elsewhere' },
      { name: 'dir/hard', type: 'hardlink', linkname: 'dir/file' },
      { name: 'dev/tty', type: 'char', devmajor: 5, devminor: 0 },
      { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 1 },
      { name: 'fifo', type: 'fifo' },
    ];
    for (const size of [1, 77, 512, 100_000]) {
      const got = await readAll(buildTar(entries), size);
      expect(got.map((e) => [e.header.name, e.header.type])).toEqual(entries.map((e) => [e.name, e.type ?? 'file']));
      expect(got[0].header).toMatchObject({ mode: 0o1755, uid: 7, gid: 8, mtime: 1234567 });
      expect(got[1]).toMatchObject({ header: { size: 1000, mode: 0o4711 }, content: 'x'.repeat(1000) });
      expect(got[3].header.linkname).toBe('../elsewhere');
      expect(got[4].header.linkname).toBe('dir/file');
      expect(got[6].header).toMatchObject({ devmajor: 8, devminor: 1 });
    }
  });

  it('skips content the consumer does not read', async () => {
    const names = [];
    for await (const entry of readTar(
      chunked(
        buildTar([
          { name: 'a', content: 'a'.repeat(3000) },
          { name: 'b', content: 'b' },
        ]),
      ),
    )) {
      names.push(entry.header.name);
      if (entry.header.name === 'a') {
        for await (const part of entry.content()) {
          expect(part.length).toBeGreaterThan(0);
          break; // stop after the first chunk
        }
      }
    }
    expect(names).toEqual(['a', 'b']);
  });

  it('folds PAX records and GNU long names into the entry', async () => {
    const longName = `${'long-directory-name/'.repeat(8)}file`;
    const got = await readAll(
      buildTar([
        {
          name: 'short',
          content: 'abc',
          pax: {
            path: longName,
            uid: '3000000',
            gid: '4000000',
            mtime: '1700000000.5',
            atime: '1600000000.25',
            'SCHILY.xattr.user.bin': Buffer.from([0, 0x0a, 0xff, 0x3d]),
            'SCHILY.xattr.security.capability': 'cap',
          },
        },
        { name: longName, content: 'gnu', gnuLongName: true },
        { name: 'ünïcode/名前', content: 'u', pax: { path: 'ünïcode/名前' } },
        { name: 'big-ids', content: '', uid: 2_000_000_000, gid: 3_000_000_000, base256: true },
      ]),
    );
    expect(got[0].header).toMatchObject({ name: longName, uid: 3_000_000, gid: 4_000_000, mtime: 1_700_000_000.5, atime: 1_600_000_000.25, size: 3 });
    expect(got[0].header.xattrs.get('user.bin')).toEqual(Buffer.from([0, 0x0a, 0xff, 0x3d]));
    expect(got[0].header.xattrs.get('security.capability')?.toString()).toBe('cap');
    expect(got[1]).toMatchObject({ header: { name: longName }, content: 'gnu' });
    expect(got[1].header.xattrs.size).toBe(0); // PAX records apply to one entry only
    expect(got[2].header.name).toBe('ünïcode/名前');
    expect(got[3].header).toMatchObject({ uid: 2_000_000_000, gid: 3_000_000_000 });
  });

  it('reads back what thinlayer writes for directory sources', async () => {
    const base: WritableEntry = {
      name: '',
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: 0,
      mtime: 1_700_000_000,
      linkname: '',
      devmajor: 0,
      devminor: 0,
      xattrs: [],
    };
    const longName = `${'sub/'.repeat(40)}file-with-a-name-well-over-a-hundred-bytes`;
    const written: WritableEntry[] = [
      { ...base, name: 'dir/', type: 'dir', mode: 0o2775 },
      {
        ...base,
        name: longName,
        size: 5,
        uid: 10_000_000,
        xattrs: [
          ['user.a', Buffer.from('1')],
          ['user.b', Buffer.alloc(300, 7)],
        ],
      },
      { ...base, name: 'link', type: 'symlink', linkname: longName },
      { ...base, name: 'dev/null', type: 'char', devmajor: 1, devminor: 3 },
    ];
    const bytes = Buffer.concat(
      written.flatMap((e) => (e.type === 'file' ? [entryHeader(e), Buffer.from('hello'), contentPadding(5)] : [entryHeader(e)])).concat([END_OF_ARCHIVE]),
    );
    const got = await readAll(bytes);
    expect(got.map((e) => e.header.name)).toEqual(['dir/', longName, 'link', 'dev/null']);
    expect(got[0].header.mode).toBe(0o2775);
    expect(got[1]).toMatchObject({ header: { uid: 10_000_000, size: 5 }, content: 'hello' });
    expect([...got[1].header.xattrs]).toEqual([
      ['user.a', Buffer.from('1')],
      ['user.b', Buffer.alloc(300, 7)],
    ]);
    expect(got[2].header.linkname).toBe(longName);
    expect(got[3].header).toMatchObject({ type: 'char', devmajor: 1, devminor: 3 });
  });

  it('refuses what does not parse, naming the entry where it can', async () => {
    const refusal = async (data: Buffer) => {
      try {
        await readAll(data);
      } catch (e) {
        expect(e).toBeInstanceOf(TarFormatError);
        return { message: (e as Error).message, entry: (e as TarFormatError).entry };
      }
      throw new Error('expected a refusal');
    };
    expect(await refusal(buildTar([{ name: 'a', content: 'x', badChecksum: true }]))).toMatchObject({
      entry: 'a',
      message: expect.stringMatching(/bad header checksum/),
    });
    expect(await refusal(buildTar([{ name: 'a', content: 'x'.repeat(600) }]).subarray(0, 1024))).toMatchObject({
      entry: 'a',
      message: expect.stringMatching(/ends inside the content of "a" \(512 of 600 bytes\)/),
    });
    expect(await refusal(buildTar([{ name: 'a', content: 'x' }]).subarray(0, 300))).toMatchObject({
      entry: null,
      message: expect.stringMatching(/ends inside a header \(300 of 512 bytes\)/),
    });
    expect(await refusal(buildTar([{ name: 'x', content: 'x', pax: { path: 'y' } }]).subarray(0, 1024 + 1024))).toMatchObject({
      message: expect.stringMatching(/ends inside|end-of-archive/),
    });
    expect((await refusal(Buffer.concat([buildTar([{ name: 'p', pax: { path: 'q' } }]).subarray(0, 1024), Buffer.alloc(1024)]))).message).toMatch(
      /ends after an extended header/,
    );
    expect((await refusal(buildTar([{ name: 'e', content: 'x', pax: { size: 'twelve' } }]))).message).toMatch(/PAX size is not a whole number/);
    expect((await refusal(buildTar([{ name: 'odd', typeflag: 'Q' }]))).message).toMatch(/unsupported entry type "Q"/);
  });
});

describe('readTar bounds the metadata it holds for one entry', () => {
  it('refuses extended headers beyond the cap after reading no more than the cap, naming the entry', async () => {
    // Endless PAX headers of 256 KiB, each with a key of its own, in front of an entry that never
    // comes (entryBytes writes the PAX header, then the entry's header, which is cut off).
    let produced = 0;
    async function* endless(): AsyncGenerator<Buffer> {
      for (let i = 0; ; i++) {
        const bytes = entryBytes({ name: `PaxHeader${i}`, typeflag: 'x', pax: { [`SCHILY.xattr.user.k${i}`]: Buffer.alloc(256 * 1024, 7) } }).subarray(0, -512);
        produced += bytes.length;
        yield bytes;
      }
    }
    const error = await (async () => {
      for await (const _ of readTar(endless())) void _;
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TarFormatError);
    expect((error as TarFormatError).message).toMatch(
      /extended headers and long names of \d+ bytes for one entry are more than thinlayer accepts \(1048576 bytes\)/,
    );
    expect((error as TarFormatError).entry).toBe('PaxHeader');
    expect(produced).toBeLessThan(MAX_PENDING_META_BYTES + 2 * 256 * 1024);
  });

  it('counts PAX records and GNU long names together, and names the entry they describe', async () => {
    const third = MAX_PENDING_META_BYTES / 3;
    const over = Buffer.concat([
      entryBytes({ name: 'x1', typeflag: 'x', pax: { path: 'the/entry', 'SCHILY.xattr.user.a': Buffer.alloc(third, 1) } }).subarray(0, -512),
      entryBytes({ name: 'x2', typeflag: 'x', pax: { 'SCHILY.xattr.user.b': Buffer.alloc(third, 2) } }).subarray(0, -512),
      entryBytes({ name: `${'n'.repeat(third)}`, gnuLongName: true }).subarray(0, -512),
      buildTar([{ name: 'f', content: 'x' }]),
    ]);
    await expect(readAll(over, 4096)).rejects.toMatchObject({ entry: 'the/entry', message: expect.stringMatching(/more than thinlayer accepts/) });
    // Just under the cap, and the same again for the next entry: each entry has a cap of its own.
    const under = (name: string) => entryBytes({ name, content: 'c', pax: { 'SCHILY.xattr.user.a': Buffer.alloc(MAX_PENDING_META_BYTES - 1024, 1) } });
    const got = await readAll(Buffer.concat([under('one'), under('two'), Buffer.alloc(1024)]), 65536);
    expect(got.map((e) => [e.header.name, e.header.xattrs.get('user.a')?.length])).toEqual([
      ['one', MAX_PENDING_META_BYTES - 1024],
      ['two', MAX_PENDING_META_BYTES - 1024],
    ]);
  });
});

describe('parsePaxRecords', () => {
  it('keeps binary values and refuses bad lengths', () => {
    expect(parsePaxRecords(Buffer.from('11 path=ab\n'))).toEqual(new Map([['path', Buffer.from('ab')]]));
    expect(() => parsePaxRecords(Buffer.from('12 path=ab\n'))).toThrow(/bad record length/);
    expect(() => parsePaxRecords(Buffer.from('9 =value\n'))).toThrow(/without a key/);
    expect(BLOCK).toBe(512);
  });
});

describe('progressMeter', () => {
  it('reports at most every 100 ms of its clock, and once at the end', () => {
    let clock = 0;
    const calls: [number, number][] = [];
    const meter = progressMeter(
      1000,
      (done, total) => calls.push([done, total]),
      () => clock,
    );
    meter.advance(100); // first report at once
    clock = 50;
    meter.advance(100); // too soon
    clock = 150;
    meter.advance(100);
    meter.advance(100); // too soon
    meter.finish();
    expect(calls).toEqual([
      [100, 1000],
      [300, 1000],
      [1000, 1000],
    ]);
  });
});
