// Errors of layer content. Content that thinlayer refuses (hostile, corrupt, too large, not what its
// digest says) is the user's input at fault, so these are UserErrors (exit 2), naming the layer and,
// where there is one, the entry inside it.

import { UserError, type ErrorCode } from '../errors/index.ts';

export class LayerContentError extends UserError {
  constructor(
    reason: string,
    /** The layer as named in messages (its label or path). */
    readonly layer: string,
    /** The archive entry at fault, or null when the fault is the layer as a whole. */
    readonly entry: string | null,
    code: ErrorCode = 'E_LAYER_CONTENT',
  ) {
    super(
      entry === null ? `layer ${layer}: ${reason}` : `layer ${layer}: entry ${JSON.stringify(entry)}: ${reason}`,
      { file: layer, ...(entry === null ? {} : { path: entry }) },
      code,
    );
    this.name = 'LayerContentError';
  }
  override toJSON() {
    return { ...super.toJSON(), layer: this.layer, entry: this.entry };
  }
}

/** What the tar reader finds wrong, before it is placed in a layer (see LayerContentError). */
export class TarFormatError extends Error {
  constructor(
    message: string,
    readonly entry: string | null = null,
  ) {
    super(message);
    this.name = 'TarFormatError';
  }
}
