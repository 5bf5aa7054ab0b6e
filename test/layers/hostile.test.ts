import { existsSync, lstatSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LayerContentError, applyLayer, resolveLayerSource, type ApplyOptions, type ResolvedLayer } from '../../src/layers/index.ts';
import { UserError } from '../../src/errors/index.ts';
import { buildTar, entryBytes, gzip, zstd, type Entry } from './tar-builder.ts';
import { checkTarStream } from '../../src/layers/content-check.ts';
import { workspace, type Workspace } from './helpers.ts';

/** Where a refusal is expected: when the source is hashed (plan time) as well as by the extractor, or by the extractor alone. */
type Stage = 'hash-and-apply' | 'apply';

function expectRefusal(error: unknown, entry: string | null, pattern: RegExp, path: string): LayerContentError {
  expect(error).toBeInstanceOf(LayerContentError);
  const refusal = error as LayerContentError;
  expect(refusal).toBeInstanceOf(UserError);
  expect(refusal.exitCode).toBe(2);
  expect(refusal.entry).toBe(entry);
  expect(refusal.layer).toBe(path);
  if (entry !== null) expect(refusal.message).toContain(JSON.stringify(entry));
  expect(refusal.message).toMatch(pattern);
  return refusal;
}

/**
 * Expects a refusal naming `entry`, with nothing outside the root touched: from resolveLayerSource
 * (the check made when the source is hashed, before any step), and from the extractor given the same
 * archive unchecked (what a lower layer or a source changed after hashing can still bring).
 */
async function expectRefused(
  ws: Workspace,
  archive: Buffer,
  entry: string | null,
  pattern: RegExp,
  opts: ApplyOptions = {},
  swapTo?: Buffer,
  stage: Stage = 'hash-and-apply',
): Promise<LayerContentError> {
  const name = `hostile-${Math.random().toString(36).slice(2)}.tar`;
  let layer: ResolvedLayer;
  if (swapTo) {
    // Damage that resolve would catch is put in place after it, to see that apply catches it too.
    layer = await ws.layer(name, archive);
    writeFileSync(layer.path, swapTo);
  } else {
    if (stage === 'hash-and-apply') {
      const atHash = await ws.layer(name, archive, { maxBytes: opts.maxBytes, allowDevices: opts.allowDevices }).then(
        () => null,
        (e: unknown) => e,
      );
      expectRefusal(atHash, entry, pattern, join(ws.sources, name));
    }
    layer = ws.uncheckedLayer(name, archive);
  }
  const error = await applyLayer(layer, ws.root, { expectDiffId: null, ...opts }).then(
    () => null,
    (e: unknown) => e,
  );
  const refusal = expectRefusal(error, entry, pattern, layer.path);
  expect(ws.sentinelContents()).toEqual(['keep']);
  expect(readFileSync(join(ws.sentinel, 'keep'), 'utf8')).toBe('sentinel');
  expect(readdirSync(ws.base).sort()).toEqual(['root', 'sentinel', 'sources']);
  return refusal;
}

/** A symlink whose absolute target is the sentinel's host path: inside the root as a container reads it. */
const toSentinel = (ws: Workspace, name = 'link'): Entry => ({ name, type: 'symlink', linkname: ws.sentinel });

