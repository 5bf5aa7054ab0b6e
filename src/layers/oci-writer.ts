// Writes an OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md):
// `oci-layout`, the blobs by digest, and `index.json` naming the image by its tag. Given the layers
// of a chain (each with its uncompressed tar as a stream and its diff id), it stores each layer's
// blob (the tar, or the tar gzip-compressed), then the config (whose rootfs.diff_ids name the
// layers) and the manifest. Everything is written whole; the same layers give the same bytes, so
// the same digests (gzip without a name or time in its header). A layout already in DIR keeps its
// other images: index.json is rewritten with this tag's entry replaced.

import { createGzip } from 'node:zlib';
import { Readable, pipeline } from 'node:stream';
import { existsSync, readFileSync, readdirSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { storeBlob, storeBlobStream, writeWhole } from './blob-store.ts';
import { UserError } from '../errors/index.ts';

export type LayerCompression = 'gzip' | 'none';

export interface ExportLayer {
  /** The layer's uncompressed tar. */
  tar: () => AsyncIterable<Buffer>;
  diffId: string;
}

export interface ExportedImage {
  dir: string;
  tag: string;
  manifestDigest: string;
  configDigest: string;
  layers: Array<{ digest: string; diffId: string; size: number; mediaType: string }>;
}

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const REF_NAME = 'org.opencontainers.image.ref.name';
/** containerd's `ctr images import` names the image from this annotation. */
const IMAGE_NAME = 'io.containerd.image.name';

function compressed(chunks: AsyncIterable<Buffer>, how: LayerCompression): AsyncIterable<Buffer> {
  if (how === 'none') return chunks;
  // pipeline, not pipe: an error of the source (a layer that no longer matches its digest) reaches
  // the compressed stream's reader instead of being thrown as an unhandled 'error' event.
  const gzip = createGzip();
  pipeline(Readable.from(chunks), gzip, () => undefined);
  return gzip;
}

/** A DIR to write into: absent, empty, or an OCI layout already. */
function checkLayoutDir(dir: string): void {
  if (!existsSync(dir)) return;
  if (readdirSync(dir).length === 0 || existsSync(join(dir, 'oci-layout'))) return;
  throw new UserError(
    `${dir} is neither empty nor an OCI image layout: thinlayer writes a layout only into an empty directory or a layout`,
    { path: dir, expected: 'an empty directory or an OCI image layout' },
    'E_USAGE',
  );
}

/** `name` is `NAME:TAG` or `TAG`: the tag is what `oci:DIR:TAG` sources and ref.name annotations use. */
export async function writeOciImage(dir: string, name: string, layers: ExportLayer[], how: LayerCompression): Promise<ExportedImage> {
  checkLayoutDir(dir);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tag = name.includes(':') ? name.slice(name.lastIndexOf(':') + 1) : name;
  const blobs = join(dir, 'blobs');
  const mediaType = how === 'gzip' ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar';
  const written: ExportedImage['layers'] = [];
  for (const layer of layers) {
    const blob = await storeBlobStream(blobs, compressed(layer.tar(), how));
    written.push({ digest: blob.digest, diffId: layer.diffId, size: blob.bytes, mediaType });
  }
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const config = storeBlob(blobs, [
    Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: written.map((l) => l.diffId) } })),
  ]);
  const manifest = storeBlob(blobs, [
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST_TYPE,
        config: { mediaType: CONFIG_TYPE, digest: config.digest, size: config.bytes },
        layers: written.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      }),
    ),
  ]);
  writeWhole(join(dir, 'oci-layout'), [Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }))]);
  const indexPath = join(dir, 'index.json');
  const others = existsSync(indexPath)
    ? ((JSON.parse(readFileSync(indexPath, 'utf8')).manifests ?? []) as Array<{ annotations?: Record<string, string> }>).filter(
        (m) => m.annotations?.[REF_NAME] !== tag,
      )
    : [];
  const entry = { mediaType: MANIFEST_TYPE, digest: manifest.digest, size: manifest.bytes, annotations: { [REF_NAME]: tag, [IMAGE_NAME]: name } };
  writeWhole(indexPath, [Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [...others, entry] }))]);
  return { dir, tag, manifestDigest: manifest.digest, configDigest: config.digest, layers: written };
}
