// A layered-image scenario shared by the simulated and the kernel tier: three layer archives (plain
// tar, gzip, zstd) with an overwrite, whiteouts, an opaque directory, symlinks, hardlinks, modes and
// ownership, plus an OCI image layout built here (no network), applied through the engine and
// checked in the mounted devices.

import { mkdirSync, writeFileSync, lstatSync, readFileSync, readlinkSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { buildTar, gzip, zstd, sha256 } from '../layers/tar-builder.ts';
import { simPool, writeManifest } from '../builders/manifest.ts';

const lower = buildTar([
  { name: 'etc/', type: 'dir', mode: 0o755 },
  { name: 'etc/passwd', content: 'root:x:0:0\n', mode: 0o644 },
  { name: 'usr/bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o4755, uid: 1234, gid: 5678 },
  { name: 'usr/bin/old', content: 'old', mode: 0o755 },
  { name: 'opt/', type: 'dir' },
  { name: 'opt/lower-a', content: 'a' },
  { name: 'data/deep/file', content: 'x'.repeat(5000) },
]);
const middle = buildTar([
  { name: 'etc/passwd', content: 'root:x:0:0\nweb:x:1234:5678\n', mode: 0o644 },
  { name: 'etc/localtime', type: 'symlink', linkname: '/usr/share/zoneinfo/UTC' },
  { name: 'usr/bin/.wh.old' },
  { name: 'usr/bin/tool-hard', type: 'hardlink', linkname: 'usr/bin/tool' },
  { name: 'opt/', type: 'dir' },
  { name: 'opt/.wh..wh..opq' },
  { name: 'opt/new', content: 'new' },
]);
const upper = buildTar([
  { name: '.wh.data' },
  { name: 'srv/', type: 'dir', mode: 0o750, uid: 1234, gid: 5678 },
  { name: 'srv/a', content: 'shared', mode: 0o640, uid: 1234, gid: 5678 },
  { name: 'srv/b', type: 'hardlink', linkname: 'srv/a' },
  { name: 'srv/secret', content: 'private', mode: 0o600 },
]);

function writeBlob(dir: string, data: Buffer | string): { digest: string; size: number } {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const digest = sha256(bytes);
  writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/** An OCI image layout with one two-layer image tagged v1. */
function buildOciLayout(dir: string): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const tars = [
    buildTar([
      { name: 'etc/', type: 'dir' },
      { name: 'etc/os-release', content: 'ID=thinlayer-test\n' },
      { name: 'bin/app', content: 'v1', mode: 0o755 },
    ]),
    buildTar([
      { name: 'bin/app', content: 'v2', mode: 0o755 },
      { name: 'srv/index.html', content: '<h1>hi</h1>' },
    ]),
  ];
  const layers = tars.map((t) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...writeBlob(dir, gzip(t)) }));
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const config = writeBlob(dir, JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: tars.map((t) => sha256(t)) } }));
  const manifest = writeBlob(
    dir,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers,
    }),
  );
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }],
    }),
  );
}

/** Writes the sources and the manifest into `dir`; mountpoints go under `mnt`. Returns the manifest path. */
export function writeLayerScenario(dir: string, mnt: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'lower.tar'), lower);
  writeFileSync(join(dir, 'middle.tar.gz'), gzip(middle));
  writeFileSync(join(dir, 'upper.tar.zst'), zstd(upper));
  buildOciLayout(join(dir, 'image'));
  return writeManifest(join(dir, 'layers.yaml'), {
    pool: simPool('layered'),
    layers: {
      lower: { source: 'lower.tar' },
      middle: { parent: 'lower', source: 'middle.tar.gz' },
      upper: { parent: 'middle', source: 'upper.tar.zst', mountpoint: `${mnt}/inspect-upper` },
      image: { source: 'oci:image:v1' },
    },
    devices: {
      app1: { layer: 'upper', mountpoint: `${mnt}/app1` },
      app2: { layer: 'upper', mountpoint: `${mnt}/app2` },
      img: { layer: 'image', mountpoint: `${mnt}/img` },
    },
  });
}

/** What a device built on `upper` must contain: every layer applied in order. */
export function expectUpperChain(root: string): void {
  expect(readFileSync(join(root, 'etc/passwd'), 'utf8')).toBe('root:x:0:0\nweb:x:1234:5678\n'); // overwrite
  expect(existsSync(join(root, 'usr/bin/old'))).toBe(false); // whiteout of a file
  expect(existsSync(join(root, 'data'))).toBe(false); // whiteout of a directory
  expect(existsSync(join(root, 'opt/lower-a'))).toBe(false); // opaque directory hides the lower content
  expect(readFileSync(join(root, 'opt/new'), 'utf8')).toBe('new'); // ... and keeps its own
  expect(readlinkSync(join(root, 'etc/localtime'))).toBe('/usr/share/zoneinfo/UTC'); // symlink
  const tool = lstatSync(join(root, 'usr/bin/tool'));
  expect(tool.mode & 0o7777).toBe(0o4755); // setuid kept
  expect([tool.uid, tool.gid]).toEqual([1234, 5678]); // ownership kept
  expect(lstatSync(join(root, 'usr/bin/tool-hard')).ino).toBe(tool.ino); // hardlink across layers
  expect(statSync(join(root, 'srv/b')).ino).toBe(statSync(join(root, 'srv/a')).ino); // hardlink within a layer
  expect(statSync(join(root, 'srv')).mode & 0o777).toBe(0o750);
  expect(statSync(join(root, 'srv/secret')).mode & 0o777).toBe(0o600);
}

export function expectImage(root: string): void {
  expect(readFileSync(join(root, 'bin/app'), 'utf8')).toBe('v2');
  expect(readFileSync(join(root, 'etc/os-release'), 'utf8')).toBe('ID=thinlayer-test\n');
  expect(readFileSync(join(root, 'srv/index.html'), 'utf8')).toBe('<h1>hi</h1>');
}