describe('applyLayer refuses hostile content', () => {
  it('refuses absolute names and names with ..', async () => {
    const ws = workspace();
    await expectRefused(ws, buildTar([{ name: join(ws.sentinel, 'pwned'), content: 'x' }]), join(ws.sentinel, 'pwned'), /absolute/);
    await expectRefused(ws, buildTar([{ name: '../sentinel/pwned', content: 'x' }]), '../sentinel/pwned', /"\.\."/);
    await expectRefused(ws, buildTar([{ name: 'a/b/../../../sentinel/pwned', content: 'x' }]), 'a/b/../../../sentinel/pwned', /"\.\."/);
    await expectRefused(ws, buildTar([{ name: 'a/.wh...' }]), 'a/.wh...', /a whiteout of "\.\." is not a name/);
    // The same through a PAX path and a GNU long name, which override the header's own name.
    await expectRefused(ws, buildTar([{ name: 'innocent', content: 'x', pax: { path: '../sentinel/pwned' } }]), '../sentinel/pwned', /"\.\."/);
    const long = `${'d/'.repeat(60)}${'../'.repeat(62)}sentinel/pwned`;
    await expectRefused(ws, buildTar([{ name: long, content: 'x', gnuLongName: true }]), long, /"\.\."/);
  });

  it('refuses symlinks whose targets escape the root, also through an earlier symlink', async () => {
    const ws = workspace();
    await expectRefused(ws, buildTar([{ name: 'link', type: 'symlink', linkname: '../sentinel' }]), 'link', /leads outside the layer root/);
    await expectRefused(ws, buildTar([{ name: 'a/b/link', type: 'symlink', linkname: '../../../sentinel/keep' }]), 'a/b/link', /leads outside/);
    await expectRefused(ws, buildTar([{ name: 'link', type: 'symlink', linkname: '/../../sentinel' }]), 'link', /leads outside/);
    // `d/up` stays inside (it is the root), but going up from it leaves.
    await expectRefused(
      ws,
      buildTar([
        { name: 'd/up', type: 'symlink', linkname: '..' },
        { name: 'x', type: 'symlink', linkname: 'd/up/../sentinel' },
      ]),
      'x',
      /leads outside/,
    );
    // Loops are refused rather than followed forever.
    await expectRefused(
      ws,
      buildTar([
        { name: 'l1', type: 'symlink', linkname: 'l2/x' },
        { name: 'l2', type: 'symlink', linkname: 'l1/x' },
        { name: 'l3', type: 'symlink', linkname: 'l1' },
      ]),
      'l3',
      /more than 40 symlinks/,
    );
  });

  it('never writes through a symlink, whether this layer or a lower one made it', async () => {
    const ws = workspace();
    await expectRefused(ws, buildTar([toSentinel(ws), { name: 'link/pwned', content: 'x' }]), 'link/pwned', /parent link is a symlink/);
    // A lower layer's symlink.
    await applyLayer(await ws.layer('lower.tar', buildTar([toSentinel(ws, 'etc')])), ws.root);
    await expectRefused(ws, buildTar([{ name: 'etc/passwd', content: 'x' }]), 'etc/passwd', /parent etc is a symlink/, {}, undefined, 'apply');
    await expectRefused(ws, buildTar([{ name: 'etc/.wh.keep' }]), 'etc/.wh.keep', /symlink/, {}, undefined, 'apply');
    await expectRefused(ws, buildTar([{ name: 'etc/.wh..wh..opq' }]), 'etc/.wh..wh..opq', /symlink/, {}, undefined, 'apply');
    await expectRefused(ws, buildTar([{ name: 'etc/sub/', type: 'dir' }]), 'etc/sub/', /symlink/, {}, undefined, 'apply');
    // Replacing the symlink itself is fine: it is removed, not followed.
    await applyLayer(
      await ws.layer(
        'replace.tar',
        buildTar([
          { name: 'etc', type: 'dir' },
          { name: 'etc/passwd', content: 'ok' },
        ]),
      ),
      ws.root,
    );
    expect(readFileSync(join(ws.root, 'etc/passwd'), 'utf8')).toBe('ok');
    expect(ws.sentinelContents()).toEqual(['keep']);
  });

  it('refuses hardlinks to anything but a regular file inside the root', async () => {
    const ws = workspace();
    await expectRefused(ws, buildTar([{ name: 'h', type: 'hardlink', linkname: '../sentinel/keep' }]), 'h', /hardlink target contains "\.\."/);
    await expectRefused(ws, buildTar([{ name: 'h', type: 'hardlink', linkname: join(ws.sentinel, 'keep') }]), 'h', /hardlink target is absolute/);
    await expectRefused(ws, buildTar([toSentinel(ws), { name: 'h', type: 'hardlink', linkname: 'link/keep' }]), 'h', /parent link is a symlink/);
    await expectRefused(ws, buildTar([toSentinel(ws), { name: 'h', type: 'hardlink', linkname: 'link' }]), 'h', /not a regular file/);
    await expectRefused(
      ws,
      buildTar([
        { name: 'dir/', type: 'dir' },
        { name: 'h', type: 'hardlink', linkname: 'dir' },
      ]),
      'h',
      /not a regular file/,
    );
    await expectRefused(
      ws,
      buildTar([
        { name: 'h', type: 'hardlink', linkname: 'later' },
        { name: 'later', content: 'x' },
      ]),
      'h',
      /does not exist/,
      {},
      undefined,
      'apply',
    );
    await expectRefused(
      ws,
      buildTar([
        { name: 'same', content: 'x' },
        { name: 'same', type: 'hardlink', linkname: 'same' },
      ]),
      'same',
      /itself/,
    );
  });

  it('refuses device nodes and fifos unless allowed', async () => {
    const ws = workspace();
    const devices = buildTar([
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop9', type: 'block', devmajor: 7, devminor: 9, mode: 0o660, gid: 6 },
      { name: 'run/pipe', type: 'fifo', mode: 0o620 },
    ]);
    await expectRefused(ws, devices, 'dev/null', /device node is not allowed/);
    await expectRefused(ws, buildTar([{ name: 'run/pipe', type: 'fifo' }]), 'run/pipe', /fifo is not allowed/);
    await applyLayer(await ws.layer('devices.tar', devices, { allowDevices: true }), ws.root, { allowDevices: true });
    const nullDev = lstatSync(join(ws.root, 'dev/null'));
    expect(nullDev.isCharacterDevice()).toBe(true);
    expect(nullDev.rdev).toBe(lstatSync('/dev/null').rdev);
    expect(nullDev.mode & 0o7777).toBe(0o666);
    expect(lstatSync(join(ws.root, 'dev/loop9'))).toMatchObject({ gid: 6 });
    expect(lstatSync(join(ws.root, 'dev/loop9')).isBlockDevice()).toBe(true);
    expect(lstatSync(join(ws.root, 'run/pipe')).isFIFO()).toBe(true);
  });

  it('refuses content larger than the device', async () => {
    const ws = workspace();
    const archive = buildTar([
      { name: 'small', content: 'x' },
      { name: 'big', content: Buffer.alloc(100_000, 1) },
    ]);
    await expectRefused(ws, archive, 'big', /larger than the 65536 bytes/, { maxBytes: 65536 });
    expect(existsSync(join(ws.root, 'big'))).toBe(false); // refused before a byte of it was written
    // Header-only bloat (millions of empty entries) is bounded too, by the stream itself.
    const bloat = buildTar(Array.from({ length: 300 }, (_, i) => ({ name: `e${i}`, type: 'dir' as const })));
    await expectRefused(ws, gzip(bloat), null, /larger than the 65536 bytes/, { maxBytes: 65536 });
  });

  it('refuses content that is not what its diff id says', async () => {
    const ws = workspace();
    const archive = buildTar([{ name: 'a', content: 'a' }]);
    await expectRefused(
      ws,
      archive,
      null,
      /has diff id sha256:[0-9a-f]{64}, expected sha256:0{64}/,
      { expectDiffId: `sha256:${'0'.repeat(64)}` },
      undefined,
      'apply',
    );
    // A source replaced after it was resolved.
    const layer = await ws.layer('swapped.tar', archive);
    writeFileSync(layer.path, buildTar([{ name: 'a', content: 'b' }]));
    await expect(applyLayer(layer, ws.root)).rejects.toMatchObject({ code: 'E_LAYER_DIGEST', entry: null });
  });

  it('refuses truncated and corrupt archives', async () => {
    const ws = workspace();
    const good = buildTar([
      { name: 'a', content: 'x'.repeat(3000) },
      { name: 'b', content: 'y' },
    ]);
    await expectRefused(ws, good.subarray(0, 512 + 1000), 'a', /truncated: it ends inside the content of "a"/);
    await expectRefused(ws, buildTar([{ name: 'a', content: 'x' }], { end: false }), null, /without its end-of-archive blocks/);
    await expectRefused(ws, Buffer.concat([buildTar([{ name: 'a', content: 'x' }], { end: false }), Buffer.alloc(512)]), null, /zero block is not followed/);
    await expectRefused(ws, good.subarray(0, 700), 'a', /truncated/);
    await expectRefused(
      ws,
      buildTar([
        { name: 'a', content: 'x' },
        { name: 'b', content: 'y', badChecksum: true },
      ]),
      'b',
      /bad header checksum/,
    );
    await expectRefused(ws, buildTar([{ name: 'sparse', typeflag: 'S' }]), 'sparse', /unsupported entry type "S" \(a GNU sparse file\)/);
    await expectRefused(ws, buildTar([{ name: 'p', content: 'x', pax: { 'GNU.sparse.major': '1' } }]), 'p', /sparse files are not supported/);
    const gz = gzip(good);
    const damaged = Buffer.from(gz);
    damaged[20] ^= 0xff;
    damaged[21] ^= 0xff;
    const zs = zstd(good);
    for (const [intact, broken, pattern] of [
      [gz, gz.subarray(0, gz.length - 20), /gzip data is corrupt or truncated \(unexpected end of file\)/],
      [gz, damaged, /gzip data is corrupt or truncated/],
      [zs, zs.subarray(0, zs.length - 10), /zstd data is corrupt or truncated \(zstd: .+\)/],
    ] as const) {
      await expectRefused(ws, intact, null, pattern, {}, broken);
      writeFileSync(join(ws.sources, 'broken'), broken);
      await expect(resolveLayerSource('broken', ws.sources)).rejects.toThrow(pattern);
    }
  });

  it('refuses more PAX and long-name metadata for one entry than its cap', async () => {
    const ws = workspace();
    // 64 PAX headers of 256 KiB (16 MiB held by a reader without a cap), a gzip of a few dozen KiB.
    const headers = Array.from({ length: 64 }, (_, i) =>
      entryBytes({ name: 'PaxHeader', typeflag: 'x', pax: { path: 'victim', [`SCHILY.xattr.user.k${i}`]: Buffer.alloc(256 * 1024, 1) } }).subarray(0, -512),
    );
    const bomb = gzip(Buffer.concat([...headers, buildTar([{ name: 'victim', content: 'x' }])]));
    expect(bomb.length).toBeLessThan(256 * 1024);
    await expectRefused(ws, bomb, 'victim', /extended headers and long names of \d+ bytes for one entry are more than thinlayer accepts \(1048576 bytes\)/);
  });

  it('is refused by resolve when the file is not an archive thinlayer reads', async () => {
    const ws = workspace();
    writeFileSync(join(ws.sources, 'notes.txt'), 'hello');
    await expect(resolveLayerSource('notes.txt', ws.sources)).rejects.toThrow(/neither a tar archive nor gzip or zstd data/);
    writeFileSync(join(ws.sources, 'x.tar.xz'), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2]));
    await expect(resolveLayerSource('x.tar.xz', ws.sources)).rejects.toThrow(/xz-compressed data/);
  });
});

