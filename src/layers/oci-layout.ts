// OCI image layouts as layer sources: `oci:PATH:TAG` or `oci:PATH@sha256:HEX`. index.json leads to
// a manifest (through a nested index, by platform, for multi-platform images), the manifest to its
// config and layers. Every blob read is checked against its descriptor's digest and size, and every
// layer's uncompressed content against the config's rootfs.diff_ids, so a tampered or damaged
// layout is refused before anything is applied.

import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { sniffArchive } from './compression.ts';
import { checkArchive, type ContentRules } from './content-check.ts';
import { isSha256Digest } from './digest.ts';
import { LayerContentError } from './errors.ts';
import type { ResolvedLayer } from '../model/layer-content.ts';

export interface OciReference {
  /** The layout directory as written in the source (relative paths are resolved by the caller). */
  layout: string;
  tag: string | null;
  digest: string | null;
}

const OCI_PREFIX = 'oci:';
const REF_NAME = 'org.opencontainers.image.ref.name';
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
/** Descriptors, manifests and configs are small: a bigger one is not what it claims to be. */
const MAX_JSON_BLOB = 4 * 1024 * 1024;

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export function isOciSource(source: string): boolean {
  return source.startsWith(OCI_PREFIX);
}

/** `oci:PATH:TAG`, `oci:PATH@sha256:HEX`, or `oci:PATH` (the layout's only image). Null when malformed. */
export function parseOciSource(source: string): OciReference | null {
  if (!isOciSource(source)) return null;
  const rest = source.slice(OCI_PREFIX.length);
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    const digest = rest.slice(at + 1);
    return at > 0 && isSha256Digest(digest) ? { layout: rest.slice(0, at), tag: null, digest } : null;
  }
  const colon = rest.lastIndexOf(':');
  if (colon !== -1 && !rest.slice(colon + 1).includes('/')) {
    const tag = rest.slice(colon + 1);
    return colon > 0 && TAG.test(tag) ? { layout: rest.slice(0, colon), tag, digest: null } : null;
  }
  return rest === '' ? null : { layout: rest, tag: null, digest: null };
}

/** The platform name an image index is searched for: this machine's. */
function hostArchitecture(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}

function describeRef(ref: OciReference): string {
  return `oci:${ref.layout}${ref.digest ? `@${ref.digest}` : ref.tag ? `:${ref.tag}` : ''}`;
}

function isDescriptor(value: unknown): value is Descriptor {
  const d = value as Descriptor;
  return typeof d === 'object' && d !== null && typeof d.digest === 'string' && Number.isSafeInteger(d.size) && d.size >= 0;
}

