import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { UserError } from '../../src/errors/index.ts';
import { loadManifest, parseManifest } from '../../src/manifest/load.ts';
import { ManifestError } from '../../src/manifest/manifest-error.ts';

const G = 2 ** 30;
const EXAMPLE = path.resolve(import.meta.dirname, '../../examples/web.yaml');

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-manifest-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The ManifestError that parsing `text` throws. */
function problemsOf(text: string): ManifestError {
  try {
    parseManifest(text, 'm.yaml');
  } catch (e) {
    if (e instanceof ManifestError) return e;
    throw e;
  }
  throw new Error('the manifest was accepted');
}

describe('the example', () => {
  it('loads, with its absolute path and everything it says', async () => {
    const m = await loadManifest(EXAMPLE);
    expect(m.file).toBe(EXAMPLE);
    expect(m.version).toBe(1);
    expect(m.pool).toEqual({
      name: 'demo',
      data: { kind: 'file', file: 'data.img', sizeBytes: 20 * G },
      metadata: { kind: 'file', file: 'metadata.img', sizeBytes: 1 * G },
      blockSizeBytes: 64 * 1024,
      baseSizeBytes: 10 * G,
      filesystem: 'ext4',
      minFreeFraction: 0.1,
      noSpaceTimeoutSeconds: 60,
    });
    expect(m.layers).toEqual([
      { name: 'fedora', parent: null },
      { name: 'apache', parent: 'fedora' },
    ]);
    expect(m.devices).toEqual([
      { name: 'web1', layer: 'apache', state: 'mounted', mountpoint: '/run/thinlayer/web1', sizeBytes: null },
      { name: 'web2', layer: 'apache', state: 'activated', mountpoint: null, sizeBytes: null },
    ]);
  });
});

describe('defaults', () => {
  it('fills every pool setting and allows no layers or devices', () => {
    const m = parseManifest('pool: { name: p }\n', 'm.yaml');
    expect(m).toEqual({
      file: 'm.yaml',
      version: 1,
      pool: {
        name: 'p',
        data: { kind: 'file', file: 'data.img', sizeBytes: 100 * G },
        metadata: { kind: 'file', file: 'metadata.img', sizeBytes: 2 * G },
        blockSizeBytes: 64 * 1024,
        baseSizeBytes: 10 * G,
        filesystem: 'ext4',
        minFreeFraction: 0.1,
        noSpaceTimeoutSeconds: 60,
      },
      layers: [],
      devices: [],
    });
  });

  it('treats empty layers and devices sections as none', () => {
    const m = parseManifest('pool: { name: p }\nlayers:\ndevices:\n', 'm.yaml');
    expect(m.layers).toEqual([]);
    expect(m.devices).toEqual([]);
  });

  it('gives a device the state mounted when it has a mountpoint, activated otherwise', () => {
    const m = parseManifest(
      'pool: { name: p }\nlayers: { l: }\ndevices:\n  a: { layer: l, mountpoint: /mnt/a/ }\n  b: { layer: l }\n  c: { layer: l, state: created, size: 12G }\n',
      'm.yaml',
    );
    expect(m.layers).toEqual([{ name: 'l', parent: null }]);
    expect(m.devices).toEqual([
      { name: 'a', layer: 'l', state: 'mounted', mountpoint: '/mnt/a', sizeBytes: null },
      { name: 'b', layer: 'l', state: 'activated', mountpoint: null, sizeBytes: null },
      { name: 'c', layer: 'l', state: 'created', mountpoint: null, sizeBytes: 12 * G },
    ]);
  });

  it("takes a device's mountOptions once each, in order, and leaves them out when none are given", () => {
    const m = parseManifest(
      'pool: { name: p }\nlayers: { l: }\ndevices:\n  a: { layer: l, mountpoint: /mnt/a, mountOptions: [suid, dev, suid] }\n  b: { layer: l, mountOptions: [] }\n',
      'm.yaml',
    );
    expect(m.devices.map((d) => d.mountOptions)).toEqual([['dev', 'suid'], undefined]);
  });

  it('fills a partly given backing from the defaults, and takes device backings and other settings as given', () => {
    const m = parseManifest(
      'version: 1\npool:\n  name: p\n  data: { size: 1T }\n  metadata: { device: /dev/vdb }\n  blockSize: 1M\n  baseSize: 300M\n  filesystem: xfs\n  minFree: 2.5%\n',
      'm.yaml',
    );
    expect(m.pool).toEqual({
      name: 'p',
      data: { kind: 'file', file: 'data.img', sizeBytes: 1024 * G },
      metadata: { kind: 'device', device: '/dev/vdb' },
      blockSizeBytes: 2 ** 20,
      baseSizeBytes: 300 * 2 ** 20,
      filesystem: 'xfs',
      minFreeFraction: 0.025,
      noSpaceTimeoutSeconds: 60,
    });
  });

  it('resolves a layer source relative to the manifest directory', () => {
    const m = parseManifest('pool: { name: p }\nlayers:\n  a: { source: rootfs/a }\n  b: { source: /srv/b }\n', '/etc/thinlayer/m.yaml');
    expect(m.layers).toEqual([
      { name: 'a', parent: null, source: '/etc/thinlayer/rootfs/a' },
      { name: 'b', parent: null, source: '/srv/b' },
    ]);
  });
});

