// The exact text dm-thin prints for `table` and `status`, byte for byte (drivers/md/dm-thin.c:
// pool_status, emit_flags, thin_status). The pool's lines end in a space because every field is
// printed as "%llu " by the kernel; thin lines do not. Keep it that way: callers parse the real text.

export interface DevT {
  major: number;
  minor: number;
}

export function formatDevT(dev: DevT): string {
  return `${dev.major}:${dev.minor}`;
}

/** The pool features as given in a thin-pool table, in the kernel's terms. */
export interface PoolFeatures {
  zeroNewBlocks: boolean; // false with skip_block_zeroing
  discardEnabled: boolean; // false with ignore_discard
  discardPassdown: boolean; // false with no_discard_passdown
  readOnly: boolean; // read_only
  errorIfNoSpace: boolean; // error_if_no_space
}

export const DEFAULT_POOL_FEATURES: PoolFeatures = {
  zeroNewBlocks: true,
  discardEnabled: true,
  discardPassdown: true,
  readOnly: false,
  errorIfNoSpace: false,
};

/** emit_flags: the feature count, then each feature in a fixed order, each followed by a space. */
export function formatPoolFeatures(f: PoolFeatures): string {
  const words: string[] = [];
  if (!f.zeroNewBlocks) words.push('skip_block_zeroing');
  if (!f.discardEnabled) words.push('ignore_discard');
  if (!f.discardPassdown) words.push('no_discard_passdown');
  if (f.readOnly) words.push('read_only');
  if (f.errorIfNoSpace) words.push('error_if_no_space');
  return `${words.length} ${words.map((w) => `${w} `).join('')}`;
}

export function poolTableParams(p: { metadataDev: DevT; dataDev: DevT; blockSectors: number; lowWaterBlocks: number; features: PoolFeatures }): string {
  return `${formatDevT(p.metadataDev)} ${formatDevT(p.dataDev)} ${p.blockSectors} ${p.lowWaterBlocks} ${formatPoolFeatures(p.features)}`;
}

/** What the pool is doing, as the status line's mode word shows it. */
export type PoolMode = 'rw' | 'out_of_data_space' | 'out_of_metadata_space' | 'ro';

export interface PoolStatusFields {
  transactionId: bigint;
  usedMetadataBlocks: number;
  totalMetadataBlocks: number;
  usedDataBlocks: number;
  totalDataBlocks: number;
  heldRoot: number | null;
  mode: PoolMode;
  features: PoolFeatures;
  needsCheck: boolean;
  metadataLowWatermark: number;
}

export function poolStatusParams(s: PoolStatusFields): string {
  // out_of_metadata_space and read_only both print "ro" (is_read_only_pool_mode).
  const mode = s.mode === 'out_of_data_space' ? 'out_of_data_space' : s.mode === 'rw' ? 'rw' : 'ro';
  const discard = !s.features.discardEnabled ? 'ignore_discard' : s.features.discardPassdown ? 'discard_passdown' : 'no_discard_passdown';
  const noSpace = s.features.errorIfNoSpace ? 'error_if_no_space' : 'queue_if_no_space';
  return (
    `${s.transactionId} ${s.usedMetadataBlocks}/${s.totalMetadataBlocks} ${s.usedDataBlocks}/${s.totalDataBlocks} ` +
    `${s.heldRoot === null ? '-' : s.heldRoot} ${mode} ${discard} ${noSpace} ${s.needsCheck ? 'needs_check' : '-'} ${s.metadataLowWatermark} `
  );
}

export function thinTableParams(poolDev: DevT, thinId: number): string {
  return `${formatDevT(poolDev)} ${thinId}`;
}

/** `<nr mapped sectors> <highest mapped sector>`; the highest is `-` when nothing is mapped. */
export function thinStatusParams(mappedBlocks: number, highestMappedBlock: number | null, blockSectors: number): string {
  const highest = highestMappedBlock === null ? '-' : String((highestMappedBlock + 1) * blockSectors - 1);
  return `${mappedBlocks * blockSectors} ${highest}`;
}

export function linearTableParams(dev: DevT, offsetSectors: number): string {
  return `${formatDevT(dev)} ${offsetSectors}`;
}
