// The bounds a manifest's sizes must respect. Block size and metadata bounds are the kernel's
// thin-pool limits; the base size floors are where mkfs stops: mkfs.xfs 6.1 refuses anything
// below 300 MiB ("Filesystem must be larger than 300MB"), and 16 MiB leaves ext4 a usable journal.

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

export const MIN_BLOCK_SIZE_BYTES = 64 * KiB;
export const MAX_BLOCK_SIZE_BYTES = 1 * GiB;
/** Block sizes are multiples of this (the kernel's DATA_DEV_BLOCK_SIZE_MIN_SECTORS). */
export const BLOCK_SIZE_STEP_BYTES = 64 * KiB;
export const MIN_METADATA_BYTES = 2 * MiB;
export const MAX_METADATA_BYTES = 16 * GiB;
export const MIN_BASE_SIZE_BYTES = 16 * MiB;
export const MIN_XFS_BASE_SIZE_BYTES = 300 * MiB;
/** A pool needs room for at least this many data blocks. */
export const MIN_DATA_BLOCKS = 2;