describe('applyLayer after a refusal', () => {
  it('leaves no decompressor running', async () => {
    const ws = workspace();
    // The refusal comes first; megabytes of content follow that zstd would still be decompressing.
    const archive = zstd(
      buildTar([{ name: '/abs', content: 'x' }, ...Array.from({ length: 8 }, (_, i) => ({ name: `f${i}`, content: Buffer.alloc(1 << 20, i) }))]),
    );
    await expectRefused(ws, archive, '/abs', /absolute/);
    const children = readdirSync('/proc')
      .filter((pid) => /^\d+$/.test(pid))
      .filter((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          return stat.includes('(zstd)') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid;
        } catch {
          return false;
        }
      });
    expect(children).toEqual([]);
  });
});

describe('applyLayer with an abort signal', () => {
  it("stops inside a large file with the signal's reason", async () => {
    const ws = workspace();
    const layer = await ws.layer(
      'big.tar.gz',
      gzip(
        buildTar([
          { name: 'big', content: Buffer.alloc(4 << 20, 3) },
          { name: 'after', content: 'x' },
        ]),
      ),
    );
    const controller = new AbortController();
    const seen: number[] = [];
    const error = await applyLayer(layer, ws.root, {
      signal: controller.signal,
      onProgress: (done) => {
        seen.push(done);
        controller.abort(new Error('stopped by the user'));
      },
    }).catch((e: unknown) => e);
    expect((error as Error).message).toBe('stopped by the user');
    expect(seen.length).toBe(1);
    expect(existsSync(join(ws.root, 'after'))).toBe(false);
  });
});