describe('layer order', () => {
  it('puts parents before children whatever the order in the file', () => {
    const m = parseManifest(
      'pool: { name: p }\nlayers:\n  app: { parent: runtime }\n  runtime: { parent: os }\n  extra: {}\n  os: {}\n  tools: { parent: os }\n',
      'm.yaml',
    );
    expect(m.layers.map((l) => l.name)).toEqual(['os', 'runtime', 'app', 'extra', 'tools']);
    const position = new Map(m.layers.map((l, i) => [l.name, i]));
    for (const layer of m.layers) if (layer.parent) expect(position.get(layer.parent)).toBeLessThan(position.get(layer.name)!);
  });
});

// Each bad manifest, the dotted path of the problem, and a fragment of what is said about it.
const POOL = 'pool: { name: p }\n';
const LAYERS = 'layers: { os: {} }\n';
const BAD: [string, string, string, string][] = [
  ['a syntax error', 'pool: [1,\n', '', 'expected valid YAML'],
  ['two documents', 'pool: { name: p }\n---\npool: { name: q }\n', '', 'more than one document'],
  ['an empty file', '', '', 'an empty document'],
  ['a list at the top', '- 1\n', '', 'expected a mapping with at least a pool, got a list'],
  ['another version', `version: 2\n${POOL}`, 'version', 'expected 1 (the only manifest version), got 2'],
  ['no pool', 'layers: {}\n', 'pool', 'got nothing'],
  ['no pool name', 'pool: { baseSize: 10G }\n', 'pool.name', 'expected a pool name, got nothing'],
  ['an unknown top-level key', `${POOL}volumes: {}\n`, 'volumes', 'expected one of the keys version, pool, layers, devices, snapshotter, got "volumes"'],
  ['an unknown pool key', 'pool: { name: p, size: 1G }\n', 'pool.size', 'one of the keys name, data, metadata'],
  ['an unknown backing key', 'pool: { name: p, data: { path: x } }\n', 'pool.data.path', 'one of the keys file, size, device'],
  ['an unknown layer key', `${POOL}layers: { os: { from: x } }\n`, 'layers.os.from', 'one of the keys parent, source'],
  [
    'an unknown device key',
    `${POOL + LAYERS}devices: { d: { layer: os, fs: xfs } }\n`,
    'devices.d.fs',
    'one of the keys layer, state, mountpoint, mountOptions, size',
  ],
  [
    'a mount option other than suid and dev',
    `${POOL + LAYERS}devices: { d: { layer: os, mountOptions: [suid, exec] } }\n`,
    'devices.d.mountOptions[1]',
    'expected suid or dev, got "exec"',
  ],
  [
    'mount options that are not a list',
    `${POOL + LAYERS}devices: { d: { layer: os, mountOptions: suid } }\n`,
    'devices.d.mountOptions',
    'expected a list of suid, dev',
  ],
  ['a duplicate key', `${POOL}layers:\n  os: {}\n  os: {}\n`, 'layers.os', '"os" again (first on line 3)'],
  ['a duplicate top-level key', POOL + POOL, 'pool', '"pool" again (first on line 1)'],
  ['a pool name with a slash', 'pool: { name: a/b }\n', 'pool.name', "cannot contain '/'"],
  ['a pool name too long', `pool: { name: ${'p'.repeat(65)} }\n`, 'pool.name', 'at most 64 bytes'],
  ['a pool name of a number', 'pool: { name: 7 }\n', 'pool.name', 'expected a pool name, got 7'],
  ['a layer named ..', `${POOL}layers: { "..": {} }\n`, 'layers[".."]', 'cannot be ".."'],
  ['a layer name with a space', `${POOL}layers: { "my os": {} }\n`, 'layers["my os"]', 'whitespace'],
  ['a device name over 127 bytes', `${POOL + LAYERS}devices: { ${'d'.repeat(128)}: { layer: os } }\n`, `devices.${'d'.repeat(128)}`, 'at most 127 bytes'],
  ['a device name with a control character', `${POOL + LAYERS}devices: { "d\\u0007": { layer: os } }\n`, 'devices["d\\u0007"]', 'control characters'],
  ['an unknown parent', `${POOL}layers: { os: {}, app: { parent: sos } }\n`, 'layers.app.parent', 'expected the name of another layer (os, app), got "sos"'],
  ['a cycle', `${POOL}layers:\n  base: {}\n  a: { parent: b }\n  b: { parent: c }\n  c: { parent: a }\n`, 'layers.a.parent', 'a cycle: a -> b -> c -> a'],
  ['a layer its own parent', `${POOL}layers: { a: { parent: a } }\n`, 'layers.a.parent', 'a cycle: a -> a'],
  ['an empty source', `${POOL}layers: { a: { source: "" } }\n`, 'layers.a.source', 'a path'],
  ['a device named like a layer', `${POOL + LAYERS}devices: { os: { layer: os } }\n`, 'devices.os', 'share the device-mapper namespace'],
  ['a device of an unknown layer', `${POOL + LAYERS}devices: { d: { layer: fedora } }\n`, 'devices.d.layer', 'expected the name of a layer (os), got "fedora"'],
  ['a device with no layer', `${POOL + LAYERS}devices: { d: { state: created } }\n`, 'devices.d.layer', 'got nothing'],
  ['a device with no layers at all', `${POOL}devices: { d: { layer: os } }\n`, 'devices.d.layer', 'the manifest has none'],
  ['a device that is not a mapping', `${POOL + LAYERS}devices: { d: os }\n`, 'devices.d', 'expected a mapping with at least the layer, got "os"'],
  [
    'an unknown state',
    `${POOL + LAYERS}devices:\n  web1: { layer: os, state: running }\n`,
    'devices.web1.state',
    'm.yaml:4: devices.web1.state: expected one of created, activated, mounted, got "running"',
  ],
  ['mounted with no mountpoint', `${POOL + LAYERS}devices: { d: { layer: os, state: mounted } }\n`, 'devices.d.mountpoint', 'the state is mounted'],
  [
    'a relative mountpoint',
    `${POOL + LAYERS}devices: { d: { layer: os, mountpoint: mnt/d } }\n`,
    'devices.d.mountpoint',
    'expected an absolute path, got "mnt/d"',
  ],
  ['a mountpoint with ..', `${POOL + LAYERS}devices: { d: { layer: os, mountpoint: /mnt/../etc } }\n`, 'devices.d.mountpoint', '".." segments'],
  ['the root as mountpoint', `${POOL + LAYERS}devices: { d: { layer: os, mountpoint: // } }\n`, 'devices.d.mountpoint', 'other than / itself'],
  [
    'a shared mountpoint',
    `${POOL + LAYERS}devices:\n  a: { layer: os, mountpoint: /mnt/x }\n  b: { layer: os, mountpoint: /mnt/x/ }\n`,
    'devices.b.mountpoint',
    'also the mountpoint of devices.a',
  ],
  [
    'a mountpoint inside another',
    `${POOL + LAYERS}devices:\n  a: { layer: os, mountpoint: /mnt/x }\n  b: { layer: os, mountpoint: /mnt/x/y }\n`,
    'devices.b.mountpoint',
    'inside the mountpoint of devices.a (/mnt/x)',
  ],
  [
    'a mountpoint around another',
    `${POOL + LAYERS}devices:\n  a: { layer: os, mountpoint: /mnt/x/y }\n  b: { layer: os, mountpoint: /mnt }\n`,
    'devices.b.mountpoint',
    'containing the mountpoint of devices.a',
  ],
  [
    'a device smaller than the base',
    `${POOL + LAYERS}devices: { d: { layer: os, size: 5G } }\n`,
    'devices.d.size',
    'a device cannot be smaller than the base it snapshots',
  ],
  ['a device size not in sectors', `${POOL + LAYERS}devices: { d: { layer: os, size: 10737418241 } }\n`, 'devices.d.size', '512-byte sectors'],
  ['an unparsable size', 'pool: { name: p, baseSize: big }\n', 'pool.baseSize', 'expected a size such as 10G, 512M, 64K, 1.5G or a byte count, got "big"'],
  ['a decimal unit', 'pool: { name: p, baseSize: 10GB }\n', 'pool.baseSize', 'could be decimal or binary'],
  ['a negative size', 'pool: { name: p, baseSize: -10G }\n', 'pool.baseSize', 'cannot be negative'],
  ['a size over 2^53', 'pool: { name: p, data: { size: 16P } }\n', 'pool.data.size', 'largest size'],
  ['a size of the wrong type', 'pool: { name: p, baseSize: [10G] }\n', 'pool.baseSize', 'got a list'],
  ['a zero size', 'pool: { name: p, data: { size: 0 } }\n', 'pool.data.size', 'a size above zero'],
  ['data below two blocks', 'pool: { name: p, blockSize: 1M, data: { size: 1M } }\n', 'pool.data.size', 'at least 2 blocks of 1 MiB (2 MiB)'],
  ['metadata below 2M', 'pool: { name: p, metadata: { size: 1M } }\n', 'pool.metadata.size', 'from 2 MiB to 16 GiB'],
  ['metadata above 16G', 'pool: { name: p, metadata: { size: 17G } }\n', 'pool.metadata.size', 'from 2 MiB to 16 GiB'],
  ['a base below 16M', 'pool: { name: p, baseSize: 8M }\n', 'pool.baseSize', 'at least 16 MiB'],
  ['an xfs base below 300M', 'pool: { name: p, baseSize: 100M, filesystem: xfs }\n', 'pool.baseSize', 'at least 300 MiB with filesystem xfs'],
  ['a block size off 64K', 'pool: { name: p, blockSize: 96K }\n', 'pool.blockSize', 'a multiple of 64 KiB from 64 KiB to 1 GiB'],
  ['a block size below 64K', 'pool: { name: p, blockSize: 4K }\n', 'pool.blockSize', 'a multiple of 64 KiB'],
  ['a block size above 1G', 'pool: { name: p, blockSize: 2G }\n', 'pool.blockSize', 'from 64 KiB to 1 GiB'],
  ['another filesystem', 'pool: { name: p, filesystem: btrfs }\n', 'pool.filesystem', 'expected one of ext4, xfs, got "btrfs"'],
  ['minFree not a percentage', 'pool: { name: p, minFree: "0.1" }\n', 'pool.minFree', 'a percentage'],
  ['minFree of 100%', 'pool: { name: p, minFree: 100% }\n', 'pool.minFree', 'below 100%'],
  ['an absolute backing file', 'pool: { name: p, data: { file: /var/data.img } }\n', 'pool.data.file', 'a plain file name'],
  ['a backing file climbing out', 'pool: { name: p, metadata: { file: ../m.img } }\n', 'pool.metadata.file', 'a plain file name'],
  ['a backing file in a folder', 'pool: { name: p, data: { file: sub/d.img } }\n', 'pool.data.file', 'no "/"'],
  ['a backing device outside /dev', 'pool: { name: p, data: { device: /tmp/disk } }\n', 'pool.data.device', 'an absolute path under /dev'],
  ['a backing device climbing out of /dev', 'pool: { name: p, data: { device: /dev/../etc/x } }\n', 'pool.data.device', 'under /dev'],
  ['a backing with file and device', 'pool: { name: p, data: { file: d.img, device: /dev/sdb } }\n', 'pool.data.device', 'either file or device, not both'],
  ['a device backing with a size', 'pool: { name: p, data: { device: /dev/sdb, size: 1T } }\n', 'pool.data.size', 'a device has its own size'],
  [
    'data and metadata in one file',
    'pool: { name: p, data: { file: x.img }, metadata: { file: x.img } }\n',
    'pool.metadata.file',
    'a file other than the data file',
  ],
  [
    'data and metadata on one device',
    'pool: { name: p, data: { device: /dev/sdb }, metadata: { device: /dev//sdb } }\n',
    'pool.metadata.device',
    'a device other than the data device',
  ],
  ['an unknown tag', 'pool: { name: !secret p }\n', '', 'm.yaml:1: expected valid YAML, got an unsupported construct (Unresolved tag: !secret)'],
];

