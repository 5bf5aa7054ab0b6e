// A layer's `source` as written in the manifest, turned into layers with their digests: an archive
// file (tar, tar.gz or tar.zst, told by its first bytes), a directory, or an OCI image layout, which
// expands into its chain of layers. Sources are only read, so they may live anywhere; relative ones
// are relative to the manifest's directory.

import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UserError, type ErrorCode } from '../errors/index.ts';
import { formatPath } from '../manifest/manifest-error.ts';
import { sniffArchive } from './compression.ts';
import { checkArchive, tooLargeMessage, type ContentRules } from './content-check.ts';
import { measureDirectory } from './dir-source.ts';
import { LayerContentError } from './errors.ts';
import { isOciSource, parseOciSource, resolveOciImage } from './oci-layout.ts';
import type { ArchiveDigests } from './types.ts';
import type { ResolvedLayer } from '../model/layer-content.ts';

/** Where a source was written, for errors that point at it: the manifest file and the layer's name. */
export interface SourceOrigin {
  manifestFile?: string;
  layer?: string;
}

const EXPECTED = 'a tar, tar.gz or tar.zst file, a directory, oci:PATH:TAG or oci:PATH@sha256:HEX';

function sourceError(message: string, origin: SourceOrigin, code: ErrorCode = 'E_LAYER_SOURCE'): UserError {
  const path = origin.layer === undefined ? undefined : formatPath(['layers', origin.layer, 'source']);
  const where = [origin.manifestFile, path].filter(Boolean).join(': ');
  return new UserError(`${where ? `${where}: ` : ''}${message}`, { file: origin.manifestFile, path, expected: EXPECTED }, code);
}

/**
 * A file's identity for ArchiveDigests: any write changes its ctime (to the nanosecond), and a
 * replaced file has another inode, so an archive with the same identity has the same bytes.
 */
async function fileIdentity(path: string): Promise<string> {
  const st = await stat(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * The layers of a source, with their digests. Archives are checked as they are hashed against the
 * extractor's rules and `rules` (content-check.ts): a bad layer is refused here, before any step.
 */
export async function resolveLayerSource(
  source: string,
  manifestDir: string,
  origin: SourceOrigin = {},
  digests?: ArchiveDigests,
  rules: ContentRules = {},
): Promise<ResolvedLayer[]> {
  if (isOciSource(source)) {
    const ref = parseOciSource(source);
    if (!ref) throw sourceError(`${JSON.stringify(source)} is not an OCI source: write oci:PATH:TAG or oci:PATH@sha256:HEX`, origin);
    const layoutDir = resolve(manifestDir, ref.layout);
    const st = await stat(layoutDir).catch(() => null);
    if (!st?.isDirectory()) throw sourceError(`the OCI image layout ${layoutDir} does not exist`, origin, 'E_LAYER_SOURCE_MISSING');
    return resolveOciImage(ref, layoutDir, rules);
  }
  const path = resolve(manifestDir, source);
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? null : Promise.reject(e)));
  if (st === null) throw sourceError(`the layer source ${path} does not exist`, origin, 'E_LAYER_SOURCE_MISSING');
  if (st.isDirectory()) {
    const { diffId, sizeBytes } = await measureDirectory(path, rules);
    return [{ kind: 'dir', path, diffId, sizeBytes, label: path }];
  }
  if (!st.isFile())
    throw sourceError(
      `the layer source ${path} is neither a regular file nor a directory (${st.isFIFO() ? 'a fifo' : st.isSocket() ? 'a socket' : 'a device node'})`,
      origin,
    );
  const identity = digests ? await fileIdentity(path) : '';
  const known = digests?.lookup(path, identity);
  // A digest remembered from an older release was taken without the checks: it is taken again.
  if (known && known.expandedBytes !== undefined && known.deviceNodes !== undefined) {
    judgeChecked(known, rules);
    return [known];
  }
  const sniffed = await sniffArchive(path);
  if ('unsupported' in sniffed) throw sourceError(`the layer source ${path} is ${sniffed.unsupported}`, origin);
  const checked = await checkArchive(path, sniffed.format, path, rules);
  const layer: ResolvedLayer = {
    kind: 'tar',
    path,
    diffId: checked.diffId,
    ...(sniffed.format === 'tar' ? {} : { compressedDigest: checked.storedDigest }),
    sizeBytes: st.size,
    label: path,
    expandedBytes: checked.expandedBytes,
    deviceNodes: checked.deviceNodes,
  };
  // Remembered only if the file did not change while it was read.
  if (digests && (await fileIdentity(path)) === identity) digests.remember(path, identity, layer);
  return [layer];
}

/** An archive checked before (its digest remembered) against this manifest's rules, which may have changed since. */
function judgeChecked(layer: ResolvedLayer, rules: ContentRules): void {
  const label = layer.label ?? layer.path;
  if (rules.maxBytes !== undefined && layer.expandedBytes! > rules.maxBytes) throw new LayerContentError(tooLargeMessage(rules.maxBytes), label, null);
  if (layer.deviceNodes && rules.allowDevices !== true)
    throw new LayerContentError('it holds device nodes or fifos, which are not allowed in this layer (they need allowDevices)', label, null);
}
