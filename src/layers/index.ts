// The layers module: layer content from archives, directories and OCI image layouts, applied safely
// into a mounted layer filesystem. The engine uses only what is exported here.

export type { ApplyOptions, ApplyResult } from './types.ts';
export type { ResolvedLayer } from '../model/layer-content.ts';
export { resolveLayerSource, type SourceOrigin } from './resolve-source.ts';
export { applyLayer, layerLabel } from './apply-layer.ts';
export { chainId, isSha256Digest } from './digest.ts';
export { LayerContentError } from './errors.ts';
export { PROGRESS_INTERVAL_MS } from './progress.ts';