describe('applyLayer within one layer', () => {
  it('checks a directory afresh once an entry replaced it', async () => {
    const ws = workspace();
    // `a` is checked as a directory for `a/x`, then replaced by a symlink: `a/y` must not go through it.
    await expectRefused(ws, buildTar([{ name: 'a/x', content: 'x' }, toSentinel(ws, 'a'), { name: 'a/y', content: 'y' }]), 'a/y', /parent a is a symlink/);
    await expectRefused(
      ws,
      buildTar([{ name: 'd/sub/f', content: 'x' }, { name: 'd/.wh.sub' }, toSentinel(ws, 'd/sub'), { name: 'd/sub/pwned', content: 'y' }]),
      'd/sub/pwned',
      /parent d\/sub is a symlink/,
    );
    await expectRefused(
      ws,
      buildTar([{ name: 'o/sub/f', content: 'x' }, { name: 'o/.wh..wh..opq' }, toSentinel(ws, 'o/sub'), { name: 'o/sub/pwned', content: 'y' }]),
      'o/sub/pwned',
      /parent o\/sub is a symlink/,
    );
  });

  it('sets no directory time outside the root when a later entry replaces a parent with a symlink', async () => {
    const ws = workspace();
    const hostTime = new Date('2030-01-02T03:04:05Z');
    utimesSync(ws.sentinel, hostTime, hostTime);
    // `x/sentinel/` is a directory of the layer, then `x` becomes a symlink to the sentinel's parent:
    // by path, `x/sentinel` is now the host's sentinel directory.
    const archive = buildTar([
      { name: 'x/', type: 'dir', mtime: 1_000 },
      { name: 'x/sentinel/', type: 'dir', mtime: 1_000 },
      { name: 'x', type: 'symlink', linkname: ws.base },
      { name: 'kept/', type: 'dir', mtime: 2_000 },
      { name: 'kept/deep/', type: 'dir', mtime: 3_000 },
      { name: 'kept/deep/f', content: 'f' },
    ]);
    await applyLayer(await ws.layer('swap.tar', archive), ws.root);
    expect(statSync(ws.sentinel).mtime).toEqual(hostTime);
    expect(lstatSync(join(ws.root, 'x')).isSymbolicLink()).toBe(true);
    // The layer's own directories still get their times, after the entries written inside them.
    expect(lstatSync(join(ws.root, 'kept')).mtimeMs).toBe(2_000_000);
    expect(lstatSync(join(ws.root, 'kept/deep')).mtimeMs).toBe(3_000_000);
    // A directory replaced by a file, or under a parent replaced by one, is skipped: the file keeps its own time.
    await applyLayer(
      await ws.layer(
        'to-file.tar',
        buildTar([
          { name: 'd/', type: 'dir', mtime: 1_000 },
          { name: 'd/sub/', type: 'dir', mtime: 1_000 },
          { name: 'd', content: 'f', mtime: 5_000 },
        ]),
      ),
      ws.root,
    );
    expect(lstatSync(join(ws.root, 'd')).isFile()).toBe(true);
    expect(lstatSync(join(ws.root, 'd')).mtimeMs).toBe(5_000_000);
  });

  it('keeps entries under directories the layer only implies when their parent turns opaque', async () => {
    const ws = workspace();
    await applyLayer(
      await ws.layer(
        'lower.tar',
        buildTar([
          { name: 'o/sub/lower', content: 'l' },
          { name: 'o/gone', content: 'g' },
        ]),
      ),
      ws.root,
    );
    await applyLayer(
      await ws.layer('upper.tar', buildTar([{ name: 'o/sub/upper', content: 'u' }, { name: 'o/new/deep/f', content: 'n' }, { name: 'o/.wh..wh..opq' }])),
      ws.root,
    );
    expect(readdirSync(join(ws.root, 'o')).sort()).toEqual(['new', 'sub']);
    expect(readdirSync(join(ws.root, 'o/sub'))).toEqual(['upper']);
    expect(readFileSync(join(ws.root, 'o/new/deep/f'), 'utf8')).toBe('n');
  });
});