describe('a bad manifest', () => {
  it.each(BAD)('is refused: %s', (_what, text, path, fragment) => {
    const error = problemsOf(text);
    expect(error).toBeInstanceOf(UserError);
    expect(error.exitCode).toBe(2);
    expect(error.code).toBe('E_MANIFEST');
    const issue = error.errors.find((e) => e.path === path && e.message.includes(fragment));
    expect(issue, `no problem at "${path}" saying "${fragment}" in:\n${error.message}`).toBeDefined();
    expect(issue!.file).toBe('m.yaml');
    expect(issue!.message).toMatch(/^m\.yaml(:\d+)?: /);
  });

  it('lists every problem, in file order, one a line, with the line of each', () => {
    const text = [
      'pool:', //                                       1
      '  name: p', //                                   2
      '  filesystem: zfs', //                           3
      'layers:', //                                     4
      '  os: { parent: nothing }', //                   5
      'devices:', //                                    6
      '  web1: { layer: os, state: running }', //       7
      '  web2: { layer: os, mountpoint: relative }', // 8
      '',
    ].join('\n');
    const error = problemsOf(text);
    expect(error.errors.map((e) => [e.line, e.path])).toEqual([
      [3, 'pool.filesystem'],
      [5, 'layers.os.parent'],
      [7, 'devices.web1.state'],
      [8, 'devices.web2.mountpoint'],
    ]);
    expect(error.message.split('\n')).toEqual(error.errors.map((e) => e.message));
    expect(error.detail).toEqual({ file: 'm.yaml', path: 'pool.filesystem', expected: 'one of ext4, xfs' });
    expect(error.toJSON()).toMatchObject({ code: 'E_MANIFEST', path: 'pool.filesystem', errors: error.errors });
  });

  it('reports each mistake once, not again as a consequence', () => {
    const error = problemsOf(`${POOL}layers: { os: { parent: 5 } }\ndevices: { d: { layer: os, state: 3, size: 1X } }\n`);
    expect(error.errors.map((e) => e.path)).toEqual(['layers.os.parent', 'devices.d.state', 'devices.d.size']);
  });
});

