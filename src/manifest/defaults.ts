// What a manifest means when it leaves a pool setting out.

import type { Filesystem } from '../model/manifest.ts';

const KiB = 1024;
const GiB = 1024 ** 3;

export const MANIFEST_DEFAULTS = {
  data: { file: 'data.img', sizeBytes: 100 * GiB },
  metadata: { file: 'metadata.img', sizeBytes: 2 * GiB },
  blockSizeBytes: 64 * KiB,
  baseSizeBytes: 10 * GiB,
  filesystem: 'ext4' as Filesystem,
  minFreeFraction: 0.1,
  noSpaceTimeoutSeconds: 60,
} as const;
