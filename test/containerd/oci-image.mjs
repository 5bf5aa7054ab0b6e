// Writes an OCI image archive (an image layout in a tar: oci-layout, index.json, blobs/sha256/*)
// that `ctr images import` takes offline. The first layer is a root filesystem made from Debian's
// busybox-static (/bin/busybox and its applets as symlinks); each further layer adds one file,
// /etc/tl-layer-N, and the last adds /etc/tl-message. Layers are plain tars (no compression, so a
// layer's digest is its diff id), packed by GNU tar with fixed owners and times.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'echo', 'cat', 'ls', 'sleep', 'true', 'sync', 'test'];
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar';

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

function tarDir(dir, out) {
  execFileSync('tar', [
    '--sort=name',
    '--numeric-owner',
    '--owner=0',
    '--group=0',
    '--mtime=@1700000000',
    '--format=posix',
    '--pax-option=delete=atime,delete=ctime',
    '-C',
    dir,
    '-cf',
    out,
    '.',
  ]);
}

/**
 * @param {{ out: string, name: string, layers?: number, message: string, scratch: string, salt?: string, fillFiles?: number, cmd?: string[] }} o
 *   name: the image reference (`docker.io/library/NAME:TAG`); layers: 1 (the rootfs) or more;
 *   message: the content of /etc/tl-message, for a container to print; scratch: a directory of
 *   the caller's, emptied and used here; salt: written into every layer, so that images with
 *   different salts share no layer; fillFiles: files of 16 KiB of random bytes added to every
 *   layer under /data/N (a layer with content to unpack, not only a name); cmd: the image's
 *   command (default: print /etc/tl-message), e.g. a long sleep for a pod's sandbox image
 * @returns {{ out: string, name: string, layers: string[] }} the layers' digests
 */
export function writeOciArchive({ out, name, layers = 1, message, scratch, salt = '', fillFiles = 0, cmd = ['/bin/cat', '/etc/tl-message'] }) {
  if (!fs.existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} not found: install the Debian package busybox-static`);
  fs.rmSync(scratch, { recursive: true, force: true });
  const layout = path.join(scratch, 'layout');
  const blobs = path.join(layout, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const blob = (buf) => {
    const digest = sha256(buf);
    fs.writeFileSync(path.join(blobs, digest), buf);
    return { digest: `sha256:${digest}`, size: buf.length };
  };
  const layerDescs = [];
  for (let i = 0; i < layers; i++) {
    const root = path.join(scratch, `layer-${i}`);
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    if (i === 0) {
      fs.mkdirSync(path.join(root, 'bin'));
      for (const d of ['proc', 'sys', 'dev', 'tmp', 'run']) fs.mkdirSync(path.join(root, d));
      fs.copyFileSync(BUSYBOX, path.join(root, 'bin', 'busybox'));
      fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
      for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    }
    if (i > 0 || layers === 1) fs.writeFileSync(path.join(root, 'etc', `tl-layer-${i}`), `layer ${i}\n`);
    if (salt) fs.writeFileSync(path.join(root, 'etc', `tl-salt-${i}`), `${salt}\n`);
    if (fillFiles > 0) {
      fs.mkdirSync(path.join(root, 'data', String(i)), { recursive: true });
      for (let f = 0; f < fillFiles; f++) fs.writeFileSync(path.join(root, 'data', String(i), `f${f}`), crypto.randomBytes(16 << 10));
    }
    if (i === layers - 1) fs.writeFileSync(path.join(root, 'etc', 'tl-message'), `${message}\n`);
    const tar = path.join(scratch, `layer-${i}.tar`);
    tarDir(root, tar);
    layerDescs.push({ mediaType: LAYER_TYPE, ...blob(fs.readFileSync(tar)) });
  }
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Env: ['PATH=/bin'], Cmd: cmd, WorkingDir: '/' },
        rootfs: { type: 'layers', diff_ids: layerDescs.map((l) => l.digest) },
      }),
    ),
  );
  const manifest = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: layerDescs,
      }),
    ),
  );
  const tag = name.split(':').pop();
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  fs.mkdirSync(path.dirname(out), { recursive: true });
  tarDir(layout, out);
  return { out, name, layers: layerDescs.map((l) => l.digest) };
}