describe('loadManifest', () => {
  it('reads a file, names it by its absolute path and places sources beside it', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'm.yaml');
    fs.writeFileSync(file, 'pool: { name: p }\nlayers: { os: { source: ./os } }\n');
    const m = await loadManifest(path.relative(process.cwd(), file));
    expect(m.file).toBe(file);
    expect(m.layers[0].source).toBe(path.join(dir, 'os'));
  });

  it('names the file as given in its problems', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, 'pool: { name: p, filesystem: zfs }\n');
    await expect(loadManifest(file)).rejects.toThrow(`${file}:1: pool.filesystem: expected one of ext4, xfs, got "zfs"`);
  });

  it('refuses a missing file with a UserError naming it', async () => {
    const missing = path.join(tempDir(), 'nothing.yaml');
    const error = await loadManifest(missing).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(2);
    expect((error as UserError).message).toBe(`${missing}: cannot read the manifest: no such file`);
    expect((error as UserError).detail.file).toBe(missing);
  });

  it('refuses a directory with a UserError naming it', async () => {
    const dir = tempDir();
    await expect(loadManifest(dir)).rejects.toThrow(`${dir} is a directory: -f takes a manifest file`);
  });
});

describe('docs/manifest.md', () => {
  it('shows the messages thinlayer gives for the example with a wrong filesystem and state', () => {
    const docs = fs.readFileSync(path.resolve(import.meta.dirname, '../../docs/manifest.md'), 'utf8');
    const shown = /## Errors[\s\S]*?```\n([\s\S]*?)```/.exec(docs)?.[1].trim();
    const broken = fs
      .readFileSync(EXAMPLE, 'utf8')
      .replace('filesystem: ext4', 'filesystem: zfs')
      .replace('state: mounted, mountpoint', 'state: running, mountpoint');
    expect(() => parseManifest(broken, 'examples/web.yaml')).toThrow(shown);
    expect(shown?.split('\n')).toHaveLength(2);
  });
});
