import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyLayer, resolveLayerSource } from '../../src/layers/index.ts';
import { lgetxattr, lsetxattr } from '../../src/host/libc.ts';
import { buildTar, gzip, sha256, zstd } from './tar-builder.ts';
import { workspace } from './helpers.ts';

const T1 = 1_500_000_000;
const T2 = 1_600_000_000;
const T3 = 1_700_000_000;

const lower = buildTar([
  { name: 'etc/', type: 'dir', mode: 0o755, mtime: T1 },
  { name: 'etc/passwd', content: 'root:x:0:0\n', mode: 0o644, mtime: T1 },
  { name: 'etc/shadow', content: 'root:*:1\n', mode: 0o600, gid: 42, mtime: T1 },
  { name: 'usr/bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o4755, uid: 1234, gid: 5678, mtime: T1 + 7 },
  { name: 'usr/bin/old', content: 'old', mode: 0o755 },
  { name: 'opt/', type: 'dir' },
  { name: 'opt/lower-a', content: 'a' },
  { name: 'opt/sub/', type: 'dir' },
  { name: 'opt/sub/lower-b', content: 'b' },
  { name: 'tmp/', type: 'dir', mode: 0o1777 },
  { name: 'data/deep/file', content: 'x'.repeat(5000) },
]);

const middle = buildTar([
  { name: 'etc/passwd', content: 'root:x:0:0\nweb:x:1234:5678\n', mode: 0o644, mtime: T2 },
  { name: 'etc/localtime', type: 'symlink', linkname: '/usr/share/zoneinfo/UTC', mtime: T2 },
  { name: 'usr/bin/.wh.old' },
  { name: 'usr/bin/tool-link', type: 'symlink', linkname: 'tool' },
  { name: 'usr/bin/tool-hard', type: 'hardlink', linkname: 'usr/bin/tool' },
  { name: 'opt/', type: 'dir', mtime: T2 },
  // The layer's own entries in an opaque directory stay, whether they come before or after the marker.
  { name: 'opt/new', content: 'new', pax: { 'SCHILY.xattr.user.origin': 'layer 2' } },
  { name: 'opt/.wh..wh..opq' },
  { name: 'opt/sub/', type: 'dir' },
  { name: 'opt/sub/upper-c', content: 'c' },
]);

const upper = buildTar([
  { name: '.wh.data' },
  { name: 'usr/bin/tool-link', content: 'now a file', mode: 0o755 },
  { name: 'srv/', type: 'dir', mode: 0o750, uid: 1234, gid: 5678, mtime: T3 },
  { name: 'srv/a', content: 'shared', mode: 0o640, uid: 1234, gid: 5678, mtime: T3 },
  { name: 'srv/b', type: 'hardlink', linkname: 'srv/a' },
  { name: 'srv/sub/inner', content: 'written after srv/ was set up' },
]);

describe('applyLayer: a chain of three layers in one root', () => {
  it('overwrites, whites out, makes opaque directories, links, and keeps modes, owners and times', async () => {
    const ws = workspace();
    const layers = [await ws.layer('lower.tar', lower), await ws.layer('middle.tar.gz', gzip(middle)), await ws.layer('upper.tar.zst', zstd(upper))];
    expect(layers.map((l) => l.diffId)).toEqual([sha256(lower), sha256(middle), sha256(upper)]);
    expect(layers[1].compressedDigest).toBe(sha256(gzip(middle)));

    const results = [];
    for (const layer of layers) {
      const progress: [number, number][] = [];
      const result = await applyLayer(layer, ws.root, { onProgress: (done, total) => progress.push([done, total]) });
      expect(result.diffId).toBe(layer.diffId);
      expect(progress.at(-1)).toEqual([layer.sizeBytes, layer.sizeBytes]);
      results.push(result);
    }
    expect(results[0]).toMatchObject({ files: 7, bytes: 11 + 9 + 20 + 3 + 1 + 1 + 5000 });
    expect(results[1].files).toBe(6); // passwd, 2 symlinks, hardlink, opt/new, opt/sub/upper-c

    const at = (p: string) => join(ws.root, p);
    const read = (p: string) => readFileSync(at(p), 'utf8');
    const mode = (p: string) => lstatSync(at(p)).mode & 0o7777;

    // Overwrite.
    expect(read('etc/passwd')).toBe('root:x:0:0\nweb:x:1234:5678\n');
    expect(lstatSync(at('etc/passwd')).mtimeMs).toBe(T2 * 1000);
    // Whiteouts: a file, and a whole directory tree.
    expect(existsSync(at('usr/bin/old'))).toBe(false);
    expect(existsSync(at('data'))).toBe(false);
    // Opaque directory: lower content gone, the layer's own content kept (before and after the marker).
    expect(readdirSync(at('opt')).sort()).toEqual(['new', 'sub']);
    expect(readdirSync(at('opt/sub'))).toEqual(['upper-c']);
    expect(existsSync(at('opt/.wh..wh..opq'))).toBe(false);
    // Symlinks: an absolute target is kept as written (it is resolved inside the container).
    expect(readlinkSync(at('etc/localtime'))).toBe('/usr/share/zoneinfo/UTC');
    expect(lstatSync(at('etc/localtime')).mtimeMs).toBe(T2 * 1000);
    // A symlink replaced by a file in a later layer.
    expect(lstatSync(at('usr/bin/tool-link')).isFile()).toBe(true);
    // Hardlinks: to a file of a lower layer, and within one layer.
    expect(statSync(at('usr/bin/tool-hard')).ino).toBe(statSync(at('usr/bin/tool')).ino);
    expect(statSync(at('srv/b')).ino).toBe(statSync(at('srv/a')).ino);
    expect(statSync(at('srv/a')).nlink).toBe(2);
    // Modes: setuid, sticky, 0600, 0755, 0750.
    expect(mode('usr/bin/tool')).toBe(0o4755);
    expect(mode('tmp')).toBe(0o1777);
    expect(mode('etc/shadow')).toBe(0o600);
    expect(mode('etc')).toBe(0o755);
    expect(mode('srv')).toBe(0o750);
    // Ownership.
    expect(lstatSync(at('usr/bin/tool'))).toMatchObject({ uid: 1234, gid: 5678 });
    expect(lstatSync(at('srv'))).toMatchObject({ uid: 1234, gid: 5678 });
    expect(lstatSync(at('etc/shadow'))).toMatchObject({ uid: 0, gid: 42 });
    // Times: files, and directories even after entries were written inside them.
    expect(lstatSync(at('usr/bin/tool')).mtimeMs).toBe((T1 + 7) * 1000);
    expect(lstatSync(at('srv')).mtimeMs).toBe(T3 * 1000);
    expect(lstatSync(at('etc')).mtimeMs).not.toBe(T1 * 1000); // a later layer wrote into it without an entry for it
    // Xattrs from PAX records.
    expect(lgetxattr(at('opt/new'), 'user.origin').toString()).toBe('layer 2');
  });

  it('applies a directory source as a copy, with the same guarantees and no whiteouts', async () => {
    const ws = workspace();
    const tree = join(ws.base, 'tree');
    mkdirSync(join(tree, 'bin'), { recursive: true });
    mkdirSync(join(tree, 'etc'));
    writeFileSync(join(tree, 'bin/run'), 'run');
    chownSync(join(tree, 'bin/run'), 1234, 5678);
    chmodSync(join(tree, 'bin/run'), 0o4750);
    utimesSync(join(tree, 'bin/run'), T2, T2);
    linkSync(join(tree, 'bin/run'), join(tree, 'bin/run2'));
    symlinkSync('run', join(tree, 'bin/sh'));
    writeFileSync(join(tree, 'etc/.wh.keep-me'), 'a plain file in a directory source', { mode: 0o600 });
    lsetxattr(join(tree, 'etc/.wh.keep-me'), 'user.tag', Buffer.from([0, 1, 2, 255]));
    utimesSync(join(tree, 'bin'), T1, T1);

    const [dirLayer] = await resolveLayerSource('../tree', ws.sources);
    expect(dirLayer).toMatchObject({ kind: 'dir', path: tree, sizeBytes: 3 + 34 });
    const [again] = await resolveLayerSource(tree, '/');
    expect(again.diffId).toBe(dirLayer.diffId); // the walk is deterministic

    const result = await applyLayer(dirLayer, ws.root);
    expect(result).toEqual({ files: 4, bytes: 37, diffId: dirLayer.diffId });
    const at = (p: string) => join(ws.root, p);
    expect(readFileSync(at('bin/run'), 'utf8')).toBe('run');
    expect(lstatSync(at('bin/run'))).toMatchObject({ uid: 1234, gid: 5678, mtimeMs: T2 * 1000 });
    expect(lstatSync(at('bin/run')).mode & 0o7777).toBe(0o4750);
    expect(statSync(at('bin/run2')).ino).toBe(statSync(at('bin/run')).ino);
    expect(readlinkSync(at('bin/sh'))).toBe('run');
    // `.wh.` names in a directory are ordinary files: a directory has no whiteouts.
    expect(readFileSync(at('etc/.wh.keep-me'), 'utf8')).toBe('a plain file in a directory source');
    expect(lgetxattr(at('etc/.wh.keep-me'), 'user.tag')).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(lstatSync(at('bin')).mtimeMs).toBe(T1 * 1000);

    // A directory that changes after it was resolved is refused, not applied as something else.
    writeFileSync(join(tree, 'bin/extra'), 'late');
    mkdirSync(join(ws.base, 'root2'));
    await expect(applyLayer(dirLayer, join(ws.base, 'root2'))).rejects.toMatchObject({ code: 'E_LAYER_DIGEST' });
  });
});