describe('resolveLayerSource checks content as it hashes it', () => {
  it('stops a decompression bomb at the device size, without inflating the rest', async () => {
    const ws = workspace();
    // 16 MiB of zeros in one entry compress to about 16 KiB; the header alone says it is too large.
    const one = gzip(buildTar([{ name: 'zeros', content: Buffer.alloc(16 << 20) }]));
    const refused = await ws.layer('bomb.tar.gz', one, { maxBytes: 1 << 20 }).catch((e: unknown) => e);
    expectRefusal(refused, 'zeros', /larger than the 1048576 bytes its device holds/, join(ws.sources, 'bomb.tar.gz'));
    // An endless stream (entries, then zeros after the end blocks) is read only up to the limit.
    const pulled = { bytes: 0 };
    async function* endless(head: Buffer): AsyncGenerator<Buffer> {
      pulled.bytes += head.length;
      yield head;
      for (;;) {
        pulled.bytes += 65536;
        yield Buffer.alloc(65536);
      }
    }
    const small = buildTar([{ name: 'a', content: 'x' }]);
    const trailing = await checkTarStream(endless(small), 'endless', { maxBytes: 1 << 20 }).catch((e: unknown) => e);
    expect(trailing).toBeInstanceOf(LayerContentError);
    expect((trailing as Error).message).toMatch(/larger than the 1048576 bytes/);
    expect(pulled.bytes).toBeLessThanOrEqual((1 << 20) + 2 * 65536);
    // Innocent entries one after another, each within the limit, are cut where their sum passes it.
    const many = buildTar(Array.from({ length: 64 }, (_, i) => ({ name: `f${i}`, content: Buffer.alloc(1 << 20) })));
    const second = await ws.layer('many.tar.gz', gzip(many), { maxBytes: 4 << 20 }).catch((e: unknown) => e);
    expectRefusal(second, 'f3', /larger than the 4194304 bytes its device holds/, join(ws.sources, 'many.tar.gz'));
  });

  it('counts what it checked, and judges a remembered digest against the current rules', async () => {
    const ws = workspace();
    const devices = buildTar([
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3 },
      { name: 'f', content: Buffer.alloc(10_000, 1) },
    ]);
    const layer = await ws.layer('devices.tar', devices, { allowDevices: true, maxBytes: 1 << 20 });
    expect(layer).toMatchObject({ deviceNodes: true, expandedBytes: devices.length });
    const remembered = new Map<string, ResolvedLayer>();
    const digests = { lookup: (p: string) => remembered.get(p) ?? null, remember: (p: string, _i: string, l: ResolvedLayer) => void remembered.set(p, l) };
    await resolveLayerSource('devices.tar', ws.sources, {}, digests, { allowDevices: true });
    expect(remembered.size).toBe(1);
    // The file is not read again, but the rules are applied again to what was counted.
    await expect(resolveLayerSource('devices.tar', ws.sources, {}, digests, { allowDevices: false })).rejects.toThrow(/device nodes or fifos/);
    await expect(resolveLayerSource('devices.tar', ws.sources, {}, digests, { allowDevices: true, maxBytes: 8192 })).rejects.toThrow(
      /larger than the 8192 bytes/,
    );
    // A digest remembered without the counts (an older release's, taken without the checks) is taken again.
    const { expandedBytes: _e, deviceNodes: _d, ...unchecked } = remembered.get(layer.path)!;
    remembered.set(layer.path, unchecked);
    await expect(resolveLayerSource('devices.tar', ws.sources, {}, digests, { allowDevices: false })).rejects.toMatchObject({ entry: 'dev/null' });
  });
});