/** The layers of an image in a layout, bottom first, each checked against its digests. */
export async function resolveOciImage(ref: OciReference, layoutDir: string, rules: ContentRules = {}): Promise<ResolvedLayer[]> {
  const name = describeRef(ref);
  const refuse = (reason: string) => new LayerContentError(reason, name, null, 'E_OCI_LAYOUT');

  const layoutFile = await readFile(join(layoutDir, 'oci-layout'), 'utf8').catch(() => null);
  let layoutVersion: unknown;
  try {
    layoutVersion = layoutFile === null ? undefined : JSON.parse(layoutFile).imageLayoutVersion;
  } catch {
    layoutVersion = undefined;
  }
  if (typeof layoutVersion !== 'string') throw refuse(`${layoutDir} is not an OCI image layout (no readable oci-layout file with an imageLayoutVersion)`);

  const blobPath = (digest: string) => join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const checkDescriptor = (d: unknown, what: string): Descriptor => {
    if (!isDescriptor(d)) throw refuse(`${what} is not a valid descriptor (a digest and a size)`);
    // Only sha256 digests name files: a digest is never allowed to become a path such as ../../x.
    if (!isSha256Digest(d.digest)) throw refuse(`${what} has digest ${JSON.stringify(d.digest)}: only sha256 digests are supported`);
    return d;
  };
  const readJsonBlob = async (d: Descriptor, what: string): Promise<Record<string, any>> => {
    if (d.size > MAX_JSON_BLOB) throw refuse(`${what} ${d.digest} claims ${d.size} bytes, more than a ${what} can be`);
    const data = await readFile(blobPath(d.digest)).catch(() => null);
    if (data === null) throw refuse(`the ${what} blob ${d.digest} is missing from ${join(layoutDir, 'blobs')}`);
    const actual = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (actual !== d.digest) throw refuse(`the ${what} blob ${d.digest} has digest ${actual}: it was changed or damaged`);
    if (data.length !== d.size) throw refuse(`the ${what} blob ${d.digest} is ${data.length} bytes, its descriptor says ${d.size}`);
    let json: unknown = null;
    try {
      json = JSON.parse(data.toString('utf8'));
    } catch {
      // not JSON: refused below
    }
    if (typeof json !== 'object' || json === null) throw refuse(`the ${what} blob ${d.digest} is not a JSON object`);
    return json as Record<string, any>;
  };

  let index: Record<string, any>;
  try {
    index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8'));
  } catch (e) {
    throw refuse(`cannot read ${join(layoutDir, 'index.json')} (${(e as Error).message})`);
  }
  const listed: Descriptor[] = (Array.isArray(index.manifests) ? index.manifests : []).map((d: unknown, i: number) =>
    checkDescriptor(d, `index.json manifests[${i}]`),
  );

  let chosen: Descriptor;
  if (ref.digest) {
    chosen = listed.find((d) => d.digest === ref.digest) ?? { digest: ref.digest, size: (await stat(blobPath(ref.digest)).catch(() => null))?.size ?? -1 };
    if (chosen.size < 0) throw refuse(`no manifest or blob ${ref.digest} in the layout`);
  } else {
    const tags = listed.map((d) => d.annotations?.[REF_NAME]).filter((t): t is string => typeof t === 'string');
    const matching = ref.tag === null ? listed : listed.filter((d) => d.annotations?.[REF_NAME] === ref.tag);
    if (ref.tag !== null && matching.length === 0)
      throw refuse(`no image tagged ${JSON.stringify(ref.tag)} in the layout (tags: ${tags.length ? tags.join(', ') : 'none'})`);
    if (matching.length !== 1)
      throw refuse(
        ref.tag === null
          ? `the layout holds ${listed.length} images: name one as oci:PATH:TAG or oci:PATH@sha256:HEX (tags: ${tags.join(', ') || 'none'})`
          : `${matching.length} images are tagged ${JSON.stringify(ref.tag)}: name one by digest`,
      );
    chosen = matching[0];
  }

  // A multi-platform image: an index of manifests, one per platform.
  let manifest = await readJsonBlob(chosen, 'manifest');
  for (let depth = 0; INDEX_TYPES.has(manifest.mediaType ?? chosen.mediaType) || (manifest.manifests && !manifest.layers); depth++) {
    if (depth > 2) throw refuse('image indexes nest too deeply');
    const arch = hostArchitecture();
    const entries: Descriptor[] = (Array.isArray(manifest.manifests) ? manifest.manifests : []).map((d: unknown, i: number) =>
      checkDescriptor(d, `index ${chosen.digest} manifests[${i}]`),
    );
    const forHost = entries.filter((d) => d.platform?.os === 'linux' && d.platform?.architecture === arch);
    if (forHost.length === 0) throw refuse(`the image index ${chosen.digest} has no manifest for linux/${arch}`);
    chosen = forHost[0];
    manifest = await readJsonBlob(chosen, 'manifest');
  }
  const mediaType = manifest.mediaType ?? chosen.mediaType;
  if (mediaType !== undefined && !MANIFEST_TYPES.has(mediaType))
    throw refuse(`the manifest ${chosen.digest} has media type ${mediaType}, not an image manifest`);
  const config = await readJsonBlob(checkDescriptor(manifest.config, `manifest ${chosen.digest} config`), 'config');
  const diffIds: unknown = config.rootfs?.diff_ids;
  const layers: Descriptor[] = (Array.isArray(manifest.layers) ? manifest.layers : []).map((d: unknown, i: number) =>
    checkDescriptor(d, `manifest ${chosen.digest} layers[${i}]`),
  );
  if (!Array.isArray(diffIds) || diffIds.length !== layers.length || !diffIds.every(isSha256Digest)) {
    throw refuse(`the config's rootfs.diff_ids does not list one sha256 digest for each of the manifest's ${layers.length} layers`);
  }

  const resolved: ResolvedLayer[] = [];
  for (const [i, d] of layers.entries()) {
    const path = resolve(blobPath(d.digest));
    const label = `${name} layer ${i + 1}/${layers.length} (${d.digest})`;
    resolved.push(await checkLayerBlob(path, d, diffIds[i] as string, label, refuse, rules));
  }
  return resolved;
}

/** Reads a layer blob once, hashing it as stored and uncompressed, checking both digests and its content (content-check.ts). */
async function checkLayerBlob(
  path: string,
  d: Descriptor,
  diffId: string,
  label: string,
  refuse: (reason: string) => Error,
  rules: ContentRules,
): Promise<ResolvedLayer> {
  const st = await stat(path).catch(() => null);
  if (!st?.isFile()) throw refuse(`the layer blob ${d.digest} is missing from the layout`);
  if (st.size !== d.size) throw refuse(`the layer blob ${d.digest} is ${st.size} bytes, its descriptor says ${d.size}`);
  const sniffed = await sniffArchive(path);
  if ('unsupported' in sniffed) throw refuse(`the layer blob ${d.digest} is ${sniffed.unsupported}, not a tar, tar+gzip or tar+zstd layer`);
  const checked = await checkArchive(path, sniffed.format, label, rules);
  if (checked.storedDigest !== d.digest) throw refuse(`the layer blob ${d.digest} has digest ${checked.storedDigest}: it was changed or damaged`);
  if (checked.diffId !== diffId) throw refuse(`the layer blob ${d.digest} uncompresses to ${checked.diffId}, but the config's diff_id is ${diffId}`);
  return {
    kind: 'tar',
    path,
    diffId,
    ...(sniffed.format === 'tar' ? {} : { compressedDigest: d.digest }),
    sizeBytes: st.size,
    label,
    expandedBytes: checked.expandedBytes,
    deviceNodes: checked.deviceNodes,
  };
}
