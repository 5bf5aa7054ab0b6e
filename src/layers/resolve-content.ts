// The read half of layer content: resolve every layer's source (hashing archives and directories,
// checking OCI digests) before planning, so that the planner stays pure and every layer device is
// named by its chain id.

import { dirname } from 'node:path';
import type { Manifest } from '../model/manifest.ts';
import type { ArchiveDigests } from './types.ts';
import type { ResolvedLayer, LayerContent } from '../model/layer-content.ts';
import { resolveLayerSource } from './resolve-source.ts';
import { chainLayers } from '../plan/layer-chain.ts';

/** `digests`: archives hashed before, by file identity (the state dir's ArchiveDigestFile). */
export async function resolveContent(manifest: Manifest, digests?: ArchiveDigests): Promise<LayerContent> {
  const resolved: Record<string, ResolvedLayer[]> = {};
  for (const layer of manifest.layers) {
    if (!layer.source) continue;
    // Checked as they are hashed, against the rules extraction applies: a layer larger than the base
    // device (every layer device has the base's size) or with device nodes it may not hold is refused here.
    const rules = { maxBytes: manifest.pool.baseSizeBytes, allowDevices: layer.allowDevices === true };
    resolved[layer.name] = await resolveLayerSource(
      layer.source,
      dirname(manifest.file || '.'),
      { manifestFile: manifest.file || undefined, layer: layer.name },
      digests,
      rules,
    );
  }
  return chainLayers(manifest, resolved);
}
