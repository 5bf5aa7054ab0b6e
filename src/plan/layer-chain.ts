// Content addressing of layers: every layer device is named by its OCI chain id, so layers that
// share content and ancestry share one thin device, and a changed source makes a new device rather
// than a rewrite in place. Pure: the sources' digests are resolved beforehand (src/layers/resolve-content.ts).

import type { Manifest } from '../model/manifest.ts';
import type { ResolvedLayer, LayerUnit, LayerContent } from '../model/layer-content.ts';
import { chainId } from '../layers/digest.ts';

/** The diff id of a layer with no content: an empty tar (two 512-byte zero blocks). */
export const EMPTY_LAYER_DIFF_ID = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

/** The short hex form of a chain id, used in dm names. */
export function chainHex(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 16);
}

export function chainLayers(manifest: Manifest, resolved: Record<string, ResolvedLayer[]> = {}): LayerContent {
  const units: LayerUnit[] = [];
  const seen = new Set<string>();
  const top: Record<string, string> = {};
  for (const layer of manifest.layers) {
    let parent = layer.parent ? top[layer.parent] : null;
    const parts = layer.source ? (resolved[layer.name] ?? []) : [];
    const contents: Array<ResolvedLayer | null> = parts.length > 0 ? parts : [null];
    contents.forEach((content, i) => {
      const diffId = content?.diffId ?? EMPTY_LAYER_DIFF_ID;
      const id = chainId(parent, diffId);
      if (!seen.has(id)) {
        seen.add(id);
        units.push({
          chainId: id,
          parentChainId: parent,
          diffId,
          content,
          label: contents.length > 1 ? `${layer.name} (${i + 1}/${contents.length})` : layer.name,
          allowDevices: layer.allowDevices === true,
        });
      }
      parent = id;
    });
    top[layer.name] = parent!;
  }
  return { units, top };
}
